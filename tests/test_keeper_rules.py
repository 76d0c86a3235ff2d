"""Tests for the keeper rules in clipfind.dupes (issue 11): the user's rules choose the keeper in every
tier, protected members are never suggested, keeper_lacks names what removing a member loses, and
"not duplicates" marks hold per tier."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipfind.dupes import (
    DupeGroup,
    SameSet,
    _rank,
    choose_keeper,
    contents_of,
    find_duplicates,
    identical_groups,
    keeper_key,
    near_groups,
    pair_key,
    same_search,
    same_sets,
    tier_view,
)
from clipfind.fingerprint import SIDE
from clipfind.records import METADATA_NAMES, KeeperRules, PhotoInfo
from tests.test_dupes import both_ways, by_id, graph, ids_of, reference_near, scenarios, shuffled


def pic(id: int, path: str, *, content_hash: str | None = None, side: int = 100, size: int = 1000,
        taken_at: str | None = None, gps: bool = False, camera: str | None = None) -> PhotoInfo:
    return PhotoInfo(id, path, size, 0, content_hash or f"h{id}", side, side, taken_at, camera=camera, gps=gps)


DATE = "2020-05-01T10:00:00"

# Each rule, with the photo it prefers (the winner) and one the default order prefers (the loser:
# more pixels, or for byte-identical copies, a shorter path).
RULES = {
    "keep": (KeeperRules(keep=("/w/x/IMG_1.jpg",)), {}),
    "protect": (KeeperRules(protect=("/w/x",)), {}),
    "prefer_folders": (KeeperRules(prefer_folders=("/elsewhere", "/w")), {}),
    "formats": (KeeperRules(formats=("raw", "heic")), {"suffix": ".heic"}),
    "prefer_dated": (KeeperRules(prefer_dated=True), {"taken_at": DATE}),
    "prefer_gps": (KeeperRules(prefer_gps=True), {"gps": True}),
}
BYTE_RULES = ("keep", "protect", "prefer_folders", "formats")  # rules that can tell byte-identical copies apart


def rival_pair(rule: str, identical: bool) -> tuple[PhotoInfo, PhotoInfo, KeeperRules]:
    rules, extra = RULES[rule]
    suffix = extra.get("suffix", ".jpg")
    winner = pic(1, "/w/x/IMG_1" + suffix, content_hash="A" if identical else None,
                 taken_at=extra.get("taken_at"), gps=extra.get("gps", False))
    loser = pic(2, "/l/IMG_1.jpg", content_hash="A" if identical else None, side=100 if identical else 200)
    return winner, loser, rules


def noise_thumb(a: float, b: float) -> bytes:
    y, x = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    image = 127 + 60 * np.sin(a * x * 6 + b) + 50 * np.cos(b * y * 5 + a * x * 3)
    return image.clip(0, 255).astype(np.uint8).tobytes()


# --- each rule, each tier ------------------------------------------------------------------------


@pytest.mark.parametrize("rule", BYTE_RULES)
def test_each_rule_changes_the_keeper_of_byte_identical_copies(rule: str) -> None:
    winner, loser, rules = rival_pair(rule, identical=True)
    [default] = find_duplicates([winner, loser], None, 0.9)
    assert (default.tier, default.keeper) == ("identical", loser)
    [ruled] = find_duplicates([winner, loser], None, 0.9, rules=rules)
    assert (ruled.tier, ruled.keeper, ruled.others) == ("identical", winner, (loser,))
    assert identical_groups([loser, winner], rules=rules) == [ruled]


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_changes_the_keeper_of_a_same_group(rule: str) -> None:
    winner, loser, rules = rival_pair(rule, identical=False)
    other = pic(3, "/o/other.jpg")
    photos = [winner, loser, other]
    ids = np.array([1, 2, 3], np.int64)
    thumbs = [noise_thumb(1, 2), noise_thumb(1, 2), noise_thumb(3, 0.5)]
    for given_rules, keeper, other_member in ((KeeperRules(), loser, winner), (rules, winner, loser)):
        contents = contents_of(photos, given_rules)
        sets = same_sets(contents, *same_search(contents, ids, thumbs, [None] * 3))
        assert [s.ids for s in sets] == [(keeper.id, other_member.id)]
        [group] = find_duplicates(contents, None, 0.9, same=sets)
        assert (group.tier, group.keeper, group.others) == ("same", keeper, (other_member,))
    # rules given to same_sets and find_duplicates override those the contents were made with
    plain = contents_of(photos)
    sets = same_sets(plain, *same_search(plain, ids, thumbs, [None] * 3), rules=rules)
    assert [s.ids for s in sets] == [(winner.id, loser.id)]
    [group] = find_duplicates(plain, None, 0.9, same=sets, rules=rules)
    assert group.keeper == winner


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_changes_the_keeper_of_a_similar_group(rule: str) -> None:
    winner, loser, rules = rival_pair(rule, identical=False)
    third = pic(3, "/o/third.jpg", side=150)
    g = graph(both_ways({(1, 2): 0.97, (2, 3): 0.96, (1, 3): 0.96}))
    [default] = find_duplicates([winner, loser, third], g, 0.95)
    assert default.keeper == loser
    [ruled] = find_duplicates([winner, loser, third], g, 0.95, rules=rules)
    assert ruled.tier == "similar" and ruled.keeper == winner
    assert {p.id for p in ruled.others} == {2, 3}
    assert ruled.members[1].photo == loser  # the most similar to the new keeper
    assert near_groups(g, by_id(winner, loser, third), 0.95, rules=rules) == [ruled]


# --- precedence ----------------------------------------------------------------------------------

ALL_RULES = KeeperRules(keep=("/k/keep.jpg",), protect=("/orig",), prefer_folders=("/best",),
                        formats=("raw",), prefer_dated=True, prefer_gps=True)


def ladder() -> list[PhotoInfo]:
    """Photo i meets only rule i (the 7th none), and the default order ranks them the other way round."""
    return [
        pic(1, "/k/keep.jpg", side=10),
        pic(2, "/orig/p.jpg", side=20),
        pic(3, "/best/p.jpg", side=30),
        pic(4, "/f/p.cr2", side=40),
        pic(5, "/d/p.jpg", side=50, taken_at=DATE),
        pic(6, "/g/p.jpg", side=60, gps=True),
        pic(7, "/n/p.jpg", side=70),
    ]


def test_rules_take_precedence_in_the_documented_order() -> None:
    photos = ladder()
    assert [p.id for p in sorted(photos, key=keeper_key)] == [7, 6, 5, 4, 3, 2, 1]
    assert [p.id for p in sorted(photos, key=lambda p: keeper_key(p, ALL_RULES))] == [1, 2, 3, 4, 5, 6, 7]
    for first in range(7):  # each rule beats every rule after it and the default order
        assert choose_keeper(photos[first:], ALL_RULES) == photos[first]


def test_rules_rank_the_similar_tier_in_the_documented_order() -> None:
    photos = ladder()
    g = graph(both_ways({(a, b): 0.99 for a in range(1, 8) for b in range(a + 1, 8)}), k=8)
    [group] = find_duplicates(photos, g, 0.95, rules=ALL_RULES)
    assert group.keeper.id == 1
    [group] = find_duplicates(photos[1:], g, 0.95, rules=ALL_RULES)
    assert group.keeper.id == 2 and group.members[0].protected
    assert [m.protected for m in group.members] == [True] + [False] * 5


def test_keep_prefers_the_latest_choice_and_folders_and_formats_their_order() -> None:
    a, b = pic(1, "/x/a.jpg"), pic(2, "/y/b.jpg")
    assert choose_keeper([a, b], KeeperRules(keep=(b.path, a.path))) == b
    assert choose_keeper([a, b], KeeperRules(keep=(a.path, b.path))) == a
    assert choose_keeper([a, b], KeeperRules(prefer_folders=("/y", "/x"))) == b
    assert choose_keeper([a, b], KeeperRules(prefer_folders=("/x/", "/y"))) == a
    # a folder holds what is under it, not a sibling whose name starts alike
    sibling, inside = pic(1, "/origs/a.jpg", side=200), pic(2, "/orig/b.jpg")
    assert choose_keeper([sibling, inside], KeeperRules(protect=("/orig",))) == inside
    assert choose_keeper([sibling, inside], KeeperRules(protect=("/o",))) == sibling  # neither: the default order
    raw, heic, jpeg, png = pic(1, "/a.CR2"), pic(2, "/b.HEIC"), pic(3, "/c.jpg", side=300), pic(4, "/d.png", side=200)

    def order(rules: KeeperRules) -> list[int]:
        return [p.id for p in sorted([jpeg, png, heic, raw], key=lambda p: keeper_key(p, rules))]

    assert order(KeeperRules(formats=("raw", "heic"))) == [1, 2, 3, 4]  # unlisted after, by the default order
    assert order(KeeperRules(formats=("heic", "raw"))) == [2, 1, 3, 4]
    assert order(KeeperRules(formats=("PNG", "jpg"))) == [4, 3, 1, 2]  # extensions name their family


# --- protected members ---------------------------------------------------------------------------


def test_protected_members_are_marked_in_every_tier_and_never_suggested() -> None:
    rules = KeeperRules(protect=("/orig",))
    kept = pic(1, "/orig/a.jpg", content_hash="A")
    copy = pic(2, "/orig/sub/a.jpg", content_hash="A")  # a protected copy of a protected keeper
    stray = pic(3, "/tmp/a.jpg", content_hash="A")
    [group] = find_duplicates([stray, copy, kept], None, 0.9, rules=rules)
    assert group.keeper == kept
    assert {m.photo.id: m.protected for m in group.members} == {1: True, 2: True, 3: False}
    assert group.suggested() == (stray,)
    # all protected: shown, nothing suggested
    [group] = find_duplicates([copy, kept], None, 0.9, rules=rules)
    assert group.suggested() == () and all(m.protected for m in group.members)
    # a similar group that takes the byte-identical set whole
    shot = pic(4, "/orig/shot.jpg", side=300)
    g = graph(both_ways({(1, 4): 0.97}))
    [group] = find_duplicates([stray, copy, kept, shot], g, 0.95, rules=rules)
    assert group.tier == "similar" and group.keeper == shot  # protected, then the most pixels
    assert {m.photo.id: m.protected for m in group.members} == {4: True, 1: True, 2: True, 3: False}
    assert group.suggested(include_similar=True) == (stray,)
    [identical] = tier_view([group], "identical")
    assert identical.keeper == kept and [m.protected for m in identical.members] == [True, True, False]


def protect_rules(draw: st.DrawFn) -> KeeperRules:
    return KeeperRules(
        keep=tuple(draw(st.lists(st.sampled_from(["/a/1.jpg", "/bb/2.heic", "/a/c/3.jpg", "/x.jpg"]), max_size=2))),
        protect=tuple(draw(st.lists(st.sampled_from(["/a", "/bb", "/a/c", "/b"]), max_size=2))),
        prefer_folders=tuple(draw(st.lists(st.sampled_from(["/a/c", "/bb", "/a"]), max_size=2))),
        formats=tuple(draw(st.lists(st.sampled_from(["heic", "jpeg", "raw"]), max_size=2))),
        prefer_dated=draw(st.booleans()),
        prefer_gps=draw(st.booleans()),
    )


@st.composite
def ruled_scenarios(draw: st.DrawFn):
    photos, g, threshold, ignored = draw(scenarios())
    extension = st.sampled_from([".jpg", ".heic", ".cr2"])
    photos = [replace(p, path=p.path[: -len(".jpg")] + draw(extension), gps=draw(st.booleans()),
                      camera=draw(st.sampled_from([None, "Cam"]))) for p in photos]
    return photos, g, threshold, ignored, protect_rules(draw)


def expected_lacks(photo: PhotoInfo, keeper: PhotoInfo) -> tuple[str, ...]:
    has = {"GPS": lambda p: p.gps, "capture date": lambda p: p.taken_at, "camera": lambda p: p.camera}
    return tuple(name for name in METADATA_NAMES if has[name](photo) and not has[name](keeper))


def check_group(group: DupeGroup, rules: KeeperRules) -> None:
    assert group.keeper == group.members[0].photo == choose_keeper((m.photo for m in group.members), rules)
    for i, member in enumerate(group.members):
        assert member.protected == rules.is_protected(member.photo.path)
        assert member.keeper_lacks == (() if i == 0 else expected_lacks(member.photo, group.keeper))
    suggested = set(group.suggested(include_similar=True))
    assert not any(m.protected and m.photo in suggested for m in group.members)
    if any(m.protected for m in group.members):
        assert group.members[0].protected  # a protected photo is the better keeper


@settings(max_examples=200, deadline=None)
@given(ruled_scenarios(), st.integers(0, 2**32 - 1))
def test_find_duplicates_with_rules_properties(scenario, seed: int) -> None:
    photos, g, threshold, ignored, rules = scenario
    groups = find_duplicates(photos, g, threshold, ignored, rules=rules)
    ids = [m.photo.id for grp in groups for m in grp.members]
    assert len(ids) == len(set(ids))
    for group in groups:
        check_group(group, rules)
    for tier in ("identical", "same"):
        for group in tier_view(groups, tier):
            check_group(group, rules)
    other_photos, other_graph = shuffled(photos, g, seed)
    assert find_duplicates(other_photos, other_graph, threshold, ignored, rules=rules) == groups
    assert find_duplicates(contents_of(photos), g, threshold, ignored, rules=rules) == groups
    assert find_duplicates(contents_of(photos, rules), g, threshold, ignored) == groups


@settings(max_examples=200, deadline=None)
@given(ruled_scenarios())
def test_near_groups_with_rules_follow_the_reference(scenario) -> None:
    photos, g, threshold, ignored, rules = scenario
    groups = near_groups(g, by_id(*photos), threshold, ignored, rules=rules)
    assert {(grp.keeper.id, frozenset(ids[1:])) for grp, ids in zip(groups, ids_of(groups))} == (
        reference_near(photos, g, threshold, ignored, rules)
    )


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_rules_that_tell_no_photo_apart_give_the_default_results(scenario) -> None:
    """Rules whose columns are equal for every photo go through the ruled code path (numpy columns,
    lexsort) and must give exactly what the default rules give."""
    photos, g, threshold, ignored = scenario
    idle = KeeperRules(keep=("/nowhere.jpg",), protect=("/zz",), prefer_folders=("/nowhere", "/zz"),
                       formats=("png",), prefer_gps=True)
    assert find_duplicates(photos, g, threshold, ignored, rules=idle) == find_duplicates(photos, g, threshold, ignored)


# --- what the keeper lacks -----------------------------------------------------------------------


def test_keeper_lacks_names_what_a_member_records_and_the_keeper_does_not() -> None:
    keeper = pic(1, "/a.jpg", side=400)
    rich = pic(2, "/b.jpg", taken_at=DATE, gps=True, camera="Canon EOS")
    dated = pic(3, "/c.jpg", taken_at=DATE)
    g = graph(both_ways({(1, 2): 0.97, (1, 3): 0.97, (2, 3): 0.97}))
    [group] = find_duplicates([keeper, rich, dated], g, 0.95)
    lacks = {m.photo.id: m.keeper_lacks for m in group.members}
    assert lacks == {1: (), 2: ("GPS", "capture date", "camera"), 3: ("capture date",)}
    # under prefer_dated the dated photos lead; the richest one keeps, and nobody loses a record
    [group] = find_duplicates([keeper, rich, dated], g, 0.95, rules=KeeperRules(prefer_dated=True, prefer_gps=True))
    assert group.keeper == rich and all(m.keeper_lacks == () for m in group.members)


def test_keeper_lacks_is_recomputed_when_a_view_re_leads_a_group() -> None:
    """In the similar group the keeper has a camera; the same set inside it is led by a member without."""
    keeper = pic(1, "/k.jpg", side=400, camera="Cam")
    member = pic(2, "/m.jpg", side=300, content_hash="M")
    copy = pic(5, "/m copy.jpg", side=300, content_hash="M")
    resaved = pic(3, "/m small.jpg", side=100, camera="Cam", gps=True)
    found = SameSet((2, 3), ((), ("fingerprint",)), (1.0, 0.98))
    g = graph(both_ways({(1, 2): 0.97}))
    [group] = find_duplicates([keeper, member, copy, resaved], g, 0.95, same=[found])
    assert group.tier == "similar" and group.keeper == keeper
    assert {m.photo.id: m.keeper_lacks for m in group.members} == {1: (), 2: (), 5: (), 3: ("GPS",)}
    [same] = tier_view([group], "same")
    assert same.keeper == member
    assert {m.photo.id: m.keeper_lacks for m in same.members} == {2: (), 5: (), 3: ("GPS", "camera")}
    [identical] = tier_view([group], "identical")
    assert identical.keeper == member and all(m.keeper_lacks == () for m in identical.members)


# --- "not duplicates" per tier -------------------------------------------------------------------


def test_a_mark_hides_byte_identical_copies_only_in_its_tier() -> None:
    photos = [pic(1, "/a.jpg", content_hash="A"), pic(2, "/b.jpg", content_hash="A")]
    mark = frozenset({pair_key("A", "A")})
    assert find_duplicates(photos, None, 0.9, {"identical": mark}) == []
    assert identical_groups(photos, {"identical": mark}) == []
    for shown in ({"same": mark, "similar": mark}, {}, {"same": frozenset()}):
        assert ids_of(find_duplicates(photos, None, 0.9, shown)) == [[1, 2]]
    assert find_duplicates(photos, None, 0.9, mark) == []  # a plain set holds in every tier


def test_a_mark_hides_a_same_pair_only_in_the_same_tier() -> None:
    """Marked "not the same photo", the pair may still be similar shots."""
    photos = [pic(1, "/a.jpg", side=200), pic(2, "/b.jpg")]
    found = SameSet((1, 2), ((), ("fingerprint",)), (1.0, 0.97))
    g = graph(both_ways({(1, 2): 0.97}))
    mark = frozenset({pair_key("h1", "h2")})
    assert [grp.tier for grp in find_duplicates(photos, g, 0.95, {"same": mark}, same=[found])] == ["similar"]
    assert find_duplicates(photos, None, 0.95, {"same": mark}, same=[found]) == []
    assert [grp.tier for grp in find_duplicates(photos, g, 0.95, {"similar": mark}, same=[found])] == ["same"]
    assert find_duplicates(photos, g, 0.95, {"same": mark, "similar": mark}, same=[found]) == []
    assert find_duplicates(photos, g, 0.95, mark, same=[found]) == []


def test_a_mark_hides_a_similar_pair_only_in_the_similar_tier() -> None:
    photos = [pic(1, "/a.jpg", side=200), pic(2, "/b.jpg")]
    g = graph(both_ways({(1, 2): 0.97}))
    mark = frozenset({pair_key("h1", "h2")})
    assert find_duplicates(photos, g, 0.95, {"similar": mark}) == []
    assert near_groups(g, by_id(*photos), 0.95, {"similar": mark}) == []
    assert ids_of(find_duplicates(photos, g, 0.95, {"identical": mark, "same": mark})) == [[1, 2]]
    assert ids_of(near_groups(g, by_id(*photos), 0.95, {"same": mark})) == [[1, 2]]


# --- the similar tier's ranking ------------------------------------------------------------------


@st.composite
def ranked_photos(draw: st.DrawFn) -> tuple[list[PhotoInfo], KeeperRules]:
    n = draw(st.integers(1, 30))
    photos = [
        PhotoInfo(
            id=i + 1,
            path=draw(st.sampled_from(["/a", "/bb", "/a/c", "/orig", "/k"])) + f"/{i}"
            + draw(st.sampled_from([".jpg", ".heic", ".cr2", ".png", " (1).jpg"])),
            size=draw(st.sampled_from([100, 200])),
            mtime_ns=0,
            content_hash=f"h{draw(st.integers(0, n))}",
            width=draw(st.sampled_from([None, 10, 20])),
            height=10,
            taken_at=draw(st.sampled_from([None, DATE, "2021-01-01T00:00:00"])),
            gps=draw(st.booleans()),
        )
        for i in range(n)
    ]
    keep = draw(st.lists(st.sampled_from([p.path for p in photos]), max_size=3))
    rules = KeeperRules(keep=tuple(keep),
                        protect=tuple(draw(st.lists(st.sampled_from(["/orig", "/a/c"]), max_size=1))),
                        prefer_folders=tuple(draw(st.lists(st.sampled_from(["/a", "/bb", "/k"]), max_size=2))),
                        formats=tuple(draw(st.lists(st.sampled_from(["raw", "heic", "jpeg"]), max_size=2))),
                        prefer_dated=draw(st.booleans()), prefer_gps=draw(st.booleans()))
    return photos, rules


@settings(max_examples=300, deadline=None)
@given(ranked_photos())
def test_rank_with_rules_agrees_with_sorting_by_keeper_key(scenario) -> None:
    photos, rules = scenario
    contents = contents_of(photos, rules)
    involved = np.unique(contents.content_of)
    ranked = _rank(contents, involved)
    hashes = {p.content_hash for p in photos}
    keepers = {h: choose_keeper((p for p in photos if p.content_hash == h), rules) for h in hashes}
    assert ranked.photos == sorted(keepers.values(), key=lambda p: keeper_key(p, rules))
    assert ranked.rank[involved].tolist() == [ranked.photos.index(contents.photos[contents.keeper_pos[c]])
                                               for c in involved.tolist()]


def test_rank_with_rules_at_100k_photos_matches_keeper_key_on_a_sample() -> None:
    """The numpy columns at library size: no per-photo Python sort, and the same order as keeper_key."""
    n = 100_000
    rng = np.random.default_rng(1)
    folders = ["/orig", "/phone", "/backup", "/best"]
    formats = [".jpg", ".heic", ".cr2"]
    photos = [PhotoInfo(i, f"{folders[i % 4]}/{i}{formats[i % 3]}", int(s), 0, f"h{i}", 40, 30)
              for i, s in zip(range(1, n + 1), rng.integers(1000, 5000, n).tolist())]
    rules = KeeperRules(prefer_folders=("/best", "/orig"), formats=("raw", "heic"))
    contents = contents_of(photos, rules)
    ranked = _rank(contents, np.arange(n, dtype=np.int64))
    sample = ranked.photos[:: 997]
    assert sample == sorted(sample, key=lambda p: keeper_key(p, rules))
    assert ranked.photos[0].path.startswith("/best") and ranked.photos[0].format == "raw"
    assert ranked.photos[-1].path.startswith(("/phone", "/backup")) and ranked.photos[-1].format == "jpeg"
