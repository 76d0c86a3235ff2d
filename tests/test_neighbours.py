"""Tests for clipfind.neighbours: an updated neighbour graph equals a rebuilt one.

Vectors here have coordinates on a coarse dyadic grid (multiples of 1/grid, grid a power of two),
so every inner product is exact in float32 whatever order a matrix product sums in: the update's
own scores and the knn's agree bit for bit, and equal similarities (ties) are common and exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipfind.dupes import NeighbourGraph, build_graph, find_duplicates
from clipfind.neighbours import rows_only, update_graph
from clipfind.records import PhotoInfo

THRESHOLDS = (0.3, 0.7, 0.9, 1.0)


def grid_vectors(rng: np.random.Generator, n: int, dim: int, grid: int) -> np.ndarray:
    """Near-unit vectors rounded to multiples of 1/grid (never zero: the largest coordinate of a
    unit vector is at least 1/sqrt(dim) > 1/grid/2 for the grids used)."""
    v = rng.standard_normal((n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return (np.round(v * grid) / grid).astype(np.float32)


class ExactKnn:
    """Exact top-k over the current rows in the total order (-similarity, id), counting the
    queries it answers (so a test can see what was asked again)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids, self.vectors = np.asarray(ids, np.int64), np.asarray(vectors, np.float32)
        self.queries = 0

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.queries += len(queries)
        sims = np.asarray(queries, np.float32) @ self.vectors.T
        order = np.lexsort((np.broadcast_to(self.ids, sims.shape), -sims), axis=-1)[:, :k]
        return self.ids[order], np.take_along_axis(sims, order, axis=1)


def assert_same(got: NeighbourGraph, want: NeighbourGraph) -> None:
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.neighbours, want.neighbours)
    np.testing.assert_array_equal(got.similarities, want.similarities)
    assert got.neighbours.dtype == want.neighbours.dtype and got.similarities.dtype == want.similarities.dtype


def photos_of(ids: np.ndarray) -> list[PhotoInfo]:
    return [PhotoInfo(id=i, path=f"/p/{i:04d}.jpg", size=1000 + (i * 7919) % 500, mtime_ns=0, content_hash=f"h{i}",
                      width=100, height=100) for i in ids.tolist()]


class State:
    """The photos now: id -> vector, ids handed out in increasing order like the catalog's."""

    def __init__(self, rng: np.random.Generator, dim: int, grid: int) -> None:
        self.rng, self.dim, self.grid = rng, dim, grid
        self.vectors: dict[int, np.ndarray] = {}
        self.next_id = 1

    def add(self, count: int, twin: bool = False) -> set[int]:
        new = grid_vectors(self.rng, count, self.dim, self.grid)
        if twin and self.vectors:  # a copy of a photo already there: exact ties
            pool = list(self.vectors.values())
            new = np.stack([pool[self.rng.integers(len(pool))] for _ in range(count)])
        for v in new:
            self.vectors[self.next_id] = v
            self.next_id += 1
        return set()

    def remove(self, count: int) -> set[int]:
        present = sorted(self.vectors)
        for i in self.rng.permutation(present)[:count].tolist():
            del self.vectors[i]
        return set()

    def change(self, count: int) -> set[int]:
        present = sorted(self.vectors)
        chosen = self.rng.permutation(present)[:count].tolist()
        for i, v in zip(chosen, grid_vectors(self.rng, len(chosen), self.dim, self.grid)):
            self.vectors[i] = v
        return set(chosen) | {self.next_id + 1000}  # plus an id that is no row: ignored

    def arrays(self, shuffle: bool) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(sorted(self.vectors), dtype=np.int64)
        if shuffle:
            ids = self.rng.permutation(ids)
        vectors = np.stack([self.vectors[i] for i in ids.tolist()]) if ids.size else np.zeros((0, self.dim), np.float32)
        return ids, vectors.astype(np.float32)


def fetcher(table: dict[int, np.ndarray]):
    return lambda wanted: np.stack([table[i] for i in wanted.tolist()])


OPS = st.lists(st.tuples(st.sampled_from(["add", "twin", "remove", "change", "mixed"]), st.integers(1, 7)),
               min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), start=st.integers(0, 20), k=st.sampled_from([1, 2, 4, 40]),
       dim=st.integers(2, 5), grid=st.sampled_from([2, 4, 64]), batch=st.sampled_from([3, 4096]),
       shuffle=st.booleans(), ops=OPS, mode=st.sampled_from(["exact", "reverse", "fetched"]))
