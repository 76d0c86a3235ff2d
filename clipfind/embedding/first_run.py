"""The image encoder of a first run on a machine, which measures in child processes so that the
indexing process itself never holds torch while it measures (issue 12: a first `clipfind index`
of ViT-B-32 peaked at 2.3 GB of memory when all of it happened in one process).

The choice of how the image tower runs is made as in one process (clipfind.embedding.calibrate,
with the rules of clipfind.embedding.selection), by up to three children, one after the other,
each holding what one job needs and then exiting (clipfind.embedding.worker_protocol):

1. clipfind.embedding.torch_worker, started when the encoder is made (it loads the model while
   the indexer decodes the first photos): only the image tower kept; it says how to prepare
   photos without torch, exports the tower for ONNX Runtime, and measures fp32 and each torch
   mode on the first batch.
2. clipfind.embedding.onnx_worker, without torch: ONNX Runtime's modes, quantising included.
3. Where ONNX Runtime wins, torch_worker again, to export the text tower (only it kept). (Done
   by the first child instead, it needed 200 MB more: what measuring left in its memory.)

This process then saves the choice (the same entry in runtime.json as one process makes) and
runs the winner: ONNX Runtime here, still without torch, or the torch model, loaded here once
the children are gone (`load_torch`, the Library's own, so that a search after indexing uses it).
Should the measuring fail (a child crashes, is killed, or cannot say), this run goes on in fp32
in this process, and nothing is recorded: the next run measures again. A small model (or one
that will run on a GPU) is measured in one process as before: the children's start-up would cost
seconds and save little memory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from clipfind.embedding import selection
from clipfind.embedding.encoder import ImageEncoder
from clipfind.embedding.onnx import open_exported, save_export_info
from clipfind.embedding.preprocess import FastPreprocess
from clipfind.embedding.runtime import (
    Choice,
    cpu_flags,
    cuda_likely,
    load_choice,
    machine_key,
    onnx_path,
    save_choice,
)
from clipfind.embedding.spec import ONNX_MODES, TINY_MODEL, ModelSpec
from clipfind.embedding.table import MODELS
from clipfind.embedding.worker_protocol import ProgressFn, Worker, WorkerFailed
from clipfind.errors import ModelLoadError, one_line
from clipfind.home import TEMP_SUFFIX
from clipfind.records import Vectors

# Weights below this are measured in the indexing process: a few seconds of child start-up would
# cost more than the memory they save.
IN_PROCESS_BELOW_MB = 200


def first_run_encoder(
    spec: ModelSpec, home: Path, device: str | None, precision: str, load_torch: Callable[[], ImageEncoder],
    progress: ProgressFn | None = None,
) -> FirstRunEncoder | None:
    """A FirstRunEncoder where this machine has not measured `spec` yet and it runs on the CPU; None
    where the model is measured (or was chosen) in one process as before. Raises ModelLoadError
    as load_model does (the model is loaded in the child meanwhile)."""
    if precision != "auto" or device not in (None, "cpu") or (device is None and gpu_likely()):
        return None
    if getattr(sys, "frozen", False) or weights_mb(spec) < IN_PROCESS_BELOW_MB:
        return None  # a bundled app has no `python -m`
    if load_choice(home, machine_key(spec, device)) is not None:
        return None  # measured before: the Library opens what was chosen
    return FirstRunEncoder(spec, home, device, load_torch, progress)


def gpu_likely() -> bool:
    """Whether torch would pick a GPU when no device is asked for: CUDA (runtime.cuda_likely), or
    an Apple chip's MPS."""
    return cuda_likely() or (sys.platform == "darwin" and platform.machine() == "arm64")


def onnx_installed() -> bool:
    """Whether ONNX Runtime can be imported here, told without importing it (as
    calibrate.onnx_available does, in the child that measures)."""
    return importlib.util.find_spec("onnxruntime") is not None


def weights_mb(spec: ModelSpec) -> float:
    """About how many MB the model's weights take (a checkpoint file's size, the table's download
    size); unknown models count as large."""
    if spec.name == TINY_MODEL:
        return 0.0
    if spec.is_file and spec.pretrained:
        with contextlib.suppress(OSError):
            return os.path.getsize(os.path.expanduser(spec.pretrained)) / 1e6
    sizes = [row.download_mb for row in MODELS if row.name == spec.name]
    return float(max(sizes)) if sizes else float("inf")


