"""The "same photo" tier: files that hold one capture saved again, found without the model.

Candidates are each photo's nearest neighbours by the turn-proof descriptor of
:mod:`clipfind.fingerprint` (exact search in blocks for small libraries, an HNSW graph for large
ones); candidates are confirmed by comparing thumbnails, in batches that bound memory.

Confirmed pairs are not simply chained: a burst frame can sit within reach of a re-saved copy
that sits within reach of the original, and chaining would put the frame with the original.
So every group is complete: each of its members is confirmed against each other member.

A catalog changes a few photos at a time, and the search over 100k photos takes tens of seconds
(mostly comparing thumbnails), so :class:`SameSearch` keeps what it found (descriptors, the
candidates' graph, every pair's verdict) and :meth:`SameSearch.update` asks only about what
changed: the new photos' neighbours (:func:`clipfind.neighbours.update_graph`, exact), the rows they
enter, and the pairs not compared before. Its groups equal those of a search from scratch wherever
that one is exact (up to ``_EXACT_LIMIT`` photos); above it, they are as good or better (the new
photos' neighbours are exact, a rebuild's come from an approximate index).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from clipfind.annindex import exact_search
from clipfind.dupes import KnnFn, NeighbourGraph, build_graph
from clipfind.fingerprint import (
    CAPTURE_SLACK,
    SIDE,
    Capture,
    compare,
    descriptors,
    is_mirrored,
    is_turned,
    low_frequencies,
)
from clipfind.neighbours import member, update_graph
from clipfind.records import Ids

CANDIDATES = 8  # neighbours per photo; a picture with more copies still gathers them (see below)
DESCRIPTOR_MIN = 0.97  # descriptor cosine below which a pair is not worth confirming (measured)
_EXACT_LIMIT = 20_000  # above this many photos, an HNSW graph finds the neighbours
_BATCH = 256  # pairs compared at once: fits the CPU caches better than bigger steps (measured)
GROUP_SLACK = 1.3  # within a group, every pair must stay within this many times its own limit
_COMPLETE_LIMIT = 300  # members of a cluster of confirmed pairs that are all compared with each other
UPDATE_MAX_SHARE = 0.05  # more new or changed photos than this share: search from scratch
_KEY = np.int64(1 << 32)  # a pair of ids (lo, hi) as one int64: lo * _KEY + hi

ThumbsFn = Callable[[Ids], npt.NDArray[np.uint8]]  # ids -> their thumbnails (m, SIDE, SIDE), in that order

Pairs = npt.NDArray[np.int64]  # (m, 2) row numbers into the inputs, i < j


@dataclass(frozen=True, slots=True)
class SameGroup:
    """Rows that hold one capture, and why each is there."""

    rows: tuple[int, ...]  # indexes into the input arrays, sorted
    reasons: tuple[tuple[str, ...], ...]  # parallel to rows; from "fingerprint", "turned", "mirrored", "exif-capture"


def candidate_pairs(descs: npt.NDArray[np.float32], k: int = CANDIDATES) -> Pairs:
    """Row pairs (i < j) whose descriptors are among each other's k nearest and close enough."""
    rows = np.arange(len(descs), dtype=np.int64)
    return _pairs_of(_descriptor_graph(rows, descs, k))


def _descriptor_graph(ids: Ids, descs: npt.NDArray[np.float32], k: int = CANDIDATES) -> NeighbourGraph:
    """Each row's k nearest by descriptor: exact for small libraries, an HNSW graph for large ones."""
    if len(ids) <= _EXACT_LIMIT:
        return build_graph(ids, descs, _exact(ids, descs), k, batch=1024)
    import hnswlib  # a project dependency (the CLIP index uses it too); imported only when needed

    index = hnswlib.Index(space="ip", dim=descs.shape[1])
    index.init_index(max_elements=len(ids), ef_construction=64, M=12)
    index.add_items(descs, ids)
    index.set_ef(max(2 * k, 32))

    def knn(queries: npt.NDArray[np.float32], ask: int) -> tuple[Ids, npt.NDArray[np.float32]]:
        labels, distances = index.knn_query(queries, k=ask)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    return build_graph(ids, descs, knn, k)


def _exact(ids: Ids, descs: npt.NDArray[np.float32]) -> KnnFn:
    return lambda queries, k: exact_search(ids, descs, queries, k)


