"""Bring a duplicates neighbour graph up to date after photos were added, changed or removed.

Pure logic over numpy arrays: no SQL, no model, no Qt. :func:`clipfind.dupes.build_graph` asks
the index for every photo's neighbours (about 44 s at 100k photos); :func:`update_graph` asks only
for the rows that can have changed, and with an exact ``knn`` its result equals ``build_graph`` on
the new state: the same rows in the caller's order, the same neighbours in the same order (by
similarity, highest first, equal similarities by id), the same similarities, the same padding.

Why that holds. With an exact ``knn``, ``build_graph`` makes row x the first ``min(k, n - 1)``
other photos in the order (-similarity, id), padded with -1 / -inf. Against the old graph:

* a *fresh* row (a photo new to the graph, or whose vector changed) is queried, as a rebuild would;
* every other row x lost the entries of the *stale* ids (photos removed, vectors changed) and may
  gain fresh photos. Its old list is the start of x's order over the old photos, so a photo missing
  from it ranks after its last (k-th) entry, the *bound*; unless the list is *complete*: it holds
  every other old photo (n_old - 1 entries, fewer than k when the library is small), so nothing is
  missing. The fresh photos are scored against x directly (one matrix product, no query), and:

  - a complete row is merged with every fresh photo: nothing else exists, so the merge is exact;
  - a full row that lost nothing is merged with the fresh photos that reach its bound: its k
    entries already rank before every photo it does not list;
  - a full row that lost entries is merged the same way, which is exact when the merged row still
    has k entries at or before the old bound (every photo it does not list ranks after the bound);
    otherwise a photo the old list never held may now belong in it: that row, and only that row, is
    queried again (*refilled*);
  - a row shorter than both k and n_old - 1 (an approximate index missed photos) is queried again.

So the index is asked for the fresh rows plus the rows that fell short, the rest is array work:
O(n x fresh x dim) for the scores (done in chunks) plus O(n x k) to find stale entries.

Bit for bit where the knn and the update's own matrix product compute a similarity alike (the
tests use vectors whose inner products are exact in float32). The Library's exact search is a
float32 matrix product whose last bit depends on the matrices' shapes, so there the similarities
agree to float32 rounding (a few ulp, which can swap two neighbours that close), as two full
builds at different library sizes do. With an approximate ``knn`` (HNSW) the result is as
approximate as a rebuild's, not equal to it.

Scoring the fresh photos against every row needs every row's vector in memory; ``reverse_k``
instead looks for the rows a fresh photo enters among its own ``reverse_k`` nearest, from the
index's answer, and ``vectors`` may then be a function that fetches only the rows it asks again:
for a library too large to read whole on every change, at the price of missing a row that would
list the new photo from further away (an outlier whose k-th neighbour is far).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from clipfind.dupes import Ints, KnnFn, NeighbourGraph, build_graph, graph_rows
from clipfind.records import Ids, Scores, Vectors

__all__ = ["member", "rows_only", "update_graph"]

CHUNK_CELLS = 1 << 22  # fresh-score cells per chunk (x4 bytes: 16 MiB), so memory stays flat at 1M photos


def update_graph(
    graph: NeighbourGraph,
    ids: Ids,
    vectors: Vectors | Callable[[Ids], Vectors],
    changed: Iterable[int] | Ids,
    knn: KnnFn,
    *,
    gone: Iterable[int] | Ids = (),
    k: int | None = None,
    batch: int = 4096,
    reverse_k: int | None = None,
) -> NeighbourGraph:
    """The neighbour graph of the photos ``ids`` (rows in this order) with these ``vectors``, made
    from ``graph``, the graph of an earlier state.

    Args:
        graph: the graph of the earlier state (as :func:`build_graph` or this function made it).
        ids, vectors: the rows now, one per content, as :func:`build_graph` would take them.
            ``vectors`` may instead be a function ``ids -> vectors (len(ids), d)``: it is then asked
            only for the rows it needs (with ``reverse_k``, the fresh and refilled rows), so a
            caller need not read every vector from the catalog.
        changed: ids whose vector changed since ``graph`` (an id listed here that is not among
            ``ids`` is ignored, so a caller may pass every catalog row written since). Photos new to
            the graph and photos gone from it are found by comparing ``ids`` with ``graph.ids``.
        knn: ``knn(queries, k) -> (labels, similarities)`` over the photos *now*, as for
            :func:`build_graph`: an exact one makes the result equal a rebuild.
        gone: other labels that ``knn`` no longer returns (only for a knn whose labels are not all
            rows, see :func:`rows_only`): their entries are dropped and refilled like a removed row's.
        k: neighbours per row; None keeps the graph's. Another k than the graph's rebuilds.
        batch: queries per ``knn`` call, as in :func:`build_graph`.
        reverse_k: None (exact): every row is scored against every fresh photo (one matrix
            product, n x fresh x dim). An int (for an approximate index, at 1M photos): the rows a
            fresh photo may enter are looked for among its ``reverse_k`` nearest only, from its own
            query, with the index's similarities; a row that would list it from further away is
            missed, as an approximate index misses neighbours. With an exact knn and ``reverse_k``
            at least the number of photos the result is still exact.
    """
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.shape[0]
    if callable(vectors):
        fetch = vectors
        if reverse_k is None:
            vectors = _fetched(fetch, ids)
    else:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != n:
            raise ValueError("update_graph: ids must be (n,) and vectors (n, d)")
        fetch = None
    if ids.ndim != 1:
        raise ValueError("update_graph: ids must be (n,) and vectors (n, d)")
    width = graph.neighbours.shape[1]
    k = width if k is None else k
    if k != width or k < 1 or batch < 1 or (reverse_k is not None and reverse_k < 1):
        if fetch is not None and reverse_k is not None:
            vectors = _fetched(fetch, ids)
        return build_graph(ids, vectors, knn, k, batch)  # raises on k < 1 or batch < 1
    if n == 0:
        return NeighbourGraph(ids, np.full((0, k), -1, np.int64), np.full((0, k), -np.inf, np.float32))

    old_ids = np.asarray(graph.ids, dtype=np.int64)
    n_old = old_ids.shape[0]
    changed = np.unique(np.fromiter(changed, np.int64) if not isinstance(changed, np.ndarray)
                        else changed.astype(np.int64, copy=False))
    gone = np.unique(np.fromiter(gone, np.int64) if not isinstance(gone, np.ndarray)
                     else gone.astype(np.int64, copy=False))

    # Where each row was in the old graph (-1: new), and which rows are fresh (queried whole).
    old_row = _positions(old_ids, ids)
    fresh = (old_row < 0) | member(ids, changed)
    kept = np.flatnonzero(~fresh)  # rows carried over from the old graph
    carried = np.zeros(n_old, dtype=bool)
    carried[old_row[kept]] = True
    stale = np.union1d(old_ids[~carried], gone)  # removed from the graph or with a new vector

    nb = graph.neighbours[old_row[kept]].astype(np.int64, copy=True)
    sm = graph.similarities[old_row[kept]].astype(np.float32, copy=True)
    count = (nb >= 0).sum(axis=1)
    complete = count >= n_old - 1  # the row holds every other photo of the old state
    full = count == k
    bound_sim, bound_id = sm[:, k - 1].copy(), nb[:, k - 1].copy()  # the old k-th entry (full rows)
    lost_cells = member(nb, stale) & (nb >= 0)
    nb[lost_cells] = -1
    sm[lost_cells] = -np.inf
    lost = lost_cells.any(axis=1)
    requery = ~complete & ~full  # short without holding everyone: an approximate knn missed photos

    fresh_rows = np.flatnonzero(fresh)
    fresh_ids = ids[fresh_rows]
    fresh_vectors = _fetched(fetch, fresh_ids) if fetch is not None and reverse_k is not None else vectors[fresh_rows]
    m = fresh_rows.size
    # A fresh photo can enter a row if it reaches the row's bound; every one can enter a complete row.
    threshold = np.where(complete, np.float32(-np.inf), bound_sim).astype(np.float32)
    unsafe = np.zeros(kept.size, dtype=bool)
    wide = None if reverse_k is None else reverse_k + 1
    fresh_nb, fresh_sm, answers = _query(fresh_ids, fresh_vectors, knn, k, n, batch, wide)

    def merge(rows: Ints, labels: Ids, sims: Scores) -> None:
        """Rows (kept positions) merged with their candidates (-1 / -inf where none), as build_graph
        sorts a row; a full row that lost entries is exact only if its k-th entry still ranks at or
        before the old bound (everything the old list left out ranks after that bound)."""
        labels = np.concatenate([nb[rows], labels], axis=1)
        sims = np.concatenate([sm[rows], sims], axis=1)
        order = np.lexsort((labels, -sims), axis=-1)[:, :k]
        merged_nb = np.take_along_axis(labels, order, axis=1)
        merged_sm = np.take_along_axis(sims, order, axis=1)
        nb[rows], sm[rows] = merged_nb, merged_sm
        last_nb, last_sm = merged_nb[:, k - 1], merged_sm[:, k - 1]
        within = (last_nb >= 0) & ((last_sm > bound_sim[rows])
                                   | ((last_sm == bound_sim[rows]) & (last_nb <= bound_id[rows])))
        unsafe[rows] = lost[rows] & ~complete[rows] & ~within

    if reverse_k is None and not m:  # only removals: nothing to score, the rows that lost entries are merged
        touched = np.flatnonzero(lost & ~requery)
        merge(touched, np.full((touched.size, 0), -1, np.int64), np.full((touched.size, 0), -np.inf, np.float32))
    elif reverse_k is None:
        step = max(1, CHUNK_CELLS // max(m, 1))
        for start in range(0, kept.size, step):
            part = slice(start, min(start + step, kept.size))
            scores = vectors[kept[part]] @ fresh_vectors.T  # (rows, fresh) similarities
            enters = scores >= threshold[part, None]
            touched = np.flatnonzero((enters.any(axis=1) | lost[part]) & ~requery[part])
            if touched.size:
                enter = enters[touched]
                columns = np.flatnonzero(enter.any(axis=0))
                enter = enter[:, columns]
                merge(start + touched, np.where(enter, fresh_ids[columns], np.int64(-1)),
                      np.where(enter, scores[touched][:, columns], np.float32(-np.inf)))
    else:
        # Only the rows among each fresh photo's own nearest can take it; a complete row (a graph
        # of at most k+1 photos) could take any, so it is asked again.
        requery |= complete & (lost | (m > 0))
        kept_of = np.full(n, -1, dtype=np.int64)
        kept_of[kept] = np.arange(kept.size)
        labels, sims = answers
        where = _positions(ids, labels.ravel())
        x = np.where(where >= 0, kept_of[np.maximum(where, 0)], -1)
        f = np.repeat(fresh_ids, labels.shape[1])
        s = sims.ravel()
        ok = x >= 0
        ok[ok] &= ~requery[x[ok]] & (s[ok] >= threshold[x[ok]])
        x, f, s = x[ok], f[ok], s[ok]
        touched = np.union1d(x, np.flatnonzero(lost & ~requery))
        if touched.size:
            slot = np.searchsorted(touched, x)
            order = np.argsort(slot, kind="stable")
            slot, f, s = slot[order], f[order], s[order]
            first = np.searchsorted(slot, np.arange(touched.size))
            rank = np.arange(slot.size) - first[slot]
            width = int(rank.max()) + 1 if rank.size else 0
            cand_nb = np.full((touched.size, width), -1, dtype=np.int64)
            cand_sm = np.full((touched.size, width), -np.inf, dtype=np.float32)
            cand_nb[slot, rank], cand_sm[slot, rank] = f, s
            merge(touched, cand_nb, cand_sm)
    requery |= unsafe

    neighbours = np.full((n, k), -1, dtype=np.int64)
    similarities = np.full((n, k), -np.inf, dtype=np.float32)
    neighbours[kept], similarities[kept] = nb, sm
    neighbours[fresh_rows], similarities[fresh_rows] = fresh_nb, fresh_sm
    again = kept[requery]
    if again.size:
        again_vectors = _fetched(fetch, ids[again]) if fetch is not None and reverse_k is not None else vectors[again]
        neighbours[again], similarities[again], _ = _query(ids[again], again_vectors, knn, k, n, batch)
    return NeighbourGraph(ids=ids, neighbours=neighbours, similarities=similarities)


def rows_only(knn: KnnFn, ids: Ids, spare: int = 4, most: int = 256) -> KnnFn:
    """``knn`` restricted to the labels in ``ids``, for an index that holds more labels than the
    graph has rows (the HNSW index holds every byte-identical copy, the graph one row per content,
    and labels added after the rows were read). Labels that are not rows come back as -1 (dropped
    by build_graph and update_graph); an answer left with fewer than k rows is asked again with
    twice the spare, up to ``most`` extra results. A graph whose entries are all rows stays
    consistent under :func:`update_graph`: a copy deleted from the index leaves no entry behind.

    Asking for many more results than k makes an HNSW query slower (its search list grows with
    k), so the spare starts small: copies are rare among a photo's nearest.
    """
    known = np.sort(np.asarray(ids, dtype=np.int64))

    def restricted(queries: Vectors, k: int) -> tuple[Ids, Scores]:
        queries = np.atleast_2d(queries)
        want = min(k, known.size)
        extra = spare
        labels, sims = _rows_of(knn, queries, k + extra, known)
        short = np.flatnonzero((labels >= 0).sum(axis=1) < want)
        while short.size and extra < most:
            extra = min(most, 2 * extra)
            again_labels, again_sims = _rows_of(knn, queries[short], k + extra, known)
            width = again_labels.shape[1]
            grown = np.full((labels.shape[0], width), -1, np.int64), np.full((labels.shape[0], width), -np.inf,
                                                                              np.float32)
            grown[0][:, : labels.shape[1]], grown[1][:, : labels.shape[1]] = labels, sims
            grown[0][short], grown[1][short] = again_labels, again_sims
            labels, sims = grown
            short = short[(again_labels >= 0).sum(axis=1) < want]
        order = np.lexsort((labels, -sims), axis=-1)[:, :k]  # the rows first, as many columns as asked
        return np.take_along_axis(labels, order, axis=1), np.take_along_axis(sims, order, axis=1)

    return restricted


def _rows_of(knn: KnnFn, queries: Vectors, ask: int, known: Ids) -> tuple[Ids, Scores]:
    labels, sims = knn(queries, ask)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    sims = np.asarray(sims, dtype=np.float32)
    hit = member(labels, known, assume_sorted=True)
    return np.where(hit, labels, np.int64(-1)), np.where(hit, sims, np.float32(-np.inf))


def _query(ids: Ids, vectors: Vectors, knn: KnnFn, k: int, n: int, batch: int,
           wide: int | None = None) -> tuple[Ids, Scores, tuple[Ids, Scores]]:
    """Rows for these photos exactly as build_graph makes them in a graph of n photos; with wide,
    each query asks for that many (at least k+1) and the whole answers come back too, the photo
    itself dropped (-1 / -inf)."""
    neighbours = np.full((ids.size, k), -1, dtype=np.int64)
    similarities = np.full((ids.size, k), -np.inf, dtype=np.float32)
    ask = min(k + 1 if wide is None else max(k + 1, wide), n)
    all_labels = np.full((ids.size if wide else 0, ask), -1, dtype=np.int64)
    all_sims = np.full((ids.size if wide else 0, ask), -np.inf, dtype=np.float32)
    for start in range(0, ids.size, batch):
        stop = min(start + batch, ids.size)
        rows, row_sims, (labels, sims) = graph_rows(ids[start:stop], *knn(vectors[start:stop], ask), k)
        neighbours[start:stop, : rows.shape[1]] = rows
        similarities[start:stop, : rows.shape[1]] = row_sims
        if wide:
            width = min(labels.shape[1], ask)  # a knn may answer with more columns than asked
            all_labels[start:stop, :width], all_sims[start:stop, :width] = labels[:, :width], sims[:, :width]
    return neighbours, similarities, (all_labels, all_sims)


def _fetched(fetch: Callable[[Ids], Vectors], wanted: Ids) -> Vectors:
    if not wanted.size:
        return np.zeros((0, 0), dtype=np.float32)
    got = np.ascontiguousarray(fetch(wanted), dtype=np.float32)
    if got.ndim != 2 or got.shape[0] != wanted.size:
        raise ValueError("update_graph: the vectors function must give one vector per id asked")
    return got


def _positions(table: Ids, wanted: Ids) -> Ids:
    """Position of each wanted id in table (ids unique), -1 where absent."""
    if not table.size:
        return np.full(wanted.shape, -1, dtype=np.int64)
    order = np.argsort(table, kind="stable")
    at = np.minimum(np.searchsorted(table[order], wanted), table.size - 1)
    return np.where(table[order][at] == wanted, order[at], -1)


def member(values: np.ndarray, table: Ids, *, assume_sorted: bool = False) -> np.ndarray:
    """values (any shape) that are in table, by binary search: O(values x log table), for a small
    table (the stale ids) against n x k entries, where np.isin would sort both."""
    if not table.size:
        return np.zeros(values.shape, dtype=bool)
    table = table if assume_sorted else np.sort(table)
    at = np.minimum(np.searchsorted(table, values), table.size - 1)
    return table[at] == values
