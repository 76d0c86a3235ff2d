"""Scale: what a library of 100k photos (1M with --full) costs to keep current and to use.

Incremental neighbour graph (clipfind/neighbours.py, issue 12 part 2). A real clipfind home
(`bench.query.fake_library`) holds N synthetic photos made as `bench.dupes.photos_with_duplicates`
makes them (clustered unit vectors, dim 512, 10% near-duplicates, 1% byte-identical copies); its
HNSW index is built and saved before the clock runs. The graph rows are the Library's, one per
content (`Catalog.one_per_content`, their vectors read whole), and the knn is the Library's index restricted to those
rows (`clipfind.neighbours.rows_only`: the index also holds the copies). Measured in one run, on
the same index:

* the full rebuild (`build_graph`, what `Library.neighbour_graph` does today on every catalog
  change) against `update_graph` after adding ADDED photos (half of them near-duplicates of
  photos already there, so they enter other photos' lists) and then after removing REMOVED;
  each update starts from the rebuilt graph of the state before it. HNSW is approximate and a
  query can answer differently once the index changed, so the share of rows that differ from the
  rebuild is reported, not asserted (rows count as differing where a neighbour differs or a
  similarity by more than 1e-5: the update's own numpy scores and hnswlib's distances may round
  the last bits differently). Two ways to update: every row's vector in memory (the new photos
  scored exactly against every row; it needs the full read measured first) and, as the wiring
  proposes above EXACT_LIMIT, vectors fetched from the index for the rows asked again only, the
  rows a new photo enters looked for among its REVERSE_K nearest (`reverse_k`);
* the rest of the proposed `Library.neighbour_graph` path: reading the rows (every vector, or the
  ids and content hashes alone), loading and saving the graph file;
* the same at EXACT_LIMIT photos with the Library's exact search, where the update must equal the
  rebuild: the same neighbours with the same similarities, up to float32 rounding (exact_search's
  matrix product rounds the last bit differently as the library's size changes, so two full builds
  of one unchanged row differ that much too, and neighbours within that rounding may swap places).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from bench import common
from bench.dupes import NEAR_COSINE, perturb, photos_with_duplicates
from bench.query import DIM, fake_library, machine_note
from clipfind.annindex import exact_search
from clipfind.dupes import KnnFn, NeighbourGraph, build_graph
from clipfind.fingerprint import SIDE
from clipfind.library import NEIGHBOURS_K, Library, _load_graph, _save_graph
from clipfind.neighbours import rows_only, update_graph
from clipfind.search import EXACT_LIMIT

PHOTOS, FULL_PHOTOS = 100_000, 1_000_000
ADDED, REMOVED = 100, 100
UPDATE_TARGET_S = 2.0  # issue 12: after adding 100 photos at 100k, Duplicates ready in <= 2 s
REVERSE_K = 256  # how far a new photo's own answer is searched for the rows it enters (1M path)


class Counted:
    """A knn that counts the queries it answers."""

    def __init__(self, knn: KnnFn) -> None:
        self.knn, self.queries = knn, 0

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.queries += len(queries)
        return self.knn(queries, k)


def new_photos(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` photos to add: half near-duplicates of photos already there, half new clustered ones."""
    rng = np.random.default_rng(seed)
    near = count // 2
    sources = vectors[rng.choice(len(vectors), near, replace=False)]
    out = np.concatenate([perturb(sources, rng.uniform(*NEAR_COSINE, near), rng),
                          common.clustered_vectors(count - near, DIM, seed=seed + 1)])
    return out.astype(np.float32)


