"""Indexing through ONNX Runtime without torch, once the export and its parameters exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from clipfind.catalog import Catalog
from clipfind.embedding import runtime
from clipfind.embedding.onnx import EXPORT_INFO_SUFFIX, OnnxImageEncoder
from clipfind.embedding.runtime import Choice
from clipfind.embedding.spec import TINY_MODEL, ModelSpec
from clipfind.embedding.tokenizer import QueryCut
from clipfind.embedding.torch_model import ClipModel
from clipfind.imageload import load_image
from clipfind.indexer import FINGERPRINT_SIDE
from clipfind.library import Library
from tests.helpers import ROOT, copy_photos

SPEC = ModelSpec(TINY_MODEL, None)


def _library(home: Path, precision: str) -> Library:
    return Library(home, TINY_MODEL, "none", precision=precision)


def _index(home: Path, folder: Path, precision: str) -> None:
    lib = _library(home, precision)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            lib.indexer(batch_size=4).run([str(folder)])
    finally:
        lib.close()


@pytest.fixture
def exported(home: Path, photo_folder: Path) -> Path:
    """A home whose first indexing run (with torch) exported the tower."""
    _index(home, photo_folder, "onnx")
    path = runtime.onnx_path(home, SPEC)
    assert path.is_file() and path.with_suffix(EXPORT_INFO_SUFFIX).is_file()
    return home


def test_the_export_indexes_like_the_torch_model(exported: Path, photo_folder: Path) -> None:
    lib = _library(exported, "onnx")
    encoder = lib.image_encoder()
    assert isinstance(encoder, OnnxImageEncoder) and lib._model is None  # torch model never loaded
    photos = sorted(photo_folder.rglob("*.png"))[:4]
    side = max(encoder.image_size, FINGERPRINT_SIDE)  # as the indexer decodes (its fingerprint wants >= 224 px)
    batch = np.stack([encoder.preprocess(load_image(p, side).image) for p in photos])
    vectors = encoder.encode_images(batch)
    catalog = Catalog(exported / "catalog.sqlite3")
    stored = np.stack([catalog.photo_by_path(str(p))[1] for p in photos])  # type: ignore[index]
    catalog.close()
    lib.close()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float((vectors * stored).sum(axis=1).min()) > 0.99999


def test_a_later_run_does_not_import_torch(exported: Path, photo_folder: Path, tmp_path: Path) -> None:
    copy_photos(photo_folder / "new", 3, "pexels_interior")
    script = (
        "import sys, warnings; warnings.simplefilter('ignore'); from clipfind.cli import main; "
        f"code = main(['--home', {str(exported)!r}, 'index', '--json']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(code)"
    )
    env = {**os.environ, "CLIPFIND_MODEL": TINY_MODEL, "CLIPFIND_PRETRAINED": "none", "CLIPFIND_PRECISION": "onnx",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    *summary, flag = proc.stdout.strip().splitlines()
    assert flag == "NO-TORCH"
    assert json.loads("\n".join(summary))["added"] == 3


def test_auto_uses_the_export_only_where_it_was_chosen(exported: Path) -> None:
    key = runtime.machine_key(SPEC, None)
    runtime.save_choice(exported, key, Choice("int8"))
    lib = _library(exported, "auto")
    assert isinstance(lib.image_encoder(), ClipModel)  # int8 is a torch mode
    lib.close()
    runtime.save_choice(exported, key, Choice("onnx"))
    lib = _library(exported, "auto")
    assert isinstance(lib.image_encoder(), OnnxImageEncoder)
    lib.close()
    lib = _library(exported, "fp32")
    assert isinstance(lib.image_encoder(), ClipModel)
    lib.close()


@pytest.mark.parametrize("damage", ["sidecar", "export"])
def test_a_damaged_export_is_made_again(exported: Path, photo_folder: Path, damage: str) -> None:
    path = runtime.onnx_path(exported, SPEC)
    target = path.with_suffix(EXPORT_INFO_SUFFIX) if damage == "sidecar" else path
    target.write_bytes(target.read_bytes()[:100])
    lib = _library(exported, "onnx")
    assert isinstance(lib.image_encoder(), ClipModel)  # the torch path, which exports again
    lib.close()
    copy_photos(photo_folder / "more", 2, "sklearn_images")
    _index(exported, photo_folder, "onnx")
    lib = _library(exported, "onnx")
    assert isinstance(lib.image_encoder(), OnnxImageEncoder)
    lib.close()


def test_text_search_without_torch_matches_the_torch_model(exported: Path) -> None:
    assert runtime.onnx_path(exported, SPEC, "text").is_file()
    queries = ["dog on a beach at sunset", "a red car", "東京", ""]
    lib = _library(exported, "onnx")
    onnx_vectors = lib._encode_texts(queries)
    assert lib._model is None  # answered by the export
    torch_vectors = lib.model().encode_texts(queries)
    lib.close()
    assert float((onnx_vectors * torch_vectors).sum(axis=1).min()) > 0.9999

    script = (
        "import sys, warnings; warnings.simplefilter('ignore'); from clipfind.cli import main; "
        f"code = main(['--home', {str(exported)!r}, 'search', 'a red car', '-k', '3']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(code)"
    )
    env = {**os.environ, "CLIPFIND_MODEL": TINY_MODEL, "CLIPFIND_PRETRAINED": "none", "PYTHONPATH": str(ROOT)}
    without = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                             env={**env, "CLIPFIND_PRECISION": "onnx"})
    with_torch = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                                env={**env, "CLIPFIND_PRECISION": "fp32"})
    assert without.returncode == 0 == with_torch.returncode, without.stderr + with_torch.stderr
    *hits, flag = without.stdout.strip().splitlines()
    *torch_hits, torch_flag = with_torch.stdout.strip().splitlines()
    assert (flag, torch_flag) == ("NO-TORCH", "TORCH")
    assert [h.split()[-1] for h in hits] == [h.split()[-1] for h in torch_hits] and len(hits) == 3


def test_the_torch_free_text_path_warns_like_the_torch_one(exported: Path) -> None:
    """Random weights are said on every path; a query longer than the model reads is said on both."""
    lib = _library(exported, "onnx")
    with pytest.warns(UserWarning, match="random weights.*meaningless"):
        lib._encode_texts(["a red car"])
    assert lib._model is None  # answered by the export
    long = " ".join(["a red car by the sea"] * 20)
    with pytest.warns(QueryCut, match="longer than the model reads") as onnx_warned:
        lib._encode_texts([long, "short"])
    with pytest.warns(QueryCut, match="longer than the model reads") as torch_warned:
        lib.model().encode_texts([long, "short"])
    lib.close()
    cut = [[str(w.message) for w in warned if w.category is QueryCut] for warned in (onnx_warned, torch_warned)]
    assert cut[0] == cut[1] and len(cut[0]) == 1 and "'a red car by the sea a red car" in cut[0][0]


def test_the_quantised_export_is_made_once_then_used_without_torch(exported: Path, photo_folder: Path) -> None:
    quantised = runtime.quantised_path(runtime.onnx_path(exported, SPEC))
    assert not quantised.exists()
    copy_photos(photo_folder / "more", 2, "sklearn_images")
    _index(exported, photo_folder, "onnx-int8")  # with torch: quantises the export
    assert quantised.is_file()
    lib = _library(exported, "onnx-int8")
    encoder = lib.image_encoder()
    lib.close()
    assert isinstance(encoder, OnnxImageEncoder) and encoder.mode == "onnx-int8"
