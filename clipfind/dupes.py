"""Find duplicate photos: byte-identical copies, the same photo saved again, similar shots.

Pure logic: no SQL, no model, no Qt. The GUI regroups at a new threshold by calling
:func:`find_duplicates` again on a :class:`NeighbourGraph` built once, so moving the
slider needs neither the model nor an index query.

Rules
-----
Three tiers, shown in this order:

* **identical**: files with the same content hash (byte for byte the same). A group is
  hidden once the user marks it "not duplicates", stored as ``pair_key(h, h)``.
* **same**: one capture saved again, from the pixel fingerprints and capture records that
  :mod:`clipfind.samephoto` groups (:func:`same_sets`, once per catalog state: they do not
  depend on the threshold). Each set is kept by its best keeper, takes the byte-identical
  copies of its members, and drops a member marked "not duplicates" of the keeper. Where CLIP
  neighbours are known, a photo that is a crop of a close neighbour (:mod:`clipfind.cropcheck`)
  joins that neighbour's set with the reason "crop", never suggested for removal. The similar
  grouping below then sees each same group as one content, through its keeper.
* **similar**: different contents whose CLIP cosine similarity is at least the threshold
  (0..1, inclusive: a similarity equal to the threshold counts; anything outside 0..1
  raises ``ValueError``). Similarities are stored as float32 and the threshold is
  compared at float32 precision, so a slider value of 0.95 includes a stored 0.95.

Which photo to keep (the *keeper*, listed first; the others are pre-selected for
removal). The user's :class:`KeeperRules` come first, each deciding only where the ones
before it tie: a path chosen with "Keep this one" (the latest choice first), a protected
folder, a preferred folder (the first listed first), a preferred format (the first listed
first, unlisted formats after), a capture date, a GPS position. A member under a protected
folder is marked ``protected`` and never suggested. Where the rules tie (the default rules
set none), the best keeper has, in this order of precedence:

1. the most pixels (width x height; an unknown size counts as 0),
2. the largest file,
3. the earliest capture date (EXIF); photos without a date rank after those with one,
4. a name without a copy marker (``(1)``, `` copy``, ``_copy``, ``_backup``, `` - Copy``: what
   file managers and people add to a second copy), so ``Originals/IMG_1.jpg`` is kept over
   ``x/IMG_1 (1).jpg`` although its path is longer,
5. the shortest path,
6. the alphabetically first path (and the lowest catalog id, should two paths be equal),

so the choice never depends on the order in which photos were scanned. A member that
records what its keeper lacks (GPS, a capture date, a camera) says so in ``keeper_lacks``, so a
front end warns before it is removed.

"Not duplicates" marks may be given per tier (:data:`TierIgnored`): a mark made while
reviewing one tier hides the pair there only.

Near-duplicate grouping (the **similar** tier):

* Each set of byte-identical copies takes part once, through its keeper, so the same
  pair of files never appears in both tiers.
* Similarities come from each photo's k nearest neighbours. A pair is similar if either
  photo lists the other (the higher value wins if both do). Photos deleted since the
  graph was built are skipped.
* No chaining: a group never holds two photos that are known not to be similar.
  Photos are visited from best to worst keeper. Each photo not yet in a group (the
  *anchor*) takes its candidates: the photos not yet in a group that are similar to it,
  except pairs the user marked "not duplicates" (``pair_key`` of their content hashes).
  It considers them from most to least similar to itself (equal similarities: better
  keeper first) and accepts a candidate only if it is compatible with every candidate
  accepted so far. A rejected candidate stays free: it may anchor or join a later group.
  Two photos are *incompatible* if

  - either lists the other with a similarity below the threshold (the higher value
    wins if both do), or
  - the user marked the pair "not duplicates", or
  - neither lists the other and their lists prove them dissimilar: a list holds a
    photo's k nearest neighbours, so a photo missing from it is at most as similar as
    the list's last (k-th, lowest) entry. A list with fewer than k entries holds every
    other photo, so it rules out all the rest. If the lower of the two bounds is below
    the threshold, the pair is incompatible; otherwise nothing is known and the pair
    counts as compatible.

  For byte-identical copies, which each have a list, the lists are merged (the higher
  similarity per neighbour) and the higher of their bounds is used; a photo without a
  list of its own has no bound. The bound assumes exact lists: with an approximate
  index, a list can miss a closer photo.

  So every member is within the threshold of the group's keeper (the anchor is the
  best keeper of its group), each member's ``similarity`` is its similarity to the
  keeper, and no two members are incompatible. A photo left alone forms no group.
  Example: A~B and B~C but A not~C (a known similarity below the threshold). If
  A is the best keeper, the result is {A, B} and C stays alone; if B is, it is {B, A}
  and C stays alone (A is taken first as the more similar to B, or on a tie as the
  better keeper of the two); if C is, it is {C, B} and A stays alone.
* Lowering the threshold can merge groups, raising it can split them.

Groups within a tier are ordered by reclaimable bytes (largest first), then by the
keeper's path; members by similarity to the keeper (highest first), then by path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from clipfind.phototable import PhotoTable, catalog_ids, content_hashes, pick
from clipfind.records import (
    FORMAT_FAMILIES,
    METADATA_NAMES,
    TIERS,
    DupeGroup,
    DupeMember,
    Ids,
    KeeperRules,
    PhotoInfo,
    Scores,
    Tier,
    Vectors,
    folder_position,
)

if TYPE_CHECKING:
    from clipfind.cropcheck import CropCache
    from clipfind.fingerprint import Capture
    from clipfind.samephoto import SameGroup, SameSearch, ThumbsFn

__all__ = [
    "DupeGroup",
    "DupeMember",
    "NeighbourGraph",
    "KeeperRules",
    "SameSet",
    "Tier",
    "TierIgnored",
    "build_graph",
    "choose_keeper",
    "find_duplicates",
    "identical_groups",
    "identical_sets",
    "has_copy_marker",
    "keeper_key",
    "near_groups",
    "pair_key",
    "same_search",
    "same_sets",
    "tier_view",
]

KnnFn = Callable[[Vectors, int], tuple[Ids, Scores]]  # (queries, k) -> (labels, similarities)
VectorsFn = Callable[[list[int]], tuple[Ids, Vectors]]  # ids -> (the ids found, their stored vectors)
IDENTICAL, CLIP, CROP = ("identical",), ("clip",), ("crop",)  # reasons: byte-identical copy, similar member, crop
CROP_MIN_SIMILARITY = 0.85  # CLIP cosine from which a neighbour is checked as a crop; set by judgement, as
# no pretrained weights can be measured here (bench/dupes_quality.py stands in constructed vectors)
CROP_NEIGHBOURS = 3  # the closest neighbours of each photo checked: a crop is among its original's closest
CROP_MAX_FITS = 5_000  # new pairs checked per call, most similar first (about 2 ms each, so ~10 s): a caller
# that keeps its crop cache (Library keeps it in the catalog) goes on with the rest next time
Ignored = Container[tuple[str, str]]  # "not duplicates" marks, asked by pair_key; falsy when there are none
TierIgnored = Mapping[Tier, Ignored]  # the marks each tier asks; a tier left out ignores nothing
DEFAULT_RULES = KeeperRules()
Ints = npt.NDArray[np.int64]  # positions, content numbers, ranks: not catalog ids
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class NeighbourGraph:
    """Each photo's k most similar photos, precomputed once so regrouping is cheap.

    Rows whose photo has fewer than k neighbours are padded with id -1 and similarity
    -inf (so a padded slot never reaches any threshold).
    """

    ids: Ids  # (n,) catalog ids
    neighbours: Ids  # (n, k) catalog ids, best first, -1 = padding
    similarities: Scores  # (n, k) cosine similarities, -inf = padding

    def __post_init__(self) -> None:
        # Graphs may be loaded from storage; a shape mismatch would silently pair wrong ids.
        if self.ids.ndim != 1 or self.neighbours.ndim != 2:
            raise ValueError("neighbour graph: ids must be 1-D and neighbours 2-D")
        if self.neighbours.shape[0] != self.ids.shape[0] or self.similarities.shape != self.neighbours.shape:
            raise ValueError("neighbour graph: ids, neighbours and similarities do not line up")


def keeper_key(photo: PhotoInfo, rules: KeeperRules = DEFAULT_RULES) -> tuple:
    """Sort key of the keeper rule; the smallest key is the best photo to keep.

    The user's rules come first (:func:`_rule_key`; nothing with the default rules). The key
    is a total order (path and id are unique) so the keeper never depends on input order.
    """
    return (
        *_rule_key(photo, rules),
        -photo.pixels,
        -photo.size,
        photo.taken_at is None,
        photo.taken_at or "",
        has_copy_marker(photo.path),
        len(photo.path),
        photo.path,
        photo.id,
    )


def _rule_key(photo: PhotoInfo, rules: KeeperRules) -> tuple[int, ...]:
    """The user's rules as small ints, smallest first, one per rule set (none for the default rules):
    small ints, so the similar tier ranks 100k photos by them in numpy."""
    key: list[int] = []
    if rules.keep:
        key.append(_rule_tables(rules)[0].get(photo.path, len(rules.keep)))
    if rules.protect:
        key.append(not rules.is_protected(photo.path))
    if rules.prefer_folders:
        found = folder_position(photo.path, rules.prefer_folders)
        key.append(len(rules.prefer_folders) if found is None else found)
    if rules.formats:
        key.append(_rule_tables(rules)[1].get(photo.format, len(rules.formats)))
    if rules.prefer_dated:
        key.append(photo.taken_at is None)
    if rules.prefer_gps:
        key.append(not photo.gps)
    return tuple(key)


_RuleTables = tuple[dict[str, int], dict[str, int]]
_last_tables: tuple[KeeperRules, _RuleTables] | None = None


def _rule_tables(rules: KeeperRules) -> _RuleTables:
    """(kept path -> position, format family -> position), made once per rules object rather than per
    photo (rules are immutable, so the last one is remembered by identity: hashing them per photo would
    cost more). A format may be named by its family or an extension ("JPG", "cr2"); the first wins."""
    global _last_tables
    last = _last_tables
    if last is not None and last[0] is rules:
        return last[1]
    keep: dict[str, int] = {}
    for i, path in enumerate(rules.keep):
        keep.setdefault(path, i)
    formats: dict[str, int] = {}
    for i, name in enumerate(rules.formats):
        name = name.strip().lstrip(".").lower()
        formats.setdefault(FORMAT_FAMILIES.get(name, name), i)
    _last_tables = rules, (keep, formats)
    return keep, formats


def _rule_columns(photos: Sequence[PhotoInfo], rules: KeeperRules) -> Ints | None:
    """(n, rules set) :func:`_rule_key` of each photo; None for the default rules, which rank in numpy as
    before."""
    width = sum(map(bool, (rules.keep, rules.protect, rules.prefer_folders, rules.formats, rules.prefer_dated,
                           rules.prefer_gps)))
    if width == 0:
        return None
    flat = np.fromiter((v for p in photos for v in _rule_key(p, rules)), dtype=np.int64, count=width * len(photos))
    return flat.reshape(len(photos), width)


def _tier_ignored(ignored: Ignored | TierIgnored, tier: Tier) -> Ignored:
    """The marks one tier asks: a per-tier mapping's entry (none when absent), or the plain marks."""
    if isinstance(ignored, Mapping) and all(key in TIERS for key in ignored):
        return ignored.get(tier, frozenset())
    return ignored


