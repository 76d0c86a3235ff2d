"""Indexing speed, decode cost and memory, each against a baseline measured in the same run.

    python -m bench.indexing            # 48 phone-size photos and the 117 real photos
    python -m bench.indexing --full     # 200 phone-size photos and 514 ordinary photos
    python -m bench.indexing --memory   # only the peak memory of a first and a later `clipfind index`
    python -m bench.indexing --device cuda   # the model on a GPU: batch as large as fills it, and
                                             # indexing with each number of decode workers

Figures (issue 5, targets 1, 2 and 7):
- decode: ms per 12 MP JPEG to a model-ready tensor with clipfind's reduced-scale decode, and
  with a full decode plus open_clip's own transform; the mean absolute difference between the
  two tensors (after normalisation).
- the model-only ceiling: clipfind's image encoder in the mode it chose on this machine, same
  batch size and threads, on tensors prepared beforehand; and torch eager fp32 likewise.
- indexing end to end (model loaded, fresh catalog) on the phone-size folder and on ordinary
  photos: img/s, its ratio to the ceiling, to torch fp32 and to a naive one-thread baseline
  (open, convert, open_clip preprocess, encode one batch at a time).
- peak resident memory of `clipfind index` as a fresh process: the first run on a machine (it
  measures the modes and exports the towers, in child processes for a model this size:
  clipfind.embedding.first_run) and a later one; of the whole process tree, sampled every 10 ms,
  and as the kernel's high-water marks of the process and of its children.

With --device cuda or mps (issue 14) the model runs on that GPU at the batch size clipfind makes it
there (ClipModel.batch_size_for; --batch N to set it), in the mode auto picks there, and indexing
end to end runs once per number of decode workers (--workers N M ...; default: the indexer's own
number, then one per usable CPU but one, clipfind.embedding.runtime.decode_workers_for), each on a
fresh catalog: on a GPU decoding, not the model, is the bound, so the rate is read against the
workers that fed it. The memory of a CLI process is a CPU figure and is left out there. Without
such a device it says so in one line and measures nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import (
    ROOT,
    figure,
    make_ordinary_photos,
    make_phone_photos,
    note,
    parser,
    percentile,
    section,
)
from bench.inference import add_device_options, device_missing, gpu_name

MODEL = "ViT-B-32"
BATCH = 32
ONE_GIB_MIB = 1024.0


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--model", default=MODEL, help=f"open_clip model name (default {MODEL})")
    p.add_argument("--memory", action="store_true", help="only the memory of a first and a later run")
    add_device_options(p)
    p.add_argument("--workers", type=int, nargs="+", default=None, metavar="N",
                   help="decode workers to index with, one run each (default: the indexer's own number; "
                   "on a GPU also one per usable CPU but one)")
    args = p.parse_args(argv)
    missing = device_missing(args.device)
    if missing:
        print(f"bench.indexing: {missing}", flush=True)
        return 0
    if args.device != "cpu":
        return _gpu(args)
    phone_count, ordinary_count = (200, 514) if args.full else (48, 117)
    if args.memory:
        work = Path(tempfile.mkdtemp(prefix="clipfind-bench-"))
        try:
            phone = make_phone_photos(work / "phone", phone_count)
            _memory(work, work / "phone", len(phone), args.model)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0

    warnings.filterwarnings("ignore", message=".*random weights.*")
    import torch

    from clipfind.imageload import load_image
    from clipfind.library import Library

    work = Path(tempfile.mkdtemp(prefix="clipfind-bench-"))
    try:
        section(f"indexing: {args.model}, random weights, batch {BATCH}, {torch.get_num_threads()} torch threads")
        phone = make_phone_photos(work / "phone", phone_count)
        ordinary = make_ordinary_photos(work / "ordinary", ordinary_count)
        note(f"made {len(phone)} JPEGs of 4000x3000 and {len(ordinary)} of 0.2-2 MP (quality 90) "
             "from ../shared/data/photos")

        lib = Library(work / "home", args.model, "none")
        model = lib.model()
        transform = _open_clip_transform(model)

        # -- decode cost ----------------------------------------------------------------
        sample = phone[: min(24, len(phone))]
        fast_ms, fast = _timed_each(sample, lambda p: model.preprocess(load_image(p, model.image_size).image))
        full_ms, full = _timed_each(sample, lambda p: transform(_full_decode(p)))
        diff = float(np.mean([np.abs(a.numpy() - b.numpy()).mean() for a, b in zip(fast, full)]))
        figure("decode 12 MP to tensor, reduced-scale (clipfind)", percentile(fast_ms, 50), "ms", digits=1)
        figure("decode 12 MP to tensor, full (open_clip transform)", percentile(full_ms, 50), "ms", digits=1)
        figure("  speed-up of the reduced decode", percentile(full_ms, 50) / percentile(fast_ms, 50), "x")
        figure("  mean |difference| after normalisation", diff, "", digits=4)

        # -- the model-only ceiling -------------------------------------------------------------
        prepared = torch.stack(fast[:BATCH] * (BATCH // len(fast[:BATCH]) + 1))[:BATCH]
        model.encode_images(prepared)  # settles the mode (measures once, as a first index run would)
        note(model.choice.summary() if model.choice else f"image encoder mode: {model.mode}")
        ceiling = _model_only(model.encode_images, prepared)
        fp32 = _fp32_tower(args.model)
        fp32_rate = _model_only(lambda b: fp32(b).numpy(), prepared)
        figure(f"model only, clipfind ({model.mode})", ceiling, "img/s")
        figure("model only, torch eager fp32", fp32_rate, "img/s")

        # -- end to end ---------------------------------------------------------------------
        for label, folder, files, absolute in (
            ("12 MP photos", work / "phone", phone, 30.0),
            ("ordinary photos", work / "ordinary", ordinary, 50.0),
        ):
            section(f"indexing end to end, {label} ({len(files)})")
            rate = _index_rate(lib, folder, len(files), workers=(args.workers or [None])[0])
            naive = _naive_rate(files[: min(len(files), 2 * BATCH)], fp32, transform)
            figure("clipfind index (model loaded, fresh catalog)", rate, "img/s", target=f">= {absolute:.0f}",
                   met=rate >= absolute)
            figure("naive baseline (one thread, open_clip preprocess)", naive, "img/s")
            figure("  clipfind / model-only ceiling", rate / ceiling, "", target=">= 0.90", met=rate / ceiling >= 0.9,
                   digits=2)
            figure("  clipfind / naive baseline", rate / naive, "x", target=">= 2", met=rate / naive >= 2)
            if label == "12 MP photos":
                figure("  clipfind / torch fp32 model-only", rate / fp32_rate, "x", target=">= 1.5",
                       met=rate / fp32_rate >= 1.5)
        lib.close()

        _memory(work, work / "phone", len(phone), args.model)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _gpu(args) -> int:  # type: ignore[no-untyped-def]
    """Indexing with the model on a GPU: the model-only ceiling at the GPU's batch size, then end to
    end once per number of decode workers."""
    warnings.filterwarnings("ignore", message=".*random weights.*")
    import torch

    from clipfind.embedding.runtime import decode_workers_for, usable_cpus
    from clipfind.imageload import load_image
    from clipfind.library import Library

    device = torch.device(args.device)
    phone_count, ordinary_count = (200, 514) if args.full else (96, 234)
    work = Path(tempfile.mkdtemp(prefix="clipfind-bench-"))
    try:
        lib = Library(work / "home", args.model, "none", device=args.device)
        model = lib.model()
        batch = args.batch or model.batch_size_for(BATCH)
        default_workers = lib.indexer(batch_size=batch).workers
        workers = args.workers or sorted({default_workers, decode_workers_for(args.device, usable_cpus())})
        section(f"indexing on {args.device} ({gpu_name(device)}): {args.model}, random weights, batch {batch}, "
                f"decode workers {', '.join(map(str, workers))} in threads and in processes (the indexer's own "
                f"choice on a GPU: processes)")
        phone = make_phone_photos(work / "phone", phone_count)
        ordinary = make_ordinary_photos(work / "ordinary", ordinary_count)
        note(f"made {len(phone)} JPEGs of 4000x3000 and {len(ordinary)} of 0.2-2 MP (quality 90) "
             "from ../shared/data/photos")

        sample = [model.preprocess(load_image(p, model.image_size).image) for p in ordinary[:batch]]
        prepared = torch.stack([sample[i % len(sample)] for i in range(batch)])
        model.encode_images(prepared)  # settles the mode on this GPU (measures once, as a first index run)
        note(model.choice.summary() if model.choice else f"image encoder mode: {model.mode}")
        ceiling = _model_only(model.encode_images, prepared)
        figure(f"model only, clipfind ({model.mode}, batch {batch}, host tensors in)", ceiling, "img/s")
        fp32 = _fp32_tower(args.model, device)
        figure(f"model only, torch eager fp32 (batch {batch})", _model_only(lambda b: fp32(b).cpu().numpy(),
                                                                            prepared), "img/s")
        for label, folder, files in (("12 MP photos", work / "phone", phone),
                                     ("ordinary photos", work / "ordinary", ordinary)):
            section(f"indexing end to end on {args.device}, {label} ({len(files)}), batch {batch}")
            for n in workers:
                for decode in ("threads", "processes"):
                    fresh = Library(work / f"home-{label[:2]}-{n}-{decode}", args.model, "none", device=args.device)
                    fresh._model = model  # the same loaded model and mode: only the catalog is new
                    rate = _index_rate(fresh, folder, len(files), batch=batch, workers=n, decode=decode)
                    figure(f"clipfind index, {n} decode {decode}", rate, "img/s")
                    figure("  / model-only ceiling", rate / ceiling, "", digits=2)
                    fresh._model = None
                    fresh.close()
        note("the memory of a `clipfind index` process is a CPU figure: run without --device for it")
        lib.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _memory(work: Path, folder: Path, count: int, model: str) -> None:
    """The first run on this machine (it measures the modes and exports the towers), then a later
    run on a fresh catalog with what the first one left behind (the choice and the exports)."""
    section(f"memory of `clipfind index` as a fresh process ({model}, {count} photos of 12 MP)")
    first, steady = work / "home-first", work / "home-steady"
    peak, seconds = _cli_peak_rss(folder, first, model)
    figure("peak RSS, the first run (measures, exports)", peak.tree, "MiB", target="<= 1536",
           met=peak.tree <= 1.5 * ONE_GIB_MIB)
    _peak_details(peak)
    figure("  its rate, start-up, measuring and export included", count / seconds, "img/s")
    steady.mkdir()
    for name in ("runtime.json", "onnx"):  # what the first run on this machine left behind
        source = first / name
        if source.is_dir():
            shutil.copytree(source, steady / name)
        elif source.exists():
            shutil.copy2(source, steady / name)
    peak, seconds = _cli_peak_rss(folder, steady, model)
    figure("peak RSS, a run after the first on this machine", peak.tree, "MiB", target="<= 1024",
           met=peak.tree <= ONE_GIB_MIB)
    _peak_details(peak)
    figure("  its rate, start-up and model load included", count / seconds, "img/s")


def _peak_details(peak: "Peak") -> None:
    figure("  of which the process's own high-water mark", peak.own, "MiB")
    if peak.children:
        figure("  its children's largest high-water mark", peak.children, "MiB")


def _open_clip_transform(model):  # type: ignore[no-untyped-def]
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**model._model.visual.preprocess_cfg), is_train=False)


def _fp32_tower(name: str, device=None):  # type: ignore[no-untyped-def]
    """The plain torch fp32 image tower, as a separate model (clipfind's may have been converted)."""
    import open_clip
    import torch

    torch.manual_seed(0)
    visual = open_clip.create_model(name, pretrained=None).visual.eval()
    if device is not None:
        visual = visual.to(device)

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return torch.nn.functional.normalize(visual(batch.to(device) if device is not None else batch), dim=-1)

    return run


def _full_decode(path: Path):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _timed_each(paths: list[Path], fn):  # type: ignore[no-untyped-def]
    times, outs = [], []
    for path in paths:
        start = time.perf_counter()
        outs.append(fn(path))
        times.append(1000 * (time.perf_counter() - start))
    return times, outs


def _model_only(encode, prepared, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    encode(prepared[:4])
    start = time.perf_counter()
    for _ in range(repeats):
        encode(prepared)
    return repeats * len(prepared) / (time.perf_counter() - start)


def _index_rate(lib, folder: Path, count: int, *, batch: int = BATCH,  # type: ignore[no-untyped-def]
                workers: int | None = None, decode: str = "auto") -> float:
    """Photos per second; a file clipfind cannot read (one real TIFF) counts as done, not as fast."""
    start = time.perf_counter()
    options = {"workers": workers} if workers else {}
    report = lib.indexer(batch_size=batch, decode=decode, **options).run([str(folder)])
    seconds = time.perf_counter() - start
    if report.encoded + report.failed != count or report.encoded < 0.95 * count:
        raise SystemExit(f"bench: expected {count} photos indexed, got {report}")
    return report.encoded / seconds


def _naive_rate(paths: list[Path], tower, transform) -> float:  # type: ignore[no-untyped-def]
    """What a first version of a CLIP indexer does: everything in one thread, one batch at a time."""
    import torch

    start = time.perf_counter()
    for i in range(0, len(paths), BATCH):
        from PIL import Image

        images = []
        for path in paths[i : i + BATCH]:
            with Image.open(path) as im:
                images.append(transform(im.convert("RGB")))
        tower(torch.stack(images))
    return len(paths) / (time.perf_counter() - start)


# `clipfind index` as the user runs it, then the high-water marks of this process's own memory and
# of its children's (RUSAGE_CHILDREN: the largest of them). The kernel's rusage of the benchmark's
# child would also count the benchmark's pages that it shared between fork and exec.
_MEASURED_CLI = """
import resource, sys
from clipfind.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    own = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
print(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


@dataclass
class Peak:
    """MiB: the whole tree's sampled peak, the process's own and its children's high-water marks."""

    tree: float
    own: float
    children: float


def _cli_peak_rss(folder: Path, home: Path, model: str) -> tuple[Peak, float]:
    """Peak RSS (MiB) and wall time of a fresh `clipfind index` process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _MEASURED_CLI, "--home", str(home), "index", str(folder), "--model", model,
         "--pretrained", "none"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    tree = _TreeSampler(proc.pid)
    tree.start()
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    tree.stop()
    if proc.returncode != 0:
        raise SystemExit(f"bench: clipfind index failed: {stderr[-500:]}")
    own, children = (int(x) / 1024 for x in stderr.split()[-2:])
    return Peak(max(tree.peak_mib, own), own, children), seconds


class _TreeSampler(threading.Thread):
    """The largest sum of resident memory over a process and all its descendants, every 10 ms
    (Linux /proc): what a child process adds while the parent waits for it."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mib = 0.0
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(0.01):
            total = sum(_resident_pages(pid) for pid in _tree(self.pid)) * page / 2**20
            self.peak_mib = max(self.peak_mib, total)


def _tree(pid: int) -> list[int]:
    pids, i = [pid], 0
    while i < len(pids):
        try:
            with open(f"/proc/{pids[i]}/task/{pids[i]}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        i += 1
    return pids


def _resident_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
