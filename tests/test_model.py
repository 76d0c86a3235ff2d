"""clipfind.model: loading through open_clip's real path, encoding, and errors a user can act on.

Everything runs without network and without pretrained weights: the tiny random architecture
stands in for a real one, and Hugging Face Hub behaviour is exercised in subprocesses (so
huggingface_hub reads HF_HOME / HF_HUB_OFFLINE / HF_ENDPOINT at import, as on a user's machine)
against a cache built here or a fake Hub served on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import open_clip
import pytest
import safetensors.torch
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils._xet_progress_reporting import XetDownloadProgressReporter
from PIL import Image

from clipfind import model as model_module
from clipfind.errors import ModelLoadError
from clipfind.model import (
    TINY_MODEL,
    ClipModel,
    configure_cpu_threads,
    load_model,
    pick_device,
    register_tiny_model,
)
from clipfind.modelspec import DEFAULT_MODEL, DEFAULT_PRETRAINED, ModelSpec

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEXTS = ["a photo of a dog", "sunset over the sea", "birthday cake with candles"]
# Given to the fake Hub repos: with it a white image becomes all ones, which open_clip's default
# (OpenAI) mean/std would not give, so the repo's preprocess_cfg is seen to be used.
PREPROCESS_CFG = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"}
FAST = 5.0  # seconds: a failure without network must come at once, not after minutes of retries


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process nothing may reach the Hub, whatever a test does."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


def _load_random(name: str = TINY_MODEL) -> ClipModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_model(ModelSpec(name, None), device="cpu")


@pytest.fixture(scope="module")
def tiny() -> ClipModel:
    return _load_random()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(7))


@dataclass(frozen=True)
class Saved:
    """A tiny model with known weights, saved the ways users and the Hub store them."""

    safetensors: Path
    bin: Path
    image_vectors: np.ndarray
    text_vectors: np.ndarray
    images: Path  # the input images, for subprocesses


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, images: torch.Tensor) -> Saved:
    register_tiny_model()
    torch.manual_seed(1234)
    reference = open_clip.create_model(TINY_MODEL).eval()
    folder = tmp_path_factory.mktemp("saved")
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    safetensors.torch.save_file(state, folder / "tiny.safetensors")
    torch.save(state, folder / "tiny.bin")
    torch.save(images, folder / "images.pt")
    tokens = open_clip.get_tokenizer(TINY_MODEL)(TEXTS)
    with torch.inference_mode():
        image_vectors = reference.encode_image(images, normalize=True).numpy()
        text_vectors = reference.encode_text(tokens, normalize=True).numpy()
    return Saved(folder / "tiny.safetensors", folder / "tiny.bin", image_vectors, text_vectors, folder / "images.pt")


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


def test_parse_defaults() -> None:
    assert ModelSpec.parse(None, None) == ModelSpec(DEFAULT_MODEL, DEFAULT_PRETRAINED)
    assert ModelSpec.parse("", None) == ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    assert ModelSpec.parse("ViT-L-14", None) == ModelSpec("ViT-L-14", "laion2b_s32b_b82k")  # the table's choice
    assert ModelSpec.parse("RN50", None) == ModelSpec("RN50", "openai")  # else open_clip's first tag
    assert ModelSpec.parse(TINY_MODEL, None) == ModelSpec(TINY_MODEL, None)  # no weights exist


@pytest.mark.parametrize("none", ["none", "None", "", "  "])
def test_parse_none_means_random_weights(none: str) -> None:
    spec = ModelSpec.parse("ViT-B-32", none)
    assert spec == ModelSpec("ViT-B-32", None)
    assert spec.identity == "ViT-B-32/none"


def test_parse_tags_are_normalised_like_open_clip_does() -> None:
    spec = ModelSpec.parse("ViT-B/32", "LAION2B-s34b-b79k")
    assert spec == ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    assert spec.identity == "ViT-B-32/laion2b_s34b_b79k"
    assert ModelSpec.parse("ViT-B-32", "openai").identity == "ViT-B-32/openai"


def test_parse_file_paths_expand_home_and_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = ModelSpec.parse("ViT-B-32", "~/weights/b32.safetensors")
    assert spec.pretrained == str(tmp_path / "weights" / "b32.safetensors")
    assert spec.identity == f"ViT-B-32/file:{tmp_path}/weights/b32.safetensors"
    monkeypatch.chdir(tmp_path)
    assert ModelSpec.parse("ViT-B-32", "b32.bin").pretrained == str(tmp_path / "b32.bin")
    assert ModelSpec("ViT-B-32", "~/x.pt").identity == f"ViT-B-32/file:{tmp_path}/x.pt"


def test_parse_hf_hub_names() -> None:
    spec = ModelSpec.parse("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None)
    assert spec == ModelSpec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None)
    assert spec.identity == "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert ModelSpec.parse("hf-hub:org/repo", "none") == ModelSpec("hf-hub:org/repo", None)
    with pytest.raises(ModelLoadError, match="weights come from that repository"):
        ModelSpec.parse("hf-hub:org/repo", "openai")


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


# -- download progress -------------------------------------------------------------------------------------


def test_progress_bar_reports_bytes_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[int, int | None]] = []
    bar = model_module._progress_bar(lambda done, total: calls.append((done, total)))(total=300, unit="B")
    for _ in range(3):
        bar.update(100)
    bar.close()
    assert calls == [(0, 300), (100, 300), (200, 300), (300, 300)]
    assert capsys.readouterr() == ("", "")


def test_progress_bar_gets_one_stream_from_xet_downloads() -> None:
    """Hub weights are on Xet storage: huggingface_hub's Xet reporter must feed one bar, not two."""
    calls: list[tuple[int, int | None]] = []
    bar_class = model_module._progress_bar(lambda done, total: calls.append((done, total)))
    with XetDownloadProgressReporter(
        reconstruction_desc="weights", total=300, log_level=logging.INFO, tqdm_class=bar_class
    ) as reporter:
        for written, received in [(100, 90), (200, 150), (300, 210)]:
            reporter.update_progress(
                SimpleNamespace(
                    total_bytes_completed=written,
                    total_transfer_bytes_completed=received,
                    total_bytes_completion_rate=1.0,
                    total_transfer_bytes_completion_rate=1.0,
                    total_bytes=300,
                )
            )
    assert calls == [(0, 300), (100, 300), (200, 300), (300, 300)]