def _lacks(photo: PhotoInfo, keeper: PhotoInfo) -> tuple[str, ...]:
    """The METADATA_NAMES that photo records and keeper does not."""
    if not (photo.gps or photo.taken_at or photo.camera):
        return ()
    has = (photo.gps and not keeper.gps, bool(photo.taken_at) and not keeper.taken_at,
           bool(photo.camera) and not keeper.camera)
    return tuple(name for name, lacking in zip(METADATA_NAMES, has) if lacking)


def _with_metadata_notes(group: DupeGroup) -> DupeGroup:
    """The group with each member's ``keeper_lacks`` set against its keeper; called once members
    and keeper are final, as merging or re-leading a group changes what its keeper lacks."""
    keeper = group.keeper
    members = list(group.members)
    changed = False
    for i, member in enumerate(members):
        lacks = () if i == 0 else _lacks(member.photo, keeper)  # the keeper leads its group
        if lacks != member.keeper_lacks:
            members[i] = replace(member, keeper_lacks=lacks)
            changed = True
    return replace(group, members=tuple(members)) if changed else group


# "IMG_1 (1).jpg", "IMG_1 copy.jpg", "IMG_1 copy 2.jpg", "IMG_1_copy.jpg", "IMG_1_backup.jpg",
# "IMG_1 - Copy.jpg", "IMG_1 - Copy (2).jpg", "Copy of IMG_1.jpg"
_COPY_MARKER = re.compile(
    r"(\s\(\d+\)|[\s_-]copy(\s?\d+)?|_backup\d*|\s-\scopy(\s\(\d+\))?)$|^copy of\s", re.IGNORECASE
)