def test_updates_equal_rebuilds(seed, start, k, dim, grid, batch, shuffle, ops, mode):
    # reverse: the rows a fresh photo enters are found from its own answer, here wide enough to be
    # exact; fetched: the same, the vectors asked for by id rather than handed over.
    state = State(np.random.default_rng(seed), dim, grid)
    state.add(start)
    ids, vectors = state.arrays(shuffle)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), k)
    for op, count in ops:
        if op == "mixed":
            changed = state.change(count // 2) | state.remove(count - count // 2) | state.add(count)
        else:
            changed = getattr(state, "add" if op == "twin" else op)(count, *([True] if op == "twin" else []))
        ids, vectors = state.arrays(shuffle)
        knn = ExactKnn(ids, vectors)
        given_vectors = vectors
        if mode == "fetched":
            given_vectors = fetcher(dict(zip(ids.tolist(), vectors)))
        reverse_k = None if mode == "exact" else 10_000
        # chained: errors would pile up
        graph = update_graph(graph, ids, given_vectors, changed, knn, batch=batch, reverse_k=reverse_k)
        rebuilt = build_graph(ids, vectors, ExactKnn(ids, vectors), k)
        assert_same(graph, rebuilt)
        photos = photos_of(ids)
        for t in THRESHOLDS:
            assert find_duplicates(photos, graph, t) == find_duplicates(photos, rebuilt, t)


def line(*cosines: float) -> np.ndarray:
    """2-D unit vectors at these angles' cosines to (1, 0), so similarities to photo 0 are known."""
    angles = np.arccos(np.asarray(cosines, np.float64))
    return np.column_stack([np.cos(angles), np.sin(angles)]).astype(np.float32)


def test_a_row_that_lost_an_entry_is_refilled_from_the_photos_it_never_listed():
    # Photo 1 lists 2 (0.9) and 3 (0.8), k=2; 4 (0.7) is not listed. Removing 2 and adding 5 at 0.6:
    # the row must take 4, which only a new query finds (a merge alone would take 5).
    ids = np.array([1, 2, 3, 4], np.int64)
    vectors = line(1.0, 0.9, 0.8, 0.7)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 2)
    assert graph.neighbours[0].tolist() == [2, 3]
    ids2, vectors2 = np.array([1, 3, 4, 5], np.int64), np.concatenate([vectors[[0, 2, 3]], line(0.6)])
    knn = ExactKnn(ids2, vectors2)
    got = update_graph(graph, ids2, vectors2, (), knn)
    assert got.neighbours[0].tolist()[:1] == [3]
    assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 2))
    assert knn.queries < len(ids2)  # not a rebuild: only the new photo and the rows that fell short


def test_a_tie_at_the_bound_is_decided_by_id():
    # Four copies of one vector; the row of 10 lists 11 and 12 (k=2), 13 ties with them but ranks last
    # by id. A photo put back under a lower id (a restore from the trash) ties too and must enter
    # before them; one with a higher id ties and must stay out.
    v = np.array([[0.5, 0.5]], np.float32)
    ids = np.array([10, 11, 12, 13], np.int64)
    vectors = np.repeat(v, 4, axis=0)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 2)
    for new in (5, 99):
        ids2 = np.concatenate([ids, [new]])
        vectors2 = np.repeat(v, 5, axis=0)
        got = update_graph(graph, ids2, vectors2, (), ExactKnn(ids2, vectors2))
        assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 2))
    assert got.neighbours[0].tolist() == [11, 12]
    assert update_graph(graph, np.concatenate([ids, [5]]), np.repeat(v, 5, axis=0), (),
                        ExactKnn(np.concatenate([ids, [5]]), np.repeat(v, 5, axis=0))).neighbours[0].tolist() == [5, 11]


def test_short_lists_hold_everyone_and_take_every_new_photo():
    rng = np.random.default_rng(1)
    ids = np.array([1, 2, 3], np.int64)
    vectors = grid_vectors(rng, 3, 3, 64)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 5)
    assert (graph.neighbours[:, 2:] == -1).all()
    ids2 = np.array([1, 3, 4, 5], np.int64)  # 2 removed, 4 and 5 added: still fewer than k others
    vectors2 = np.concatenate([vectors[[0, 2]], grid_vectors(rng, 2, 3, 64)])
    knn = ExactKnn(ids2, vectors2)
    got = update_graph(graph, ids2, vectors2, (), knn)
    assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 5))
    assert knn.queries == 2  # the short rows were complete: merged, not asked again


