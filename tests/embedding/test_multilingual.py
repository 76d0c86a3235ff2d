"""The multilingual model (xlm-roberta-base-ViT-B-32): loads through open_clip with `transformers`,
says what to install without it and what to do offline, and answers queries without torch once its
text tower is exported.

No download: a tiny model with XLM-R's text tower and tokenizer layout stands in (conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from huggingface_hub import constants as hf_constants

from clipfind.embedding import download, runtime
from clipfind.embedding.hf_tokenizer import INSTALL_EXTRA, HfTokenizer
from clipfind.embedding.onnx import EXPORT_INFO_SUFFIX, OnnxTextEncoder, open_exported_text
from clipfind.embedding.spec import ModelSpec
from clipfind.embedding.table import lookup
from clipfind.embedding.tokenizer import QueryCut
from clipfind.embedding.torch_model import ClipModel, load_model
from clipfind.errors import ModelLoadError
from tests.embedding.conftest import MULTILINGUAL_TEXTS, TinyMultilingual
from tests.helpers import ROOT

pytest.importorskip("transformers", reason="the multilingual extra is not installed")

REAL = ModelSpec("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k")
INSTALL = INSTALL_EXTRA.replace("[", r"\[").replace("]", r"\]")


def _spec(tiny: TinyMultilingual) -> ModelSpec:
    return ModelSpec(tiny.name, str(tiny.checkpoint))


def test_the_table_row_is_the_multilingual_extra() -> None:
    row = lookup(REAL.name, REAL.pretrained)
    assert row is not None and row.extra == "multilingual"
    assert "multilingual" in row.note and INSTALL_EXTRA in row.note


def test_loads_through_open_clip_and_encodes_like_it(tiny_multilingual: TinyMultilingual) -> None:
    model = load_model(_spec(tiny_multilingual), "cpu", precision="fp32")
    assert isinstance(model._tokenizer, open_clip.tokenizer.HFTokenizer) and model.dim == 64
    vectors = model.encode_texts(MULTILINGUAL_TEXTS)
    np.testing.assert_allclose(vectors, tiny_multilingual.text_vectors, atol=1e-5)


def test_a_long_query_is_said_to_be_cut(tiny_multilingual: TinyMultilingual) -> None:
    model = load_model(_spec(tiny_multilingual), "cpu", precision="fp32")
    with pytest.warns(QueryCut, match="longer than the model reads"):
        model.encode_texts(["собака " * 100, "short"])


def test_without_transformers_the_error_says_what_to_install(
    tiny_multilingual: TinyMultilingual, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_clip sets hf_model.transformers to None when the import fails: the load stops before any
    download, with the extra to install."""
    monkeypatch.setattr(open_clip.hf_model, "transformers", None)
    fetched: list[object] = []
    monkeypatch.setattr("clipfind.embedding.torch_model.fetch", lambda *a, **k: fetched.append(a))
    for spec in (_spec(tiny_multilingual), REAL):
        with pytest.raises(ModelLoadError, match=f"needs the `transformers` package.*{INSTALL}"):
            load_model(spec, "cpu", precision="fp32")
    assert fetched == []