def has_copy_marker(path: str) -> bool:
    """Whether a file's name says it is a second copy (the stem, extension aside)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return _COPY_MARKER.search(stem) is not None


def choose_keeper(photos: Iterable[PhotoInfo], rules: KeeperRules = DEFAULT_RULES) -> PhotoInfo:
    """The photo to suggest keeping, by :func:`keeper_key` under these rules."""
    best = min(photos, key=lambda p: keeper_key(p, rules), default=None)
    if best is None:
        raise ValueError("choose_keeper needs at least one photo")
    return best


def pair_key(hash_a: str, hash_b: str) -> tuple[str, str]:
    """Order-independent key under which a "not duplicates" mark is stored.

    Keyed by content hash, not path or id, so the mark survives moves and re-indexing.
    """
    return (hash_a, hash_b) if hash_a <= hash_b else (hash_b, hash_a)


def _check_threshold(threshold: float) -> np.float32:
    if not 0.0 <= threshold <= 1.0:  # also rejects NaN
        raise ValueError(f"similarity threshold must be between 0 and 1, got {threshold!r}")
    return np.float32(threshold)


def build_graph(
    ids: Ids,
    vectors: Vectors,
    knn: KnnFn,
    k: int = 16,
    batch: int = 4096,
) -> NeighbourGraph:
    """Query each photo's k nearest neighbours once, so thresholds can change for free.

    ``knn(query_vectors (m, d) float32, k)`` must return ``(labels (m, k), similarities
    (m, k))`` with labels in the same id space as ``ids`` (e.g. an HNSW index over the
    catalog ids with inner product on normalised vectors; labels of -1 are treated as
    missing). It is called in batches of at most ``batch`` queries, asking for k+1
    results (at most n) because the photo itself is normally among them. Only the
    photo's own id is dropped, wherever it appears: with exact duplicates a twin may
    come first, and the twin is a genuine neighbour. Rows are sorted by similarity
    (desc, ties by id) and padded to k as described in :class:`NeighbourGraph`.
    """
    if k < 1 or batch < 1:
        raise ValueError("k and batch must be at least 1")
    ids = np.asarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = ids.shape[0]
    if ids.ndim != 1 or vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError("build_graph: ids must be (n,) and vectors (n, d)")
    neighbours = np.full((n, k), -1, dtype=np.int64)
    similarities = np.full((n, k), -np.inf, dtype=np.float32)
    ask = min(k + 1, n)
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        rows, row_sims, _ = graph_rows(ids[start:stop], *knn(vectors[start:stop], ask), k)
        neighbours[start:stop, : rows.shape[1]] = rows
        similarities[start:stop, : rows.shape[1]] = row_sims
    return NeighbourGraph(ids=ids, neighbours=neighbours, similarities=similarities)


def graph_rows(ids: Ids, labels: npt.ArrayLike, sims: npt.ArrayLike, k: int) -> tuple[Ids, Scores, tuple[Ids, Scores]]:
    """One batch of knn answers for these photos as graph rows (at most k columns): each photo's own
    id and missing labels (-1) dropped, sorted by similarity desc, ties by id, dropped slots last;
    and the whole answers with those slots cleared (-1 / -inf)."""
    labels = np.asarray(labels).astype(np.int64, copy=False)
    sims = np.asarray(sims, dtype=np.float32)
    drop = (labels == ids[:, None]) | (labels < 0)
    sims = np.where(drop, np.float32(-np.inf), sims)
    labels = np.where(drop, np.int64(-1), labels)
    order = np.lexsort((labels, -sims), axis=-1)[:, :k]
    return np.take_along_axis(labels, order, axis=1), np.take_along_axis(sims, order, axis=1), (labels, sims)


@dataclass(frozen=True, slots=True)
class Contents:
    """The photos split into contents (sets of byte-identical copies), shared by both tiers.

    A content is numbered by the position of its last photo, so numbers lie in 0..n-1.
    """

    photos: Sequence[PhotoInfo]  # a list, or a PhotoTable whose rows are read when picked
    ids: Ids  # (n,) catalog id of each photo
    content_of: Ints  # (n,) content number of each photo
    keeper_pos: Ints  # (n,) position in `photos` of the keeper of content i
    copies: list[list[PhotoInfo]]  # the contents held by two or more files, each led by its keeper
    aliases: dict[int, tuple[str, ...]]  # photo id -> other paths of the same file, left out of `photos`
    rules: KeeperRules = DEFAULT_RULES  # the keeper rules the keepers were chosen by
    rule_columns: Ints | None = None  # (n, r) _rule_key of each photo; None for the default rules
    source: Sequence[PhotoInfo] = ()  # the photos as given, to choose again under other rules
    hashes: Sequence[str] = ()  # (n,) content hash of each photo, read without its row


def _one_per_file(
    photos: Sequence[PhotoInfo], rules: KeeperRules = DEFAULT_RULES
) -> tuple[Sequence[PhotoInfo], dict[int, tuple[str, ...]]]:
    """Paths that reach the same file (same device and inode) are one photo, listed once under its
    best path; the rest become its aliases. Rows without a file identity stay as they are."""
    if isinstance(photos, PhotoTable):
        shared = photos.shared_files()
    else:
        by_file: dict[tuple[int, int], list[int]] = {}
        for position, photo in enumerate(photos):
            key = photo.file_key
            if key is not None:
                by_file.setdefault(key, []).append(position)
        shared = [group for group in by_file.values() if len(group) > 1]
    if not shared:
        return photos, {}
    aliases: dict[int, tuple[str, ...]] = {}
    left_out: list[int] = []
    for positions in shared:
        group = pick(photos, positions)
        best = choose_keeper(group, rules)
        aliases[best.id] = tuple(sorted(p.path for p in group if p is not best))
        left_out.extend(pos for pos, p in zip(positions, group) if p is not best)
    if isinstance(photos, PhotoTable):
        return photos.without(left_out), aliases
    out = set(left_out)
    return [p for pos, p in enumerate(photos) if pos not in out], aliases


def _contents(photos: Iterable[PhotoInfo] | PhotoTable, rules: KeeperRules = DEFAULT_RULES) -> Contents:
    """Group by content hash at C speed (map, dict); only copies need a keeper choice."""
    source = photos if isinstance(photos, PhotoTable) else list(photos)
    listed, aliases = _one_per_file(source, rules)
    n = len(listed)
    hashes = content_hashes(listed)
    last = dict(zip(hashes, range(n)))
    content_of = np.fromiter(map(last.__getitem__, hashes), dtype=np.int64, count=n)
    ids = catalog_ids(listed)
    keeper_pos = np.arange(n, dtype=np.int64)  # exact for single files
    columns = _rule_columns(listed, rules)
    shared = np.flatnonzero(np.bincount(content_of, minlength=n)[content_of] > 1)
    shared = shared[np.argsort(content_of[shared], kind="stable")]
    # Every file of a shared content read at once, and each content's keeper the first of its files
    # in one keeper order (numpy), not a keeper_key per file (20k contents at a million photos).
    photos = pick(listed, shared.tolist())
    order, _ = _keeper_order(photos, None if columns is None else columns[shared], rules)
    rank = np.empty(shared.size, np.int64)
    rank[order] = np.arange(shared.size)
    starts = np.flatnonzero(np.diff(content_of[shared], prepend=-1)) if shared.size else shared
    bests = order[np.minimum.reduceat(rank, starts)] if shared.size else shared
    keeper_pos[content_of[shared[starts]]] = shared[bests]
    copies = []
    for start, end, best in zip(starts.tolist(), [*starts[1:].tolist(), shared.size], bests.tolist()):
        copies.append([photos[best], *photos[start:best], *photos[best + 1 : end]])  # its keeper first
    return Contents(listed, ids, content_of, keeper_pos, copies, aliases, rules, columns, source, hashes)


def _under_rules(contents: Contents, rules: KeeperRules | None) -> Contents:
    """The contents with keepers chosen by these rules (None: as they are)."""
    if rules is None or rules == contents.rules:
        return contents
    return _contents(contents.source, rules)


def _break_ties(order: Ints, tied: Mask, key: Callable[[int], tuple]) -> Ints:
    """Re-sort runs that numpy left tied (``tied[i]``: equal to the previous) by a full key.

    Numeric keys settle nearly every comparison in numpy; only the rare ties pay for
    Python string comparisons.
    """
    if not tied.any():
        return order
    starts = np.flatnonzero(~tied)
    ends = np.append(starts[1:], order.size)
    result = order.copy()
    for start, end in zip(starts.tolist(), ends.tolist()):
        if end - start > 1:
            result[start:end] = sorted(order[start:end].tolist(), key=key)
    return result


def _ties(sorted_keys: Sequence[np.ndarray]) -> Mask:
    """For keys already in sorted order: is each position equal to the previous on all keys?"""
    tied = np.zeros(sorted_keys[0].size, dtype=bool)
    tied[1:] = True
    for keys in sorted_keys:
        tied[1:] &= keys[1:] == keys[:-1]
    return tied


def _group_order(group: DupeGroup) -> tuple:
    return (-group.reclaimable_bytes, group.keeper.path, group.keeper.id)


def _identical(contents: Contents, ignored: Ignored) -> list[DupeGroup]:
    """The identical tier; ``ignored``: that tier's marks. Members carry no keeper_lacks yet."""
    groups: list[DupeGroup] = []
    for copies in contents.copies:
        content_hash = copies[0].content_hash
        if pair_key(content_hash, content_hash) in ignored:
            continue
        keeper = copies[0]  # _contents chose it under contents.rules
        members = _with_copies(keeper, 1.0, copies, contents.aliases, contents.rules)
        groups.append(DupeGroup("identical", keeper, tuple(members)))
    groups.sort(key=_group_order)
    return groups