def test_a_changed_vector_is_a_removal_and_an_addition():
    rng = np.random.default_rng(2)
    ids = np.arange(1, 31, dtype=np.int64)
    vectors = grid_vectors(rng, 30, 4, 64)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 4)
    vectors2 = vectors.copy()
    vectors2[7] = -vectors[7]  # photo 8 now sits somewhere else entirely
    got = update_graph(graph, ids, vectors2, [8], ExactKnn(ids, vectors2))
    assert_same(got, build_graph(ids, vectors2, ExactKnn(ids, vectors2), 4))
    unchanged = update_graph(graph, ids, vectors2, [], ExactKnn(ids, vectors2))  # not told: the old row stays
    assert not np.array_equal(unchanged.neighbours, got.neighbours)


def test_removing_everything_leaves_an_empty_graph():
    rng = np.random.default_rng(3)
    ids = np.arange(1, 9, dtype=np.int64)
    vectors = grid_vectors(rng, 8, 3, 64)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 4)
    empty_ids, empty_vectors = np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
    got = update_graph(graph, empty_ids, empty_vectors, (), ExactKnn(empty_ids, empty_vectors))
    assert got.ids.shape == (0,) and got.neighbours.shape == (0, 4) and got.similarities.shape == (0, 4)
    one = update_graph(graph, ids[:1], vectors[:1], (), ExactKnn(ids[:1], vectors[:1]))
    assert_same(one, build_graph(ids[:1], vectors[:1], ExactKnn(ids[:1], vectors[:1]), 4))
    assert one.neighbours.tolist() == [[-1, -1, -1, -1]]


def test_adding_to_an_empty_graph_is_a_build():
    rng = np.random.default_rng(4)
    empty = NeighbourGraph(np.zeros(0, np.int64), np.full((0, 3), -1, np.int64), np.full((0, 3), -np.inf, np.float32))
    ids = np.array([4, 2, 9, 7, 1], np.int64)
    vectors = grid_vectors(rng, 5, 3, 4)
    got = update_graph(empty, ids, vectors, (), ExactKnn(ids, vectors))
    assert_same(got, build_graph(ids, vectors, ExactKnn(ids, vectors), 3))


def test_adding_a_few_photos_asks_the_index_for_few_rows():
    rng = np.random.default_rng(5)
    ids = np.arange(1, 2001, dtype=np.int64)
    vectors = grid_vectors(rng, 2000, 5, 64)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 4)
    ids2 = np.concatenate([ids[10:], [3001, 3002, 3003]])  # 10 removed, 3 added
    vectors2 = np.concatenate([vectors[10:], grid_vectors(rng, 3, 5, 64)])
    knn = ExactKnn(ids2, vectors2)
    got = update_graph(graph, ids2, vectors2, (), knn)
    assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 4))
    assert 3 <= knn.queries <= 100  # the new photos and the rows that lost a listed photo, not 1,993


def test_another_k_rebuilds():
    rng = np.random.default_rng(6)
    ids = np.arange(1, 21, dtype=np.int64)
    vectors = grid_vectors(rng, 20, 3, 64)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 4)
    got = update_graph(graph, ids, vectors, (), ExactKnn(ids, vectors), k=6)
    assert_same(got, build_graph(ids, vectors, ExactKnn(ids, vectors), 6))


def test_bad_shapes_are_refused():
    ids = np.arange(3, dtype=np.int64)
    graph = build_graph(ids, np.eye(3, dtype=np.float32), ExactKnn(ids, np.eye(3, dtype=np.float32)), 2)
    with pytest.raises(ValueError):
        update_graph(graph, ids, np.eye(2, dtype=np.float32), (), ExactKnn(ids, np.eye(3, dtype=np.float32)))


def test_rows_only_drops_labels_that_are_not_rows():
    # An index holding a byte-identical copy (label 3) of photo 1, which the graph has no row for.
    index_ids = np.array([1, 2, 3, 4], np.int64)
    index_vectors = line(1.0, 0.5, 1.0, 0.2)
    rows, row_vectors = np.array([1, 2, 4], np.int64), index_vectors[[0, 1, 3]]
    knn = rows_only(ExactKnn(index_ids, index_vectors), rows, spare=1, most=1)
    got = build_graph(rows, row_vectors, knn, 2)
    assert_same(got, build_graph(rows, row_vectors, ExactKnn(rows, row_vectors), 2))
    assert 3 not in got.neighbours


