"""The "same photo" tier: files that hold one capture saved again, found without the model.

Candidates are each photo's nearest neighbours by the turn-proof descriptor of
:mod:`clipfind.fingerprint` (exact search in blocks for small libraries, an HNSW graph for large
ones); candidates are confirmed by comparing thumbnails, in batches that bound memory.

Confirmed pairs are not simply chained: a burst frame can sit within reach of a re-saved copy
that sits within reach of the original, and chaining would put the frame with the original.
So every group is complete: each of its members is confirmed against each other member.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clipfind.fingerprint import (
    CAPTURE_SLACK,
    Capture,
    compare,
    descriptors,
    low_frequencies,
    is_mirrored,
    is_turned,
)

CANDIDATES = 8  # neighbours per photo; a picture with more copies still gathers them (see below)
DESCRIPTOR_MIN = 0.97  # descriptor cosine below which a pair is not worth confirming (measured)
_EXACT_LIMIT = 20_000  # above this many photos, an HNSW graph finds the neighbours
_BATCH = 256  # pairs compared at once: fits the CPU caches better than bigger steps (measured)
GROUP_SLACK = 1.3  # within a group, every pair must stay within this many times its own limit
_COMPLETE_LIMIT = 300  # members of a cluster of confirmed pairs that are all compared with each other

Pairs = npt.NDArray[np.int64]  # (m, 2) row numbers into the inputs, i < j


@dataclass(frozen=True, slots=True)
class SameGroup:
    """Rows that hold one capture, and why each is there."""

    rows: tuple[int, ...]  # indexes into the input arrays, sorted
    reasons: tuple[tuple[str, ...], ...]  # parallel to rows; from "fingerprint", "turned", "mirrored", "exif-capture"


def candidate_pairs(descs: npt.NDArray[np.float32], k: int = CANDIDATES) -> Pairs:
    """Row pairs (i < j) whose descriptors are among each other's k nearest and close enough."""
    n = len(descs)
    if n < 2:
        return np.empty((0, 2), np.int64)
    k = min(k, n - 1)
    rows, sims = _neighbours(descs, k)
    i = np.repeat(np.arange(n), rows.shape[1])
    j, s = rows.ravel(), sims.ravel()
    keep = (j >= 0) & (j != i) & (s >= DESCRIPTOR_MIN)
    lo, hi = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    # One int64 key per pair: np.unique(axis=0) sorts rows as opaque records while holding the GIL
    # (0.5 s at 100k photos, a frozen window); an integer sort does not.
    keys = np.unique(lo * np.int64(n) + hi)
    return np.stack([keys // n, keys % n], axis=1)


def _neighbours(descs: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(n, k) neighbour rows (-1: none) and their cosines."""
    n = len(descs)
    if n <= _EXACT_LIMIT:
        rows = np.empty((n, k), np.int64)
        sims = np.empty((n, k), np.float32)
        for start in range(0, n, 1024):
            block = descs[start : start + 1024] @ descs.T
            block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not its own
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]
            rows[start : start + len(block)] = top
            sims[start : start + len(block)] = np.take_along_axis(block, top, axis=1)
        return rows, sims
    import hnswlib  # a project dependency (the CLIP index uses it too); imported only when needed

    index = hnswlib.Index(space="ip", dim=descs.shape[1])
    index.init_index(max_elements=n, ef_construction=64, M=12)
    index.add_items(descs, np.arange(n))
    index.set_ef(max(2 * k, 32))
    labels, distances = index.knn_query(descs, k=k + 1)
    own = labels == np.arange(n)[:, None]
    return np.where(own, -1, labels).astype(np.int64), (1.0 - distances).astype(np.float32)


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


def same_pairs(thumbs: npt.NDArray[np.uint8], captures: Sequence[Capture]) -> Pairs:
    """Candidate row pairs confirmed as one capture (before groups are made complete)."""
    pairs = candidate_pairs(descriptors(thumbs))
    _, dist = _confirmed(thumbs, captures, pairs, low_frequencies(thumbs))
    return pairs[dist <= 1.0]


def same_groups(thumbs: npt.NDArray[np.uint8], captures: Sequence[Capture]) -> list[SameGroup]:
    """Rows grouped by capture: groups of two or more, each complete (every member confirmed
    against every other, within GROUP_SLACK), sorted by their first row."""
    if len(captures) != len(thumbs):
        raise ValueError(f"{len(thumbs)} thumbnails but {len(captures)} capture records")
    low = low_frequencies(thumbs)
    pairs = candidate_pairs(descriptors(thumbs, low))
    orientation, dist = _confirmed(thumbs, captures, pairs, low)
    keep = dist <= 1.0
    pairs, orientation, dist = pairs[keep], orientation[keep], dist[keep]
    clusters = _clusters(len(thumbs), pairs)
    # Every pair inside each cluster, compared in one batch: a cluster of two is its own pair.
    inside = [np.array(c)[np.stack(np.triu_indices(len(c), 1), axis=1)] for c in clusters if len(c) > 2]
    if inside:
        more = np.concatenate(inside)
        o, d = _confirmed(thumbs, captures, more, low)
        pairs, orientation, dist = np.concatenate([pairs, more]), np.concatenate([orientation, o]), np.concatenate([dist, d])
    known = {(int(i), int(j)): n for n, (i, j) in enumerate(pairs.tolist())}
    groups = []
    for cluster in clusters:
        groups += _complete_groups(cluster, known, orientation, dist, captures)
    return sorted(groups, key=lambda g: g.rows[0])


def _clusters(n: int, pairs: Pairs) -> list[list[int]]:
    """Rows joined by confirmed pairs, chained (each cluster is then split into complete groups)."""
    parent = np.arange(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs.tolist():
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    members: dict[int, list[int]] = defaultdict(list)
    for x in np.unique(pairs).tolist():
        members[root(x)].append(x)
    return [sorted(m) for m in members.values() if len(m) > 1]


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
