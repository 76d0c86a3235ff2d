"""Query latency, warm and in-process, over a real clipfind home of synthetic photos.

A temporary home gets a real catalog filled with fake photo rows (paths that need not exist)
carrying clustered unit vectors (`common.clustered_vectors`, dim 512 like ViT-B-32), written the
way the indexer commits them; the index is built from the catalog and saved as the indexer ends a
run. A Library opened on that home then answers queries through the calls the CLI makes
(`build_query` + `Library.search`, k=20). Catalog fill, index build and load, and the model load
happen before any clock runs.

* image query ("more like this photo", already indexed): the stored vector is read from the
  catalog, so no model runs; the bare HNSW search of the same vectors is the baseline.
* text query: ViT-B-32 with random weights encodes the phrase; the encoder alone is timed
  interleaved with the queries, so its share of a query is measured under the same load.
* memory: the peak of reading every vector from the catalog (`Catalog.vectors`), per photo.

`fake_library` and `latencies_ms` are shared with bench/dupes.py and bench/ann.py.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TypeVar

import numpy as np

from bench import common
from clipfind.annindex import build_index
from clipfind.catalog import Catalog
from clipfind.embedding.spec import ModelSpec
from clipfind.home import CATALOG_FILE, INDEX_FILE
from clipfind.library import Library
from clipfind.search import Searcher, build_query

SPEC = ModelSpec("ViT-B-32", None)  # what `--model ViT-B-32 --pretrained none` resolves to
DIM = 512
K = 20  # the CLI's default -k
COMMIT_ROWS = 2_000  # rows per catalog transaction, like an indexer batch
P50_TARGET_MS = 5.0
PHOTOS = 100_000  # builds in about a minute on two idle cores

T = TypeVar("T")


def photo_path(home: Path, i: int) -> str:
    """Fake but plausible absolute path of photo number i (no file is created)."""
    return str(home / "photos" / f"{2010 + i // 20_000}" / f"{i // 500:05d}" / f"IMG_{i:07d}.jpg")


def fake_library(
    home: Path, vectors: np.ndarray, hashes: Sequence[str] | None = None, seed: int = 0
) -> tuple[Library, list[str]]:
    """A Library on `home` whose catalog holds one fake photo per row of `vectors`.

    Rows go in through `Catalog.put_photo` in transactions of COMMIT_ROWS (the indexer's path),
    the index is built from the catalog with `build_index` and saved where the Library looks for
    it, as the indexer leaves it. `hashes[i]` is photo i's content hash (equal hashes mean
    byte-identical copies, which must carry equal vectors); by default every photo is unique.
    Sizes and pixel counts vary, so the keeper rule has something to decide. Returns the library
    (index loaded, no model) and the photo paths.
    """
    n = len(vectors)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(800_000, 9_000_000, n).tolist()
    long_side = rng.choice([2048, 3024, 4032, 4624], n).tolist()
    if hashes is None:
        hashes = [hashlib.blake2b(b"%d" % i, digest_size=16).hexdigest() for i in range(n)]
    paths = [photo_path(home, i) for i in range(n)]
    mtime0 = 1_600_000_000 * 10**9
    with common.timer() as fill:
        catalog = Catalog(home / CATALOG_FILE)
        catalog.bind_model(SPEC.identity, DIM, SPEC.name, SPEC.pretrained)
        for start in range(0, n, COMMIT_ROWS):
            with catalog.transaction():
                for i in range(start, min(n, start + COMMIT_ROWS)):
                    side = long_side[i]
                    taken = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mtime0 // 10**9 + 600 * i))
                    catalog.put_photo(
                        paths[i], sizes[i], mtime0 + i, hashes[i], side, side * 3 // 4, taken, vectors[i]
                    )
    with common.timer() as build:
        index = build_index(catalog, DIM)
        index.save(home / INDEX_FILE, SPEC.identity)
    catalog.close()
    del index
    with common.timer() as load:
        library = Library(home, SPEC.name, "none")
        library.index()
    common.note(
        f"setup, not timed below: {n:,} catalog rows in {fill():.1f} s, index built and saved in {build():.1f} s, "
        f"loaded in {load():.2f} s"
    )
    return library, paths


def machine_note() -> None:
    """Say how busy the machine is: other work on the same cores makes every timing noisier."""
    common.note(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")


def interleaved_ms(
    runs: Mapping[str, Callable[[T], object]], items: Sequence[T], warmup: int = 5
) -> dict[str, list[float]]:
    """Wall time in ms of each `run(item)`, the runs taking turns on every item so that all of them
    see the same machine load (the baseline and what it is held against); a few warm-up items first."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for item in items[:warmup]:
        for run in runs.values():
            run(item)
    for item in items:
        for name, run in runs.items():
            start = time.perf_counter()
            run(item)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def latencies_ms(run: Callable[[T], object], items: Sequence[T], warmup: int = 5) -> list[float]:
    """Wall time in ms of `run(item)` for each item, after a few untimed warm-up calls."""
    return interleaved_ms({"run": run}, items, warmup)["run"]


