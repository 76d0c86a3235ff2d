"""Tests for clipfind.dupes: keeper rule, both tiers, no chaining, graph building."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Set

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipfind.dupes import (
    DupeGroup,
    DupeMember,
    NeighbourGraph,
    SameSet,
    build_graph,
    choose_keeper,
    find_duplicates,
    identical_groups,
    keeper_key,
    identical_sets,
    near_groups,
    pair_key,
    same_search,
    same_sets,
    tier_view,
)
from clipfind.records import KeeperRules, PhotoInfo


def photo(
    id: int,
    path: str | None = None,
    *,
    size: int = 1000,
    width: int | None = 100,
    height: int | None = 100,
    taken_at: str | None = None,
    content_hash: str | None = None,
) -> PhotoInfo:
    return PhotoInfo(
        id=id,
        path=path or f"/p/{id:03d}.jpg",
        size=size,
        mtime_ns=0,
        content_hash=content_hash or f"h{id}",
        width=width,
        height=height,
        taken_at=taken_at,
    )


def graph(edges: Mapping[tuple[int, int], float], ids: list[int] | None = None, k: int = 4) -> NeighbourGraph:
    """Directed graph: (a, b) -> s puts b in a's neighbour list with similarity s."""
    rows = sorted(ids if ids is not None else {a for a, _ in edges} | {b for _, b in edges})
    neighbours = np.full((len(rows), k), -1, dtype=np.int64)
    sims = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for r, a in enumerate(rows):
        listed = sorted(((s, b) for (x, b), s in edges.items() if x == a), reverse=True)
        for c, (s, b) in enumerate(listed):
            neighbours[r, c], sims[r, c] = b, s
    return NeighbourGraph(np.asarray(rows, dtype=np.int64), neighbours, sims)


def both_ways(edges: Mapping[tuple[int, int], float]) -> dict[tuple[int, int], float]:
    return {**edges, **{(b, a): s for (a, b), s in edges.items()}}


def ids_of(groups: list[DupeGroup]) -> list[list[int]]:
    return [[m.photo.id for m in g.members] for g in groups]


def by_id(*photos: PhotoInfo) -> dict[int, PhotoInfo]:
    return {p.id: p for p in photos}


# --- keeper rule -------------------------------------------------------------------------


def test_keeper_prefers_most_pixels_over_everything_else() -> None:
    big = photo(1, "/a/very/long/path/big.jpg", size=10, width=4000, height=3000)
    small = photo(2, "/s.jpg", size=10_000, width=400, height=300, taken_at="2001-01-01T00:00:00")
    assert choose_keeper([small, big]) == big


def test_keeper_unknown_dimensions_count_as_zero_pixels() -> None:
    unknown = photo(1, "/a.jpg", size=10_000, width=None, height=None)
    tiny = photo(2, "/b.jpg", size=10, width=1, height=1)
    half_known = photo(3, "/c.jpg", size=10_000, width=5000, height=None)
    assert choose_keeper([unknown, tiny, half_known]) == tiny
    assert keeper_key(unknown)[0] == keeper_key(half_known)[0] == 0


def test_keeper_larger_file_breaks_pixel_tie() -> None:
    small = photo(1, "/a.jpg", size=100, taken_at="2001-01-01T00:00:00")
    large = photo(2, "/longer/b.jpg", size=200, taken_at="2020-01-01T00:00:00")
    assert choose_keeper([small, large]) == large


def test_keeper_earlier_capture_date_breaks_size_tie_and_undated_ranks_last() -> None:
    early = photo(1, "/much/longer/path.jpg", taken_at="2010-05-01T08:00:00")
    late = photo(2, "/a.jpg", taken_at="2010-05-01T09:00:00")
    undated = photo(3, "/b.jpg")
    assert choose_keeper([undated, late, early]) == early
    assert choose_keeper([undated, late]) == late


def test_keeper_shorter_path_breaks_date_tie() -> None:
    short = photo(1, "/zzz/b.jpg")
    long = photo(2, "/aaa/bb.jpg")
    assert choose_keeper([long, short]) == short


def test_keeper_alphabetical_path_breaks_length_tie() -> None:
    first = photo(2, "/a/x.jpg")
    second = photo(1, "/b/x.jpg")
    assert choose_keeper([second, first]) == first


def test_keeper_is_independent_of_input_order() -> None:
    photos = [photo(i, f"/{'x' * (i % 3)}{i}.jpg", size=100 * (i % 2)) for i in range(8)]
    expected = choose_keeper(photos)
    for seed in range(5):
        random.Random(seed).shuffle(photos)
        assert choose_keeper(photos) == expected


def test_choose_keeper_needs_a_photo() -> None:
    with pytest.raises(ValueError):
        choose_keeper([])


def test_pair_key_is_order_independent() -> None:
    assert pair_key("b", "a") == pair_key("a", "b") == ("a", "b")
    assert pair_key("a", "a") == ("a", "a")


# --- identical tier ----------------------------------------------------------------------


def test_identical_groups_by_content_hash() -> None:
    a1 = photo(1, "/backup/a.jpg", content_hash="A")
    a2 = photo(2, "/a.jpg", content_hash="A")
    a3 = photo(3, "/old/a.jpg", content_hash="A")
    b1 = photo(4, "/b.jpg", size=5000, content_hash="B")
    b2 = photo(5, "/copy/b.jpg", size=5000, content_hash="B")
    single = photo(6, "/c.jpg", content_hash="C")
    groups = identical_groups([a1, a2, a3, b1, b2, single])
    # B reclaims 5000 bytes, A reclaims 2 x 1000: B first.
    assert ids_of(groups) == [[4, 5], [2, 1, 3]]
    assert all(g.tier == "identical" for g in groups)
    assert all(m.similarity == 1.0 for g in groups for m in g.members)
    assert groups[1].keeper == a2
    assert groups[1].others == (a1, a3)
    assert groups[1].reclaimable_bytes == 2000


def test_identical_group_hidden_when_marked_not_duplicates() -> None:
    photos = [photo(1, content_hash="A"), photo(2, content_hash="A"), photo(3, content_hash="B"), photo(4, content_hash="B")]
    assert ids_of(identical_groups(photos, {pair_key("A", "A")})) == [[3, 4]]


# --- near tier: hand-made graphs ---------------------------------------------------------


# The chain A~B 0.96, B~C 0.96, A not~C 0.90 at threshold 0.95 must never end as one group.
CHAIN = {(1, 2): 0.96, (2, 3): 0.96, (1, 3): 0.90}