def _with_copies(
    photo: PhotoInfo, similarity: float, copies: Sequence[PhotoInfo], aliases: Mapping[int, tuple[str, ...]],
    rules: KeeperRules, reasons: tuple[str, ...] = (),
) -> list[DupeMember]:
    """A content as members: the photo that stands for it, then its other copies by path."""
    others = sorted((p for p in copies if p is not photo), key=lambda p: (p.path, p.id))
    protect = rules.is_protected if rules.protect else _nowhere
    return [
        DupeMember(photo, similarity, None, aliases.get(photo.id, ()), reasons, protect(photo.path)),
        *(DupeMember(p, similarity, photo.id, aliases.get(p.id, ()), IDENTICAL, protect(p.path)) for p in others),
    ]


def _nowhere(path: str) -> bool:
    """No folder is protected (the default rules)."""
    return False


def identical_groups(
    photos: Sequence[PhotoInfo], ignored: Ignored | TierIgnored = frozenset(), rules: KeeperRules = DEFAULT_RULES
) -> list[DupeGroup]:
    """Byte-identical copies (same content hash), minus groups marked "not duplicates"."""
    groups = _identical(_contents(photos, rules), _tier_ignored(ignored, "identical"))
    return list(map(_with_metadata_notes, groups))


def _id_map(ids: Ids, values: Ints) -> Callable[[Ids], Ints]:
    """A vectorised ``id -> value`` lookup that gives -1 for unknown ids.

    A direct table when the ids are dense positive numbers (catalog rowids usually are),
    as mapping a whole graph's rows through a binary search would take longer than the
    grouping itself; otherwise a binary search.
    """
    if ids.size and ids.min() >= 1 and ids.max() <= 4 * ids.size + 1024:
        table = np.full(int(ids.max()) + 2, -1, dtype=np.int64)  # slots 0 and max+1 stay -1
        table[ids] = values
        # mode="clip" sends ids below 1 (such as the -1 padding) to slot 0, too large to the last.
        return lambda query: np.take(table, query, mode="clip")
    by_id = np.argsort(ids, kind="stable")
    sorted_ids, sorted_values = ids[by_id], values[by_id]

    def lookup(query: Ids) -> Ints:
        pos = np.minimum(np.searchsorted(sorted_ids, query), sorted_ids.size - 1)
        return np.where(sorted_ids[pos] == query, sorted_values[pos], -1)

    return lookup


def _compatibility(
    graph: NeighbourGraph,
    content_index: Callable[[Ids], Ints],
    rank: Ints,
    checkable: Mask,
    ranked: Sequence[PhotoInfo],
    t32: np.float32,
    ignored: Ignored,
) -> Callable[[int, int], bool]:
    """Whether two ranked contents may share a group (*compatible* in the module docstring).

    Prepared in numpy for the ranks marked ``checkable`` only (rank -1: not involved),
    as a table over the whole graph would cost more than the grouping itself; each
    check is then a few set lookups.
    """
    count = len(ranked)

    def rank_of(catalog_ids: Ids) -> Ints:
        content = content_index(catalog_ids)
        return np.where(content >= 0, rank[content], -1)

    row_rank = rank_of(graph.ids)
    rows = np.flatnonzero(row_rank >= 0)
    rows = rows[checkable[row_rank[rows]]]
    own = row_rank[rows]
    sims = graph.similarities[rows]
    # Bound on an unlisted pair: the lowest similarity of a content's list, the highest
    # over its lists (copies); +inf without a list of its own, as nothing is known then.
    bound = np.full(count, -np.inf, dtype=np.float32)
    np.maximum.at(bound, own, sims.min(axis=1))
    bound[np.bincount(own, minlength=count) == 0] = np.inf

    # Unlisted pairs: with exact kNN lists, the similarity is at most the lower bound. So
    # if both lists are *open* (bound at or above the threshold), only a listing below
    # the threshold (and none at or above it) rules a pair out; otherwise only a listing
    # at or above the threshold lets it in. Sets hold just the pairs each case asks about.
    open_ = bound >= t32
    listed = rank_of(graph.neighbours[rows])
    mask = (listed >= 0) & checkable[listed] & (listed != own[:, None])  # -1 wraps, but is masked
    x, y, close = np.broadcast_to(own[:, None], listed.shape)[mask], listed[mask], sims[mask] >= t32
    keys = np.minimum(x, y) * count + np.maximum(x, y)
    both_open = open_[x] & open_[y]
    close_pairs = set(keys[close & ~both_open].tolist())
    far = keys[~close & both_open]  # rare: an open list holds nothing below the threshold
    far_pairs = set(far[~np.isin(far, keys[close & both_open])].tolist())
    open_l = open_.tolist()

    def compatible(p: int, q: int) -> bool:
        if ignored and pair_key(ranked[p].content_hash, ranked[q].content_hash) in ignored:
            return False
        key = p * count + q if p < q else q * count + p
        if open_l[p] and open_l[q]:
            return key not in far_pairs
        return key in close_pairs

    return compatible