def phrases(count: int) -> list[str]:
    """Everyday search phrases, distinct up to 208 (then repeated)."""
    things = ["dog", "beach", "birthday cake", "mountain lake", "old car", "wedding", "snow", "city at night",
              "grandmother", "red bicycle", "sunset", "kitchen", "forest path", "concert", "boat", "cat on a sofa"]
    moods = ["a photo of a", "a blurry", "a sunny", "an old", "a close-up of a", "a wide shot of a", "my", "the",
             "a black and white", "a rainy", "two people and a", "a child with a", "a"]
    combos = [f"{m} {t}" for m, t in itertools.product(moods, things)]
    return list(itertools.islice(itertools.cycle(combos), count))


def _no_model(_: object) -> np.ndarray:
    raise AssertionError("an indexed query photo must not need the model")


def measure_image_queries(library: Library, paths: list[str], vectors: np.ndarray, count: int, seed: int) -> None:
    """Library.search as the CLI calls it, against the layers below it: Searcher.search (the same
    query without Library's per-query checks) and the bare HNSW search of the photo's vector."""
    index = library.index()
    searcher = Searcher(library.catalog, index, _no_model, _no_model)
    picks = np.random.default_rng(seed).choice(len(paths), count, replace=False).tolist()
    times = interleaved_ms(
        {
            "library": lambda i: library.search(build_query(images=[paths[i]]), K),
            "searcher": lambda i: searcher.search(build_query(images=[paths[i]]), K),
            "hnsw": lambda i: index.search(vectors[i], K + 1),
            "count": lambda i: library.catalog.has_vectors(),
        },
        picks,
    )
    p50 = {name: common.percentile(t, 50) for name, t in times.items()}
    met = p50["library"] <= P50_TARGET_MS
    common.figure("image query p50 (Library.search)", p50["library"], "ms", target=f"<= {P50_TARGET_MS:g} ms",
                  met=met, digits=2)
    common.figure("  of which catalog.has_vectors() p50", p50["count"], "ms", digits=3)
    common.figure("image query p95", common.percentile(times["library"], 95), "ms", digits=2)
    common.figure("image query rate (1 thread, back to back)", 1000 / float(np.mean(times["library"])), "q/s")
    common.figure("same query via Searcher.search p50", p50["searcher"], "ms", digits=2)
    common.figure("baseline: bare HNSW search p50", p50["hnsw"], "ms", digits=2)
    common.figure("image query time outside the HNSW search", 100 * (1 - p50["hnsw"] / p50["library"]), "%")


def measure_vector_read(library: Library) -> None:
    """Peak memory (Python and numpy, by tracemalloc) of reading every vector from the catalog, which
    `build_index` (an index missing or damaged) and every neighbour-graph rebuild do; not a latency,
    but it bounds how large a catalog fits in memory."""
    tracemalloc.start()
    try:
        ids, vectors = library.catalog.vectors()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    common.figure("catalog.vectors() peak memory per photo", peak / len(ids), "B", digits=0)
    common.figure("  relative to the float32 vectors it returns", peak / vectors.nbytes, "x", digits=2)


def measure_text_queries(library: Library, count: int) -> None:
    """Text queries through Library.search, with the encoder alone timed in turn on the same phrases."""
    with warnings.catch_warnings(), common.timer() as load:
        warnings.simplefilter("ignore")  # "random weights: search results are meaningless"
        logging.disable(logging.WARNING)  # open_clip says the same through logging
        try:
            model = library.model()
        finally:
            logging.disable(logging.NOTSET)
    common.note(f"setup, not timed: {SPEC.name} (random weights) loaded in {load():.1f} s")
    times = interleaved_ms(
        {
            "query": lambda p: library.search(build_query(texts=[p]), K),
            "encoder": lambda p: model.encode_texts([p]),
        },
        phrases(count),
        warmup=3,
    )
    p50, encoder50 = common.percentile(times["query"], 50), common.percentile(times["encoder"], 50)
    common.figure("text query p50 (Library.search)", p50, "ms", digits=2)
    common.figure("text query p95", common.percentile(times["query"], 95), "ms", digits=2)
    common.figure("text encoder alone p50", encoder50, "ms", digits=2)
    common.figure("text encoder share of a text query (p50)", 100 * encoder50 / p50, "%")


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=PHOTOS, help=f"catalog size (default {PHOTOS:,}, also with --full)")
    args = p.parse_args(argv)
    image_queries, text_queries = (1_000, 300) if args.full else (300, 100)
    machine_note()
    common.section(f"query latency, warm, in-process: {args.photos:,} photos, k={K}, "
                   f"{image_queries} image and {text_queries} text queries")
    vectors = common.clustered_vectors(args.photos, DIM, seed=1)
    with TemporaryDirectory(prefix="clipfind-bench-query-") as tmp:
        library, paths = fake_library(Path(tmp), vectors)
        try:
            measure_image_queries(library, paths, vectors, image_queries, seed=2)
            measure_vector_read(library)
            measure_text_queries(library, text_queries)
        finally:
            library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
