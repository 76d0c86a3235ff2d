"""Vector index quality and scale: build rate, recall@10, file size and memory per photo.

For each size N, synthetic clustered unit vectors (`common.clustered_vectors`, dim 512 like
ViT-B-32) go into a clipfind `VectorIndex` the way `annindex.build_index` fills it (one `add` of
every vector; clipfind's own M=16, ef_construction=200, ef=128). Measured:

* build rate, and resident memory per photo (RSS growth over the build / N) against the 2 KiB
  a float32 vector takes by itself;
* recall@10 of 1,000 queries against exact search (`annindex.exact_search`): 900 held out (same
  distribution, not in the index) and 100 photos of the index itself;
* single-query latency at the shipped ef, against exact search of the same queries as baseline;
  if recall misses 0.99, the smallest larger ef that reaches it (clipfind code unchanged: the ef
  `VectorIndex.search` reads is swapped for the measurement only);
* saved file size per photo (`VectorIndex.save`) and the time to load it back (`VectorIndex.load`).

Default N: 20,000; `--full`: 100,000 and 1,000,000 (about 5 GB of RAM and most of an hour on two
cores). Ends with a projection to 10M photos from the measured per-photo figures.
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from bench import common
from bench.query import latencies_ms, machine_note
from clipfind import annindex
from clipfind.annindex import VectorIndex, exact_search

DIM = 512
K = 10
HELD_OUT = 900  # queries not in the index
IN_INDEX = 100  # queries that are photos of the index
RECALL_TARGET = 0.99
EF_TRIES = (160, 192, 256, 320, 384, 512, 768, 1024)
TIMED_QUERIES = 500  # single queries timed at each ef
EXACT_TIMED = 30  # single exact searches timed as the baseline
PROJECT_TO = 10_000_000
MODEL = "bench"  # the sidecar's model identity; any string


@dataclass(frozen=True, slots=True)
class Scale:
    n: int
    build_rate: float  # vectors/s
    rss_per_photo: float  # bytes
    file_per_photo: float  # bytes


@contextmanager
def search_ef(ef: int) -> Iterator[None]:
    """Answer queries as if clipfind shipped HNSW_EF_SEARCH = ef (VectorIndex.search reads it per call)."""
    shipped = annindex.HNSW_EF_SEARCH
    annindex.HNSW_EF_SEARCH = ef
    try:
        yield
    finally:
        annindex.HNSW_EF_SEARCH = shipped


def exact_top(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, chunk: int = 100) -> np.ndarray:
    """Exact top-K labels, a chunk of queries at a time (1,000 x 1M similarities would take 4 GB)."""
    return np.vstack([exact_search(ids, vectors, queries[i : i + chunk], K)[0] for i in range(0, len(queries), chunk)])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-K that the approximate top-K holds (order ignored)."""
    return float((found[:, :, None] == truth[:, None, :]).any(axis=2).mean())


def quality_at(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, ef: int) -> tuple[float, float]:
    """(recall@K of all queries, single-query p50 in ms) with the index searched at `ef`."""
    with search_ef(ef):
        found = index.search(queries, K)[0]
        times = latencies_ms(lambda q: index.search(q, K), list(queries[:TIMED_QUERIES]))
    return recall(found, truth), common.percentile(times, 50)