@dataclass(frozen=True, slots=True)
class _Ranked:
    """The contents that have an edge, in keeper order (rank 0 = the best keeper)."""

    photos: list[PhotoInfo]  # the keeper photo of each ranked content
    sizes: Ints  # (m,) their file sizes
    rank: Ints  # (n,) content number -> rank, -1 when not involved


@dataclass(frozen=True, slots=True)
class _Edges:
    """Undirected edges between ranked contents; lo is the better keeper of the two."""

    lo: Ints
    hi: Ints
    sims: Scores


def _live_edges(
    graph: NeighbourGraph, content_index: Callable[[Ids], Ints], t32: np.float32
) -> tuple[Ints, Ints, Scores]:
    """(a, b, similarity) at or above the threshold between distinct live contents: with the rows
    prepared in _compatibility, the only part of the graph that Python loops see."""
    rows, cols = np.nonzero((graph.similarities >= t32) & (graph.neighbours >= 0))
    a = content_index(graph.ids[rows])
    b = content_index(graph.neighbours[rows, cols])
    sims = graph.similarities[rows, cols].astype(np.float32)
    live = (a >= 0) & (b >= 0) & (a != b)
    return a[live], b[live], sims[live]


def _rank(contents: Contents, involved: Ints) -> _Ranked:
    """Rank the contents that have an edge by keeper order of their keepers (under contents.rules):
    the rules' columns, pixels and sizes in numpy, the rare ties by the full keeper_key."""
    positions = contents.keeper_pos[involved]
    photos = pick(contents.photos, positions.tolist())
    columns = None if contents.rule_columns is None else contents.rule_columns[positions]
    order, sizes = _keeper_order(photos, columns, contents.rules)
    rank = np.full(len(contents.photos), -1, dtype=np.int64)
    rank[involved[order]] = np.arange(order.size, dtype=np.int64)
    return _Ranked([photos[i] for i in order.tolist()], sizes[order], rank)


def _keeper_order(photos: Sequence[PhotoInfo], columns: Ints | None, rules: KeeperRules) -> tuple[Ints, Ints]:
    """Positions of the photos in keeper order, best first, as sorting by keeper_key would give it:
    the rules' columns (:func:`_rule_columns`), pixels and sizes in numpy, the rare ties by the full
    key. Also each photo's size."""
    pixels = np.fromiter(map(attrgetter("pixels"), photos), dtype=np.int64, count=len(photos))
    sizes = np.fromiter(map(attrgetter("size"), photos), dtype=np.int64, count=len(photos))
    keys = [] if columns is None else list(columns.T)
    order = np.lexsort((-sizes, -pixels, *reversed(keys)))  # the last key is the primary one
    tied = _ties([*(c[order] for c in keys), pixels[order], sizes[order]])
    return _break_ties(order, tied, lambda i: keeper_key(photos[i], rules)), sizes


def _candidate_order(ra: Ints, rb: Ints, sims: Scores) -> _Edges:
    """One edge per pair with the higher similarity, then each anchor's candidates in the order
    it considers them: similarity desc, then rank."""
    lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
    order = np.lexsort((-sims, hi, lo))
    lo, hi, sims = lo[order], hi[order], sims[order]
    first = ~_ties((lo, hi))
    lo, hi, sims = lo[first], hi[first], sims[first]
    order = np.lexsort((hi, -sims, lo))
    return _Edges(lo[order], hi[order], sims[order])


def _greedy(
    edges: _Edges, ranked: list[PhotoInfo], compatible: Callable[[int, int], bool], ignored: Ignored
) -> list[int]:
    """Greedy anchors in keeper order; returns the accepted edges.

    Only edges to worse-ranked photos matter, so the anchor is the keeper of its group: when x
    is visited, every better-ranked y that is similar to x is already in a group, unless the pair
    is ignored (which bars y from x's group anyway). For y was visited before, while x was free:
    either y was in a group then, or y anchored one with x among its candidates, and an anchor's
    first candidate is always accepted. So x's group only gathers photos ranked worse than x,
    i.e. the edges (lo=x, hi), and since keeper_key is a total order under any rules (the rules'
    columns come before it), x == choose_keeper(group, rules).
    """
    starts = np.flatnonzero(~_ties((edges.lo,))).tolist()
    lo_l, hi_l = edges.lo.tolist(), edges.hi.tolist()
    assigned = bytearray(len(ranked))
    accepted: list[int] = []
    for begin, end in zip(starts, starts[1:] + [len(lo_l)]):
        anchor = lo_l[begin]
        if assigned[anchor]:
            continue
        anchor_hash = ranked[anchor].content_hash
        joined: list[int] = []  # candidates accepted so far (the anchor is compatible with all)
        for e in range(begin, end):
            candidate = hi_l[e]
            if assigned[candidate]:
                continue
            if ignored and pair_key(anchor_hash, ranked[candidate].content_hash) in ignored:
                continue
            # Python only checks pairs inside one group, and groups are small.
            if not joined or all(compatible(candidate, member) for member in joined):
                joined.append(candidate)
                assigned[candidate] = 1
                accepted.append(e)
        if joined:
            assigned[anchor] = 1
    return accepted


def _checkable(edges: _Edges, count: int) -> Mask:
    """The ranks that pairwise checks can involve: two candidates of one anchor."""
    run_starts = np.flatnonzero(~_ties((edges.lo,)))
    run_sizes = np.diff(np.append(run_starts, edges.lo.size))
    checkable = np.zeros(count, dtype=bool)
    checkable[edges.hi[np.repeat(run_sizes > 1, run_sizes)]] = True
    return checkable


