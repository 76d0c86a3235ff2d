"""Watch latency: from a new photo's write finishing to `Library.search` returning it.

A temporary home indexes a small folder of real photos with the tiny random-weight model (the
model's speed is not what is measured: the watcher's debounce, stability look and index run are),
then watches it. Each run writes one new photo (a real photo, 640 px, distinct bytes) the way a copy
does, closes it, and starts the clock; the clock stops when a text search (k large enough for every
photo) returns its path. Watched through the system's events (inotify here); `--polling` measures the
fallback for network drives instead.

Then a batch's apply time in a folder that already holds many photos (--photos, copies of a few
small real JPEGs): the watcher's batch, which indexes only the paths that changed, against a rescan of
the whole folder (what every batch cost before), the same kind of new photo, in the same run.

    python -m bench.watch [--runs N] [--polling] [--photos N]
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import PHOTOS, figure, parser, percentile, section

TARGET_S = 5.0
SOURCES = "kodak24"


def _photo_bytes(index: int, side: int = 640) -> bytes:
    """A distinct real photo as a JPEG of `side` px (the quality varies so repeats are other bytes)."""
    from PIL import Image

    sources = sorted((PHOTOS / SOURCES).glob("*.png"))
    with Image.open(sources[index % len(sources)]) as opened:
        image = opened.convert("RGB")
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70 + index % 25)
    return out.getvalue()


@contextmanager
def _quiet() -> Iterator[None]:
    """The tiny model's random-weights warning is not a figure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def batch_apply(photos: int, runs: int) -> tuple[list[float], list[float]]:
    """Seconds to apply a batch of one new photo in a folder of `photos` indexed ones, as the watcher's
    default apply runs it: (only the changed path, the whole folder rescanned), alternating, each run a
    new photo of distinct bytes."""
    from clipfind.library import Library

    with tempfile.TemporaryDirectory(prefix="clipfind-bench-batch-") as tmp:
        folder = Path(tmp) / "Pictures"
        folder.mkdir()
        small = [Path(tmp) / f"small_{i}.jpg" for i in range(8)]
        for i, path in enumerate(small):
            path.write_bytes(_photo_bytes(200 + i, side=160))
        for i in range(photos):  # a camera roll: one folder, many files
            shutil.copyfile(small[i % len(small)], folder / f"IMG_{i:05d}.jpg")
        lib = Library(Path(tmp) / "home", "clipfind-tiny", "none")
        try:
            with _quiet():
                lib.index_folders([str(folder)])
                only: list[float] = []
                whole: list[float] = []
                for run in range(2 * runs + 1):
                    path = folder / f"new_{run:03d}.jpg"
                    path.write_bytes(_photo_bytes(300 + run))
                    start = time.monotonic()
                    if run % 2:
                        report = lib.index_folders([str(folder)])
                    else:
                        report = lib.index_folders([str(folder)], only=[str(path)])
                    took = time.monotonic() - start
                    if report.added != 1:
                        raise RuntimeError(f"{path.name}: {report.added} added, not 1")
                    if run:  # the first one warms the model and the caches up
                        (whole if run % 2 else only).append(took)
            return only, whole
        finally:
            lib.close()


def watch_latency(runs: int, *, polling: bool | None = None) -> list[float]:
    """Seconds from each of `runs` new photos' write finishing until search returns it."""
    from clipfind.library import Library, build_query

    with tempfile.TemporaryDirectory(prefix="clipfind-bench-watch-") as tmp:
        folder = Path(tmp) / "Pictures"
        folder.mkdir()
        for i in range(4):
            (folder / f"start_{i}.jpg").write_bytes(_photo_bytes(100 + i))
        lib = Library(Path(tmp) / "home", "clipfind-tiny", "none")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                lib.index_folders([str(folder)])
            query = build_query(["a photo"], [], [])
            lib.search(query, 1)  # the text tower loaded before any clock runs
            latencies: list[float] = []
            with lib.watch(polling=polling):
                for run in range(runs):
                    path = folder / f"new_{run:03d}.jpg"
                    data = _photo_bytes(run)
                    with open(path, "wb") as fh:
                        fh.write(data)
                    start = time.monotonic()
                    while not any(h.photo.path == str(path) for h in lib.search(query, 10_000)):
                        if time.monotonic() - start > 60:
                            raise RuntimeError(f"{path.name} not found by search within 60 s")
                        time.sleep(0.02)
                    latencies.append(time.monotonic() - start)
                    time.sleep(0.3)  # the next write is a new event, not part of this batch
            return latencies
        finally:
            lib.close()


def main(argv: list[str] | None = None) -> int:
    p = parser("watch latency: a new photo's write finishing to search returning it")
    p.add_argument("--runs", type=int, default=10, help="new photos written, one at a time (default 10)")
    p.add_argument("--polling", action="store_true", help="poll instead of the system's events")
    p.add_argument("--photos", type=int, default=5000,
                   help="photos already in the folder for the batch apply figures (default 5,000; --full: 4x)")
    args = p.parse_args(argv)
    if not (PHOTOS / SOURCES).is_dir():
        print(f"real photos not found at {PHOTOS / SOURCES}", file=sys.stderr)
        return 1
    logging.getLogger().setLevel(logging.ERROR)
    runs = args.runs * (3 if args.full else 1)
    section(f"watched folders ({'polling' if args.polling else 'events'}, {runs} new photos, tiny model)")
    latencies = watch_latency(runs, polling=True if args.polling else None)
    figure("watch latency p50, write finished to searchable", percentile(latencies, 50), "s",
           target=f"<= {TARGET_S:g} s", met=percentile(latencies, 50) <= TARGET_S, digits=2)
    figure("watch latency max", max(latencies), "s", target=f"<= {TARGET_S:g} s", met=max(latencies) <= TARGET_S,
           digits=2)

    photos = args.photos * (4 if args.full else 1)
    section(f"a batch of one new photo in a folder of {photos:,} indexed photos ({runs} runs each, tiny model)")
    only, whole = batch_apply(photos, runs)
    figure("batch apply p50, only the changed path", percentile(only, 50), "s", digits=3)
    figure("batch apply p50, whole folder rescanned", percentile(whole, 50), "s", digits=3)
    figure("whole rescan / only the changed path", percentile(whole, 50) / percentile(only, 50), "x", digits=1)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