def differing_rows(a: NeighbourGraph, b: NeighbourGraph, atol: float) -> int:
    """Rows that list other photos, or the same photos with a similarity more than atol apart. Two
    photos whose similarities are within rounding may come in either order: exact_search's float32
    matrix product rounds the last bit differently as the library's size changes, so two full
    builds of one row disagree that much too (an unchanged row keeps the old build's rounding)."""
    assert np.array_equal(a.ids, b.ids)
    order_a, order_b = np.argsort(a.neighbours, axis=1), np.argsort(b.neighbours, axis=1)
    nb_a, nb_b = np.take_along_axis(a.neighbours, order_a, 1), np.take_along_axis(b.neighbours, order_b, 1)
    sm_a, sm_b = np.take_along_axis(a.similarities, order_a, 1), np.take_along_axis(b.similarities, order_b, 1)
    rows = (nb_a != nb_b).any(axis=1)
    finite = np.isfinite(sm_a) & np.isfinite(sm_b)
    rows |= (np.where(finite, np.abs(sm_a - sm_b), 0.0) > atol).any(axis=1)
    rows |= (np.isfinite(sm_a) != np.isfinite(sm_b)).any(axis=1)
    return int(rows.sum())


Update = Callable[[NeighbourGraph, np.ndarray, np.ndarray, np.ndarray, KnnFn], NeighbourGraph]


def compare_step(label: str, old: NeighbourGraph, ids: np.ndarray, vectors: np.ndarray, changed: np.ndarray,
                 knn_for: Callable[[np.ndarray, np.ndarray], KnnFn], updates: dict[str, Update],
                 exact: bool) -> NeighbourGraph:
    """Time the rebuild and each way of updating for one step, on the same knn; report how they differ."""
    with common.timer() as full:
        rebuilt = build_graph(ids, vectors, knn_for(ids, vectors), NEIGHBOURS_K)
    common.figure(f"{label}: full rebuild (build_graph)", full(), "s")
    for name, update in updates.items():
        knn = Counted(knn_for(ids, vectors))
        with common.timer() as incremental:
            updated = update(old, ids, vectors, changed, knn)
        met = incremental() <= UPDATE_TARGET_S if not exact else None
        common.figure(f"{label}: {name}", incremental(), "s",
                      target=f"<= {UPDATE_TARGET_S:.0f} s" if not exact else None, met=met, digits=3)
        common.figure(f"{label}:   speed-up over the rebuild", full() / incremental(), "x")
        common.figure(f"{label}:   rows asked of the index", knn.queries)
        if exact:
            differ = differing_rows(updated, rebuilt, atol=1e-6)
            common.figure(f"{label}:   rows differing from the rebuild (beyond rounding)", differ, target="0",
                          met=differ == 0)
            bitwise = int(((updated.neighbours != rebuilt.neighbours).any(axis=1)
                           | (updated.similarities != rebuilt.similarities).any(axis=1)).sum())
            common.figure(f"{label}:     bit for bit, float32 rounding included", bitwise)
        else:
            differ = differing_rows(updated, rebuilt, atol=1e-5)
            common.figure(f"{label}:   rows differing from the rebuild", 100 * differ / len(ids), "%", digits=3)
            apart = int((updated.neighbours != rebuilt.neighbours).any(axis=1).sum())
            common.figure(f"{label}:     in neighbours (not similarity rounding)", 100 * apart / len(ids), "%",
                          digits=3)
    return rebuilt


def exact_update(old: NeighbourGraph, ids: np.ndarray, vectors: np.ndarray, changed: np.ndarray,
                 knn: KnnFn) -> NeighbourGraph:
    return update_graph(old, ids, vectors, changed, knn)