def test_reverse_mode_reads_only_the_vectors_it_needs():
    rng = np.random.default_rng(7)
    ids = np.arange(1, 3001, dtype=np.int64)
    vectors = grid_vectors(rng, 3000, 5, 64)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 4)
    ids2 = np.concatenate([ids[5:], [4001, 4002]])
    vectors2 = np.concatenate([vectors[5:], grid_vectors(rng, 2, 5, 64)])
    table = dict(zip(ids2.tolist(), vectors2))
    asked: list[int] = []

    def fetch(wanted: np.ndarray) -> np.ndarray:
        asked.extend(wanted.tolist())
        return np.stack([table[i] for i in wanted.tolist()])

    got = update_graph(graph, ids2, fetch, (), ExactKnn(ids2, vectors2), reverse_k=3000)
    assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 4))
    assert 2 <= len(asked) <= 100  # the new photos and the rows refilled, not all 2,997


def test_a_narrow_reverse_search_misses_far_rows_and_the_exact_mode_does_not():
    # Photo 1 is far from everyone (its list's bound is low); a new photo 9 lands nearest to it, but
    # is not among 9's own two nearest: only a search as wide as the graph finds that 1 must list it.
    ids = np.array([1, 2, 3, 4, 5], np.int64)
    vectors = line(-1.0, 0.9, 0.95, 0.97, 0.99)
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 2)
    ids2, vectors2 = np.array([1, 2, 3, 4, 5, 9], np.int64), np.concatenate([vectors, line(0.0)])
    rebuilt = build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 2)
    assert 9 in rebuilt.neighbours[0] and 1 not in rebuilt.neighbours[5]
    assert_same(update_graph(graph, ids2, vectors2, (), ExactKnn(ids2, vectors2)), rebuilt)
    assert_same(update_graph(graph, ids2, vectors2, (), ExactKnn(ids2, vectors2), reverse_k=5), rebuilt)
    narrow = update_graph(graph, ids2, vectors2, (), ExactKnn(ids2, vectors2), reverse_k=2)
    assert 9 not in narrow.neighbours[0]  # documented: approximate, like the index it is meant for


def test_a_row_that_held_everyone_is_asked_again_when_the_reverse_search_is_narrow():
    # A graph of 3 photos (k=2: every row holds every other photo), then 6 more: a narrow reverse
    # search cannot say which new photos the old rows must list, so those rows are queried again.
    for seed in range(20):
        rng = np.random.default_rng(seed)
        ids = np.array([1, 2, 3], np.int64)
        vectors = grid_vectors(rng, 3, 4, 64)
        graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 2)
        ids2 = np.arange(1, 10, dtype=np.int64)
        vectors2 = np.concatenate([vectors, grid_vectors(rng, 6, 4, 64)])
        got = update_graph(graph, ids2, vectors2, (), ExactKnn(ids2, vectors2), reverse_k=1)
        assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 2))


def test_rows_only_asks_again_when_copies_crowd_an_answer():
    # Photo 1 has five copies in the index (labels 11-15), all nearer than any other row: a spare of
    # 1 comes back short, so the answer is asked again wider.
    index_ids = np.array([1, 2, 3, 11, 12, 13, 14, 15], np.int64)
    index_vectors = np.concatenate([line(1.0, 0.8, 0.6), np.repeat(line(1.0), 5, axis=0)])
    rows, row_vectors = np.array([1, 2, 3], np.int64), index_vectors[:3]
    inner = ExactKnn(index_ids, index_vectors)
    got = build_graph(rows, row_vectors, rows_only(inner, rows, spare=1), 2)
    assert_same(got, build_graph(rows, row_vectors, ExactKnn(rows, row_vectors), 2))
    assert inner.queries > 3  # asked again


def test_a_full_row_that_holds_everyone_takes_a_new_photo_below_its_bound():
    # k+1 photos: each row is full and holds every other photo. One leaves, one arrives further away
    # than any listed: nobody else exists, so every row must take it, without asking the index again.
    ids = np.array([1, 2, 3], np.int64)
    vectors = np.array([[1, 0], [0.75, 0.5], [0.5, 0.75]], np.float32)  # dyadic: exact products
    graph = build_graph(ids, vectors, ExactKnn(ids, vectors), 2)
    ids2, vectors2 = np.array([1, 2, 4], np.int64), np.array([[1, 0], [0.75, 0.5], [-0.5, 0.5]], np.float32)
    knn = ExactKnn(ids2, vectors2)
    got = update_graph(graph, ids2, vectors2, (), knn)
    assert_same(got, build_graph(ids2, vectors2, ExactKnn(ids2, vectors2), 2))
    assert got.neighbours[0].tolist() == [2, 4]
    assert knn.queries == 1  # the new photo only