class FirstRunEncoder:
    """Implements clipfind.embedding.encoder.ImageEncoder for a first run (see the module's text)."""

    def __init__(
        self, spec: ModelSpec, home: Path, device: str | None, load_torch: Callable[[], ImageEncoder],
        progress: ProgressFn | None = None,
    ) -> None:
        self.spec = spec
        self.notices: list[str] = []
        self.mode: str | None = None
        self.choice: Choice | None = None
        self._home = home
        self._device = device
        self._load_torch = load_torch
        self._inner: ImageEncoder | None = None  # what runs once the choice is made
        self._lock = threading.Lock()
        self._folder = _work_folder(home)
        self._worker: Worker | None = self._start("image", progress=progress is not None, on_progress=progress)
        try:
            ready = self._worker.receive()
        except WorkerFailed as exc:
            self._close()
            if exc.kind == "load":
                raise ModelLoadError(str(exc)) from None
            ready = {"ready": False}  # measured in this process, as before
        if not ready.get("ready"):
            self._close()
            self._inner = load_torch()
            info: dict[str, Any] = {"preprocess": None, "dim": self._inner.dim, "image_size": self._inner.image_size}
        else:
            info = ready["ready"]
        self.dim = int(info["dim"])
        self.image_size = int(info["image_size"])
        self._modes = selection.cpu_modes(bool(selection.BF16_FLAGS & cpu_flags()), onnx_installed())
        self._preprocess = FastPreprocess.from_dict(info["preprocess"]) if info["preprocess"] else None
        weakref.finalize(self, _discard, self._worker, self._folder)

    def preprocess(self, image: PIL.Image.Image) -> Any:
        if self._preprocess is None:
            assert self._inner is not None
            return self._inner.preprocess(image)
        return self._preprocess(image)

    def encode_images(self, batch: Any) -> Vectors:
        with self._lock:
            if self._inner is None:
                batch = np.ascontiguousarray(np.asarray(batch, dtype=np.float32))
                if len(batch) == 0:
                    return np.zeros((0, self.dim), dtype=np.float32)
                if len(batch) < selection.CALIBRATION_MIN_IMAGES:
                    return self._fp32(batch)  # too few photos to measure on: decide on a fuller batch
                return self._settle(batch)
            inner = self._inner
        vectors = inner.encode_images(batch)
        self.notices += [n for n in inner.notices if n not in self.notices]
        inner.notices.clear()
        return vectors

    # -- measuring -------------------------------------------------------------------------------
    def _fp32(self, batch: np.ndarray) -> Vectors:
        batch_file, out = self._folder / "batch.npy", self._folder / "features.npy"
        np.save(batch_file, batch)
        try:
            assert self._worker is not None
            self._worker.ask({"batch": str(batch_file), "out": str(out)})
            return selection.unit_rows(np.load(out))
        except (WorkerFailed, OSError, ValueError) as exc:
            return self._in_fp32_here(batch, exc)

    def _settle(self, batch: np.ndarray) -> Vectors:
        """Measure every mode on `batch`, record the choice, and make the winner the encoder;
        returns `batch`'s vectors (fp32's, computed while measuring)."""
        assert self._worker is not None
        exported = onnx_path(self._home, self.spec)
        batch_file, reference_file = self._folder / "batch.npy", self._folder / "reference.npy"
        np.save(batch_file, batch)
        onnx_modes = [m for m in self._modes if m in ONNX_MODES]
        try:
            answer = self._worker.ask({"calibrate": True, "batch": str(batch_file), "out": str(reference_file),
                                       "modes": self._modes, "export": str(exported) if onnx_modes else None})
            reference = np.load(reference_file)
        except (WorkerFailed, OSError, ValueError) as exc:
            return self._in_fp32_here(batch, exc)
        finally:
            self._close_worker()
        choice = Choice("fp32", **answer["measured"])
        onnx_modes = [m for m in onnx_modes if m not in choice.errors]
        if onnx_modes:
            self._measure_onnx(choice, onnx_modes, exported, batch_file, reference_file)
        choice.mode = selection.pick(choice, self._modes)
        save_choice(self._home, machine_key(self.spec, self._device), choice)
        self.choice, self.mode = choice, choice.mode
        self.notices.append(f"measured once on this machine: {choice.summary()}")
        shutil.rmtree(self._folder, ignore_errors=True)  # the batch and its features: done with
        self._inner = self._open_chosen(choice.mode, exported)
        return selection.unit_rows(reference)

    def _measure_onnx(self, choice: Choice, modes: list[str], exported: Path, batch: Path, reference: Path) -> None:
        worker = self._start("onnx", export=str(exported), modes=modes, batch=str(batch), reference=str(reference))
        try:
            measured = worker.receive()["measured"]
        except WorkerFailed as exc:  # it crashed: ONNX Runtime is out on this machine, as a mode that raised is
            measured = {"rates": {}, "cosines": {}, "errors": {m: f"WorkerFailed: {exc}" for m in modes}}
        finally:
            worker.close()
        for field in ("rates", "cosines", "errors"):
            getattr(choice, field).update(measured[field])

    def _open_chosen(self, mode: str, exported: Path) -> ImageEncoder:
        """The encoder for the rest of the run: ONNX Runtime's, once the text tower was exported too
        (as in one process), or the torch model."""
        if mode in ONNX_MODES:
            assert self._preprocess is not None
            with contextlib.suppress(OSError):
                save_export_info(exported, self.spec, self.dim, preprocess=self._preprocess.to_dict())
            self._export_text()
            encoder = open_exported(self.spec, self._home, self._device, "auto")
            if encoder is not None:
                return encoder
        return self._load_torch()  # reads the choice just saved (a torch mode, or an export gone)

    def _export_text(self) -> None:
        """The text tower exported, so that a search runs without torch, in a child that holds only
        it (kept only where it matches torch's; where not, or where the child fails, the torch text
        tower answers searches, as in one process)."""
        worker = self._start("text")
        try:
            worker.receive()
        except WorkerFailed:
            pass
        finally:
            worker.close()

    def _in_fp32_here(self, batch: np.ndarray, exc: Exception) -> Vectors:
        """The measuring failed: this run goes on in fp32 in this process; nothing is recorded."""
        self._close()
        model = self._load_torch()
        run_in_fp32 = getattr(model, "run_in_fp32", None)
        if run_in_fp32 is not None:
            run_in_fp32()
        self._inner, self.mode = model, "fp32"
        self.notices.append(f"measuring the image encoder in a separate process failed ({one_line(exc)}): "
                            "it runs in fp32 for this run, and is measured again on the next")
        return model.encode_images(batch)

    # -- the children ----------------------------------------------------------------------------
    def _start(self, role: str, on_progress: ProgressFn | None = None, **args: Any) -> Worker:
        module = "clipfind.embedding.onnx_worker" if role == "onnx" else "clipfind.embedding.torch_worker"
        if role != "onnx":
            args |= {"role": role, "name": self.spec.name, "pretrained": self.spec.pretrained,
                     "device": self._device or "cpu", "home": str(self._home)}
        return Worker(module, args, on_progress, hub_settings())

    def _close_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _close(self) -> None:
        self._close_worker()
        shutil.rmtree(self._folder, ignore_errors=True)


def hub_settings() -> dict[str, str]:
    """The Hugging Face Hub settings of this process, for a child that loads the model: what
    huggingface_hub read from the environment, or what a caller set on it since (offline mode,
    the cache folder), so that the child finds and fetches the weights as this process would."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is None:  # never imported here: the child reads the same environment
        return {}
    return {"HF_HUB_OFFLINE": "1" if constants.HF_HUB_OFFLINE else "0", "HF_HUB_CACHE": str(constants.HF_HUB_CACHE)}


def _work_folder(home: Path) -> Path:
    """A folder for the files this process and its children pass each other (a batch, features,
    the fp32 tower while it is made into another mode): in the home, on its disk (a system temp
    folder may be memory), named as home.atomic_write's staging folders are, so that the next run
    removes it if a kill leaves it behind (home.remove_temp_files); in the system's temp folder
    where the home cannot be written."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".measure.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=home))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="clipfind-measure-"))


def _discard(worker: Worker | None, folder: Path) -> None:
    """When the encoder is dropped: its child (if still there) told to go, its temporary folder removed."""
    if worker is not None:
        with contextlib.suppress(Exception):
            worker.close(timeout=5)
    shutil.rmtree(folder, ignore_errors=True)
