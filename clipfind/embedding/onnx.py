"""The model's towers through ONNX Runtime alone, in a process that never imports torch.

Once clipfind.embedding.calibrate has measured ONNX Runtime as the way to run a model on this
machine and exported the towers, indexing and text search need neither torch nor open_clip:
importing them costs seconds and about 750 MB of resident memory before any weights are loaded.
Images are prepared by clipfind.embedding.preprocess.FastPreprocess and text by
clipfind.embedding.tokenizer.BpeTokenizer (CLIP's tokenizer) or, for a model whose text tower is a
Hugging Face model (xlm-roberta-base-ViT-B-32), clipfind.embedding.hf_tokenizer.HfTokenizer, all
rebuilt from what is saved beside the exports (the export's info file, EXPORT_INFO_SUFFIX). Such a
text tower's export takes the token ids alone, like CLIP's: it computes its attention mask from the
padding id inside the graph, as open_clip's HFTextEncoder does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from clipfind.embedding.hf_tokenizer import HfTokenizer
from clipfind.embedding.preprocess import FastPreprocess
from clipfind.embedding.runtime import cpu_threads, cuda_likely, load_choice, machine_key, onnx_path, quantised_path
from clipfind.embedding.spec import ONNX_MODES, ModelSpec, warn_if_random
from clipfind.embedding.tokenizer import BpeTokenizer
from clipfind.home import atomic_write
from clipfind.records import Vectors

# What a torch-free process needs besides an exported tower "x.onnx" is in "x.json" (the suffix
# replaces ".onnx"; the vector index's sidecar, clipfind.annindex.SIDECAR_SUFFIX, is another thing).
EXPORT_INFO_SUFFIX = ".json"
# onnx.save_model's size_threshold for an export: smaller tensors stay in the graph file, larger ones
# go to the weights file beside it (clipfind.embedding.calibrate.export_onnx, .quantise).
EXTERNAL_THRESHOLD = 1024


def open_session(path: Path) -> Any:
    """An ONNX Runtime session with one thread per core, and no spinning between calls: idle
    threads that spin would take the cores from the photo decoders between batches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxImageEncoder:
    """Implements clipfind.embedding.encoder.ImageEncoder."""

    def __init__(self, spec: ModelSpec, path: Path, dim: int, preprocess: FastPreprocess, mode: str) -> None:
        self.spec = spec
        self.mode = mode
        self.dim = dim
        self.image_size = preprocess.crop[0]
        self.notices: list[str] = []
        self._preprocess = preprocess
        self._session = open_session(path)
        self._input = self._session.get_inputs()[0].name

    def preprocess(self, image: PIL.Image.Image) -> np.ndarray:
        return self._preprocess(image)

    def encode_images(self, batch: Any) -> Vectors:
        batch = np.ascontiguousarray(np.asarray(batch, dtype=np.float32))
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        features = self._session.run(None, {self._input: batch})[0].astype(np.float32, copy=False)
        return features / np.linalg.norm(features, axis=1, keepdims=True)


class OnnxTextEncoder:
    """Text queries -> unit vectors, like ClipModel.encode_texts."""

    def __init__(self, path: Path, dim: int, tokenizer: Callable[[list[str]], np.ndarray]) -> None:
        """`tokenizer`: a BpeTokenizer or an HfTokenizer, texts -> (n, context) int64 ids."""
        self.dim = dim
        self._tokenizer = tokenizer
        self._session = open_session(path)
        self._input = self._session.get_inputs()[0].name

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        features = self._session.run(None, {self._input: self._tokenizer(list(texts))})[0].astype(np.float32)
        return features / np.linalg.norm(features, axis=1, keepdims=True)


def save_export_info(path: Path, spec: ModelSpec, dim: int, **extra: Any) -> None:
    """What a torch-free process needs besides the exported tower at `path`."""
    info = {"identity": spec.identity, "dim": dim, **extra}
    with atomic_write(path.with_suffix(EXPORT_INFO_SUFFIX)) as tmp:
        tmp.write_text(json.dumps(info), encoding="utf-8")


def _export_info(path: Path, spec: ModelSpec) -> dict[str, Any] | None:
    info = json.loads(path.with_suffix(EXPORT_INFO_SUFFIX).read_text(encoding="utf-8"))
    return info if info.get("identity") == spec.identity and path.is_file() else None


def open_exported(spec: ModelSpec, home: Path, device: str | None, precision: str) -> OnnxImageEncoder | None:
    """The torch-free encoder if this machine runs `spec` through ONNX Runtime and its export is
    complete, else None (the caller loads the model with torch, which measures or exports)."""
    mode = onnx_mode(spec, home, device, precision)
    if mode is None:
        return None
    path = onnx_path(home, spec)
    try:
        info = _export_info(path, spec)
        model_file = quantised_path(path) if mode == "onnx-int8" else path
        if info is None or not model_file.is_file():
            return None
        preprocess = FastPreprocess.from_dict(info["preprocess"])
        encoder = OnnxImageEncoder(spec, model_file, int(info["dim"]), preprocess, mode)
    except Exception:  # missing, damaged, or refused by onnxruntime: the torch path exports again
        return None
    warn_if_random(spec)
    return encoder


def open_exported_text(spec: ModelSpec, home: Path, device: str | None, precision: str) -> OnnxTextEncoder | None:
    """The torch-free text encoder, under the same conditions as the image one."""
    if onnx_mode(spec, home, device, precision) is None:
        return None
    path = onnx_path(home, spec, "text")
    try:
        info = _export_info(path, spec)
        if info is None:
            return None
        tokenizer: Callable[[list[str]], np.ndarray]
        if "hf_tokenizer" in info:  # needs the `tokenizers` package: without it the torch path says so
            tokenizer = HfTokenizer(
                path.parent / info["hf_tokenizer"], int(info["context_length"]), int(info["pad_id"])
            )
        else:
            tokenizer = BpeTokenizer(path.parent / info["merges"], int(info["context_length"]))
        encoder = OnnxTextEncoder(path, int(info["dim"]), tokenizer)
    except Exception:  # missing or damaged: the torch model answers, and exports again when it can
        return None
    warn_if_random(spec)
    return encoder


def onnx_mode(spec: ModelSpec, home: Path, device: str | None, precision: str) -> str | None:
    """The ONNX Runtime mode this machine runs `spec` in (as measured, or as asked), if any. On a
    GPU none: with no device asked for and a CUDA GPU likely here, torch picks the device and the
    mode (a choice measured on the CPU is keyed apart from a GPU's: runtime.machine_key)."""
    if device not in (None, "cpu"):
        return None
    if precision in ONNX_MODES:
        return precision
    if device is None and precision == "auto" and cuda_likely():
        return None
    choice = load_choice(home, machine_key(spec, device)) if precision == "auto" else None
    return choice.mode if choice is not None and choice.mode in ONNX_MODES else None