# -- the Hugging Face Hub, in subprocesses -------------------------------------------------------------------

SCENARIO = r"""
import json, sys, time, urllib.request, warnings
import torch
from PIL import Image
import open_clip
from open_clip.pretrained import _PRETRAINED, _pcfg
from clipfind.errors import ModelLoadError
from clipfind.model import load_model, register_tiny_model
from clipfind.modelspec import ModelSpec

args = json.loads(sys.argv[1])
images = torch.load(args["images"])
register_tiny_model()
for model, tag, repo, quick_gelu in args.get("fake_tags", []):  # tags like the real ones, on test repos
    _PRETRAINED.setdefault(model, {})[tag] = _pcfg(hf_hub=repo, quick_gelu=quick_gelu)
results = []
for step in args["steps"]:
    if step.get("mark"):
        urllib.request.urlopen(args["endpoint"] + "/_mark").read()
        continue
    calls = []
    spec = ModelSpec.parse(*step["spec"]) if step.get("parse") else ModelSpec(*step["spec"])
    result = {"calls": calls}
    start = time.monotonic()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_model(spec, "cpu", (lambda d, t: calls.append([d, t])) if step.get("progress") else None)
        result.update(
            images=model.encode_images(images).tolist(),
            texts=model.encode_texts(args["texts"]).tolist(),
            dim=model.dim,
            white=model.preprocess(Image.new("RGB", (90, 40), "white")).unique().tolist(),
            warnings=[str(w.message) for w in caught if "meaningless" in str(w.message) or "GELU" in str(w.message)],
            quick_gelu=any(type(m).__name__ == "QuickGELU" for m in model._model.modules()),
        )
    except ModelLoadError as e:
        result["error"] = str(e)
    result["seconds"] = time.monotonic() - start
    results.append(result)
print(json.dumps(results))
"""