def _layout(
    edges: _Edges, ranked: _Ranked, aliases: Mapping[int, tuple[str, ...]], rules: KeeperRules
) -> list[DupeGroup]:
    """Accepted edges as groups: members by similarity desc, then path; groups by reclaimable bytes desc."""
    photos = ranked.photos
    lo, hi, sims = edges.lo, edges.hi, edges.sims
    order = np.lexsort((-sims, lo))
    hi_l = hi.tolist()
    order = _break_ties(
        order, _ties((lo[order], sims[order])), lambda e: (photos[hi_l[e]].path, photos[hi_l[e]].id)
    )
    lo, hi, sims = lo[order], hi[order], sims[order]
    group_starts = np.flatnonzero(~_ties((lo,)))
    anchors = lo[group_starts].tolist()
    reclaim = np.add.reduceat(ranked.sizes[hi], group_starts)
    group_order = np.argsort(-reclaim, kind="stable")
    group_order = _break_ties(
        group_order, _ties((reclaim[group_order],)), lambda g: (photos[anchors[g]].path, photos[anchors[g]].id)
    )
    # Lay the members out group after group in final order, then build objects in bulk.
    counts = np.diff(np.append(group_starts, lo.size))[group_order]
    bounds = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    layout = np.repeat(group_starts[group_order] - bounds[:-1], counts) + np.arange(lo.size)
    keepers = [photos[anchors[g]] for g in group_order.tolist()]
    member_photos = list(map(photos.__getitem__, hi[layout].tolist()))
    members = list(map(DupeMember, member_photos, sims[layout].tolist(), repeat(None), repeat(()), repeat(CLIP)))
    heads = list(map(DupeMember, keepers, repeat(1.0)))
    if rules.protect:
        members = [replace(m, protected=True) if rules.is_protected(m.photo.path) else m for m in members]
        heads = [replace(m, protected=True) if rules.is_protected(m.photo.path) else m for m in heads]
    if aliases:  # rare: the same file indexed under two paths
        members = [_aliased(m, aliases) for m in members]
        heads = [_aliased(m, aliases) for m in heads]
    bounds_l = bounds.tolist()
    return [
        DupeGroup("similar", keeper, (head, *members[begin:end]))
        for keeper, head, begin, end in zip(keepers, heads, bounds_l, bounds_l[1:])
    ]


def _near(graph: NeighbourGraph, contents: Contents, t32: np.float32, ignored: Ignored) -> list[DupeGroup]:
    """Similar tier over prepared contents, so find_duplicates groups by hash only once; ``ignored``:
    that tier's marks. Members carry no keeper_lacks yet."""
    if not contents.photos:
        return []
    content_index = _id_map(contents.ids, contents.content_of)  # -1: deleted since the graph was built
    a, b, sims = _live_edges(graph, content_index, t32)
    if a.size == 0:
        return []
    ranked = _rank(contents, np.unique(np.concatenate((a, b))))
    edges = _candidate_order(ranked.rank[a], ranked.rank[b], sims)
    checkable = _checkable(edges, len(ranked.photos))
    compatible = _compatibility(graph, content_index, ranked.rank, checkable, ranked.photos, t32, ignored)
    accepted = _greedy(edges, ranked.photos, compatible, ignored)
    if not accepted:
        return []
    kept = np.asarray(accepted, dtype=np.int64)
    return _layout(_Edges(edges.lo[kept], edges.hi[kept], edges.sims[kept]), ranked, contents.aliases, contents.rules)


def _aliased(member: DupeMember, aliases: Mapping[int, tuple[str, ...]]) -> DupeMember:
    found = aliases.get(member.photo.id)
    return member if found is None else replace(member, aliases=found)


def near_groups(
    graph: NeighbourGraph,
    photos: Mapping[int, PhotoInfo],
    threshold: float,
    ignored: Ignored | TierIgnored = frozenset(),
    rules: KeeperRules = DEFAULT_RULES,
) -> list[DupeGroup]:
    """Near-duplicate groups at ``threshold``, without chaining (see module docstring).

    ``photos`` maps catalog id to photo; graph ids missing from it (photos deleted
    since the graph was built) are skipped. Work in Python is proportional to the
    edges at or above the threshold and the member pairs checked within groups; the
    rest is numpy.
    """
    groups = _near(graph, _contents(photos.values(), rules), _check_threshold(threshold),
                   _tier_ignored(ignored, "similar"))
    return list(map(_with_metadata_notes, groups))


def contents_of(photos: Iterable[PhotoInfo], rules: KeeperRules = DEFAULT_RULES) -> Contents:
    """The photos grouped by content, each content kept by these rules, for find_duplicates; it does
    not depend on the threshold, so a caller regrouping at many thresholds makes it once."""
    return _contents(photos, rules)


@dataclass(frozen=True, slots=True)
class SameSet:
    """Contents that hold one capture saved more than once (clipfind.samephoto), each by the
    catalog id of the photo that stands for it, best keeper first, with what put it there and its
    CLIP cosine to that keeper. They do not depend on the slider: found once per catalog state."""

    ids: tuple[int, ...]
    reasons: tuple[tuple[str, ...], ...]
    similarity: tuple[float, ...]


def same_sets(
    contents: Contents, search: SameSearch, thumbs: ThumbsFn, vectors: VectorsFn | None = None,
    rules: KeeperRules | None = None, graph: NeighbourGraph | None = None, crop_cache: CropCache | None = None,
) -> list[SameSet]:
    """The same tier's sets: the groups of the same-photo search over the catalog's fingerprints
    (one per content, as byte-identical copies have one picture), kept to the contents given (the
    photos that can be shown).

    Args:
        search: the same-photo search (:class:`clipfind.samephoto.SameSearch`, see :func:`same_search`).
        thumbs: the fingerprints' thumbnails of some ids, for the crop check's pairs not checked yet.
        vectors: the stored CLIP vectors of some ids, read once for every set (without it, every
            similarity is 1.0).
        rules: the keeper rules that order each set (None: those the contents were made with).
        graph: CLIP neighbours, whose closest pairs are checked for crops (:func:`_with_crops`);
            without it (no model) the tier holds no crops.
        crop_cache: crop checks already made, by content (:func:`clipfind.cropcheck.find_crops`);
            a caller that keeps it across catalog states checks each pair once.
    """
    from clipfind.samephoto import CaptureTexts, SameGroup

    contents = _under_rules(contents, rules)
    content_index = _id_map(contents.ids, contents.content_of)
    content_of_search = content_index(search.ids)
    rows = np.flatnonzero(content_of_search >= 0)  # the search's rows among these contents
    if len(rows) < 2:
        return []
    local = np.full(len(search.ids), -1, np.int64)
    local[rows] = np.arange(len(rows))
    found = []
    for group in search.groups():
        members = [(int(local[r]), why) for r, why in zip(group.rows, group.reasons) if local[r] >= 0]
        if len(members) > 1:
            found.append(SameGroup(tuple(m for m, _ in members), tuple(why for _, why in members)))
    content = content_of_search[rows]
    stands_for = contents.keeper_pos[content]  # each row's photo, by its position in the contents
    if graph is not None:
        row_ids = search.ids[rows]
        found = _with_crops(found, len(contents.photos), content_index, graph, content,
                            lambda at: thumbs(row_ids[at]), CaptureTexts(search.captures[rows]),
                            [contents.hashes[p] for p in stands_for.tolist()], crop_cache)
    # Each set in keeper order, by one ranking of every content in a set (numpy, as the similar tier
    # ranks): only those photos are read, and no Python sort key is built per photo.
    in_sets = content[[r for group in found for r in group.rows]]
    ranked = _rank(contents, np.unique(in_sets))
    ranks = ranked.rank[in_sets].tolist()
    ordered = []
    start = 0
    for group in found:
        end = start + len(group.rows)
        ordered.append([ranked.photos[r] for r in sorted(ranks[start:end])])
        start = end
    by_id: dict[int, np.ndarray] = {}
    if vectors is not None and ordered:
        got_ids, got = vectors([p.id for photos in ordered for p in photos])
        by_id = dict(zip(got_ids.tolist(), got))
    sets = []
    for group, photos in zip(found, ordered):
        reasons = dict(zip(contents.ids[stands_for[list(group.rows)]].tolist(), group.reasons))
        head = by_id.get(photos[0].id)
        similarity = tuple(1.0 if head is None or p.id not in by_id else float(head @ by_id[p.id]) for p in photos)
        sets.append(SameSet(tuple(p.id for p in photos), tuple(reasons[p.id] for p in photos), similarity))
    return sets