def test_chain_with_best_keeper_at_the_start() -> None:
    a, b, c = photo(1, size=300), photo(2, size=200), photo(3, size=100)
    groups = near_groups(graph(both_ways(CHAIN)), by_id(a, b, c), 0.95)
    # A anchors {A, B}; C's only match B is taken, and A~C is below threshold: C stays alone.
    assert ids_of(groups) == [[1, 2]]
    assert groups[0].members[1].similarity == pytest.approx(0.96)


def test_chain_with_best_keeper_in_the_middle_takes_one_end() -> None:
    a, b, c = photo(1, size=200), photo(2, size=300), photo(3, size=100)
    # B considers A and C (equally similar: A first, the better keeper) and takes A;
    # C is known to be below the threshold with A, so it stays alone.
    assert ids_of(near_groups(graph(both_ways(CHAIN)), by_id(a, b, c), 0.95)) == [[2, 1]]


def test_chain_with_best_keeper_in_the_middle_takes_the_more_similar_end() -> None:
    a, b, c = photo(1, size=200), photo(2, size=300), photo(3, size=100)
    g = graph(both_ways({**CHAIN, (2, 3): 0.98}))
    # C is more similar to B than A is, so B takes C first, and A cannot join.
    assert ids_of(near_groups(g, by_id(a, b, c), 0.95)) == [[2, 3]]


def test_chain_with_best_keeper_at_the_end() -> None:
    a, b, c = photo(1, size=100), photo(2, size=200), photo(3, size=300)
    assert ids_of(near_groups(graph(both_ways(CHAIN)), by_id(a, b, c), 0.95)) == [[3, 2]]


@pytest.mark.parametrize(
    ("k", "extra", "expected"),
    [
        # k=1: every list is full and its only entry is above the threshold, so A and C,
        # which do not list each other, might be close: they may share B's group.
        (1, {}, [[2, 1, 3]]),
        # k=2: A's and C's lists have a free slot, so they hold every photo: A and C,
        # missing from each other's, are known to be apart.
        (2, {}, [[2, 1]]),
        # Full lists whose last entry (to D) is below the threshold: A~C is at most 0.90.
        (2, {(1, 4): 0.90, (3, 4): 0.91}, [[2, 1]]),
        # One full list above the threshold is not enough: the lower bound decides.
        (2, {(1, 5): 0.955, (3, 4): 0.91}, [[2, 1]]),
        # Both full and above the threshold (5 is deleted but was in the index): unknown.
        (2, {(1, 5): 0.955, (3, 5): 0.951}, [[2, 1, 3]]),
    ],
)
def test_chain_ends_that_do_not_list_each_other_are_decided_by_the_list_bound(
    k: int, extra: dict[tuple[int, int], float], expected: list[list[int]]
) -> None:
    a, b, c, d = photo(1, size=200), photo(2, size=300), photo(3, size=100), photo(4, size=10)
    # B lists A only (its list is full at k=1); A and C list B.
    g = graph({(2, 1): 0.96, (1, 2): 0.96, (3, 2): 0.96, **extra}, ids=[1, 2, 3, 4], k=k)
    assert ids_of(near_groups(g, by_id(a, b, c, d), 0.95)) == expected


def test_rejected_candidate_may_join_a_later_group() -> None:
    b, d, a, c = photo(2, size=400), photo(4, size=300), photo(1, size=200), photo(3, size=100)
    g = graph(both_ways({**CHAIN, (3, 4): 0.97, (2, 4): 0.5, (1, 4): 0.5}))
    # B takes A and rejects C; D (a better keeper than C) then takes C.
    assert ids_of(near_groups(g, by_id(a, b, c, d), 0.95)) == [[2, 1], [4, 3]]


def test_rejected_candidate_may_anchor_a_later_group() -> None:
    a, b, c, e = photo(1, size=200), photo(2, size=300), photo(3, size=100), photo(5, size=10)
    g = graph(both_ways({**CHAIN, (3, 5): 0.97, (2, 5): 0.5, (1, 5): 0.5}))
    assert ids_of(near_groups(g, by_id(a, b, c, e), 0.95)) == [[2, 1], [3, 5]]


def test_ignored_pair_between_two_candidates_keeps_them_apart() -> None:
    a, b, c = photo(1, size=300), photo(2, size=200), photo(3, size=100)
    g = graph(both_ways({(1, 2): 0.97, (1, 3): 0.96, (2, 3): 0.99}))
    groups = near_groups(g, by_id(a, b, c), 0.95, {pair_key("h3", "h2")})
    # A takes B (more similar); C, marked "not duplicates" with B, stays alone.
    assert ids_of(groups) == [[1, 2]]


def test_copies_merge_their_lists_and_use_the_highest_bound() -> None:
    b = photo(2, "/b.jpg", size=3000)
    a_keep, a_copy = photo(1, "/a.jpg", content_hash="A"), photo(4, "/copy/a.jpg", content_hash="A")
    c = photo(3, "/c.jpg", size=100)
    # B lists A's keeper and C. The keeper's list has a free slot (bound -inf) but the
    # copy's is full above the threshold, so A and C might be close: one group.
    edges = {(2, 1): 0.97, (2, 3): 0.96, (1, 2): 0.97, (4, 1): 1.0, (4, 2): 0.97, (3, 2): 0.96, (3, 5): 0.955}
    g = graph(edges, ids=[1, 2, 3, 4], k=2)
    assert ids_of(near_groups(g, by_id(a_keep, a_copy, b, c), 0.95)) == [[2, 1, 3]]
    # If the copy lists C below the threshold, that is known for the whole content, even
    # though the keeper's list (now full and above the threshold) would allow the pair.
    edges |= {(1, 5): 0.96, (1, 6): 0.955, (3, 6): 0.951, (4, 3): 0.90}
    g = graph(edges, ids=[1, 2, 3, 4], k=3)
    assert ids_of(near_groups(g, by_id(a_keep, a_copy, b, c), 0.95)) == [[2, 1]]
    # Unless the keeper lists C above the threshold: the higher similarity wins.
    del edges[(1, 5)]
    g = graph({**edges, (1, 3): 0.96}, ids=[1, 2, 3, 4], k=3)
    assert ids_of(near_groups(g, by_id(a_keep, a_copy, b, c), 0.95)) == [[2, 1, 3]]