def hnsw_steps(n: int, seed: int, reverse_k: int = REVERSE_K) -> None:
    common.section(f"incremental neighbour graph: {n:,} photos, HNSW (the Library's path above "
                   f"{EXACT_LIMIT:,}), k={NEIGHBOURS_K}")
    photos = photos_with_duplicates(n, seed=seed)
    with TemporaryDirectory(prefix="clipfind-bench-scale-") as tmp:
        home = Path(tmp)
        library, _ = fake_library(home, photos.vectors, photos.hashes)
        try:
            with common.timer() as read:
                generation, ids = library.catalog.generation, library.catalog.one_per_content()
                vectors = library._vectors_of_rows(ids)
            common.figure("read every graph row's vector (Library._vectors_of_rows)", read(), "s", digits=2)
            with common.timer() as read_ids:
                embedded = library.catalog.embedded_ids()
                hashes = {p.id: p.content_hash for p in library.catalog.photos()}
            common.figure("  the ids and hashes alone (Catalog.embedded_ids, photos)", read_ids(), "s", digits=2)
            assert len(embedded) == len(hashes)
            index = library.index()
            common.note(f"{len(ids):,} graph rows, {len(index) - len(ids):,} byte-identical copies in the index")

            def knn_for(rows: np.ndarray, _vectors: np.ndarray) -> KnnFn:
                return rows_only(index.search, rows)

            def reverse_update(old: NeighbourGraph, rows: np.ndarray, _vectors: np.ndarray, changed: np.ndarray,
                               knn: KnnFn) -> NeighbourGraph:
                return update_graph(old, rows, index.vectors_of, changed, knn, reverse_k=reverse_k)

            updates = {"update_graph, every vector in memory (exact scoring)": exact_update,
                       f"update_graph, vectors fetched, reverse_k={reverse_k}": reverse_update}
            with common.timer() as first:
                graph = build_graph(ids, vectors, knn_for(ids, vectors), NEIGHBOURS_K)
            common.figure("full build of the starting graph (build_graph)", first(), "s")
            path = home / "bench-graph.npz"
            with common.timer() as save:
                _save_graph(path, graph, generation, "bench")
            with common.timer() as load:
                loaded = _load_graph(path, generation, "bench")
            assert loaded is not None
            common.figure("graph file save", save(), "s", digits=3)
            common.figure("graph file load", load(), "s", digits=3)

            added = new_photos(vectors, ADDED, seed + 10)
            added_ids = np.arange(int(ids.max()) + 1, int(ids.max()) + 1 + ADDED, dtype=np.int64)
            index.add(added_ids, added)  # in memory only: nothing is saved to the home
            ids1, vectors1 = np.concatenate([ids, added_ids]), np.concatenate([vectors, added])
            rebuilt = compare_step(f"+{ADDED} photos", graph, ids1, vectors1, added_ids, knn_for, updates, exact=False)

            rng = np.random.default_rng(seed + 20)
            keep = np.ones(len(ids1), dtype=bool)
            keep[rng.choice(len(ids1), REMOVED, replace=False)] = False
            index.remove(ids1[~keep])
            compare_step(f"-{REMOVED} photos", rebuilt, ids1[keep], vectors1[keep], np.zeros(0, np.int64), knn_for,
                         updates, exact=False)
        finally:
            library.close()


def exact_steps(n: int, seed: int) -> None:
    common.section(f"incremental neighbour graph: {n:,} photos, exact search (the Library's path up to "
                   f"{EXACT_LIMIT:,}), k={NEIGHBOURS_K}")
    photos = photos_with_duplicates(n, seed=seed)
    _, first = np.unique(np.asarray(photos.hashes), return_index=True)
    rows = np.sort(first)  # one per content, the lowest id, as the Library keeps them
    ids, vectors = rows.astype(np.int64) + 1, photos.vectors[rows]

    def knn_for(rows_ids: np.ndarray, rows_vectors: np.ndarray) -> KnnFn:
        return lambda q, k: exact_search(rows_ids, rows_vectors, q, k)

    with common.timer() as first_build:
        graph = build_graph(ids, vectors, knn_for(ids, vectors), NEIGHBOURS_K)
    common.figure("full build of the starting graph (build_graph)", first_build(), "s")
    added = new_photos(vectors, ADDED, seed + 10)
    added_ids = np.arange(int(ids.max()) + 1, int(ids.max()) + 1 + ADDED, dtype=np.int64)
    ids1, vectors1 = np.concatenate([ids, added_ids]), np.concatenate([vectors, added])
    updates = {"update_graph (exact scoring)": exact_update}
    rebuilt = compare_step(f"+{ADDED} photos", graph, ids1, vectors1, added_ids, knn_for, updates, exact=True)
    rng = np.random.default_rng(seed + 20)
    keep = np.ones(len(ids1), dtype=bool)
    keep[rng.choice(len(ids1), REMOVED, replace=False)] = False
    compare_step(f"-{REMOVED} photos", rebuilt, ids1[keep], vectors1[keep], np.zeros(0, np.int64), knn_for,
                 updates, exact=True)


