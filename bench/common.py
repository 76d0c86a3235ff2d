"""What every benchmark shares: one way to print a figure against its target, and the test data.

Figures are printed as aligned lines so that one run of `python -m bench` reads as a report:

    indexing, 12 MP photos ........................  31.2 img/s   target >= 30     met

Each benchmark is a module with `main(argv) -> int`; `--full` switches to the issue's full sizes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--full", action="store_true", help="the issue's full sizes (slow); default: small sizes")
    return p


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def figure(
    name: str, value: float, unit: str = "", *, target: str | None = None, met: bool | None = None, digits: int = 1
) -> None:
    """Print one measured figure; `target`/`met` say what it is held against."""
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    line = f"  {name} {'.' * max(2, 52 - len(name))} {text:>10} {unit:<8}"
    if target is not None:
        line += f" target {target:<10}"
        if met is not None:
            line += " met" if met else " NOT MET"
    print(line.rstrip(), flush=True)


def note(text: str) -> None:
    print(f"  ({text})", flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), p))


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """`with timer() as t: ...; t()` gives the seconds spent inside the block."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def real_photos() -> list[Path]:
    if not PHOTOS.is_dir():
        raise SystemExit(f"bench: the real photos are not at {PHOTOS} (../shared/data beside the project)")
    return sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def clustered_vectors(n: int, dim: int = 512, clusters: int | None = None, seed: int = 0) -> np.ndarray:
    """Unit float32 rows grouped around random centres, like photo embeddings (trips, events,
    near-identical bursts), rather than uniform noise, which flatters approximate search."""
    rng = np.random.default_rng(seed)
    clusters = clusters or max(1, n // 100)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        which = rng.integers(0, clusters, m)
        spread = rng.uniform(0.3, 1.2, (m, 1)).astype(np.float32)
        out[start : start + m] = centres[which] + spread * rng.standard_normal((m, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def make_phone_photos(dest: Path, count: int, size: tuple[int, int] = (4000, 3000), quality: int = 90) -> list[Path]:
    """`count` phone-size JPEGs made from the real photos (resized, re-encoded, new names)."""
    return _make_photos(dest, count, lambda w, h: size if w >= h else size[::-1], quality)


def make_ordinary_photos(dest: Path, count: int, quality: int = 90) -> list[Path]:
    """`count` JPEGs of 0.2 to 2 MP (what rclip's "ordinary photos" were) made from the real photos."""
    def fit(w: int, h: int) -> tuple[int, int]:
        scale = min(1.0, (1_900_000 / (w * h)) ** 0.5)
        return max(1, round(w * scale)), max(1, round(h * scale))

    return _make_photos(dest, count, fit, quality)


def _make_photos(dest: Path, count: int, size_of: Callable[[int, int], tuple[int, int]], quality: int) -> list[Path]:
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    sources = [p for p in real_photos() if _opens(p)]
    made: list[Path] = []
    for i in range(count):
        src = sources[i % len(sources)]
        with Image.open(src) as im:
            im = im.convert("RGB")
            im = im.resize(size_of(im.width, im.height), Image.Resampling.BILINEAR)
            if i >= len(sources):  # a different photo each time, not a byte copy of an earlier one
                im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if (i // len(sources)) % 2 else im
                im = im.rotate(0.5 * (i // len(sources)), resample=Image.Resampling.NEAREST)
        path = dest / f"IMG_{i:04d}.jpg"
        im.save(path, quality=quality)
        made.append(path)
    return made


def _opens(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError):
        return False  # the one multi-page TIFF Pillow cannot identify