def test_offline_without_the_files_fails_at_once_and_says_why(
    no_network: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as raised:
        load_model(REAL, "cpu", precision="fp32")
    assert time.monotonic() - start < 5.0
    message = str(raised.value)
    assert "xlm-roberta-base" in message and "offline mode is on" in message
    assert "Connect once" in message and "1.5 GB" in message and "\n" not in message


def test_the_text_files_come_before_the_weights_with_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is fetched through download.fetch (cached, progress shown); the tokenizer is given
    the progress callback, the tiny config.json is not."""
    calls: list[tuple[str, tuple[str, ...], bool]] = []

    def fake_fetch(spec: ModelSpec, hub: download.HubFile, progress: object, **kw: object) -> str:
        calls.append((hub.repo, hub.candidates, progress is report))
        if len(calls) == 3:
            raise ModelLoadError("stop here")
        return "unused"

    def report(done: int, total: int | None) -> None:
        pass

    monkeypatch.setattr("clipfind.embedding.torch_model.fetch", fake_fetch)
    with pytest.raises(ModelLoadError, match="stop here"):
        load_model(REAL, "cpu", report, precision="fp32")
    weights = download.hub_weights(REAL)
    assert weights is not None
    assert calls == [
        ("xlm-roberta-base", ("config.json",), False),
        ("xlm-roberta-base", ("tokenizer.json",), True),
        (weights.repo, weights.candidates, True),
    ]


# -- the text tower through ONNX Runtime, without torch --------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tiny_multilingual: TinyMultilingual, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClipModel]:
    """A home where the torch model ran its image tower in ONNX mode, which exports the text tower too."""
    home = tmp_path_factory.mktemp("home")
    model = load_model(_spec(tiny_multilingual), "cpu", precision="onnx", home=home)
    model.encode_images(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)))
    return home, model


def test_the_text_tower_is_exported_with_its_tokenizer(tiny_multilingual: TinyMultilingual,
                                                       exported: tuple[Path, ClipModel]) -> None:
    home, _ = exported
    path = runtime.onnx_path(home, _spec(tiny_multilingual), "text")
    assert path.is_file(), "the HF text tower was not exported (or failed the fidelity check)"
    info = json.loads(path.with_suffix(EXPORT_INFO_SUFFIX).read_text(encoding="utf-8"))
    assert info["context_length"] == 77 and info["pad_id"] == 1
    assert (path.parent / info["hf_tokenizer"]).is_file()


def test_the_export_answers_like_the_torch_model(tiny_multilingual: TinyMultilingual,
                                                 exported: tuple[Path, ClipModel]) -> None:
    home, model = exported
    encoder = open_exported_text(_spec(tiny_multilingual), home, None, "onnx")
    assert isinstance(encoder, OnnxTextEncoder) and isinstance(encoder._tokenizer, HfTokenizer)
    queries = [*MULTILINGUAL_TEXTS, "день рождения бабушки с тортом", "生日蛋糕和蜡烛 " * 30]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QueryCut)
        onnx_vectors, torch_vectors = encoder.encode_texts(queries), model.encode_texts(queries)
    assert float((onnx_vectors * torch_vectors).sum(axis=1).min()) > 0.9999


def test_a_query_needs_neither_torch_nor_transformers(tiny_multilingual: TinyMultilingual,
                                                      exported: tuple[Path, ClipModel]) -> None:
    home, model = exported
    spec = _spec(tiny_multilingual)
    script = (
        "import sys, json, pathlib, warnings; warnings.simplefilter('ignore'); "
        "from clipfind.embedding.onnx import open_exported_text; from clipfind.embedding.spec import ModelSpec; "
        f"e = open_exported_text(ModelSpec({spec.name!r}, {spec.pretrained!r}), pathlib.Path({str(home)!r}), "
        "None, 'onnx'); v = e.encode_texts(['собака на пляже', '東京の夜景']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'open_clip'}); "
        "print(json.dumps([v.tolist(), heavy]))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    vectors, heavy = json.loads(proc.stdout)
    assert heavy == []
    expected = model.encode_texts(["собака на пляже", "東京の夜景"])
    assert float((np.array(vectors) * expected).sum(axis=1).min()) > 0.9999


# -- the real names, through a Hugging Face cache built here -----------------------------------------------------

E2E = """
import json, shutil, sys, warnings
from pathlib import Path
import open_clip, safetensors.torch, torch
from clipfind.embedding.onnx import open_exported_text
from clipfind.embedding.spec import ModelSpec
from clipfind.embedding.torch_model import load_model
from huggingface_hub import constants
warnings.simplefilter("ignore")
text_model, home = Path(sys.argv[1]), Path(sys.argv[2])
COMMIT = "0123456789abcdef0123456789abcdef01234567"
def repo(name):
    folder = Path(constants.HF_HUB_CACHE) / ("models--" + name.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    (folder / "snapshots" / COMMIT).mkdir(parents=True, exist_ok=True)
    return folder / "snapshots" / COMMIT
for name in ("config.json", "tokenizer.json"):  # what the Hub's xlm-roberta-base gives, in miniature
    shutil.copy(text_model / name, repo("xlm-roberta-base") / name)
spec = ModelSpec("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k")
torch.manual_seed(0)
reference = open_clip.create_model(spec.name, pretrained_text=False).eval()  # its text tower from the cache
weights = repo(open_clip.get_pretrained_cfg(spec.name, spec.pretrained)["hf_hub"].strip("/"))
safetensors.torch.save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
                            weights / "open_clip_model.safetensors")
texts = ["собака на пляже", "東京の夜景", "Crème brûlée", ""]
with torch.inference_mode():
    expected = reference.encode_text(open_clip.get_tokenizer(spec.name)(texts), normalize=True).numpy()
model = load_model(spec, "cpu", precision="onnx", home=home)
torch_cos = float((model.encode_texts(texts) * expected).sum(1).min())
model.encode_images(torch.rand(2, 3, 224, 224))  # settles the image tower: exports both towers
encoder = open_exported_text(spec, home, None, "onnx")
onnx_cos = float((encoder.encode_texts(texts) * expected).sum(1).min()) if encoder else None
print(json.dumps([torch_cos, onnx_cos]))
"""


@pytest.mark.slow
def test_the_real_model_names_load_offline_from_the_cache(tiny_multilingual: TinyMultilingual, tmp_path: Path) -> None:
    """xlm-roberta-base-ViT-B-32/laion5b_s13b_b90k with its real Hub names, offline, from a cache
    holding only the files clipfind fetches (a full ViT-B-32 image tower, a tiny XLM-R text tower):
    open_clip and transformers find everything, and the exported text tower answers alike."""
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", E2E, str(tiny_multilingual.folder), str(tmp_path / "home")],
                          capture_output=True, text=True, timeout=500, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    torch_cos, onnx_cos = json.loads(proc.stdout.strip().splitlines()[-1])
    assert torch_cos > 0.99999 and onnx_cos is not None and onnx_cos > 0.9999