def test_photo_without_a_list_of_its_own_has_no_bound() -> None:
    a, b, c = photo(1, size=200), photo(2, size=300), photo(3, size=100)
    # C was added after the graph was built, yet B lists it; A's full list allows A~C.
    g = graph({(2, 1): 0.96, (2, 3): 0.96, (1, 2): 0.96, (1, 5): 0.955}, ids=[1, 2], k=2)
    assert ids_of(near_groups(g, by_id(a, b, c), 0.95)) == [[2, 1, 3]]
    # A list with a free slot holds every photo, so it rules C out.
    g = graph({(2, 1): 0.96, (2, 3): 0.96, (1, 2): 0.96}, ids=[1, 2], k=2)
    assert ids_of(near_groups(g, by_id(a, b, c), 0.95)) == [[2, 1]]


def test_star_with_best_keeper_in_the_centre_is_one_group() -> None:
    centre = photo(1, size=900)
    leaves = [photo(i, size=100 + i) for i in range(2, 6)]
    sims = {(1, 2): 0.99, (1, 3): 0.97, (1, 4): 0.97, (1, 5): 0.96}
    # The leaves are close to each other too (a burst), so no pair rules a leaf out.
    sims |= {(i, j): 0.955 for i in range(2, 6) for j in range(i + 1, 6)}
    groups = near_groups(graph(both_ways(sims)), by_id(centre, *leaves), 0.95)
    assert ids_of(groups) == [[1, 2, 3, 4, 5]]
    assert [m.similarity for m in groups[0].members] == pytest.approx([1.0, 0.99, 0.97, 0.97, 0.96])


def test_star_whose_leaves_are_provably_apart_is_not_one_group() -> None:
    centre = photo(1, size=900)
    leaves = [photo(i, size=100 + i) for i in range(2, 5)]
    # Each leaf's list is full and ends below the threshold without the other leaves
    # (8 and 9 were deleted since), so the leaves are at most 0.8 apart.
    sims = both_ways({(1, 2): 0.99, (1, 3): 0.97, (1, 4): 0.96})
    sims |= {(leaf, gone): 0.8 for leaf in (2, 3, 4) for gone in (8, 9)}
    groups = near_groups(graph(sims, ids=[1, 2, 3, 4], k=3), by_id(centre, *leaves), 0.95)
    assert ids_of(groups) == [[1, 2]]


def test_star_with_best_keeper_on_a_leaf_takes_only_the_centre() -> None:
    centre = photo(1, size=100)
    leaves = [photo(i, size=900 - i) for i in range(2, 6)]  # leaf 2 is the best keeper
    sims = {(1, 2): 0.97, (1, 3): 0.97, (1, 4): 0.97, (1, 5): 0.97}
    groups = near_groups(graph(both_ways(sims)), by_id(centre, *leaves), 0.95)
    # Leaves are only known to be similar to the centre, which leaf 2 takes.
    assert ids_of(groups) == [[2, 1]]


def test_two_clusters_make_two_groups_ordered_by_reclaimable_bytes() -> None:
    small = [photo(i, size=100 + i) for i in (1, 2, 3)]
    large = [photo(i, size=5000 + i) for i in (4, 5)]
    sims = {(1, 2): 0.97, (1, 3): 0.97, (2, 3): 0.97, (4, 5): 0.98, (1, 4): 0.5, (3, 5): 0.6}
    groups = near_groups(graph(both_ways(sims)), by_id(*small, *large), 0.95)
    assert ids_of(groups) == [[5, 4], [3, 1, 2]]  # equal similarities: by path
    assert [g.reclaimable_bytes for g in groups] == [5004, 203]
    assert all(g.tier == "similar" for g in groups)


def test_ignored_pair_removes_one_member() -> None:
    a, b, c = photo(1, size=300), photo(2, size=200), photo(3, size=100)
    g = graph(both_ways({(1, 2): 0.97, (1, 3): 0.97, (2, 3): 0.97}))
    groups = near_groups(g, by_id(a, b, c), 0.95, {pair_key("h2", "h1")})
    # B is barred from A's group and then anchors nothing: C is already with A.
    assert ids_of(groups) == [[1, 3]]


def test_ignored_pair_removes_whole_group() -> None:
    a, b = photo(1), photo(2)
    g = graph(both_ways({(1, 2): 0.99}))
    assert near_groups(g, by_id(a, b), 0.95, {pair_key("h1", "h2")}) == []


def test_ignored_member_may_join_a_later_group() -> None:
    a, b, c = photo(1, size=300), photo(2, size=200), photo(3, size=100)
    g = graph(both_ways({(1, 2): 0.97, (2, 3): 0.97}))
    groups = near_groups(g, by_id(a, b, c), 0.95, {pair_key("h1", "h2")})
    assert ids_of(groups) == [[2, 3]]


def test_identical_copies_take_part_once_through_their_keeper() -> None:
    a_keep = photo(1, "/a.jpg", content_hash="A")
    a_copy = photo(2, "/copy/a.jpg", content_hash="A")
    b = photo(3, "/b.jpg", size=10, content_hash="B")
    # Only the copy lists B, and the copies list each other at 1.0.
    g = graph({(2, 3): 0.97, (1, 2): 1.0, (2, 1): 1.0})
    groups = near_groups(g, by_id(a_keep, a_copy, b), 0.95)
    assert ids_of(groups) == [[1, 3]]
    assert groups[0].members[1].similarity == pytest.approx(0.97)
    # One photo, one group: the copies of A go into the near group, after A, and follow it.
    both = find_duplicates([a_keep, a_copy, b], g, 0.95)
    assert [(grp.tier, ids) for grp, ids in zip(both, ids_of(both))] == [("similar", [1, 2, 3])]
    assert [m.copy_of for m in both[0].members] == [None, 1, None]
    assert both[0].suggested(include_similar=False) == (a_copy,)
    assert both[0].suggested() == (a_copy,) and both[0].suggested(include_similar=True) == (a_copy, b)


def test_identical_set_is_one_unit_in_a_near_group_kept_by_another_photo() -> None:
    """china.jpg kept its copy in the identical tier and was itself a to-remove member of a near
    group: both copies went to the trash. Now the set sits in the near group as one unit."""
    keeper = photo(1, "/big.jpg", size=5000, content_hash="K")
    china = photo(2, "/china.jpg", content_hash="C")
    china_copy = photo(3, "/china_copy.jpg", content_hash="C")
    g = graph(both_ways({(1, 2): 0.995, (1, 3): 0.995, (2, 3): 1.0}))
    groups = find_duplicates([keeper, china, china_copy], g, 0.99)
    assert [(grp.tier, ids) for grp, ids in zip(groups, ids_of(groups))] == [("similar", [1, 2, 3])]
    assert groups[0].copies_of(2) == (china_copy,)
    assert groups[0].suggested(include_similar=False) == (china_copy,)  # china stays, so its copy may go
    # Without the near group, the pair is an identical group again.
    assert [grp.tier for grp in find_duplicates([keeper, china, china_copy], g, 0.999)] == ["identical"]


