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
"""

from __future__ import annotations

import sys
import threading

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


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help="library sizes (default: 10000; --full adds 100000)")
    args = p.parse_args(argv)
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
