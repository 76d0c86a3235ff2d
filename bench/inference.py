"""Ways to run the image tower, side by side: speed, and fidelity to fp32 on real photos.

    python -m bench.inference               # 32 photos; ViT-B-32, ViT-B-32-256, MobileCLIP2-S0
    python -m bench.inference --full        # 64 photos, and torch.compile too (minutes to compile)

For each model, every variant encodes the same prepared batch of real photos from
../shared/data/photos (random weights of the real architecture: speed and fidelity are
measurable, search quality is not). Printed per variant: images per second, the ratio to torch
eager fp32 in the same run, and the minimum over the photos of the cosine between the variant's
vector and fp32's. A variant may be chosen by clipfind's "auto" only if that minimum is at least
0.999 (clipfind.embedding.calibrate.FIDELITY) and it is at least 1.1x faster than fp32; the last line of
each table says what auto picked here, measuring on 32 of the photos as a first index run does.
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


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), help="open_clip model names")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    count = 64 if args.full else 32
    with tempfile.TemporaryDirectory(prefix="clipfind-bench-") as tmp:
        for name in args.models:
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