def test_tier_view_lists_the_sets_of_copies_inside_near_groups_as_identical_groups() -> None:
    """`dupes --tier identical` shows each set of copies as its own group, even one that
    find_duplicates put inside a near group (led by its own best copy, not the near keeper)."""
    keeper = photo(1, "/big.jpg", size=5000, content_hash="K")
    china, china_copy = photo(2, "/china.jpg", content_hash="C"), photo(3, "/china_copy.jpg", content_hash="C")
    other, other_copy = photo(4, "/x/o.jpg", content_hash="O"), photo(5, "/x/o2.jpg", content_hash="O")
    g = graph(both_ways({(1, 2): 0.995, (1, 3): 0.995, (2, 3): 1.0}), ids=[1, 2, 3, 4, 5])
    groups = find_duplicates([keeper, china, china_copy, other, other_copy], g, 0.99)
    assert [(grp.tier, ids) for grp, ids in zip(groups, ids_of(groups))] == [
        ("identical", [4, 5]), ("similar", [1, 2, 3])]

    assert tier_view(groups, "all") == groups
    assert tier_view(groups, "similar") == [groups[1]]
    identical = tier_view(groups, "identical")
    assert [(grp.tier, grp.keeper.id, ids) for grp, ids in zip(identical, ids_of(identical))] == [
        ("identical", 4, [4, 5]), ("identical", 2, [2, 3])]
    assert identical[0] is groups[0]  # an identical group is its own only set
    assert [(m.similarity, m.copy_of) for m in identical[1].members] == [(1.0, None), (1.0, 2)]
    assert identical[1].suggested(include_similar=False) == (china_copy,)
    assert identical_sets(groups[1]) == identical[1:]
    near_only = find_duplicates([keeper, china], graph(both_ways({(1, 2): 0.995})), 0.99)
    assert tier_view(near_only, "identical") == [] and tier_view([], "similar") == []


def test_paths_of_one_file_are_one_photo() -> None:
    """A folder indexed twice through a symlink, a bind mount or a hard link: one file, never a duplicate
    of itself; the other paths are listed as aliases."""
    real = PhotoInfo(1, "/real/k.png", 10, 0, "K", 10, 10, None, device=7, inode=99)
    alias = PhotoInfo(2, "/alias/k.png", 10, 0, "K", 10, 10, None, device=7, inode=99)
    assert find_duplicates([real, alias], None, 0.95) == []
    copy = PhotoInfo(3, "/copy/k.png", 10, 0, "K", 10, 10, None, device=7, inode=100)
    groups = find_duplicates([real, alias, copy], None, 0.95)
    assert ids_of(groups) == [[3, 1]]  # /real/k.png stands for its file: shorter than /alias/k.png
    assert groups[0].members[1].aliases == ("/alias/k.png",)


def test_deleted_ids_in_the_graph_are_skipped() -> None:
    a, c = photo(1), photo(3)
    # 2 was deleted after the graph was built; it bridged 1 and 3, and row 4 is gone too.
    g = graph(both_ways({(1, 2): 0.99, (2, 3): 0.99, (4, 1): 0.99}))
    assert near_groups(g, by_id(a, c), 0.95) == []
    g = graph(both_ways({(1, 2): 0.99, (1, 3): 0.96, (4, 3): 0.99}))
    assert ids_of(near_groups(g, by_id(a, c), 0.95)) == [[1, 3]]


def test_threshold_is_inclusive() -> None:
    a, b = photo(1), photo(2)
    g = graph(both_ways({(1, 2): 0.95}))
    assert ids_of(near_groups(g, by_id(a, b), 0.95)) == [[1, 2]]
    assert near_groups(g, by_id(a, b), 0.9500001) == []
    assert ids_of(near_groups(graph(both_ways({(1, 2): 1.0})), by_id(a, b), 1.0)) == [[1, 2]]


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf])
def test_threshold_outside_zero_to_one_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError):
        near_groups(graph({}), {}, bad)
    with pytest.raises(ValueError):
        find_duplicates([], None, bad)


def test_raising_the_threshold_splits_and_lowering_merges() -> None:
    photos = by_id(photo(1, size=400), photo(2, size=300), photo(3, size=200), photo(4, size=100))
    sims = {(1, 2): 0.98, (1, 3): 0.93, (2, 3): 0.93, (3, 4): 0.96, (1, 4): 0.91, (2, 4): 0.905}
    g = graph(both_ways(sims))
    assert ids_of(near_groups(g, photos, 0.90)) == [[1, 2, 3, 4]]
    assert ids_of(near_groups(g, photos, 0.92)) == [[1, 2, 3]]
    assert ids_of(near_groups(g, photos, 0.95)) == [[1, 2], [3, 4]]
    assert ids_of(near_groups(g, photos, 0.97)) == [[1, 2]]
    assert near_groups(g, photos, 0.99) == []


def test_edges_are_undirected_and_the_higher_similarity_wins() -> None:
    a, b, c = photo(1, size=300), photo(2, size=200), photo(3, size=100)
    # Only B lists A; A and C list each other with different values. With k=1 every
    # list is full, so B and C, which do not list each other, may still be close.
    g = graph({(2, 1): 0.97, (1, 3): 0.94, (3, 1): 0.96}, ids=[1, 2, 3], k=1)
    groups = near_groups(g, by_id(a, b, c), 0.95)
    assert ids_of(groups) == [[1, 2, 3]]
    assert [m.similarity for m in groups[0].members] == pytest.approx([1.0, 0.97, 0.96])


def test_members_ordered_by_similarity_then_path() -> None:
    keeper = photo(1, "/k.jpg", size=2000)
    others = [photo(2, "/z.jpg"), photo(3, "/b.jpg"), photo(4, "/a.jpg")]
    g = graph(both_ways({(1, 2): 0.99, (1, 3): 0.97, (1, 4): 0.97, (2, 3): 0.96, (2, 4): 0.96, (3, 4): 0.98}))
    groups = near_groups(g, by_id(keeper, *others), 0.95)
    assert ids_of(groups) == [[1, 2, 4, 3]]
    assert groups[0].others == (others[0], others[2], others[1])