def measure(n: int, seed: int) -> Scale:
    shipped = annindex.HNSW_EF_SEARCH
    common.section(f"vector index, {n:,} photos (dim {DIM}, M={annindex.HNSW_M}, "
                   f"ef_construction={annindex.HNSW_EF_CONSTRUCTION}, ef={shipped})")
    data = common.clustered_vectors(n + HELD_OUT, DIM, seed=seed)
    vectors, held_out = data[:n], data[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)  # catalog ids start at 1
    rng = np.random.default_rng(seed)
    queries = np.vstack([held_out, vectors[rng.choice(n, IN_INDEX, replace=False)]])

    gc.collect()
    before = common.rss_mib()
    with common.timer() as build:
        index = VectorIndex(DIM)  # build_index's own two steps, minus reading the catalog
        index.add(ids, vectors)
    grown = (common.rss_mib() - before) * 2**20
    build_rate = n / build()
    common.figure("build rate", build_rate, "vec/s")
    common.figure("resident memory per photo (index)", grown / n, "B", digits=0)
    common.figure("  of which the float32 vector itself", 100 * vectors[0].nbytes * n / grown, "%")

    with common.timer() as exact_time:
        truth = exact_top(ids, vectors, queries)
    common.note(f"exact top-{K} of {len(queries):,} queries in {exact_time():.1f} s")
    found = index.search(queries, K)[0]
    overall = recall(found, truth)
    common.figure(f"recall@{K}, all {len(queries):,} queries", overall, target=f">= {RECALL_TARGET}",
                  met=overall >= RECALL_TARGET, digits=4)
    common.figure(f"recall@{K}, {HELD_OUT} held-out queries", recall(found[:HELD_OUT], truth[:HELD_OUT]), digits=4)
    common.figure(f"recall@{K}, {IN_INDEX} queries from the index", recall(found[HELD_OUT:], truth[HELD_OUT:]),
                  digits=4)

    _, ann_ms = quality_at(index, queries, truth, shipped)
    exact = latencies_ms(lambda q: exact_search(ids, vectors, q, K), list(queries[:EXACT_TIMED]))
    exact_ms = common.percentile(exact, 50)
    common.figure(f"query time p50, ef={shipped}, 1 query at a time", ann_ms, "ms", digits=3)
    common.figure("baseline: exact search (numpy) p50", exact_ms, "ms", digits=3)
    common.figure("speed-up over exact search", exact_ms / ann_ms, "x")
    if overall < RECALL_TARGET:
        for ef in EF_TRIES:
            reached, ms = quality_at(index, queries, truth, ef)
            common.figure(f"recall@{K} at ef={ef}", reached, target=f">= {RECALL_TARGET}",
                          met=reached >= RECALL_TARGET, digits=4)
            common.figure(f"query time p50 at ef={ef}", ms, "ms", digits=3)
            common.figure(f"  relative to ef={shipped}", ms / ann_ms, "x", digits=2)
            if reached >= RECALL_TARGET:
                break

    with TemporaryDirectory(prefix="clipfind-bench-ann-") as tmp:
        path = Path(tmp) / "vectors.hnsw"
        with common.timer() as save:
            index.save(path, MODEL)
        size = path.stat().st_size
        del index
        gc.collect()
        with common.timer() as load:
            VectorIndex.load(path, DIM, MODEL)
    common.figure("index file per photo", size / n, "B", digits=0)
    common.figure("save rate (write, check, fsync, checksum)", size / 2**20 / save(), "MiB/s")
    common.figure("load rate (checksum + hnswlib load)", n / load(), "photo/s", digits=0)
    return Scale(n, build_rate, grown / n, size / n)


def project(scales: list[Scale]) -> None:
    """Scale the largest measured size up to PROJECT_TO photos; HNSW builds slow down with size,
    so with two sizes measured the build rate keeps falling at the measured pace per decade."""
    last = scales[-1]
    rate = last.build_rate
    if len(scales) > 1 and last.n > scales[-2].n:
        first = scales[-2]
        per_decade = math.log10(last.n / first.n)
        rate *= (last.build_rate / first.build_rate) ** (math.log10(PROJECT_TO / last.n) / per_decade)
    common.section(f"PROJECTION to {PROJECT_TO:,} photos (not measured: scaled from {last.n:,} photos)")
    common.figure("projected index memory (RSS)", last.rss_per_photo * PROJECT_TO / 2**30, "GiB")
    common.figure("projected vectors alone, float32", PROJECT_TO * DIM * 4 / 2**30, "GiB")
    common.figure("projected index file", last.file_per_photo * PROJECT_TO / 2**30, "GiB")
    common.figure("projected build rate", rate, "vec/s")
    common.figure("projected build time", PROJECT_TO / rate / 3600, "h")


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args(argv)
    sizes = (100_000, 1_000_000) if args.full else (20_000,)
    machine_note()
    scales = [measure(n, seed=i) for i, n in enumerate(sizes)]
    project(scales)
    return 0


if __name__ == "__main__":
    sys.exit(main())
