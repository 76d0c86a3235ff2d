"""clipfind.embedding.torch_model: loading through open_clip's real path, encoding, and errors a user can act on.

Everything runs without network and without pretrained weights: the tiny random architecture
stands in for a real one (the Hub's side is tests/embedding/test_download.py).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import open_clip
import pytest
import safetensors.torch
import torch
from PIL import Image

from clipfind.embedding.spec import TINY_MODEL, ModelSpec
from clipfind.embedding.torch_model import (
    ClipModel,
    configure_cpu_threads,
    load_model,
    pick_device,
    register_tiny_model,
)
from clipfind.errors import ModelLoadError
from tests.embedding.conftest import TEXTS, Saved

pytestmark = pytest.mark.usefixtures("no_network")


def _load_random(name: str = TINY_MODEL) -> ClipModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_model(ModelSpec(name, None), device="cpu")


@pytest.fixture(scope="module")
def tiny() -> ClipModel:
    return _load_random()


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# -- the tiny random model ------------------------------------------------------------------------


def test_random_weights_warn_that_results_are_meaningless() -> None:
    with pytest.warns(UserWarning, match="random weights.*meaningless"):
        load_model(ModelSpec(TINY_MODEL, None), device="cpu")


def test_tiny_model_attributes(tiny: ClipModel) -> None:
    assert (tiny.dim, tiny.image_size, tiny.device) == (64, 64, torch.device("cpu"))
    assert tiny.spec.identity == "clipfind-tiny/none"
    assert not tiny._model.training


def test_encode_images_gives_unit_float32_rows(tiny: ClipModel, images: torch.Tensor) -> None:
    assert_unit_rows(tiny.encode_images(images), 5, 64)


def test_encode_texts_gives_unit_float32_rows(tiny: ClipModel) -> None:
    assert_unit_rows(tiny.encode_texts(TEXTS), 3, 64)
    assert_unit_rows(tiny.encode_texts(("one query",)), 1, 64)


def test_empty_inputs_give_empty_matrices(tiny: ClipModel) -> None:
    assert tiny.encode_images(torch.zeros(0, 3, 64, 64)).shape == (0, 64)
    assert tiny.encode_texts([]).shape == (0, 64)


def test_encoding_is_deterministic(tiny: ClipModel, images: torch.Tensor) -> None:
    np.testing.assert_array_equal(tiny.encode_images(images), tiny.encode_images(images))
    np.testing.assert_array_equal(tiny.encode_texts(TEXTS), tiny.encode_texts(TEXTS))


def test_batch_of_one_matches_batch_of_many(tiny: ClipModel, images: torch.Tensor) -> None:
    together = tiny.encode_images(images)
    alone = np.concatenate([tiny.encode_images(images[i : i + 1]) for i in range(len(images))])
    np.testing.assert_allclose(alone, together, atol=1e-5)
    texts_together = tiny.encode_texts(TEXTS)
    texts_alone = np.concatenate([tiny.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(texts_alone, texts_together, atol=1e-5)


@pytest.mark.parametrize("mode,size", [("RGB", (300, 200)), ("L", (50, 90)), ("RGBA", (64, 64)), ("P", (10, 10))])
def test_preprocess_gives_model_input_size(tiny: ClipModel, mode: str, size: tuple[int, int]) -> None:
    tensor = tiny.preprocess(Image.new(mode, size))
    assert tensor.shape == (3, tiny.image_size, tiny.image_size)
    assert tensor.dtype == torch.float32
    assert_unit_rows(tiny.encode_images(tensor.unsqueeze(0)), 1, 64)


def test_mobileclip_is_reparameterized_for_inference() -> None:
    model = _load_random("MobileCLIP2-S0")
    assert model.image_size == 256 and model.dim == 512
    branches = [m for m in model._model.modules() if hasattr(m, "reparameterize")]
    assert branches and all(m.reparam_conv is not None for m in branches)
    assert_unit_rows(model.encode_images(torch.rand(2, 3, 256, 256)), 2, 512)


def test_register_tiny_model_is_idempotent() -> None:
    register_tiny_model()
    paths = len(open_clip.factory._MODEL_CONFIG_PATHS)
    register_tiny_model()
    assert len(open_clip.factory._MODEL_CONFIG_PATHS) == paths
    assert open_clip.get_model_config(TINY_MODEL)["embed_dim"] == 64


# -- checkpoint files (--pretrained PATH) ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["safetensors", "bin"])
def test_checkpoint_file_loads_its_weights(saved: Saved, images: torch.Tensor, kind: str) -> None:
    path = getattr(saved, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # real weights: no random-weights warning
        model = load_model(ModelSpec(TINY_MODEL, str(path)), device="cpu")
    assert model.spec.identity == f"clipfind-tiny/file:{path}"
    np.testing.assert_allclose(model.encode_images(images), saved.image_vectors, atol=1e-5)
    np.testing.assert_allclose(model.encode_texts(TEXTS), saved.text_vectors, atol=1e-5)


@pytest.mark.parametrize("name", ["broken.safetensors", "broken.bin", "broken.pt"])
def test_corrupt_checkpoint_names_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelLoadError, match="corrupt") as error:
        load_model(ModelSpec(TINY_MODEL, str(path)), device="cpu")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_checkpoint_of_another_architecture_is_refused(saved: Saved, tmp_path: Path) -> None:
    state = safetensors.torch.load_file(saved.safetensors)
    state["token_embedding.weight"] = torch.zeros(100, 64)  # another vocabulary size
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file(state, path)
    with pytest.raises(ModelLoadError, match="does not match the clipfind-tiny architecture") as error:
        load_model(ModelSpec(TINY_MODEL, str(path)), device="cpu")
    assert str(path) in str(error.value)


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(ModelLoadError, match=f"not found: {path}"):
        load_model(ModelSpec(TINY_MODEL, str(path)))


# -- names and tags ------------------------------------------------------------------------------------


def test_unknown_model_name_points_to_clipfind_models() -> None:
    with pytest.raises(ModelLoadError, match="Unknown model 'ViT-Q-99'.*clipfind models"):
        load_model(ModelSpec("ViT-Q-99", None))


def test_unknown_tag_lists_the_valid_tags() -> None:
    with pytest.raises(ModelLoadError, match="Unknown --pretrained 'laion9000' for ViT-B-32") as error:
        load_model(ModelSpec("ViT-B-32", "laion9000"))
    for tag in open_clip.list_pretrained_tags_by_model("ViT-B-32"):
        assert tag in str(error.value)


def test_model_without_published_weights_asks_for_a_file() -> None:
    register_tiny_model()
    with pytest.raises(ModelLoadError, match="no published weights.*--pretrained PATH"):
        load_model(ModelSpec(TINY_MODEL, "laion2b_s34b_b79k"))


# -- devices and threads ---------------------------------------------------------------------------------


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert pick_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ModelLoadError, match="Unknown device"):
        pick_device("abacus")


def test_configure_cpu_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        threads = configure_cpu_threads()
        assert 1 <= threads <= len(os.sched_getaffinity(0))
        assert torch.get_num_threads() == threads
        configure_cpu_threads()  # again, after work has run: must not raise
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_cpu_threads() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
