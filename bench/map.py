"""The map's layout (issue 13): time and memory to lay out a library, and new photos placed against
a full recompute, measured in the same run.

For each size N, synthetic clustered unit vectors (`common.clustered_vectors`, dim 512 like
ViT-B-32) are laid out by `clipfind.photomap.compute_layout` (UMAP on at most FIT_MAX of them with
a fixed seed, the rest placed from their neighbours, HDBSCAN clusters). Then 1,000 new photos
join: once by `extend_layout` (placed from their nearest laid-out neighbours, exact search as a
library under 20k photos does; above that the library asks its HNSW index), once by a full
`compute_layout` of all N + 1,000. Measured: seconds, resident memory (peak so far and growth),
clusters found and the share left as noise, and how far the old photos moved in the recompute
(they do not move in the extension, by construction).

numba compiles UMAP's functions on the first call in a process (and caches some on disk): that
first call is timed apart, on 5,000 vectors (above 4,096 UMAP takes its approximate-neighbour
path, which compiles too), so the figures below are the steady ones.

Default N: 10,000; `--full`: 10,000 and 100,000 (a few minutes on two cores).

The map view (gui/map_view.py) at 100,000 points (`--view-points`), offscreen: frames while panning
and zooming, each a timed synchronous repaint (the paint event: numpy splats the dots into one image,
thumbnails and names on top), far out (every point a dot) and zoomed in (thumbnails, level of
detail), with the nearest-point lookup a hover does per mouse move. The points are synthetic
clustered blobs (no UMAP: this part measures drawing); every thumbnail is one decoded real photo, so
decoding is not what is timed. Held against 30 frames per second, the least that reads as smooth
panning. `--only view` or `--only layout` runs one part.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from bench import common
from clipfind.photomap import FIT_MAX, compute_layout, exact_knn, extend_layout

NEW = 1_000
DIM = 512


class PeakMemory:
    """The largest resident memory of this process while the block runs, sampled every 20 ms (the
    process's own peak, ru_maxrss, says nothing of a step that used less than an earlier one)."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = common.rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, common.rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, common.rss_mib())


def measure(n: int, seed: int) -> None:
    common.section(f"{n:,} photos (+{NEW:,} new), dim {DIM}, UMAP fits at most {FIT_MAX:,}")
    vectors = common.clustered_vectors(n + NEW, DIM, seed=seed)
    ids = np.arange(n + NEW, dtype=np.int64)
    old_ids, old_vectors = ids[:n], vectors[:n]
    with PeakMemory() as memory, common.timer() as t:
        layout = compute_layout(old_ids, old_vectors)
    common.figure("full layout", t(), "s")
    common.figure("resident memory before (vectors held)", memory.start, "MiB", digits=0)
    common.figure("peak resident memory during the layout", memory.peak, "MiB", digits=0)
    common.figure("  of which the layout itself", memory.peak - memory.start, "MiB", digits=0)
    found = len(set(layout.cluster.tolist()) - {-1})
    common.figure("clusters found", found, "", digits=0)
    common.figure("photos in no cluster (noise)", 100 * float(np.mean(layout.cluster < 0)), "%")

    with common.timer() as t:
        grown = extend_layout(layout, ids, lambda want: vectors[want],
                              lambda q, k: exact_knn(old_ids, old_vectors, q, k))
    extend_s = t()
    common.figure(f"{NEW:,} new photos placed (extend_layout)", extend_s, "s", digits=2)
    with PeakMemory() as memory, common.timer() as t:
        full = compute_layout(ids, vectors)
    full_s = t()
    common.figure(f"full recompute with the {NEW:,} new photos", full_s, "s")
    common.figure("  its peak resident memory", memory.peak, "MiB", digits=0)
    common.figure("recompute / extension", full_s / max(extend_s, 1e-9), "x")
    assert np.array_equal(grown.xy[:n], layout.xy), "the extension moved an old photo"
    moved = np.linalg.norm(full.xy[:n] - layout.xy, axis=1)
    common.figure("old photos' median move in the recompute", float(np.median(moved)), "of the map", digits=3)


VIEW_SIZE = (1200, 800)  # the map's widget, pixels
FRAMES = 60  # pan and zoom steps per measurement


def synthetic_map(n: int, seed: int = 0) -> object:
    """A PhotoMap of ``n`` points in ~n/1,600 named gaussian blobs inside [0, 1]^2, 5 % noise."""
    from clipfind.photomap import MapCluster, PhotoMap
    from clipfind.records import PhotoInfo

    rng = np.random.default_rng(seed)
    k = max(4, n // 1_600)
    centres = rng.uniform(0.08, 0.92, (k, 2))
    which = rng.integers(0, k, n)
    xy = centres[which] + rng.normal(0, 1, (n, 2)) * rng.uniform(0.01, 0.035, (k, 1))[which]
    cluster = which.astype(np.int32)
    noise = rng.random(n) < 0.05
    xy[noise] = rng.uniform(0, 1, (int(noise.sum()), 2))
    cluster[noise] = -1
    xy = np.clip(xy, 0, 1).astype(np.float32)
    photos = tuple(PhotoInfo(i, f"/bench/map/{i:06d}.jpg", 1, 0, f"h{i}", 4, 3) for i in range(n))
    clusters = tuple(MapCluster(c, (f"cluster {c}",), int((cluster == c).sum()), *np.median(xy[cluster == c], axis=0)
                                .tolist()) for c in range(k))
    return PhotoMap(photos, xy, cluster, clusters)


class _OnePhoto:
    """Stands in for the app's ThumbnailCache: every path is one decoded photo (decoding is not timed)."""

    def __init__(self) -> None:
        from PySide6.QtGui import QColor, QImage, QPixmap

        image = QImage(200, 150, QImage.Format.Format_RGB32)
        image.fill(QColor(120, 140, 90))
        try:
            from clipfind.library import thumbnail

            photo = thumbnail(str(common.real_photos()[0]), 200)
            data = photo.tobytes("raw", "RGB")
            image = QImage(data, photo.width, photo.height, 3 * photo.width, QImage.Format.Format_RGB888).copy()
        except (SystemExit, Exception):  # no real photos here: a flat one draws the same
            pass
        self.pixmap = QPixmap.fromImage(image)

    def get(self, path: str) -> object:
        return self.pixmap


def _frames(canvas: object, steps: list[tuple[str, float]]) -> list[float]:
    """Milliseconds of each synchronous repaint after a pan or zoom step."""
    out = []
    for kind, amount in steps:
        if kind == "pan":
            canvas.pan_by(amount, amount * 0.6)
        else:
            canvas.zoom_by(amount)
        start = time.perf_counter()
        canvas.repaint()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _report(name: str, frames: list[float], canvas: object) -> None:
    median, p95 = common.percentile(frames, 50), common.percentile(frames, 95)
    common.figure(f"{name}: frame, median", median, "ms", digits=1)
    common.figure(f"{name}: frame, 95th percentile", p95, "ms", digits=1)
    common.figure(f"{name}: frames per second (median)", 1000 / max(median, 1e-9), "fps", target=">= 30",
                  met=1000 / max(median, 1e-9) >= 30)
    common.note(f"{canvas.dots_drawn:,} points in sight, {canvas.thumbs_drawn} thumbnails in the last frame")


def measure_view(n: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    import gui  # noqa: F401  (gui/compat.py guards None and True against PySide6 6.12.0's lost references)
    from gui.map_view import MapCanvas, prepare

    common.section(f"map view: {n:,} points, {VIEW_SIZE[0]}x{VIEW_SIZE[1]} px, offscreen, timed repaints")
    app = QApplication.instance() or QApplication([])
    photo_map = synthetic_map(n)
    with common.timer() as t:
        data = prepare(photo_map)
    common.figure("lookups built (k-d tree, off the GUI thread in the app)", t() * 1000, "ms", digits=0)
    canvas = MapCanvas(None)
    canvas.cache = _OnePhoto()
    canvas.resize(*VIEW_SIZE)
    canvas.show()
    app.processEvents()
    canvas.set_data(data)
    canvas.fit()
    canvas.repaint()
    wiggle = [("pan", 12.0 if i % 2 else -12.0) if i % 3 else ("zoom", 1.04 if i % 2 else 1 / 1.04)
              for i in range(FRAMES)]
    _report("far out, panning and zooming", _frames(canvas, wiggle), canvas)
    densest = max(data.photo_map.clusters, key=lambda c: c.size)
    canvas.zoom_to(QPointF(densest.x, densest.y), 4)
    canvas.repaint()
    _report("4x on the densest cluster (dots)", _frames(canvas, wiggle), canvas)
    zoom = 4.0
    while canvas.thumbs_drawn == 0 and zoom < 400:
        zoom *= 1.1
        canvas.zoom_to(QPointF(densest.x, densest.y), zoom)
        canvas.repaint()
    common.note(f"thumbnails from {zoom:.1f}x on (the most thumbnails a frame draws)")
    _report(f"{zoom:.1f}x, thumbnails", _frames(canvas, wiggle), canvas)
    canvas.zoom_to(QPointF(densest.x, densest.y), zoom * 3)
    canvas.repaint()
    _report(f"{zoom * 3:.0f}x, thumbnails close in", _frames(canvas, wiggle), canvas)
    rng = np.random.default_rng(1)
    moves = [QPointF(*p) for p in rng.uniform((0, 0), VIEW_SIZE, (500, 2)).tolist()]
    canvas.fit()
    canvas.repaint()
    start = time.perf_counter()
    for p in moves:
        canvas.point_at(p)
    common.figure("hover lookup per mouse move (far out)", (time.perf_counter() - start) / len(moves) * 1e6, "us",
                  digits=0)
    canvas.close()


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help="library sizes (default: 10000; --full adds 100000)")
    p.add_argument("--only", choices=("layout", "view"), help="run one part: the layout, or the view's frames")
    p.add_argument("--view-points", type=int, default=100_000, metavar="N", help="points in the map view (100000)")
    args = p.parse_args(argv)
    if args.only != "layout":
        measure_view(args.view_points)
    if args.only == "view":
        return 0
    sizes = args.sizes or ((10_000, 100_000) if args.full else (10_000,))
    common.section("numba's first compile")
    with common.timer() as t:
        compute_layout(np.arange(5_000, dtype=np.int64), common.clustered_vectors(5_000, DIM, seed=99))
    common.figure("first layout in a process (5,000 photos, compiling)", t(), "s")
    common.note("1 thread: a seeded UMAP runs single-threaded (random_state), so the map is reproducible")
    for i, n in enumerate(sizes):
        measure(n, seed=i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