def test_find_duplicates_without_graph_gives_identical_tier_only() -> None:
    photos = [photo(1, content_hash="A"), photo(2, content_hash="A"), photo(3)]
    groups = find_duplicates(photos, None, 0.5)
    assert [(g.tier, ids) for g, ids in zip(groups, ids_of(groups))] == [("identical", [1, 2])]


def test_dupe_group_conveniences() -> None:
    keeper, other = photo(1, size=10), photo(2, size=7)
    group = DupeGroup("similar", keeper, (DupeMember(keeper, 1.0), DupeMember(other, 0.97)))
    assert group.others == (other,)
    assert group.reclaimable_bytes == 7


# --- build_graph ---------------------------------------------------------------------------


def exact_knn(ids: np.ndarray, vectors: np.ndarray, calls: list[tuple[int, int]] | None = None):
    """Brute-force inner-product search; ties keep index order, like many real indexes."""

    def knn(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if calls is not None:
            calls.append((queries.shape[0], k))
        sims = queries @ vectors.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return ids[order], np.take_along_axis(sims, order, axis=1).astype(np.float32)

    return knn


def clustered(n_clusters: int, per_cluster: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    vectors = np.repeat(centres, per_cluster, axis=0) + 0.15 * rng.normal(size=(n_clusters * per_cluster, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_build_graph_excludes_self_sorts_and_batches() -> None:
    vectors = clustered(5, 20, 8, seed=1)
    ids = np.arange(100, dtype=np.int64) * 7 + 3
    calls: list[tuple[int, int]] = []
    g = build_graph(ids, vectors, exact_knn(ids, vectors, calls), k=4, batch=32)
    assert g.neighbours.shape == g.similarities.shape == (100, 4)
    assert g.ids.dtype == g.neighbours.dtype == np.int64 and g.similarities.dtype == np.float32
    assert calls == [(32, 5), (32, 5), (32, 5), (4, 5)]
    full = vectors @ vectors.T
    np.fill_diagonal(full, -np.inf)
    for row in range(100):
        assert ids[row] not in g.neighbours[row]
        assert np.all(np.diff(g.similarities[row]) <= 0)
        expected = np.argsort(-full[row], kind="stable")[:4]
        assert g.neighbours[row].tolist() == ids[expected].tolist()
        assert g.similarities[row] == pytest.approx(full[row, expected], abs=1e-5)
        assert {int(i) // 20 for i in (g.neighbours[row] - 3) // 7} == {row // 20}


def test_build_graph_pads_when_catalog_is_smaller_than_k() -> None:
    vectors = clustered(1, 3, 4, seed=2)
    ids = np.array([5, 6, 7], dtype=np.int64)
    calls: list[tuple[int, int]] = []
    g = build_graph(ids, vectors, exact_knn(ids, vectors, calls), k=5)
    assert calls == [(3, 3)]  # never ask an index for more results than it holds
    assert (g.neighbours[:, 2:] == -1).all()
    assert np.isneginf(g.similarities[:, 2:]).all()
    for row, own in enumerate(ids):
        assert sorted(g.neighbours[row, :2].tolist()) == sorted(set(ids.tolist()) - {own})


def test_build_graph_drops_own_id_not_its_exact_twin() -> None:
    vectors = clustered(2, 2, 6, seed=3)
    vectors[1] = vectors[0]  # ids 20 and 10 are the same picture
    ids = np.array([20, 10, 30, 40], dtype=np.int64)
    g = build_graph(ids, vectors, exact_knn(ids, vectors), k=1)
    # For id 10 the index answers [20, 10] (the twin comes first): 10 must go, 20 stay.
    assert g.neighbours[:2, 0].tolist() == [10, 20]
    assert g.similarities[:2, 0] == pytest.approx([1.0, 1.0])
    g = build_graph(ids, vectors, exact_knn(ids, vectors), k=3)
    for row, own in enumerate(ids):
        assert own not in g.neighbours[row]
        assert (g.neighbours[row] >= 0).all()


def test_build_graph_keeps_k_when_the_index_misses_the_photo_itself() -> None:
    ids = np.array([1, 2, 3, 4], dtype=np.int64)

    def approximate(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.array([[4, 3, 2]] * queries.shape[0], dtype=np.uint64)  # hnswlib gives uint64
        return labels, np.array([[0.9, 0.8, 0.7]] * queries.shape[0], dtype=np.float32)

    g = build_graph(ids, np.eye(4, dtype=np.float32), approximate, k=2)
    assert g.neighbours[0].tolist() == [4, 3]  # self absent: best two kept
    assert g.neighbours[2].tolist() == [4, 2]  # self (3) dropped from the middle
    assert g.similarities[2] == pytest.approx([0.9, 0.7])


def test_build_graph_empty_catalog_and_bad_arguments() -> None:
    def never(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("knn must not be called")

    g = build_graph(np.empty(0, dtype=np.int64), np.empty((0, 8), dtype=np.float32), never, k=3)
    assert g.neighbours.shape == (0, 3)
    with pytest.raises(ValueError):
        build_graph(np.arange(2), np.zeros((3, 4)), never)
    with pytest.raises(ValueError):
        build_graph(np.arange(2), np.zeros((2, 4)), never, k=0)


def test_graph_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError):
        NeighbourGraph(np.arange(3), np.zeros((2, 4), dtype=np.int64), np.zeros((2, 4), dtype=np.float32))


def test_built_graph_groups_the_clusters() -> None:
    vectors = clustered(4, 5, 16, seed=4)
    ids = np.arange(20, dtype=np.int64)
    g = build_graph(ids, vectors, exact_knn(ids, vectors), k=6)
    photos = {i: photo(i, size=1000 - i) for i in range(20)}
    sims = vectors @ vectors.T
    same = np.equal.outer(ids // 5, ids // 5)
    threshold = float(sims[same].min()) - 1e-4
    assert sims[~same].max() < threshold
    groups = near_groups(g, photos, threshold)
    assert sorted(sorted(ids) for ids in ids_of(groups)) == [list(range(c, c + 5)) for c in range(0, 20, 5)]
    assert [g.keeper.id for g in groups] == [0, 5, 10, 15]


# --- properties ----------------------------------------------------------------------------

SIMS = [0.3, 0.9, 0.95, 0.97, 1.0]
DELETED = [900, 901]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[PhotoInfo], NeighbourGraph, float, frozenset[tuple[str, str]]]:
    n = draw(st.integers(1, 9))
    ids = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n, unique=True))
    hashes = [f"h{i}" for i in range(draw(st.integers(1, n)))]
    photos = [
        PhotoInfo(
            id=i,
            path=f"/{draw(st.sampled_from(['a', 'bb', 'a/c']))}/{i}.jpg",
            size=draw(st.sampled_from([100, 200])),
            mtime_ns=0,
            content_hash=draw(st.sampled_from(hashes)),
            width=draw(st.sampled_from([None, 10, 20])),
            height=draw(st.sampled_from([None, 10])),
            taken_at=draw(st.sampled_from([None, "2020-01-01T00:00:00", "2021-06-01T12:00:00"])),
        )
        for i in ids
    ]
    k = draw(st.integers(1, 4))
    row_ids = draw(st.lists(st.sampled_from(ids + DELETED), unique=True))
    candidates = st.sampled_from(ids + DELETED + [-1])
    neighbours = np.array(
        [draw(st.lists(candidates, min_size=k, max_size=k)) for _ in row_ids], dtype=np.int64
    ).reshape(len(row_ids), k)
    sims = np.array(
        [draw(st.lists(st.sampled_from(SIMS), min_size=k, max_size=k)) for _ in row_ids], dtype=np.float32
    ).reshape(len(row_ids), k)
    sims[neighbours < 0] = -np.inf
    threshold = draw(st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.97, 1.0]) | st.floats(0.0, 1.0))
    pairs = [pair_key(a, b) for a in hashes for b in hashes if a <= b]
    ignored = frozenset(draw(st.lists(st.sampled_from(pairs), max_size=3)))
    return photos, NeighbourGraph(np.asarray(row_ids, dtype=np.int64), neighbours, sims), threshold, ignored


def representatives(photos: list[PhotoInfo], rules: KeeperRules = KeeperRules()) -> dict[int, PhotoInfo]:
    """Catalog id -> keeper of its byte-identical copies."""
    keepers = {h: choose_keeper((p for p in photos if p.content_hash == h), rules)
               for h in {p.content_hash for p in photos}}
    return {p.id: keepers[p.content_hash] for p in photos}


def known_similarities(
    photos: list[PhotoInfo], g: NeighbourGraph, rules: KeeperRules = KeeperRules()
) -> dict[frozenset[int], float]:
    """Max similarity per unordered pair of representatives, straight from the definition."""
    rep = representatives(photos, rules)
    known: dict[frozenset[int], float] = {}
    for row, a in enumerate(g.ids.tolist()):
        for b, s in zip(g.neighbours[row].tolist(), g.similarities[row].tolist()):
            if a in rep and b in rep and rep[a].id != rep[b].id:
                pair = frozenset((rep[a].id, rep[b].id))
                known[pair] = max(known.get(pair, -math.inf), s)
    return known


def list_bounds(photos: list[PhotoInfo], g: NeighbourGraph, rules: KeeperRules = KeeperRules()) -> dict[int, float]:
    """Representative id -> most a photo missing from its lists can be similar to it.

    The lowest similarity of each of its content's rows (-inf with a free slot), the
    highest over those rows; representatives without a row are absent (no bound).
    """
    rep = representatives(photos, rules)
    bounds: dict[int, float] = {}
    for row, a in enumerate(g.ids.tolist()):
        if a in rep:
            lowest = min(g.similarities[row].tolist())
            bounds[rep[a].id] = max(bounds.get(rep[a].id, -math.inf), lowest)
    return bounds


def reference_near(
    photos: list[PhotoInfo], g: NeighbourGraph, threshold: float, ignored: Set[tuple[str, str]],
    rules: KeeperRules = KeeperRules(),
) -> set[tuple[int, frozenset[int]]]:
    """The grouping rule as worded in the docs, without any of the shortcuts."""
    known = known_similarities(photos, g, rules)
    bounds = list_bounds(photos, g, rules)

    def rank(p: PhotoInfo) -> tuple:
        return keeper_key(p, rules)

    t32 = float(np.float32(threshold))

    def similarity(p: PhotoInfo, q: PhotoInfo) -> float:
        return known.get(frozenset((p.id, q.id)), -math.inf)

    def compatible(p: PhotoInfo, q: PhotoInfo) -> bool:
        if pair_key(p.content_hash, q.content_hash) in ignored:
            return False
        pair = frozenset((p.id, q.id))
        if pair in known:
            return known[pair] >= t32
        return min(bounds.get(p.id, math.inf), bounds.get(q.id, math.inf)) >= t32

    order = sorted({p.id: p for p in representatives(photos, rules).values()}.values(), key=rank)
    assigned: set[int] = set()
    groups = set()
    for anchor in order:
        if anchor.id in assigned:
            continue
        candidates = [
            q
            for q in order
            if q.id != anchor.id
            and q.id not in assigned
            and similarity(anchor, q) >= t32
            and pair_key(anchor.content_hash, q.content_hash) not in ignored
        ]
        candidates.sort(key=lambda q: (-similarity(anchor, q), rank(q)))
        members: list[PhotoInfo] = []
        for q in candidates:
            if all(compatible(q, m) for m in [anchor, *members]):
                members.append(q)
        if members:
            assigned |= {m.id for m in members} | {anchor.id}
            groups.add((anchor.id, frozenset(m.id for m in members)))
    return groups


def shuffled(photos: list[PhotoInfo], g: NeighbourGraph, seed: int) -> tuple[list[PhotoInfo], NeighbourGraph]:
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(g.ids))
    cols = rng.permutation(g.neighbours.shape[1])
    other = NeighbourGraph(g.ids[rows], g.neighbours[rows][:, cols], g.similarities[rows][:, cols])
    return [photos[i] for i in rng.permutation(len(photos))], other


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_near_groups_properties(scenario, seed: int) -> None:
    photos, g, threshold, ignored = scenario
    groups = near_groups(g, by_id(*photos), threshold, ignored)
    rep = representatives(photos)
    known = known_similarities(photos, g)
    bounds = list_bounds(photos, g)
    t32 = float(np.float32(threshold))
    seen: set[int] = set()
    for group in groups:
        ids = [m.photo.id for m in group.members]
        assert group.tier == "similar"
        assert len(ids) >= 2
        assert seen.isdisjoint(ids)
        seen.update(ids)
        assert group.members[0] == DupeMember(group.keeper, 1.0)
        assert group.keeper == choose_keeper(m.photo for m in group.members)
        assert all(rep[i] == m.photo for i, m in zip(ids, group.members))  # representatives only
        assert len({m.photo.content_hash for m in group.members}) == len(ids)
        for m in group.members[1:]:
            assert m.similarity >= t32
            assert m.similarity == known[frozenset((group.keeper.id, m.photo.id))]
        # No chaining: no two members are known to be apart, or marked "not duplicates",
        # or (if neither lists the other) provably apart by the bounds of their lists.
        for i, p in enumerate(group.members):
            for q in group.members[:i]:
                pair = frozenset((p.photo.id, q.photo.id))
                assert known.get(pair, math.inf) >= t32
                assert pair_key(p.photo.content_hash, q.photo.content_hash) not in ignored
                if pair not in known:
                    assert min(bounds.get(p.photo.id, math.inf), bounds.get(q.photo.id, math.inf)) >= t32
        rest = [(-m.similarity, m.photo.path, m.photo.id) for m in group.members[1:]]
        assert rest == sorted(rest)
    assert {(grp.keeper.id, frozenset(i for i in ids[1:])) for grp, ids in zip(groups, ids_of(groups))} == (
        reference_near(photos, g, threshold, ignored)
    )
    other_photos, other_graph = shuffled(photos, g, seed)
    assert near_groups(other_graph, by_id(*other_photos), threshold, ignored) == groups


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_find_duplicates_properties(scenario, seed: int) -> None:
    photos, g, threshold, ignored = scenario
    groups = find_duplicates(photos, g, threshold, ignored)
    identical = [grp for grp in groups if grp.tier == "identical"]
    assert groups[: len(identical)] == identical  # identical tier first
    every_identical = identical_groups(photos, ignored)
    assert all(grp in every_identical for grp in identical)
    ids = [m.photo.id for grp in groups for m in grp.members]
    assert len(ids) == len(set(ids))  # a photo is in at most one group
    listed = set(ids)
    for grp in every_identical:  # a set of copies is shown whole, as a group or inside a near group
        members = {m.photo.id for m in grp.members}
        assert members <= listed or members.isdisjoint(listed)
    for group in groups:
        assert group.keeper not in group.suggested() and group.keeper not in group.suggested(True)
        for member in group.members:
            if member.copy_of is not None:
                assert member.copy_of in {m.photo.id for m in group.members}
                assert member.photo.content_hash == next(
                    m.photo.content_hash for m in group.members if m.photo.id == member.copy_of)
    for group in identical:
        assert len(group.members) >= 2
        assert len({m.photo.content_hash for m in group.members}) == 1
        assert group.keeper == group.members[0].photo == choose_keeper(m.photo for m in group.members)
        assert pair_key(group.keeper.content_hash, group.keeper.content_hash) not in ignored
    pairs = [{(a.photo.id, b.photo.id) for a in grp.members for b in grp.members if a != b} for grp in groups]
    assert all(x.isdisjoint(y) for i, x in enumerate(pairs) for y in pairs[i + 1 :])  # no pair in both tiers
    reclaim = [(-grp.reclaimable_bytes, grp.keeper.path) for grp in identical]
    assert reclaim == sorted(reclaim)
    other_photos, other_graph = shuffled(photos, g, seed)
    assert find_duplicates(other_photos, other_graph, threshold, ignored) == groups


# --- scale -----------------------------------------------------------------------------------


def test_near_groups_completes_on_100k_photos() -> None:
    """Not a timing assertion: proves the hot path handles a library-sized graph."""
    n, k = 100_000, 16
    rng = np.random.default_rng(0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    photos = {
        i: PhotoInfo(i, f"/photos/{i:06d}.jpg", 1_000_000 + i % 977, 0, f"h{i % 97_000}", 4000, 3000)
        for i in range(1, n + 1)
    }
    neighbours = rng.integers(1, n + 1, size=(n, k), dtype=np.int64)
    sims = -np.sort(-rng.uniform(0.3, 0.92, size=(n, k)).astype(np.float32), axis=1)
    groups = near_groups(NeighbourGraph(ids, neighbours, sims), photos, 0.9)
    assert groups
    assert sum(len(g.members) for g in groups) == len({m.photo.id for g in groups for m in g.members})


def test_keeper_prefers_a_name_without_a_copy_marker_before_a_shorter_path() -> None:
    """Tried as a new user would: the copy with the shorter path was kept over the original."""
    original = photo(1, "/home/me/pexels_interior/pexels-1317558.jpg", content_hash="A")
    copy = photo(2, "/home/me/dupes_test/pexels-1317558 (1).jpg", content_hash="A")
    assert len(copy.path) < len(original.path)  # the shorter path no longer decides
    assert choose_keeper([copy, original]) == original
    [group] = identical_groups([copy, original])
    assert group.keeper == original and group.others == (copy,)
    # still after pixels, size and date: a bigger "copy" is the better photo to keep
    bigger = photo(3, "/x/IMG_1 copy.jpg", width=200, content_hash="B")
    assert choose_keeper([photo(4, "/x/IMG_1.jpg", content_hash="C"), bigger]) == bigger


# --- the same tier (issue 11) ------------------------------------------------------------
def _same_world() -> tuple[list[PhotoInfo], SameSet]:
    """1 and its byte copy 2; 3 is 1 saved again smaller (mirrored); 4 and 5 are other pictures."""
    big = photo(1, "/p/a.jpg", size=5000, width=4000, height=3000, content_hash="A")
    copy = photo(2, "/p/copy/a.jpg", size=5000, width=4000, height=3000, content_hash="A")
    small = photo(3, "/p/a small.jpg", size=900, width=800, height=600)
    return [big, copy, small, photo(4), photo(5)], SameSet((1, 3), ((), ("fingerprint", "mirrored")), (1.0, 0.97))


def test_a_same_group_takes_its_byte_copies_and_is_kept_by_the_best_photo() -> None:
    photos, found = _same_world()
    groups = find_duplicates(photos, None, 0.95, same=[found])
    assert [(g.tier, ids) for g, ids in zip(groups, ids_of(groups))] == [("same", [1, 2, 3])]
    keeper, copy, small = groups[0].members
    assert (copy.copy_of, copy.reasons) == (1, ("identical",))
    assert (small.copy_of, small.reasons, small.similarity) == (None, ("fingerprint", "mirrored"), 0.97)
    assert groups[0].suggested() == (copy.photo, small.photo)  # the same photo: ticked by default
    assert tier_view(groups, "same") == groups and [g.keeper.id for g in tier_view(groups, "identical")] == [1]
    assert tier_view(groups, "similar") == []
    # "not duplicates" by content takes the re-saved copy out; the byte copy stays an identical group
    marked = find_duplicates(photos, None, 0.95, frozenset({pair_key("A", "h3")}), same=[found])
    assert [(g.tier, ids) for g, ids in zip(marked, ids_of(marked))] == [("identical", [1, 2])]


def test_a_similar_group_takes_a_same_group_whole_and_ticks_only_copies() -> None:
    photos, found = _same_world()
    g = graph(both_ways({(3, 4): 0.96}))  # only the small copy lists photo 4
    groups = find_duplicates(photos, g, 0.95, same=[found])
    assert [(grp.tier, ids) for grp, ids in zip(groups, ids_of(groups))] == [("similar", [1, 2, 3, 4])]
    members = {m.photo.id: m for m in groups[0].members}
    assert members[4].reasons == ("clip",) and members[3].copy_of == 1 and members[2].copy_of == 1
    assert {p.id for p in groups[0].suggested()} == {2, 3}  # copies of the kept photo; the shot is the user's
    [same] = tier_view(groups, "same")
    assert ids_of([same]) == [[1, 2, 3]] and [m.copy_of for m in same.members] == [None, 1, None]
    assert ids_of(tier_view(groups, "identical")) == [[1, 2]]


def test_same_sets_come_from_fingerprints_one_per_content(tmp_path) -> None:
    from PIL import Image, ImageOps

    from clipfind.dupes import contents_of
    from clipfind.fingerprint import thumbnail
    from tests.helpers import PHOTOS

    if not PHOTOS.is_dir():
        pytest.skip("real photos not found")
    with Image.open(sorted((PHOTOS / "kodak24").glob("*.png"))[0]) as im:
        original = im.convert("RGB")
    with Image.open(sorted((PHOTOS / "kodak24").glob("*.png"))[1]) as im:
        other = im.convert("RGB")
    photos, found = _same_world()
    pictures = {1: original, 2: original, 3: ImageOps.mirror(original.resize((384, 256))), 4: other,
                5: ImageOps.grayscale(other).convert("RGB").rotate(90, expand=True)}
    ids = np.array(sorted(pictures), np.int64)
    thumbs = [thumbnail(pictures[i]).tobytes() for i in ids.tolist()]
    vectors = {i: np.eye(4, dtype=np.float32)[0] if i != 3 else np.array([0.6, 0.8, 0, 0], np.float32)
               for i in ids.tolist()}
    contents = contents_of(photos)
    sets = same_sets(contents, *same_search(contents, ids, thumbs, [None] * len(ids)),
                     vectors=lambda wanted: (np.array(wanted), np.stack([vectors[i] for i in wanted])))
    by_first = {s.ids[0]: s for s in sets}
    assert set(by_first) == {1, 4}  # one per content: the byte copy 2 is not a set of its own
    assert by_first[1].ids == (1, 3) and "mirrored" in by_first[1].reasons[1]
    assert by_first[1].similarity == pytest.approx((1.0, 0.6))
    assert by_first[4].ids == (4, 5) and "turned" in by_first[4].reasons[1]


def _crop_world(share: float = 0.5) -> tuple[list[PhotoInfo], np.ndarray, list[bytes]]:
    """1: a photo; 2: a crop of it (`share` of the area); 3: another photo; 4: photo 1 saved smaller."""
    from clipfind.fingerprint import thumbnail
    from tests.helpers import real_photo

    original = real_photo("kodak24/kodim05.png", 600)
    w, h = original.size
    cw, ch = int(w * share ** 0.5), int(h * share ** 0.5)
    crop = original.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    pictures = {1: original, 2: crop, 3: real_photo("kodak24/kodim23.png", 600), 4: original.resize((w // 2, h // 2))}
    photos = [photo(1, "/p/a.jpg", size=9000, width=w, height=h), photo(2, "/p/a crop.jpg", width=cw, height=ch),
              photo(3, "/p/b.jpg"), photo(4, "/p/a small.jpg", size=800, width=w // 2, height=h // 2)]
    ids = np.array(sorted(pictures), np.int64)
    return photos, ids, [thumbnail(pictures[i]).tobytes() for i in ids.tolist()]


def test_a_crop_joins_its_photos_same_group_through_clip_neighbours_and_is_never_ticked() -> None:
    from clipfind.dupes import contents_of

    photos, ids, thumbs = _crop_world()
    contents = contents_of(photos)
    neighbours = graph(both_ways({(1, 2): 0.9, (1, 3): 0.93, (2, 4): 0.9}))
    sets = same_sets(contents, *same_search(contents, ids, thumbs, [None] * 4), graph=neighbours)
    [found] = sets
    assert found.ids[0] == 1 and dict(zip(found.ids[1:], found.reasons[1:])) == {4: ("fingerprint",), 2: ("crop",)}
    [group] = find_duplicates(contents, None, 0.95, same=sets)
    crop = next(m for m in group.members if m.photo.id == 2)
    assert group.tier == "same" and crop.reasons == ("crop",)
    assert [p.id for p in group.suggested()] == [4]  # the re-saved copy; the crop is the user's call
    assert [p.id for p in group.suggested(include_similar=True)] == [4]
    # without CLIP neighbours (no model) the tier holds no crop; below the gate, none is looked at
    assert [s.ids for s in same_sets(contents, *same_search(contents, ids, thumbs, [None] * 4))] == [(1, 4)]
    low = graph(both_ways({(1, 2): 0.8}))
    assert [s.ids for s in same_sets(contents, *same_search(contents, ids, thumbs, [None] * 4), graph=low)] == [(1, 4)]
    # marked "not duplicates" in the same tier, the crop leaves the group
    marked = find_duplicates(contents, None, 0.95, {"same": frozenset({pair_key("h1", "h2")})}, same=sets)
    assert ids_of(marked) == [[1, 4]]


def test_a_crop_of_a_photo_in_no_group_makes_a_group_of_two_with_nothing_ticked() -> None:
    from clipfind.dupes import contents_of

    photos, ids, thumbs = _crop_world(0.7)
    keep = [0, 1, 2]  # no re-saved copy
    contents = contents_of(photos[:3])
    cache: dict[tuple[str, str], str] = {}
    neighbours = graph(both_ways({(1, 2): 0.88, (2, 3): 0.9}))
    search = same_search(contents, ids[keep], [thumbs[i] for i in keep], [None] * 3)
    sets = same_sets(contents, *search, graph=neighbours, crop_cache=cache)
    assert [(s.ids, s.reasons) for s in sets] == [((1, 2), (("crop",), ("crop",)))]
    assert cache == {("h1", "h2"): "h2", ("h2", "h3"): ""}  # each pair looked at once, by content
    [group] = find_duplicates(contents, None, 0.95, same=sets)
    assert group.tier == "same" and group.suggested() == ()