def same_search(contents: Contents, ids: Ids, thumbs: Sequence[bytes],
                captures: Sequence[str | None]) -> tuple[SameSearch, ThumbsFn]:
    """A same-photo search from scratch over fingerprints in memory (a library keeps one in its home
    and updates it), and the thumbnails by id for :func:`same_sets`: one fingerprint per content,
    the lowest id's; fingerprints of photos not among ``contents`` are left out."""
    from clipfind.fingerprint import SIDE
    from clipfind.samephoto import SameSearch

    ids = np.asarray(ids, np.int64)
    content = _id_map(contents.ids, contents.content_of)(ids)
    order = np.argsort(ids, kind="stable")
    _, first = np.unique(content[order], return_index=True)
    rows = [r for r in np.sort(order[first]).tolist() if content[r] >= 0 and len(thumbs[r]) == SIDE * SIDE]
    row_ids = ids[rows]
    stack = np.frombuffer(b"".join(thumbs[r] for r in rows), np.uint8).reshape(len(rows), SIDE, SIDE)
    hashes = [contents.hashes[contents.keeper_pos[content[r]]] for r in rows]

    def by_id(wanted: Ids) -> npt.NDArray[np.uint8]:
        return stack[np.searchsorted(row_ids, wanted)]

    return SameSearch.build(row_ids, hashes, [captures[r] for r in rows], by_id), by_id


def _crop_candidates(graph: NeighbourGraph, content_index: Callable[[Ids], Ints], row_of_content: Ints,
                     set_of_row: Ints) -> Ints:
    """(m, 2) rows to check for a crop: each photo's closest CLIP neighbours at or above
    CROP_MIN_SIMILARITY, not already in one set, the most similar first."""
    k = min(CROP_NEIGHBOURS, graph.neighbours.shape[1])
    here = content_index(graph.ids)
    there = content_index(graph.neighbours[:, :k])
    a = np.repeat(np.where(here >= 0, row_of_content[np.maximum(here, 0)], -1), k)
    b = np.where(there >= 0, row_of_content[np.maximum(there, 0)], -1).ravel()
    sims = graph.similarities[:, :k].ravel()
    keep = (a >= 0) & (b >= 0) & (a != b) & (sims >= np.float32(CROP_MIN_SIMILARITY))
    a, b, sims = a[keep], b[keep], sims[keep]
    apart = (set_of_row[a] < 0) | (set_of_row[a] != set_of_row[b])
    lo, hi, sims = np.minimum(a, b)[apart], np.maximum(a, b)[apart], sims[apart]
    order = np.lexsort((hi, lo, -sims))  # most similar first; one pair listed by both photos once
    pairs = np.stack((lo[order], hi[order]), axis=1)
    _, first = np.unique(pairs[:, 0] * set_of_row.size + pairs[:, 1], return_index=True)
    return pairs[np.sort(first)]


def _with_crops(found: list[SameGroup], content_count: int, content_index: Callable[[Ids], Ints], graph: NeighbourGraph,
                content_of_row: Ints, thumbs: Callable[[Ints], npt.NDArray[np.uint8]], captures: Sequence[Capture],
                hashes: Sequence[str], cache: CropCache | None) -> list[SameGroup]:
    """The sets with confirmed crops added: a crop joins the set of the picture it was cut from (or
    the two make a set), reason "crop", unless it is in a set already (a photo is in one group)."""
    from clipfind.cropcheck import find_crops
    from clipfind.samephoto import SameGroup

    row_of_content = np.full(content_count, -1, dtype=np.int64)
    row_of_content[content_of_row] = np.arange(content_of_row.size)
    set_of_row = np.full(content_of_row.size, -1, dtype=np.int64)
    for number, group in enumerate(found):
        set_of_row[list(group.rows)] = number
    pairs = _crop_candidates(graph, content_index, row_of_content, set_of_row)
    if not pairs.size:
        return found
    groups = [(list(g.rows), list(g.reasons)) for g in found]
    for larger, crop in find_crops(thumbs, captures, hashes, pairs, cache, CROP_MAX_FITS):
        if set_of_row[crop] >= 0:
            continue
        number = int(set_of_row[larger])
        if number < 0:
            number = len(groups)
            groups.append(([larger], [CROP]))  # the picture cut from: "crop" is what ties it to the keeper
            set_of_row[larger] = number
        groups[number][0].append(crop)
        groups[number][1].append(CROP)
        set_of_row[crop] = number
    return [SameGroup(tuple(rows), tuple(reasons)) for rows, reasons in groups]


