"""Indexing on a local Ray cluster (issue 14) against the plain local indexer, in the same run.

    python -m bench.cluster                 # 384 ordinary photos, ViT-B-32 (random weights), fp32
    python -m bench.cluster --full          # 1,024 photos; 100,000 rows for the writer
    python -m bench.cluster --model clipfind-tiny --photos 200

Figures:
- the plain local indexer (`Library.index_folders`), then `--cluster local` with 1 and with 2 worker
  processes, all in the same precision (one runtime mode), each into fresh catalogs, round robin:
  photos/s of the whole run; the fixed cost of a run (a run of 4 photos: model loads, the first
  batch); the cost per photo beyond it;
- Ray's own start on this machine (`ray.init`, once: every cluster run above reuses it);
- the Ray path's overhead per photo: its cost per photo less the local indexer's;
- the single catalog writer alone (`Indexer._commit_batch` with vectors already computed, as the
  driver gets them from the workers): rows/s into the catalog and the HNSW index, and into the
  catalog alone, per chunk size; and the hours those rates give for 10M photos.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import figure, make_ordinary_photos, note, parser, section
from clipfind.embedding.runtime import usable_cpus

MODEL = "ViT-B-32"
PRECISION = "fp32"
BATCH = 32
REPEATS = 2  # each configuration run this many times, round robin; the fastest counts
TEN_MILLION = 10_000_000
DIM = 512
THUMB_BYTES = 1936  # clipfind.fingerprint's thumbnail


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--model", default=MODEL, help=f"open_clip model name (default {MODEL}, random weights)")
    p.add_argument("--precision", default=PRECISION, help=f"how every run's image encoder runs (default {PRECISION})")
    p.add_argument("--photos", type=int, default=None, help="photos to index (default 384, --full 1,024)")
    p.add_argument("--rows", type=int, default=None, help="rows for the writer alone (default 20,000, --full 100,000)")
    p.add_argument("--skip-ray", action="store_true", help="only the catalog writer's commit rate")
    args = p.parse_args(argv)
    photos = args.photos or (1024 if args.full else 384)
    rows = args.rows or (100_000 if args.full else 20_000)
    work = Path(tempfile.mkdtemp(prefix="clipfind-bench-cluster-"))
    try:
        if not args.skip_ray:
            throughput(work, args.model, args.precision, photos)
        writer(work, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


# -- throughput ------------------------------------------------------------------------------------
def throughput(work: Path, model: str, precision: str, count: int) -> None:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        note("Ray is not installed (pip install 'clipfind[cluster]'): the cluster figures are skipped")
        return
    folder = work / "photos"
    made = make_ordinary_photos(folder, count)
    cpus = usable_cpus()
    section(f"indexing {count} ordinary photos, {model} ({precision}), {cpus} CPUs, batch {BATCH}, "
            f"load average {os.getloadavg()[0]:.1f}")
    # Warm-up: the photos in the page cache, torch and open_clip imported, so the first run measured
    # pays nothing the others do not.
    warm = work / "photos-warm"
    warm.mkdir()
    for path in made:
        path.read_bytes()
    for path in made[:4]:
        os.link(path, warm / path.name)
    _run(work / "home-warm", warm, model, precision, None, None)

    started = time.monotonic()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.monotonic() - started
    configs = {"local indexer (threads)": (None, None), "Ray, 1 worker process": ("local", 1),
               "Ray, 2 worker processes": ("local", 2)}
    fixed: dict[str, float] = {}
    whole: dict[str, float] = {}
    try:
        for rep in range(REPEATS):  # round robin, the fastest of each: other work on the machine only slows
            for i, (name, (cluster, workers)) in enumerate(configs.items()):
                few = _run(work / f"home-{rep}-{i}-few", warm, model, precision, cluster, workers)
                full = _run(work / f"home-{rep}-{i}-full", folder, model, precision, cluster, workers)
                fixed[name] = min(fixed.get(name, float("inf")), few)
                whole[name] = min(whole.get(name, float("inf")), full)
    finally:
        ray.shutdown()

    extra = count - len(made[:4])
    per_photo = {name: (whole[name] - fixed[name]) / extra for name in configs}
    for name in configs:
        figure(f"{name}: whole run", count / whole[name], "photos/s")
        figure(f"{name}: per photo, beyond the fixed cost", 1000 * per_photo[name], "ms")
        figure(f"{name}: fixed cost (a run of 4 photos)", fixed[name], "s", digits=2)
    local, one, two = per_photo.values()
    figure("Ray start on this machine (ray.init, once per process)", ray_start, "s", digits=2)
    figure("Ray path overhead per photo (1 worker, against local)", 1000 * (one - local), "ms")
    figure("Ray path overhead per photo (2 workers, against local)", 1000 * (two - local), "ms")
    figure("2 workers against 1 worker (per photo)", one / two, "x", digits=2)
    note(f"each configuration indexes 4 photos and then all {count} into fresh catalogs, {REPEATS} rounds round "
         "robin, the fastest of each counting; per photo = (time for all - time for 4) / the difference, so the "
         "model loads (for Ray: once on a worker to bind the catalog, then in each worker process) stay out of "
         "it. The local indexer runs its model in this process beside 4 decode threads; each Ray worker process "
         "decodes and runs its model with its share of the CPUs (OMP_NUM_THREADS), two batches at a time; the "
         f"driver (scan, catalog writer) shares the same {cpus} CPUs, as does the idle Ray instance during the "
         "local runs")


def _run(home: Path, folder: Path, model: str, precision: str, cluster: str | None, workers: int | None) -> float:
    """Seconds for one `index_folders` into a fresh catalog, the model load included."""
    from clipfind.library import Library

    home.mkdir()
    lib = Library(home, model, "none", precision=precision)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # random weights
            started = time.monotonic()
            report = lib.index_folders([str(folder)], batch_size=BATCH, workers=workers, cluster=cluster)
            seconds = time.monotonic() - started
    finally:
        lib.close()
    assert report.failed == 0 and report.encoded == report.added, report
    return seconds


# -- the single writer --------------------------------------------------------------------------------
def writer(work: Path, rows: int) -> None:
    section(f"the single catalog writer alone: {rows:,} rows of {DIM}-d vectors, computed beforehand")
    for chunk in (32, 256):
        with_index = _commit_rate(work / f"writer-{chunk}", rows, chunk, index=True)
        alone = _commit_rate(work / f"writer-{chunk}-catalog", rows, chunk, index=False)
        figure(f"commit, chunks of {chunk}: catalog + HNSW index", with_index, "rows/s", digits=0)
        figure(f"commit, chunks of {chunk}: catalog alone", alone, "rows/s", digits=0)
        figure(f"10M photos at that rate (catalog + index, chunks of {chunk})", TEN_MILLION / with_index / 3600, "h",
               digits=2)
        figure(f"10M photos at that rate (catalog alone, chunks of {chunk})", TEN_MILLION / alone / 3600, "h",
               digits=2)
    note("the HNSW insert cost grows with the index (log n per insert, more memory traffic): a 10M index "
         "commits slower than this small one; the catalog's own rate stays near flat (one B-tree insert per row)")


def _commit_rate(home: Path, rows: int, chunk: int, *, index: bool) -> float:
    from clipfind.annindex import open_index
    from clipfind.catalog import Catalog
    from clipfind.embedding.spec import ModelSpec
    from clipfind.indexer import Indexer, IndexReport, _Plan, _Prepared
    from clipfind.scan import ScannedFile

    home.mkdir()
    catalog = Catalog(home / "catalog.sqlite3")
    catalog.bind_model("bench/none", DIM, "bench", None)
    vectors = np.random.default_rng(0).standard_normal((rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    thumb = bytes(THUMB_BYTES)
    indexer = Indexer(home, ModelSpec("bench", None), lambda: None)  # type: ignore[arg-type,return-value]
    vector_index, _ = open_index(home / "index.bin", catalog)
    target = vector_index if index else _NoIndex()
    plan = _Plan([], {}, {}, 0)
    report = IndexReport()
    model = _Stub()
    started = time.monotonic()
    for start in range(0, rows, chunk):
        batch = []
        for i in range(start, min(start + chunk, rows)):
            item = _Prepared(ScannedFile(f"/archive/{i // 1000:05d}/IMG_{i:08d}.jpg", 3_000_000, 1_700_000_000 + i))
            item.content_hash = f"{i:064x}"
            item.width, item.height, item.thumb, item.decoded = 4000, 3000, thumb, True
            item.vector = vectors[i]
            batch.append(item)
        indexer._commit_batch(catalog, target, model, batch, plan, report)  # type: ignore[arg-type]
    seconds = time.monotonic() - started
    catalog.close()
    assert report.added == rows
    return rows / seconds


class _Stub:
    """The driver's stand-in for the workers' model: the vectors come with the rows."""

    dim = DIM
    notices: list[str] = []

    def encode_images(self, batch: Any) -> Any:
        raise AssertionError("the vectors were computed by the workers")


class _NoIndex:
    generation = 0

    def add(self, ids: Any, vectors: Any) -> None:
        pass

    def remove(self, ids: Any) -> None:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
