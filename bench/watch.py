"""Watch latency: from a new photo's write finishing to `Library.search` returning it.

A temporary home indexes a small folder of real photos with the tiny random-weight model (the
model's speed is not what is measured: the watcher's debounce, stability look and index run are),
then watches it. Each run writes one new photo (a real photo, 640 px, distinct bytes) the way a copy
does, closes it, and starts the clock; the clock stops when a text search (k large enough for every
photo) returns its path. Watched through the system's events (inotify here); `--polling` measures the
fallback for network drives instead.

    python -m bench.watch [--runs N] [--polling]
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bench.common import PHOTOS, figure, parser, percentile, section

TARGET_S = 5.0
SOURCES = "kodak24"


def _photo_bytes(index: int) -> bytes:
    """A distinct real photo as a 640 px JPEG (the quality varies so repeats are other bytes)."""
    from PIL import Image

    sources = sorted((PHOTOS / SOURCES).glob("*.png"))
    with Image.open(sources[index % len(sources)]) as opened:
        image = opened.convert("RGB")
    image.thumbnail((640, 640))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70 + index % 25)
    return out.getvalue()


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
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