def _same(contents: Contents, sets: Sequence[SameSet], ignored: Ignored) -> list[DupeGroup]:
    """The same tier: each set led by its best keeper, each member followed by its byte-identical
    copies; a member the user marked "not duplicates" of the keeper leaves the group (``ignored``:
    that tier's marks). Members carry no keeper_lacks yet."""
    if not sets:
        return []
    position_of = _id_map(contents.ids, np.arange(contents.ids.size, dtype=np.int64))
    positions = position_of(np.fromiter((i for s in sets for i in s.ids), np.int64)).tolist()
    pick(contents.photos, [pos for pos in positions if pos >= 0])  # a PhotoTable reads them together
    copies = {c[0].content_hash: c for c in contents.copies}
    groups: list[DupeGroup] = []
    start = 0
    for found in sets:
        here, start = positions[start : start + len(found.ids)], start + len(found.ids)
        listed = [(contents.photos[pos], why, sim)
                  for pos, why, sim in zip(here, found.reasons, found.similarity) if pos >= 0]
        if len(listed) < 2 or listed[0][0].id != found.ids[0]:  # sets and contents come from one catalog state
            continue
        keeper = listed[0][0]
        others = [(p, why, sim) for p, why, sim in listed[1:]
                  if not (ignored and pair_key(keeper.content_hash, p.content_hash) in ignored)]
        if not others:
            continue
        others.sort(key=lambda o: (-o[2], o[0].path, o[0].id))
        rules = contents.rules
        members = _with_copies(keeper, 1.0, copies.get(keeper.content_hash, (keeper,)), contents.aliases, rules)
        for photo, why, sim in others:
            members += _with_copies(photo, sim, copies.get(photo.content_hash, (photo,)), contents.aliases, rules,
                                    why)
        groups.append(DupeGroup("same", keeper, tuple(members)))
    groups.sort(key=_group_order)
    return groups


def _collapsed(contents: Contents, same: Sequence[DupeGroup]) -> Contents:
    """The contents with each same group as one, through its keeper: the similar tier then takes a
    re-saved picture once, as it takes byte-identical copies once."""
    if not same:
        return contents
    content_index = _id_map(contents.ids, contents.content_of)
    keepers, members = np.array([(g.keeper.id, m.photo.id) for g in same for m in g.members[1:]], np.int64).T
    lead_of = np.arange(len(contents.photos), dtype=np.int64)  # content number -> the one it joins
    lead_of[content_index(members)] = content_index(keepers)
    return replace(contents, content_of=lead_of[contents.content_of])


def find_duplicates(
    photos: Sequence[PhotoInfo] | Contents,
    graph: NeighbourGraph | None,
    threshold: float,
    ignored: Ignored | TierIgnored = frozenset(),
    same: Sequence[SameSet] = (),
    rules: KeeperRules | None = None,
) -> list[DupeGroup]:
    """All duplicate groups: identical, then same, then similar (skipped when there is no graph).

    A photo is in at most one group. Byte-identical copies of a photo in a same group go there;
    a same group or a set of copies whose photo is in a similar group goes there whole, each copy
    after the member it copies: so no photo is both kept in one group and removed in another.

    Args:
        ignored: "not duplicates" marks, for every tier or per tier (:data:`TierIgnored`).
        same: the same tier's sets (:func:`same_sets`), found once per catalog state, under the
            same rules.
        rules: which photo to keep (None: the rules ``photos`` were made with if they are
            :class:`Contents`, else the default rules).
    """
    t32 = _check_threshold(threshold)
    if isinstance(photos, Contents):
        contents = _under_rules(photos, rules)
    else:
        contents = _contents(photos, DEFAULT_RULES if rules is None else rules)
    identical = _identical(contents, _tier_ignored(ignored, "identical"))
    same_groups = _same(contents, same, _tier_ignored(ignored, "same"))
    in_same = {m.photo.id for g in same_groups for m in g.members}
    identical = [g for g in identical if g.keeper.id not in in_same]
    similar = (_near(graph, _collapsed(contents, same_groups), t32, _tier_ignored(ignored, "similar"))
               if graph is not None else [])
    units = {g.keeper.id: g.members for g in (*identical, *same_groups)}
    absorbed: set[int] = set()
    merged: list[DupeGroup] = []
    for group in similar:
        if not any(m.photo.id in units for m in group.members):
            merged.append(group)
            continue
        members: list[DupeMember] = []
        for member in group.members:
            members.append(member)
            unit = units.get(member.photo.id)
            if unit is not None:
                absorbed.add(member.photo.id)
                members.extend(replace(m, similarity=member.similarity,
                                       copy_of=member.photo.id if m.copy_of is None else m.copy_of)
                               for m in unit[1:])
        merged.append(DupeGroup("similar", group.keeper, tuple(members)))
    merged.sort(key=_group_order)
    groups = ([g for g in identical if g.keeper.id not in absorbed]
              + [g for g in same_groups if g.keeper.id not in absorbed] + merged)
    return list(map(_with_metadata_notes, groups))


def identical_sets(group: DupeGroup) -> list[DupeGroup]:
    """The sets of byte-identical copies in a group, each as an identical group of its own.

    An identical group is its own only set. Elsewhere, a set is a member followed by its copies
    whose reason is "identical"; it becomes a group led by that member, every member at
    similarity 1, so the group's keeper need not lead it.
    """
    if group.tier == "identical":
        return [group]
    sets = []
    for member in group.members:
        copies = [replace(m, similarity=1.0) for m in group.members
                  if m.copy_of == member.photo.id and m.reasons == IDENTICAL]
        if copies:
            head = replace(member, similarity=1.0, copy_of=None, reasons=())
            sets.append(_with_metadata_notes(DupeGroup("identical", member.photo, (head, *copies))))
    return sets


def same_sets_of(group: DupeGroup) -> list[DupeGroup]:
    """The same groups in a group: itself for the same tier; in a similar group, each member
    followed by its re-saved copies and the byte-identical copies of either."""
    if group.tier != "similar":
        return [group] if group.tier == "same" else []
    sets = []
    for member in group.members:
        resaved = [m for m in group.members if m.copy_of == member.photo.id and m.reasons != IDENTICAL]
        if not resaved:
            continue
        heads = {member.photo.id, *(m.photo.id for m in resaved)}
        members = [replace(member, similarity=1.0, copy_of=None, reasons=())]
        for m in group.members:
            if m in resaved:
                members.append(replace(m, copy_of=None))  # stands for its own content in the set
            elif m.copy_of in heads and m.reasons == IDENTICAL:
                members.append(m)
        sets.append(_with_metadata_notes(DupeGroup("same", member.photo, tuple(members))))
    return sets


def tier_view(groups: Sequence[DupeGroup], tier: Tier | Literal["all"]) -> list[DupeGroup]:
    """The groups of one tier, for a front end that lists a tier alone (``clipfind dupes --tier``).

    "identical" and "same" also list the sets that :func:`find_duplicates` put inside groups of a
    looser tier (see :func:`identical_sets`, :func:`same_sets_of`): a photo stays in at most one
    group of the view.
    """
    if tier == "all":
        return list(groups)
    if tier == "similar":
        return [g for g in groups if g.tier == "similar"]
    if tier == "same":
        return [s for g in groups for s in same_sets_of(g)]
    return [s for g in groups for s in identical_sets(g)]
