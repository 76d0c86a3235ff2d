"""Ways to run the image tower, side by side: speed, and fidelity to fp32 on real photos.

    python -m bench.inference               # 32 photos; ViT-B-32, ViT-B-32-256, MobileCLIP2-S0
    python -m bench.inference --full        # 64 photos, and torch.compile too (minutes to compile)
    python -m bench.inference --device cuda # on a GPU (cuda or mps): ViT-B-32 and ViT-L-14, every mode
                                            # a GPU is offered, at the batch size that fills it

For each model, every variant encodes the same prepared batch of real photos from
../shared/data/photos (random weights of the real architecture: speed and fidelity are
measurable, search quality is not). Printed per variant: images per second, the ratio to torch
eager fp32 in the same run, and the minimum over the photos of the cosine between the variant's
vector and fp32's. A variant may be chosen by clipfind's "auto" only if that minimum is at least
0.999 (clipfind.embedding.calibrate.FIDELITY) and it is at least 1.1x faster than fp32; the last line of
each table says what auto picked here, measuring on 32 of the photos as a first index run does.

With --device cuda or mps the batch is as large as clipfind makes it on that GPU
(ClipModel.batch_size_for: up to 256, by its free memory; --batch N to set it), the photos repeated
to fill it, and the rates wait for the device. Auto measures on that whole batch, as a first index
run on a GPU does. Without such a device it says so in one line and measures nothing.
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from bench.common import note, parser, real_photos, section

MODELS = ("ViT-B-32", "ViT-B-32-256", "MobileCLIP2-S0")
GPU_MODELS = ("ViT-B-32", "ViT-L-14")  # what issue 14 asks a GPU's figures for
DEVICES = ("cpu", "cuda", "mps")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=None,
                   help=f"open_clip model names (default: {', '.join(MODELS)}; on a GPU {', '.join(GPU_MODELS)})")
    add_device_options(p)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    missing = device_missing(args.device)
    if missing:
        print(f"bench.inference: {missing}", flush=True)
        return 0
    import torch

    if args.device != "cpu":
        with tempfile.TemporaryDirectory(prefix="clipfind-bench-") as tmp:
            for name in args.models or GPU_MODELS:
                _gpu_table(name, torch.device(args.device), args.batch, Path(tmp))
        return 0
    count = 64 if args.full else 32
    with tempfile.TemporaryDirectory(prefix="clipfind-bench-") as tmp:
        for name in args.models or MODELS:
            _table(name, count, Path(tmp), compile_too=args.full)
    note(f"{torch.get_num_threads()} torch threads; bf16 is native on this CPU: "
         f"{_native_bf16()}; with emulated bf16 it is slow and never chosen")
    return 0


def _table(name: str, count: int, tmp: Path, *, compile_too: bool) -> None:
    import torch

    from clipfind.embedding import calibrate as runtime
    from clipfind.embedding.spec import ModelSpec
    from clipfind.embedding.torch_model import load_model
    from clipfind.imageload import load_image

    model = load_model(ModelSpec(name, None), device="cpu", precision="fp32")
    photos = real_photos()[:count]
    batch = torch.stack([model.preprocess(load_image(p, model.image_size).image) for p in photos])
    visual = model._model.visual
    section(f"{name}: image tower on {len(batch)} real photos ({model.image_size} px), batch {len(batch)}")

    base_rate, reference = runtime.time_tower(visual, batch, repeats=2)
    rows: list[tuple[str, float, float]] = [("torch eager fp32 (reference)", base_rate, 1.0)]
    cpu = torch.device("cpu")

    def variant(label: str, build: Callable[[], runtime.Tower]) -> None:
        try:
            tower = build()
            rate, features = runtime.time_tower(tower, batch, repeats=2)
        except Exception as exc:
            note(f"{label}: could not run ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            return
        rows.append((label, rate, runtime.min_cosine(reference, features)))

    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        variant("torch eager fp32, 1 thread", lambda: visual)
        torch.set_num_threads(threads)
    variant("channels-last fp32", lambda: _channels_last(visual))
    variant("bf16 (whole tower cast)", lambda: runtime.build_tower("bf16", visual, cpu))
    variant("int8 dynamic (Linear layers)", lambda: runtime.build_tower("int8", visual, cpu))
    variant("ONNX Runtime fp32", lambda: runtime.build_tower("onnx", visual, cpu, tmp / f"{name}.onnx"))
    variant("ONNX Runtime int8 (MatMuls)", lambda: runtime.build_tower("onnx-int8", visual, cpu, tmp / f"{name}.onnx"))
    if "MobileCLIP" in name:
        variant("without reparameterisation", lambda: _unfused(name))
    if compile_too:
        variant("torch.compile (inductor), fp32", lambda: _compiled(visual, batch))

    print(f"  {'variant':<34} {'img/s':>7} {'x fp32':>7} {'min cosine':>11}  cosine >= 0.999", flush=True)
    for label, rate, cosine in rows:
        eligible = "yes" if cosine >= runtime.FIDELITY else "NO"
        print(f"  {label:<34} {rate:7.1f} {rate / base_rate:7.2f} {cosine:11.5f}  {eligible}", flush=True)
    choice, _, _ = runtime.calibrate(visual, batch[:32], cpu, tmp / f"{name}-auto.onnx")
    note(f"clipfind auto on this machine: {choice.mode} ({choice.summary()})")


def add_device_options(p) -> None:  # type: ignore[no-untyped-def]
    """--device and --batch, shared with bench.indexing."""
    p.add_argument("--device", choices=DEVICES, default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="photos per batch on a GPU (default: as many as fill it, as clipfind does)")


def device_missing(device: str) -> str | None:
    """Why `device` cannot run here (one line), or None where it can."""
    if device == "cpu":
        return None
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        return (f"--device cuda asked for, but torch {torch.__version__} finds no CUDA GPU on this machine; "
                "nothing measured (run it where there is one, or with --device cpu).")
    if device == "mps" and not torch.backends.mps.is_available():
        return (f"--device mps asked for, but torch {torch.__version__} finds no MPS GPU (Apple silicon) here; "
                "nothing measured (run it where there is one, or with --device cpu).")
    return None


def gpu_name(device) -> str:  # type: ignore[no-untyped-def]
    from clipfind.embedding.calibrate import device_label, gpu_free_bytes

    free = gpu_free_bytes(device)
    return device_label(device) + (f", {free / 2**30:.1f} GiB free" if free is not None else "")


def _gpu_table(name: str, device, batch_size: int | None, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    """Every mode a GPU is offered, on one batch of real photos as large as clipfind makes it there."""
    import torch

    from clipfind.embedding import calibrate as runtime
    from clipfind.embedding.spec import ModelSpec
    from clipfind.embedding.torch_model import load_model
    from clipfind.imageload import load_image

    model = load_model(ModelSpec(name, None), device=device.type, precision="fp32")
    size = batch_size or model.batch_size_for(32)
    photos = real_photos()
    prepared = [model.preprocess(load_image(p, model.image_size).image) for p in photos[:size]]
    batch = torch.stack([prepared[i % len(prepared)] for i in range(size)]).to(device)
    visual = model._model.visual
    section(f"{name}: image tower on {device.type} ({gpu_name(device)}), batch {size} "
            f"({len(prepared)} real photos, {model.image_size} px)")
    base_rate, reference = runtime.time_tower(visual, batch, repeats=5)
    rows: list[tuple[str, float, float]] = [("fp32 (reference)", base_rate, 1.0)]
    for mode in runtime.supported_modes(device):
        if mode == "fp32":
            continue
        try:
            tower = runtime.build_tower(mode, visual, device)
            rate, features = runtime.time_tower(tower, batch, repeats=5)
        except Exception as exc:
            note(f"{mode}: could not run ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        finally:
            tower = None
            runtime.release_memory()
        rows.append((mode, rate, runtime.min_cosine(reference, features)))
    print(f"  {'mode':<34} {'img/s':>8} {'x fp32':>7} {'min cosine':>11}  cosine >= 0.999   batch", flush=True)
    for label, rate, cosine in rows:
        eligible = "yes" if cosine >= runtime.FIDELITY else "NO "
        print(f"  {label:<34} {rate:8.1f} {rate / base_rate:7.2f} {cosine:11.5f}  {eligible:<16} {size:>5}",
              flush=True)
    choice, _, _ = runtime.calibrate(visual, batch, device, tmp / f"{name}-auto.onnx")
    note(f"clipfind auto on this GPU: {choice.mode} ({choice.summary()})")
    del model, visual, batch, reference
    runtime.release_memory()


def _channels_last(visual):  # type: ignore[no-untyped-def]
    import torch

    tower = copy.deepcopy(visual).to(memory_format=torch.channels_last)
    return lambda x: tower(x.contiguous(memory_format=torch.channels_last))


def _unfused(name: str):  # type: ignore[no-untyped-def]
    """The same weights before MobileCLIP's branches are fused (seeded as clipfind seeds them)."""
    import open_clip
    import torch

    torch.manual_seed(0)
    return open_clip.create_model(name, pretrained=None).visual.eval()


def _compiled(visual, batch):  # type: ignore[no-untyped-def]
    import torch

    tower = torch.compile(copy.deepcopy(visual))
    start = time.perf_counter()
    with torch.inference_mode():
        tower(batch)
    note(f"torch.compile: first call (compilation) took {time.perf_counter() - start:.0f} s")
    return tower


def _native_bf16() -> bool:
    import torch

    from clipfind.embedding.calibrate import native_bf16

    return native_bf16(torch.device("cpu"))


if __name__ == "__main__":
    sys.exit(main())