def add_photos(library: Library, home: Path, count: int, seed: int) -> None:
    """``count`` photos written as an index run leaves them: catalog rows with a vector and a
    fingerprint (half re-saved copies of photos already there, half new pictures), the index
    brought up to date and saved."""
    from bench.query import SPEC, photo_path
    from clipfind.annindex import sync_index
    from clipfind.home import INDEX_FILE

    rng = np.random.default_rng(seed)
    catalog = library.catalog
    ids, vectors = catalog.vectors()
    near = rng.choice(len(ids), count // 2, replace=False)
    thumbs = catalog.thumbs(ids[near]).astype(np.int16) + rng.integers(-3, 4, (len(near), SIDE, SIDE))
    fresh = catalog.thumbs(ids[rng.choice(len(ids), count - len(near), replace=False)])[:, ::-1]  # flipped: new
    pictures = np.concatenate([thumbs.clip(0, 255).astype(np.uint8), fresh])
    added = new_photos(vectors, count, seed + 1)
    added[: len(near)] = perturb(vectors[near], rng.uniform(*NEAR_COSINE, len(near)), rng)
    with catalog.transaction():
        for i in range(count):
            catalog.put_photo(photo_path(home, 10_000_000 + i), 1_000_000 + i, 1_700_000_000 * 10**9, f"added-{seed}-{i}",
                              4032, 3024, None, added[i], thumb=pictures[i].tobytes())
    index = library.index()
    sync_index(index, catalog)
    index.save(home / INDEX_FILE, SPEC.identity)


def ready_steps(n: int, seed: int) -> None:
    """End to end, what the user waits for: Duplicates ready after ADDED photos came in, in the app
    (its Library open since before) and in a fresh process (`clipfind dupes`), from the same saved
    state (the home copied right after the change); the first open from scratch in the same run."""
    import shutil

    import clipfind.dupes as dupes
    from bench.gui_latency import fingerprint_all
    from bench.query import SPEC

    common.section(f"Duplicates ready after +{ADDED} photos: {n:,} photos with fingerprints (Library.duplicates)")
    photos = photos_with_duplicates(n, seed=seed)
    with TemporaryDirectory(prefix="clipfind-bench-ready-") as tmp:
        home, copy = Path(tmp) / "home", Path(tmp) / "copy"
        home.mkdir()
        library, _ = fake_library(home, photos.vectors, photos.hashes)
        try:
            fingerprint_all(library.catalog, n)
            cap, dupes.CROP_MAX_FITS = dupes.CROP_MAX_FITS, 10**9  # open a while: every crop candidate checked
            try:
                with common.timer() as first:
                    library.duplicates(0.95)
            finally:
                dupes.CROP_MAX_FITS = cap
            common.figure("first open, nothing saved (graph, same-photo search, every crop check)", first(), "s")
            add_photos(library, home, ADDED, seed + 30)
            shutil.copytree(home, copy)
            app, groups = ready_after(f"app: Duplicates ready after +{ADDED} (Library open since before)",
                                      lambda: library)
            common.figure("  groups", len(groups))
        finally:
            library.close()
        _, again = ready_after(f"fresh process: Duplicates ready after +{ADDED} (saved graph and search, index "
                               "loaded)", lambda: Library(copy, SPEC.name, "none"), close=True)
        common.figure("  same groups as the app", int(again == groups))
        common.figure("first open from scratch against the app's update", first() / app, "x")


def ready_after(label: str, open_library: Callable[[], Library], close: bool = False) -> tuple[float, list]:
    """Seconds until Duplicates are ready, in steps (the graph, the same-photo search, the rest), and
    the groups."""
    with common.timer() as total:
        library = open_library()
        try:
            with common.timer() as graph:
                library.neighbour_graph()
            with common.timer() as same:
                library._same_search()
            with common.timer() as rest:
                groups = library.duplicates(0.95)
        finally:
            if close:
                library.close()
    common.figure(label, total(), "s", target=f"<= {UPDATE_TARGET_S:.0f} s", met=total() <= UPDATE_TARGET_S, digits=2)
    common.figure("  neighbour graph brought up to date (index load included)", graph(), "s", digits=2)
    common.figure("  same-photo search brought up to date", same(), "s", digits=2)
    common.figure("  the rest (files read, crop checks, groups)", rest(), "s", digits=2)
    return total(), groups


STATUS_TARGET_S, APP_START_TARGET_S, DUPES_OPEN_TARGET_S, APP_MEMORY_TARGET_GIB = 1.0, 2.0, 3.0, 3.0
LAUNCH_PEAK = """
import json, resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20))
"""
# Run in a fresh interpreter: the resident memory after each step the app takes at start, in order.
MEMORY_STEPS = """
import json, sys
def rss():
    with open("/proc/self/status") as f:
        d = dict(line.split(":", 1) for line in f)
    return int(d["VmHWM"].split()[0]) / 2**20
from clipfind.library import Library
steps = {"import clipfind.library": rss()}
lib = Library(sys.argv[1], None, None)
lib.prepare()
steps["prepare (torch import, index load)"] = rss()
lib.load()
steps["load (weights, runtime, index checks)"] = rss()
lib.status()
steps["status"] = rss()
print(json.dumps(steps))
"""


def use_steps(n: int, seed: int, keep: Path | None = None) -> None:
    """Part 3 of issue 12, what a library of n photos costs to use: `clipfind status` and the app's
    start as fresh processes, warm text and image search (bench.query's measures), Duplicates opened
    by a fresh Library with the graph stored, and the app's peak memory with the library open.

    ``keep``: a folder where the home is made and kept, or taken again when a run with the same n
    and seed made it (a million photos take 15-25 minutes to set up)."""
    from bench.query import SPEC, measure_image_queries, measure_text_queries, photo_path
    from bench.startup import BIN, app_start, child_env, wall

    common.section(f"a library of {n:,} photos in use (vectors through the catalog, no fingerprints)")
    photos = photos_with_duplicates(n, seed=seed)
    made = None if keep is None else keep / f"made-{n}-{seed}"
    with TemporaryDirectory(prefix="clipfind-bench-use-") as tmp:
        home = (Path(tmp) if keep is None else keep) / "home"
        reused = made is not None and made.exists()
        if reused:
            common.note(f"setup, not timed: the home made before in {home}")
            library, paths = Library(home, SPEC.name, "none"), [photo_path(home, i) for i in range(n)]
            library.index()
        else:
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            library, paths = fake_library(home, photos.vectors, photos.hashes)
        try:
            size = sum(f.stat().st_size for f in home.iterdir() if f.is_file())
            common.figure("home on disk per photo (catalog and index)", size / n, "B", digits=0)
            env = child_env(Path(tmp) / "config")
            status = [wall([str(BIN / "clipfind"), "--home", str(home), "status"], env) for _ in range(3)]
            common.figure("`clipfind status`, fresh process, median of 3", common.percentile(status, 50), "s",
                          target=f"<= {STATUS_TARGET_S:g} s", met=common.percentile(status, 50) <= STATUS_TARGET_S,
                          digits=2)
            measure_image_queries(library, paths, photos.vectors, 300, seed)
            measure_text_queries(library, 100)
            with common.timer() as build:
                library.neighbour_graph()
            if not reused:
                common.figure("neighbour graph built and stored (once per library)", build(), "s")
        finally:
            library.close()
        if made is not None:
            made.touch()
        with common.timer() as opened:
            fresh = Library(home, SPEC.name, "none")
            try:
                fresh.duplicates(0.95)
            finally:
                fresh.close()
        common.figure("Duplicates opened by a fresh Library, graph stored", opened(), "s",
                      target=f"<= {DUPES_OPEN_TARGET_S:g} s", met=opened() <= DUPES_OPEN_TARGET_S, digits=2)
        probe = Path(tmp) / "probe"
        # One discarded launch first (the OS file cache warm, as for a user who has run clipfind before).
        starts = [app_start(["--home", str(home)], env, probe)[0] for _ in range(4)][1:]
        window = common.percentile(starts, 50)
        common.figure("app start to a usable window, median of 3", window, "s", target=f"<= {APP_START_TARGET_S:g} s",
                      met=window <= APP_START_TARGET_S, digits=2)
        common.figure("  slowest", max(starts), "s", digits=2)
        # Not this process's RUSAGE_CHILDREN: a child forked from here starts with this process's pages
        # (the library of n photos) counted in its own high-water mark, even after exec. The app's
        # memory is measured in a wrapper process whose only child is the app.
        import json

        from bench.startup import run

        # A later launch alone, in a wrapper process whose only child is the app.
        probe.unlink(missing_ok=True)
        peak = json.loads(run([sys.executable, "-c", LAUNCH_PEAK, str(BIN / "clipfind-gui"), "--home", str(home)],
                              {**env, "CLIPFIND_STARTUP_PROBE": str(probe)}).stdout.splitlines()[-1])
        common.figure("app peak memory, a later launch: library open, model loaded", peak, "GiB",
                      target=f"<= {APP_MEMORY_TARGET_GIB:g} GiB", met=peak <= APP_MEMORY_TARGET_GIB, digits=2)
        if sys.platform.startswith("linux"):  # where it goes: the Library's start steps alone, no Qt
            steps = json.loads(run([sys.executable, "-c", MEMORY_STEPS, str(home)], env).stdout.splitlines()[-1])
            for step, gib in steps.items():
                common.figure(f"  peak after {step}", gib, "GiB", digits=2)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=None, help=f"how many (default {PHOTOS:,}, --full {FULL_PHOTOS:,})")
    p.add_argument("--reverse-k", type=int, default=REVERSE_K, help=f"reverse_k to measure (default {REVERSE_K})")
    p.add_argument("--skip-exact", action="store_true", help=f"leave out the exact-search check at {EXACT_LIMIT:,}")
    p.add_argument("--skip-ready", action="store_true", help="leave out Duplicates ready end to end")
    p.add_argument("--only-ready", action="store_true", help="only Duplicates ready end to end")
    p.add_argument("--only-use", action="store_true", help="only the library in use: status, search, "
                   "Duplicates open, app start and memory (part 3)")
    p.add_argument("--keep-home", type=Path, metavar="DIR", help="with --only-use: make the home in DIR and "
                   "keep it, or take the one a run with the same size made there")
    p.add_argument("--watch-runs", type=int, default=10, help="photos written for the watch latency (default 10)")
    args = p.parse_args(argv)
    n = args.photos or (FULL_PHOTOS if args.full else PHOTOS)
    machine_note()
    if args.only_use:
        use_steps(n, seed=6, keep=args.keep_home)
        return 0
    if not args.skip_ready:
        ready_steps(n, seed=5)
    if args.only_ready:
        return 0
    hnsw_steps(n, seed=3, reverse_k=args.reverse_k)
    if not args.skip_exact:
        exact_steps(min(n, EXACT_LIMIT), seed=4)
    watch_steps(args.watch_runs)
    return 0


def watch_steps(runs: int) -> None:
    """Real files on this machine: a photo written into a watched folder, until search returns it."""
    from bench.watch import watch_latency

    common.section(f"watched folders: {runs} photos written one at a time (bench.watch, tiny model)")
    seconds = watch_latency(runs)
    common.figure("watch latency p50 (write finished -> found by search)", common.percentile(seconds, 50), "s",
                  target="<= 5", met=common.percentile(seconds, 50) <= 5)
    common.figure("watch latency, slowest", max(seconds), "s", target="<= 5", met=max(seconds) <= 5)


if __name__ == "__main__":
    sys.exit(main())
