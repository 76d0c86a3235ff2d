"""The child process of a first run that holds the model in torch (clipfind.embedding.first_run).

`python -m clipfind.embedding.torch_worker ARGS_JSON`, in one of two roles:

- "image": loads the model and keeps only its image tower (the text tower is freed at once: the
  process holds one tower's weights). It answers "ready" with what the indexing process needs to
  prepare photos without torch, then serves requests: "encode" (fp32 features of a batch too small
  to measure on), and "calibrate": the image tower exported to ONNX where ONNX Runtime is to be
  measured (clipfind.embedding.onnx_worker measures it, in a torch-free process), fp32's features
  of the batch, and each torch mode measured on it, made of the fp32 tower in place (_measure).
  It exits after calibrating.
- "text": loads the model, frees the image tower, exports the text tower (ClipModel._export_text,
  with its fidelity check) and exits.

Every failure is an answer {"error": ...}; a ModelLoadError's says what to do, as in one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from clipfind.embedding.worker_protocol import Parent


def main(argv: list[str]) -> int:
    args: dict[str, Any] = json.loads(argv[0])
    parent = Parent(args)
    warnings.simplefilter("ignore")  # the parent has warned the user already (random weights and such)
    try:
        import logging

        logging.disable(logging.WARNING)  # open_clip's "initialized randomly" and such: the parent's to say
        if args["role"] == "text":
            _text(args)
            parent.send(done=True)
            return 0
        return _image(args, parent)
    except Exception as exc:
        from clipfind.errors import ModelLoadError, one_line

        kind = "load" if isinstance(exc, ModelLoadError) else type(exc).__name__
        parent.send(error=one_line(exc) if kind == "load" else f"{kind}: {one_line(exc)}", kind=kind)
        return 1


def _load(args: dict[str, Any], keep: str, progress: Any = None) -> Any:
    """The model as load_model loads it, with only the `keep` tower's weights in memory (see
    _one_tower); as it comes where that cannot be done."""
    from clipfind.embedding.spec import ModelSpec
    from clipfind.embedding.torch_model import load_model
    from clipfind.errors import ModelLoadError

    spec = ModelSpec(args["name"], args["pretrained"])
    home = Path(args["home"]) if args.get("home") else None
    try:
        with _one_tower(keep):
            return load_model(spec, args.get("device"), progress, precision="fp32", home=home)
    except ModelLoadError:
        raise
    except Exception:  # an architecture the trick does not suit: the whole model, as in one process
        return load_model(spec, args.get("device"), progress, precision="fp32", home=home)


@contextlib.contextmanager
def _one_tower(keep: str) -> Iterator[None]:
    """While open_clip builds the model, the tower not kept gets no memory: the text tower is built
    on torch's "meta" device (shapes, no data; built after the image tower, so the image tower's
    random weights are drawn as always), and the image tower is built and let go at once (it is
    built first: the text tower's random weights must be drawn after it, as always). Checkpoint
    weights for the tower not kept load as nothing. The whole model peaked at 1,360 MB for
    ViT-B-32 in such a process, one tower at 1,130 (image) or 1,090 (text).

    open_clip then moves the model to its device; on the CPU in fp32 that changes nothing for
    the tower kept and cannot be done for shapes without data, so it is skipped there."""
    import open_clip.factory as factory
    import open_clip.model as clip_model
    import torch

    real_text, real_vision = clip_model._build_text_tower, clip_model._build_vision_tower
    real_place = factory._set_model_device_and_precision

    def text_tower(embed_dim: Any, text_cfg: Any, *rest: Any, **kwargs: Any) -> Any:
        hf = text_cfg.get("hf_model_name") if isinstance(text_cfg, dict) else getattr(text_cfg, "hf_model_name", None)
        if hf:  # a Hugging Face model: built as always
            return real_text(embed_dim, text_cfg, *rest, **kwargs)
        with torch.device("meta"):
            return real_text(embed_dim, text_cfg, *rest, **kwargs)

    def vision_tower(*args: Any, **kwargs: Any) -> Any:
        return real_vision(*args, **kwargs).to("meta")

    def place(model: Any, device: Any, precision: str, *rest: Any, **kwargs: Any) -> None:
        if torch.device(device).type == "cpu" and precision == "fp32":
            return
        real_place(model, device, precision, *rest, **kwargs)

    if keep == "image":
        clip_model._build_text_tower = text_tower
    else:
        clip_model._build_vision_tower = vision_tower
    factory._set_model_device_and_precision = place
    try:
        yield
    finally:
        clip_model._build_text_tower, clip_model._build_vision_tower = real_text, real_vision
        factory._set_model_device_and_precision = real_place


def _image(args: dict[str, Any], parent: Parent) -> int:
    import torch

    from clipfind.embedding import calibrate
    from clipfind.embedding.preprocess import FastPreprocess

    model = _load(args, "image", parent.progress if args.get("progress") else None)
    if model.device.type != "cpu" or not isinstance(model._transform, FastPreprocess):
        parent.send(ready=False)  # a GPU after all, or preprocessing that needs torch: measured in one process
        return 0
    visual: torch.nn.Module = model._model.visual
    info = {"preprocess": model._transform.to_dict(), "dim": model.dim, "image_size": model.image_size}
    del model  # and with it the text tower: only the image tower is measured and exported here
    held = [visual]  # _measure takes it out: a mode made in place must leave no reference here
    del visual
    calibrate.release_memory()
    parent.send(ready=info)
    for request in parent.requests():
        batch = torch.from_numpy(np.load(request["batch"]))
        if "calibrate" not in request:
            with torch.inference_mode():
                np.save(request["out"], held[0](batch).float().numpy())
            parent.send(done=True)
            continue
        measured = _measure(held, batch, request["modes"], Path(request["out"]),
                            Path(request["export"]) if request.get("export") else None)
        parent.send(measured=measured)
        return 0
    return 0


def _measure(held: list[Any], batch: Any, modes: list[str], out: Path, export: Path | None) -> dict[str, Any]:
    """The export ONNX Runtime's modes need (if it is not there yet), then fp32 and each torch mode
    measured on `batch` (fp32's features saved to `out`); the fp32 image tower is taken out of
    `held` (and changed: see below).

    In the order and the way that need least memory at once: the export first, before any other
    tower left its garbage behind. Then each torch mode is made from the fp32 tower itself, in
    place (calibrate.build_tower_in_place: never the weights in two types at once), where nothing
    after it needs the fp32 tower or where that tower was saved to a file beside `out` first, to be
    read back for the next mode. A copy (calibrate.build_tower) only where that file cannot be
    written. The towers are the same either way, and so are the measures."""
    import torch

    from clipfind.embedding import calibrate
    from clipfind.embedding.runtime import Choice
    from clipfind.embedding.spec import ONNX_MODES
    from clipfind.errors import one_line

    visual = held.pop()
    choice = Choice("fp32")
    if export is not None and not export.is_file():
        try:
            with _large_blocks_apart():
                calibrate.export_image_tower(visual, export)
        except Exception as exc:  # ONNX Runtime's modes cannot be measured without it
            for mode in ONNX_MODES:
                if mode in modes:
                    choice.errors[mode] = f"{type(exc).__name__}: {one_line(exc)}"
        calibrate.release_memory()
    choice.rates["fp32"], reference = calibrate.time_tower(visual, batch)
    choice.cosines["fp32"] = 1.0
    np.save(out, reference.numpy())
    torch_modes = [m for m in modes if m != "fp32" and m not in ONNX_MODES]
    torch_modes.sort(key=lambda m: m in ("bf16", "fp16"))  # the casts last: reading the file back costs less after
    saved = _saved(visual, out.with_name("fp32-image-tower.pt")) if len(torch_modes) > 1 else None
    calibrate.release_memory()
    try:
        for i, mode in enumerate(torch_modes):
            tower = None
            try:
                if visual is None:
                    assert saved is not None
                    visual = torch.load(saved, weights_only=False)
                if saved is not None or i == len(torch_modes) - 1:
                    tower, visual = calibrate.build_tower_in_place(mode, visual), None
                    calibrate.release_memory()  # the fp32 weights it replaced, before it runs
                else:
                    tower = calibrate.build_tower(mode, visual, batch.device)
                rate, features = calibrate.time_tower(tower, batch)
            except Exception as exc:  # a kernel missing on this machine: that mode is out
                choice.errors[mode] = f"{type(exc).__name__}: {one_line(exc)}"
                continue
            finally:
                tower = None
                calibrate.release_memory()
            choice.rates[mode] = rate
            choice.cosines[mode] = calibrate.min_cosine(reference, features)
    finally:
        if saved is not None:
            saved.unlink(missing_ok=True)
    return {"rates": choice.rates, "cosines": choice.cosines, "errors": choice.errors}


def _saved(visual: Any, path: Path) -> Path | None:
    """`visual` saved whole to `path`, to be read back after a mode was made from it in place; None
    where it cannot be (a full disk, a module that does not pickle)."""
    import torch

    try:
        torch.save(visual, path)
        return path
    except Exception:
        path.unlink(missing_ok=True)
        return None


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


@contextlib.contextmanager
def _large_blocks_apart(threshold: int = 2**20) -> Iterator[None]:
    """While exporting (a tower), blocks of `threshold` bytes or more come from the system and go
    back to it when freed. glibc otherwise raises that threshold as large blocks are freed and
    serves them from its heap, where what the exporter frees (weights transposed by its constant
    folding, graphs) stayed in this process: ViT-B-32's image export took +350 MB that way, +100 MB
    with this. (glibc only; elsewhere nothing changes.) Afterwards the threshold is glibc's largest,
    where its dynamic one ends up, so that the timings that follow allocate as usual."""
    mallopt = None
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, threshold)
    try:
        yield
    finally:
        if mallopt is not None:
            mallopt(M_MMAP_THRESHOLD, 32 * 2**20)


def _text(args: dict[str, Any]) -> None:
    """The text tower exported (ClipModel._export_text), in a process that holds only it; the torch
    model is let go before the export's check opens it in ONNX Runtime."""
    import torch

    from clipfind.embedding import calibrate

    model = _load(args, "text")
    model._model.visual = torch.nn.Identity()  # only the text tower is exported here
    calibrate.release_memory()

    def release() -> None:
        model._model = None
        calibrate.release_memory()

    with _large_blocks_apart():
        model._export_text(release)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