def run_scenario(saved: Saved, env: dict[str, str], steps: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """Run load steps in a fresh interpreter whose huggingface_hub sees `env` from its import on."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    clean.update(env, HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    args = {"images": str(saved.images), "texts": TEXTS, "steps": steps, **extra}
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, json.dumps(args)],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_saved_weights(result: dict[str, Any], saved: Saved) -> None:
    assert "error" not in result, result["error"]
    np.testing.assert_allclose(np.array(result["images"]), saved.image_vectors, atol=1e-5)
    np.testing.assert_allclose(np.array(result["texts"]), saved.text_vectors, atol=1e-5)
    assert result["dim"] == 64
    assert result["warnings"] == []
    assert not result["quick_gelu"]


def repo_files(saved: Saved, weights: str) -> dict[str, bytes]:
    config = {"model_cfg": open_clip.get_model_config(TINY_MODEL), "preprocess_cfg": PREPROCESS_CFG}
    data = saved.safetensors.read_bytes() if weights.endswith(".safetensors") else saved.bin.read_bytes()
    return {"open_clip_config.json": json.dumps(config).encode(), weights: data}


REPOS = {"clipfind-test/tiny": "open_clip_model.safetensors", "clipfind-test/tiny-bin": "open_clip_pytorch_model.bin"}


def build_cache(hub: Path, repo: str, files: dict[str, bytes]) -> None:
    """The layout huggingface_hub leaves after a download: refs/main -> snapshots/<commit>/<files>."""
    folder = hub / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)


@pytest.mark.slow
def test_offline_hub_cache(saved: Saved, tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1: cached repos and tags load their exact weights at once; missing ones fail at once."""
    for repo, weights in REPOS.items():
        build_cache(tmp_path / "hub", repo, repo_files(saved, weights))
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    hub_repo, bin_only_repo, tag, quick_gelu_tag, missing_repo, default = run_scenario(
        saved,
        env,
        [
            {"spec": ["hf-hub:clipfind-test/tiny", None]},
            {"spec": ["hf-hub:clipfind-test/tiny-bin", None]},
            {"spec": [TINY_MODEL, "test_tag"]},
            {"spec": [TINY_MODEL, "test_quickgelu"]},
            {"spec": ["hf-hub:clipfind-test/absent", None]},
            {"spec": [None, None], "parse": True},
        ],
        fake_tags=[
            [TINY_MODEL, "test_tag", "clipfind-test/tiny-bin/", False],
            [TINY_MODEL, "test_quickgelu", "clipfind-test/tiny/", True],  # like ViT-B-32/openai
        ],
    )
    assert_saved_weights(hub_repo, saved)
    assert hub_repo["white"] == [1.0]  # the repo's preprocess_cfg is used
    assert_saved_weights(bin_only_repo, saved)
    assert bin_only_repo["seconds"] < FAST  # no retries on the .safetensors open_clip tries first
    assert_saved_weights(tag, saved)
    assert quick_gelu_tag["quick_gelu"] and quick_gelu_tag["warnings"] == []  # the tag's activation, no mismatch
    assert "Connect once to download it" in missing_repo["error"] and "HF_HUB_OFFLINE" in missing_repo["error"]
    assert missing_repo["seconds"] < FAST
    assert default["error"].startswith("Could not download the weights for ViT-B-32 (laion2b_s34b_b79k)")
    assert "Connect once to download them (about 600 MB)" in default["error"]
    assert "--pretrained /path/to/open_clip_model.safetensors" in default["error"]
    assert default["seconds"] < FAST


@pytest.mark.slow
def test_no_connection_fails_at_once(saved: Saved, tmp_path: Path) -> None:
    """Without HF_HUB_OFFLINE but with no Hub to reach, the message says so within seconds."""
    with socket.socket() as s:  # a port on which nothing listens: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"HF_HOME": str(tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    (default,) = run_scenario(saved, env, [{"spec": [None, None], "parse": True}])
    assert default["error"] == (
        "Could not download the weights for ViT-B-32 (laion2b_s34b_b79k): no internet connection. "
        "Connect once to download them (about 600 MB), or pass a checkpoint file with "
        "--pretrained /path/to/open_clip_model.safetensors."
    )
    assert default["seconds"] < FAST


class FakeHub(http.server.ThreadingHTTPServer):
    """Answers HEAD/GET /{repo}/resolve/{revision}/{file} the way the Hub does, and logs requests."""

    daemon_threads = True

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), FakeHubHandler)
        self.repos = repos
        self.log: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHubHandler(http.server.BaseHTTPRequestHandler):
    server: FakeHub

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def do_GET(self) -> None:
        self.answer(body=True)

    def answer(self, body: bool) -> None:
        self.server.log.append(f"{self.command} {self.path}")
        parts = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).strip("/").split("/")
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        if parts == ["_mark"]:
            self.reply(200, {}, b"", body)
        elif repo not in self.server.repos:
            self.reply(404, {"X-Error-Code": "RepoNotFound"}, b"", body)
        elif filename not in self.server.repos[repo]:
            self.reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, b"", body)
        else:
            data = self.server.repos[repo][filename]
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
            self.reply(200, headers, data, body)

    def reply(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            for start in range(0, len(data), 1 << 20):
                self.wfile.write(data[start : start + (1 << 20)])

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are kept in server.log."""


@pytest.fixture
def fake_hub(saved: Saved) -> Iterator[FakeHub]:
    server = FakeHub({repo: repo_files(saved, weights) for repo, weights in REPOS.items()})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def assert_progress(calls: list[list[Any]], size: int) -> None:
    done = [c[0] for c in calls]
    assert done[0] == 0 and done[-1] == size and len(done) >= 3
    assert all(a < b for a, b in itertools.pairwise(done)), done
    assert all(total == size for _, total in calls)


@pytest.mark.slow
def test_download_with_progress_then_never_again(saved: Saved, tmp_path: Path, fake_hub: FakeHub) -> None:
    """First load downloads through huggingface_hub with our progress callback; later loads are offline."""
    env = {"HF_HOME": str(tmp_path), "HF_ENDPOINT": fake_hub.endpoint}
    hub_repo, tag, absent, again_repo, again_tag = run_scenario(
        saved,
        env,
        [
            {"spec": ["hf-hub:clipfind-test/tiny", None], "progress": True},
            {"spec": [TINY_MODEL, "test_tag"], "progress": True},
            {"spec": ["hf-hub:clipfind-test/absent", None]},
            {"mark": True},
            {"spec": ["hf-hub:clipfind-test/tiny", None], "progress": True},
            {"spec": [TINY_MODEL, "test_tag"], "progress": True},
        ],
        fake_tags=[[TINY_MODEL, "test_tag", "clipfind-test/tiny-bin/", False]],
        endpoint=fake_hub.endpoint,
    )
    assert_saved_weights(hub_repo, saved)
    assert hub_repo["white"] == [1.0]
    assert_progress(hub_repo["calls"], saved.safetensors.stat().st_size)  # the weights only, not the config
    assert_saved_weights(tag, saved)
    assert_progress(tag["calls"], saved.bin.stat().st_size)  # the repo has no .safetensors: the .bin came
    assert "clipfind-test/absent was not found" in absent["error"]
    assert_saved_weights(again_repo, saved)
    assert_saved_weights(again_tag, saved)
    assert again_repo["calls"] == again_tag["calls"] == []
    assert fake_hub.log[-1] == "GET /_mark"  # nothing reached the Hub once the weights were cached
    assert "GET /clipfind-test/tiny-bin/resolve/main/open_clip_pytorch_model.bin" in fake_hub.log