def _pairs_of(graph: NeighbourGraph) -> Pairs:
    """The graph's pairs (lo, hi) of ids close enough to compare, each once, sorted."""
    i = np.repeat(graph.ids, graph.neighbours.shape[1])
    j, s = graph.neighbours.ravel(), graph.similarities.ravel()
    keep = (j >= 0) & (j != i) & (s >= DESCRIPTOR_MIN)
    lo, hi = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    # One int64 key per pair: np.unique(axis=0) sorts rows as opaque records while holding the GIL
    # (0.5 s at 100k photos, a frozen window); an integer sort does not.
    return _unkeyed(_sorted_unique(lo * _KEY + hi))


def _unkeyed(keys: npt.NDArray[np.int64]) -> Pairs:
    return np.stack([keys // _KEY, keys % _KEY], axis=1)


def _sorted_unique(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """np.unique by a sort: quicker than its hashing for the hundreds of thousands of pair keys here."""
    values = np.sort(values, axis=None)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _slacks(pairs: Pairs, captures: Sequence[Capture]) -> npt.NDArray[np.float32]:
    """How far each pair's distance may go and still be "same": 1, or CAPTURE_SLACK where both
    capture records name one capture to the sub-second, or -1 where they say two captures."""
    out = np.ones(len(pairs), np.float32)
    has = np.array([bool(c.camera or c.taken) for c in captures], bool)
    if not has.any():
        return out
    for n in np.nonzero(has[pairs[:, 0]] & has[pairs[:, 1]])[0]:
        a, b = captures[pairs[n, 0]], captures[pairs[n, 1]]
        out[n] = -1.0 if a.differs_from(b) else CAPTURE_SLACK if a.matches(b) else 1.0
    return out


def compare_pairs(thumbs: npt.NDArray[np.uint8], pairs: Pairs,
                  low: npt.NDArray[np.float32] | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(orientation, distance: "same" at <= 1) of each row pair, in batches that bound memory.
    ``low``: the thumbnails' :func:`~clipfind.fingerprint.low_frequencies`, where already at hand."""
    if low is None:
        low = low_frequencies(thumbs)
    orientation = np.zeros(len(pairs), np.int64)
    distance = np.empty(len(pairs), np.float32)

    def step(start: int) -> None:
        i, j = pairs[start : start + _BATCH, 0], pairs[start : start + _BATCH, 1]
        o, _, _, _, d = compare(thumbs[i], thumbs[j], low[i], low[j])
        orientation[start : start + len(i)] = o
        distance[start : start + len(i)] = d

    starts = range(0, len(pairs), _BATCH)
    if len(starts) < 4:
        for start in starts:
            step(start)
    else:  # numpy lets go of the GIL in its loops: one thread per core
        with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
            list(pool.map(step, starts))
    return orientation, distance


def _confirmed(thumbs: npt.NDArray[np.uint8], captures: Sequence[Capture], pairs: Pairs,
               low: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(orientation, distance in units of the pair's own slack: "same" at <= 1; inf where the
    capture records say two captures) of each pair."""
    slacks = _slacks(pairs, captures)
    orientation = np.zeros(len(pairs), np.int64)
    dist = np.full(len(pairs), np.inf, np.float32)
    possible = slacks > 0
    if possible.any():
        o, d = compare_pairs(thumbs, pairs[possible], low)
        orientation[possible], dist[possible] = o, d / slacks[possible]
    return orientation, dist


def same_groups(thumbs: npt.NDArray[np.uint8], captures: Sequence[Capture]) -> list[SameGroup]:
    """Rows grouped by capture: groups of two or more, each complete (every member confirmed
    against every other, within GROUP_SLACK), sorted by their first row."""
    if len(captures) != len(thumbs):
        raise ValueError(f"{len(thumbs)} thumbnails but {len(captures)} capture records")
    rows = np.arange(len(thumbs), dtype=np.int64)
    search = SameSearch.build(rows, rows.astype(str), [c.to_text() for c in captures], lambda ids: thumbs[ids])
    return search.groups()


@dataclass(frozen=True, slots=True)
class SameSearch:
    """The same tier's search over one set of fingerprints (one per content), kept so that the next
    set asks only about the photos that changed (:meth:`update`). Every array is by row."""

    ids: Ids  # (n,) catalog ids, ascending
    hashes: npt.NDArray[np.str_]  # (n,) content hashes: a row whose hash changed is a new picture
    captures: npt.NDArray[np.str_]  # (n,) capture records as text ("" for none)
    descs: npt.NDArray[np.float32]  # (n, DESCRIPTOR_DIM)
    graph: NeighbourGraph  # each row's CANDIDATES nearest by descriptor
    keys: npt.NDArray[np.int64]  # (m,) sorted pairs compared (lo * _KEY + hi, ids), ...
    orientation: npt.NDArray[np.int64]  # (m,) ... their orientation ...
    distance: npt.NDArray[np.float32]  # (m,) ... and distance in units of their slack (inf: two captures)

    @classmethod
    def build(cls, ids: Ids, hashes: Sequence[str], captures: Sequence[str | None], thumbs: ThumbsFn) -> SameSearch:
        """Search from scratch: ``thumbs`` is asked for every row once."""
        ids = np.asarray(ids, np.int64)
        if ids.size > 1 and not np.all(np.diff(ids) > 0):
            raise ValueError("SameSearch: ids must be ascending")
        every = np.asarray(thumbs(ids), np.uint8).reshape(len(ids), SIDE, SIDE)
        low = low_frequencies(every)
        descs = descriptors(every, low)
        graph = _descriptor_graph(ids, descs)
        known = _Thumbs(ids, thumbs, every, low)
        none = np.zeros(0, np.int64)
        return cls(ids, _texts(hashes), _texts(captures), descs, graph, none, none, np.zeros(0, np.float32))._settled(known)

    def update(self, ids: Ids, hashes: Sequence[str], captures: Sequence[str | None], thumbs: ThumbsFn) -> SameSearch:
        """The search over these rows, asking ``thumbs`` only for new or changed rows and the ends of
        pairs not compared before; from scratch when more than UPDATE_MAX_SHARE changed."""
        ids, hashes, captures = np.asarray(ids, np.int64), _texts(hashes), _texts(captures)
        if ids.size > 1 and not np.all(np.diff(ids) > 0):
            raise ValueError("SameSearch: ids must be ascending")
        old = np.searchsorted(self.ids, ids).clip(0, max(len(self.ids) - 1, 0))
        same = ((self.ids[old] == ids) & (self.hashes[old] == hashes) if len(self.ids)
                else np.zeros(len(ids), bool))
        if same.all() and len(ids) == len(self.ids):
            if np.array_equal(captures, self.captures):
                return self
            # Only capture records read again (an older catalog's, gaining GPS): verdicts stand.
            return SameSearch(ids, hashes, captures, self.descs, self.graph, self.keys, self.orientation,
                              self.distance)
        fresh = ids[~same]
        if fresh.size > UPDATE_MAX_SHARE * max(len(ids), 1) or self.graph.neighbours.shape[1] != CANDIDATES:
            return SameSearch.build(ids, hashes, captures, thumbs)
        descs = np.empty((len(ids), self.descs.shape[1]), np.float32)
        descs[same] = self.descs[old[same]]
        known = _Thumbs(ids, thumbs)
        if fresh.size:
            descs[~same] = descriptors(known.thumbs(fresh), known.low(fresh))
        changed = self.ids[member(self.ids, ids[~same])]  # kept ids whose picture changed
        graph = update_graph(self.graph, ids, descs, changed, _exact(ids, descs))
        # Verdicts of pairs whose ends are both unchanged still hold.
        stale = self.ids[~member(self.ids, ids[same], assume_sorted=True)]
        keep = ~member(_unkeyed(self.keys), stale, assume_sorted=True).any(axis=1)
        return SameSearch(ids, hashes, captures, descs, graph, self.keys[keep], self.orientation[keep],
                          self.distance[keep])._settled(known)

    def _settled(self, known: _Thumbs) -> SameSearch:
        """Every candidate pair and every pair inside a cluster of confirmed pairs compared, and only
        those kept: what :meth:`groups` needs, no more."""
        candidates = _pairs_of(self.graph)
        search = self._with_verdicts(candidates, known)
        confirmed = candidates[search._distances(candidates) <= 1.0]
        inside = [np.array(c)[np.stack(np.triu_indices(len(c), 1), axis=1)]
                  for c in _clusters_of(confirmed) if len(c) > 2]
        needed = np.concatenate([candidates, *inside]) if inside else candidates
        search = search._with_verdicts(needed, known)
        wanted = member(search.keys, _sorted_unique(needed[:, 0] * _KEY + needed[:, 1]), assume_sorted=True)
        return SameSearch(search.ids, search.hashes, search.captures, search.descs, search.graph,
                          search.keys[wanted], search.orientation[wanted], search.distance[wanted])

    def _with_verdicts(self, pairs: Pairs, known: _Thumbs) -> SameSearch:
        """This search with the pairs not compared yet compared."""
        keys = _sorted_unique(pairs[:, 0] * _KEY + pairs[:, 1])
        new = keys[~member(keys, self.keys, assume_sorted=True)]
        if not new.size:
            return self
        todo = _unkeyed(new)
        ends = np.unique(todo)
        local = np.searchsorted(ends, todo)
        rows = np.searchsorted(self.ids, ends)
        captures = [Capture.from_text(self.captures[r]) for r in rows.tolist()]
        orientation, distance = _confirmed(known.thumbs(ends), captures, local, known.low(ends))
        keys = np.concatenate([self.keys, new])
        order = np.argsort(keys, kind="stable")
        return SameSearch(self.ids, self.hashes, self.captures, self.descs, self.graph, keys[order],
                          np.concatenate([self.orientation, orientation])[order],
                          np.concatenate([self.distance, distance])[order])

    def _distances(self, pairs: Pairs) -> npt.NDArray[np.float32]:
        """The verdicts' distances of these pairs (all compared before)."""
        at = np.searchsorted(self.keys, pairs[:, 0] * _KEY + pairs[:, 1])
        return self.distance[at]

    def groups(self) -> list[SameGroup]:
        """Rows (positions in ``ids``) grouped by capture, as :func:`same_groups` makes them."""
        rows = np.searchsorted(self.ids, _unkeyed(self.keys))
        confirmed = self.distance <= 1.0
        clusters, root = _clusters(len(self.ids), rows[confirmed])
        size = np.bincount(root, minlength=len(self.ids))[root]
        captures = CaptureTexts(self.captures)
        # Most clusters are one confirmed pair, which is its own group: told in one pass, not split.
        twos = np.flatnonzero(confirmed & (size[rows[:, 0]] == 2))
        groups = [_pair_group(a, b, o, captures) for (a, b), o in zip(rows[twos].tolist(), self.orientation[twos].tolist())]
        inside = np.flatnonzero((root[rows[:, 0]] == root[rows[:, 1]]) & (size[rows[:, 0]] > 2))  # what a split asks
        known = {(i, j): n for n, (i, j) in zip(inside.tolist(), rows[inside].tolist())}
        for cluster in clusters:
            if len(cluster) > 2:
                groups += _remembered_groups(cluster, self.ids, known, self.orientation, self.distance, captures)
        return sorted(groups, key=lambda g: g.rows[0])


class _Thumbs:
    """Thumbnails and their low frequencies, read once each from the catalog as a search needs them."""

    def __init__(self, ids: Ids, fetch: ThumbsFn, every: npt.NDArray[np.uint8] | None = None,
                 low: npt.NDArray[np.float32] | None = None) -> None:
        self._fetch, self._ids = fetch, ids
        self._every, self._every_low = every, low
        self._got: dict[int, tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]] = {}

    def _read(self, ids: Ids) -> None:
        missing = np.array([i for i in ids.tolist() if i not in self._got], np.int64)
        if missing.size:
            thumbs = np.asarray(self._fetch(missing), np.uint8).reshape(len(missing), SIDE, SIDE)
            for i, t, f in zip(missing.tolist(), thumbs, low_frequencies(thumbs)):
                self._got[i] = t, f

    def thumbs(self, ids: Ids) -> npt.NDArray[np.uint8]:
        if self._every is not None:
            return self._every[np.searchsorted(self._ids, ids)]
        self._read(ids)
        return np.stack([self._got[i][0] for i in ids.tolist()]) if ids.size else np.zeros((0, SIDE, SIDE), np.uint8)

    def low(self, ids: Ids) -> npt.NDArray[np.float32]:
        if self._every_low is not None:
            return self._every_low[np.searchsorted(self._ids, ids)]
        self._read(ids)
        return np.stack([self._got[i][1] for i in ids.tolist()])


class CaptureTexts(Sequence[Capture]):
    """Capture records by row, parsed when asked (a group's few members, not the whole library)."""

    def __init__(self, texts: npt.NDArray[np.str_]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, row):  # type: ignore[no-untyped-def, override]
        return Capture.from_text(str(self._texts[row]))

    def text(self, row: int) -> str:
        """The record of a row as stored ("" for none), unparsed."""
        return str(self._texts[row])

    def both(self, a: int, b: int) -> bool:
        """Whether both rows have a capture record, before parsing either."""
        return bool(self._texts[a]) and bool(self._texts[b])


def _texts(values: Sequence[str | None] | npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    return np.asarray(["" if v is None else v for v in values], dtype=np.str_) if len(values) else np.zeros(0, np.str_)


def _clusters_of(pairs: Pairs) -> list[list[int]]:
    """Ids joined by pairs of ids, chained."""
    if not len(pairs):
        return []
    ends = _sorted_unique(pairs)
    return [ends[c].tolist() for c in _clusters(len(ends), np.searchsorted(ends, pairs))[0]]


def _clusters(n: int, pairs: Pairs) -> tuple[list[list[int]], npt.NDArray[np.int64]]:
    """Rows joined by confirmed pairs, chained (each cluster is then split into complete groups),
    each sorted, ordered by their first row; and each row's cluster root (its smallest row). Array
    work, not a Python loop over pairs: 0.1 s instead of 0.4 s for 70k pairs."""
    root = np.arange(n)
    if not len(pairs):
        return [], root
    a, b = pairs[:, 0], pairs[:, 1]
    while True:  # hook every pair's larger root under the smaller, then flatten: few rounds for small clusters
        lower = np.minimum(root[a], root[b])
        hooked = root.copy()
        np.minimum.at(hooked, root[a], lower)
        np.minimum.at(hooked, root[b], lower)
        while not np.array_equal(flat := hooked[hooked], hooked):
            hooked = flat
        if np.array_equal(hooked, root):
            break
        root = hooked
    ends = _sorted_unique(pairs)
    order = np.lexsort((ends, root[ends]))
    ends, roots = ends[order], root[ends][order]
    return [c.tolist() for c in np.split(ends, np.flatnonzero(np.diff(roots)) + 1)], root


# A cluster's groups by what decides them (its ids, its pairs' verdicts, its capture records), in
# catalog ids: the next state of a library asks again about the few clusters a change touched, not
# about the thousands it did not (complete linkage over every cluster took 0.4 s at 100k photos).
_MEMO_LIMIT = 200_000
_MEMO_MEMBERS = 64
_memo: dict[tuple, list[tuple[tuple[int, ...], tuple[tuple[str, ...], ...]]]] = {}


def _remembered_groups(cluster: list[int], ids: Ids, known: dict[tuple[int, int], int],
                       orientation: npt.NDArray[np.int64], dist: npt.NDArray[np.float32],
                       captures: CaptureTexts) -> list[SameGroup]:
    """_complete_groups, remembered across searches by the cluster's ids and verdicts (a cluster of
    up to _MEMO_MEMBERS: the key lists every pair, which a degenerate cluster of thousands would make
    cost more than the grouping it saves)."""
    if len(cluster) > _MEMO_MEMBERS:
        return _complete_groups(cluster, known, orientation, dist, captures)
    cluster_ids = ids[cluster].tolist()
    verdicts = tuple((a, b, int(orientation[n]), float(dist[n])) for a, b in combinations(range(len(cluster)), 2)
                     if (n := known.get((cluster[a], cluster[b]))) is not None)
    key = (tuple(cluster_ids), verdicts, tuple(captures.text(r) for r in cluster))
    found = _memo.get(key)
    if found is None:
        row_id = dict(zip(cluster, cluster_ids))
        found = [(tuple(row_id[r] for r in g.rows), g.reasons)
                 for g in _complete_groups(cluster, known, orientation, dist, captures)]
        if len(_memo) >= _MEMO_LIMIT:
            _memo.clear()
        _memo[key] = found
    row_of = dict(zip(cluster_ids, cluster))
    return [SameGroup(tuple(row_of[i] for i in members), reasons) for members, reasons in found]


def _complete_groups(cluster: list[int], known: dict[tuple[int, int], int], orientation: npt.NDArray[np.int64],
                     dist: npt.NDArray[np.float32], captures: Sequence[Capture]) -> list[SameGroup]:
    """One cluster of chained pairs split into complete groups (complete linkage over its pairs)."""
    m = len(cluster)
    if m == 2:
        n = known[(cluster[0], cluster[1])]
        return [_group(cluster, [0, 1], np.array([[0, dist[n]], [dist[n], 0]]), known, orientation, captures)]
    out = []
    for start in range(0, m, _COMPLETE_LIMIT):  # only degenerate libraries make clusters this big
        rows = cluster[start : start + _COMPLETE_LIMIT]
        d = np.full((len(rows), len(rows)), np.inf, np.float32)
        for a, b in zip(*np.triu_indices(len(rows), 1)):
            n = known.get((rows[a], rows[b]))
            if n is not None:
                d[a, b] = d[b, a] = dist[n]
        for members in _complete_linkage(d):
            out.append(_group(rows, members, d, known, orientation, captures))
    return out


def _complete_linkage(dist: npt.NDArray[np.float32]) -> list[list[int]]:
    """Merge the closest clusters while every pair across them stays within GROUP_SLACK (complete
    linkage)."""
    d = dist.copy()
    np.fill_diagonal(d, np.inf)
    members = {x: [x] for x in range(len(d))}
    alive = np.ones(len(d), bool)
    while True:
        flat = int(np.argmin(d))
        a, b = divmod(flat, len(d))
        if not np.isfinite(d[a, b]) or d[a, b] > GROUP_SLACK:
            break
        a, b = min(a, b), max(a, b)
        members[a] += members.pop(b)
        alive[b] = False
        d[a] = np.maximum(d[a], d[b])  # complete linkage: the farthest pair decides
        d[:, a] = d[a]
        d[a, a] = np.inf
        d[b], d[:, b] = np.inf, np.inf
    return [sorted(m) for m in members.values() if len(m) > 1]


def _pair_group(a: int, b: int, orientation: int, captures: CaptureTexts) -> SameGroup:
    """The group of a cluster of two, as :func:`_group` tells it: the two lie upright against each
    other or neither does, at one distance, so the first is the reference."""
    other = ("fingerprint",) + (("turned",) if is_turned(orientation) else ()) + (
        ("mirrored",) if is_mirrored(orientation) else ())
    agree = ("exif-capture",) if captures.both(a, b) and captures[a].agrees_with(captures[b]) else ()
    return SameGroup((a, b), (("fingerprint", *agree), other + agree))


def _group(rows: list[int], members: list[int], dist: npt.NDArray[np.floating], known: dict[tuple[int, int], int],
           orientation: npt.NDArray[np.int64], captures: Sequence[Capture]) -> SameGroup:
    """A group with each member's reasons, turns and mirrors told relative to its reference: the
    member that the most others lie upright against (ties: the one closest to all others)."""
    picked = sorted(rows[x] for x in members)

    def turn(a: int, b: int) -> int:
        return 0 if a == b else int(orientation[known[(min(a, b), max(a, b))]])

    sub = dist[np.ix_(members, members)]
    closeness = np.where(np.isfinite(sub), sub, 0).sum(axis=1)
    order = sorted(range(len(members)), key=lambda k: (
        -sum(turn(rows[members[k]], other) == 0 for other in picked), closeness[k]))
    centre = rows[members[order[0]]]
    reasons = []
    for row in picked:
        said = ["fingerprint"]
        if row != centre:
            # Turns and mirrors of the dihedral group: "turned" and "mirrored" read the same
            # whichever of the two is taken as the one that moved.
            o = turn(row, centre)
            if is_turned(o):
                said.append("turned")
            if is_mirrored(o):
                said.append("mirrored")
        if any(captures[row].agrees_with(captures[other]) for other in picked if other != row):
            said.append("exif-capture")
        reasons.append(tuple(said))
    return SameGroup(tuple(picked), tuple(reasons))
