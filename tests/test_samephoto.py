"""clipfind.samephoto: the model-free "same photo" groups."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageEnhance, ImageOps

import clipfind.samephoto as samephoto
from clipfind.fingerprint import SIDE, Capture, descriptors, match, read_capture, thumbnail
from clipfind.samephoto import SameGroup, SameSearch, candidate_pairs, same_groups
from tests.helpers import real_photo

NAMES = ("kodak24/kodim05.png", "kodak24/kodim23.png", "pexels_interior/pexels-1571459.jpg")


def _photo(name: str) -> Image.Image:
    return real_photo(name, 600)


def _read(image: Image.Image, fmt: str = "JPEG", **options: object) -> tuple[npt.NDArray[np.uint8], Capture]:
    """Save, then read as the indexer does: capture from the opened file, thumbnail of the upright RGB."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        capture = read_capture(opened)
        return thumbnail(ImageOps.exif_transpose(opened).convert("RGB")), capture


def _burst(image: Image.Image, pct: int) -> Image.Image:
    w, h = image.size
    frame = image.crop((w * pct // 100, h * pct // 200, w, h)).resize((w, h))
    patch = frame.crop((w // 4, h // 4, w // 4 + w // 5, h // 4 + h // 5))
    frame.paste(patch, (w // 4 + w // 10, h // 4 + h // 15))
    return frame


def _library() -> tuple[list[str], npt.NDArray[np.uint8], list[Capture]]:
    """Labels ('<photo>:<what>'), thumbnails and captures of a few real photos, their copies and bursts."""
    labels, thumbs, captures = [], [], []
    for n, name in enumerate(NAMES):
        image = _photo(name)
        w, h = image.size
        files = {
            "original": (image, {"quality": 95}),
            "jpeg q30": (image, {"quality": 30}),
            "resize 50%": (image.resize((w // 2, h // 2)), {"quality": 90}),
            "mirror": (ImageOps.mirror(image), {"quality": 90}),
            "rotate 90": (image.rotate(90, expand=True), {"quality": 90}),
            "grey": (image.convert("L"), {"quality": 90}),
            "brightness +30%": (ImageEnhance.Brightness(image).enhance(1.3), {"quality": 90}),
            "burst 2%": (_burst(image, 2), {"quality": 90}),
            "burst 4%": (_burst(image, 4), {"quality": 90}),
        }
        for what, (picture, options) in files.items():
            thumb, capture = _read(picture, **options)
            labels.append(f"{n}:{what}")
            thumbs.append(thumb)
            captures.append(capture)
    return labels, np.stack(thumbs), captures


@pytest.fixture(scope="module")
def library() -> tuple[list[str], npt.NDArray[np.uint8], list[Capture], list[SameGroup]]:
    labels, thumbs, captures = _library()
    return labels, thumbs, captures, same_groups(thumbs, captures)


def _group_of(groups: list[SameGroup], row: int) -> SameGroup | None:
    return next((g for g in groups if row in g.rows), None)


def test_copies_group_with_their_original_and_bursts_stay_out(library) -> None:
    labels, _, _, groups = library
    for n in range(len(NAMES)):
        original = labels.index(f"{n}:original")
        group = _group_of(groups, original)
        assert group is not None, f"{NAMES[n]}: no group"
        got = {labels[r] for r in group.rows}
        copies = {f"{n}:{w}" for w in ("original", "jpeg q30", "resize 50%", "mirror", "rotate 90", "grey",
                                       "brightness +30%")}
        assert got == copies, f"{NAMES[n]}: {sorted(got ^ copies)}"


def test_groups_are_sorted_and_never_mix_photos(library) -> None:
    labels, _, _, groups = library
    for g in groups:
        assert list(g.rows) == sorted(g.rows) and len(g.rows) >= 2 and len(g.reasons) == len(g.rows)
        assert len({labels[r].split(":")[0] for r in g.rows}) == 1
        assert not any("burst" in labels[r] for r in g.rows)


def test_reasons_name_turns_and_mirrors(library) -> None:
    labels, _, _, groups = library
    for n in range(len(NAMES)):
        group = _group_of(groups, labels.index(f"{n}:original"))
        assert group is not None
        said = {labels[r].split(":")[1]: set(reasons) for r, reasons in zip(group.rows, group.reasons)}
        assert all("fingerprint" in s for s in said.values())
        # Told against the group's centre, which is one of the upright, unmirrored files here.
        assert "turned" in said["rotate 90"] and "mirrored" not in said["rotate 90"]
        assert "mirrored" in said["mirror"] and "turned" not in said["mirror"]
        assert not said["jpeg q30"] & {"turned", "mirrored", "exif-capture"}


def _chain() -> npt.NDArray[np.uint8]:
    """A, B, C: B is halfway between A and C, which differ in one patch like two frames of a burst."""
    a = thumbnail(_photo(NAMES[0])).astype(np.float32)
    b, c = a.copy(), a.copy()
    b[12:20, 12:20] += 8
    c[12:20, 12:20] += 16
    return np.stack([a, b, c]).clip(0, 255).astype(np.uint8)


def test_no_chaining_through_a_middle_picture() -> None:
    thumbs = _chain()
    assert match(thumbs[0], thumbs[1]).same() and match(thumbs[1], thumbs[2]).same()
    assert not match(thumbs[0], thumbs[2]).same(slack=1.3)
    groups = same_groups(thumbs, [Capture()] * 3)
    assert len(groups) == 1 and len(groups[0].rows) == 2  # B joins one of them, never both


def test_exif_capture_reason_and_differing_captures_split() -> None:
    image = _photo(NAMES[1])
    thumb, _ = _read(image, quality=90)
    small, _ = _read(image.resize((image.width // 2, image.height // 2)), quality=60)
    shot = Capture("Apple iPhone 12", "2023:05:01 10:00:00", "016")
    other_frame = Capture("Apple iPhone 12", "2023:05:01 10:00:00", "550")
    thumbs = np.stack([thumb, small, thumb, small])
    groups = same_groups(thumbs, [shot, shot, other_frame, Capture()])
    # Row 2 is another frame (other sub-second); row 3 lost its EXIF and may join either capture.
    assert all(not {0, 2} <= set(g.rows) and not {1, 2} <= set(g.rows) for g in groups)
    first = _group_of(groups, 0)
    assert first is not None and 1 in first.rows
    for row, reasons in zip(first.rows, first.reasons):
        assert ("exif-capture" in reasons) == (row in (0, 1))


def test_hnsw_candidates_agree_with_exact_search(monkeypatch: pytest.MonkeyPatch, library) -> None:
    _, thumbs, _, _ = library
    descs = descriptors(thumbs)
    exact = {tuple(p) for p in candidate_pairs(descs).tolist()}
    monkeypatch.setattr(samephoto, "_EXACT_LIMIT", 0)
    approximate = {tuple(p) for p in candidate_pairs(descs).tolist()}
    assert exact and len(exact & approximate) >= 0.95 * len(exact)


def test_small_inputs() -> None:
    assert same_groups(np.zeros((0, SIDE, SIDE), np.uint8), []) == []
    one = np.stack([thumbnail(Image.new("RGB", (50, 40), (9, 90, 200)))])
    assert same_groups(one, [Capture()]) == []
    with pytest.raises(ValueError):
        same_groups(one, [])


class _Fetches:
    """Thumbnails by id from a fixed table, counting the ids asked for."""

    def __init__(self, table: dict[int, npt.NDArray[np.uint8]]) -> None:
        self.table, self.asked = table, 0

    def __call__(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        self.asked += len(ids)
        return np.stack([self.table[int(i)] for i in ids]) if len(ids) else np.zeros((0, SIDE, SIDE), np.uint8)


def _named(search: SameSearch) -> list[tuple[tuple[int, ...], tuple[tuple[str, ...], ...]]]:
    """Groups by catalog id, with their reasons."""
    return [(tuple(int(search.ids[r]) for r in g.rows), g.reasons) for g in search.groups()]


def test_an_updated_search_equals_a_search_from_scratch(monkeypatch: pytest.MonkeyPatch, library) -> None:
    """Random sequences of photos added, removed and replaced by another picture (a file changed
    in place keeps its id): the kept search, updated step by step, finds what a new search finds."""
    _, pool, captures, _ = library
    monkeypatch.setattr(samephoto, "UPDATE_MAX_SHARE", 1.0)  # the update path even for big steps here
    texts = [c.to_text() for c in captures]
    rng = np.random.default_rng(7)
    for run in range(4):
        picture: dict[int, int] = {}  # id -> row of the pool it shows: one id per picture, as per content

        def unused() -> int:
            return int(rng.choice(sorted(set(range(len(pool))) - set(picture.values()))))

        next_id = 1
        for _ in range(12):
            picture[next_id], next_id = unused(), next_id + 1
        table = {i: pool[p] for i, p in picture.items()}
        ids = np.array(sorted(picture), np.int64)
        kept = SameSearch.build(ids, [str(picture[i]) for i in ids], [texts[picture[i]] for i in ids], _Fetches(table))
        for step in range(8):
            for i in rng.choice(sorted(picture), int(rng.integers(0, 3)), replace=False).tolist():
                del picture[i]
            for i in rng.choice(sorted(picture), int(rng.integers(0, 2)), replace=False).tolist():
                picture[i] = unused()  # another picture at the same id
            for _ in range(int(rng.integers(0, 4))):
                picture[next_id], next_id = unused(), next_id + 1
            table = {i: pool[p] for i, p in picture.items()}
            ids = np.array(sorted(picture), np.int64)
            hashes, caps = [str(picture[i]) for i in ids], [texts[picture[i]] for i in ids]
            fetch = _Fetches(table)
            kept = kept.update(ids, hashes, caps, fetch)
            fresh = SameSearch.build(ids, hashes, caps, _Fetches(table))
            assert _named(kept) == _named(fresh), f"run {run} step {step}"
            assert fetch.asked <= 3 * len(ids)  # never the whole library per pair


def test_an_update_reads_only_the_new_photos_and_unchanged_is_free(library) -> None:
    _, pool, captures, _ = library
    texts = [c.to_text() for c in captures]
    ids = np.arange(1, len(pool) + 1, dtype=np.int64)
    table = {int(i): pool[int(i) - 1] for i in ids}
    hashes, caps = [str(i) for i in ids], [texts[int(i) - 1] for i in ids]
    search = SameSearch.build(ids[:-1], hashes[:-1], caps[:-1], _Fetches(table))
    assert search.update(ids[:-1], hashes[:-1], caps[:-1], _Fetches(table)) is search
    fetch = _Fetches(table)
    grown = search.update(ids, hashes, caps, fetch)
    # The new photo, and at most the other end of each pair it is compared in (its neighbours).
    assert 1 <= fetch.asked <= 1 + samephoto.CANDIDATES * 2
    assert _named(grown) == _named(SameSearch.build(ids, hashes, caps, _Fetches(table)))
    # Beyond UPDATE_MAX_SHARE of the rows new, it searches again from scratch: every row read.
    fetch = _Fetches(table)
    search.update(ids[: len(ids) // 2], hashes[: len(ids) // 2], caps[: len(ids) // 2], fetch)
    assert fetch.asked == 0  # only rows removed: nothing to read
    fetch = _Fetches(table)
    SameSearch.build(ids[:2], hashes[:2], caps[:2], _Fetches(table)).update(ids, hashes, caps, fetch)
    assert fetch.asked == len(ids)


def test_remembered_groups_follow_the_verdicts_not_only_the_ids(library) -> None:
    """A cluster's groups are remembered across searches (most of a library's clusters do not change),
    keyed by everything that decides them: other verdicts for the same ids give other groups."""
    from dataclasses import replace

    _, pool, captures, _ = library
    ids = np.arange(1, len(pool) + 1, dtype=np.int64)
    table = {int(i): pool[int(i) - 1] for i in ids}
    search = SameSearch.build(ids, [str(i) for i in ids], [c.to_text() for c in captures], _Fetches(table))
    first = _named(search)
    samephoto._memo.clear()
    assert _named(search) == first and samephoto._memo  # from the memo or not, the same groups
    big = max(search.groups(), key=lambda g: len(g.rows))
    assert len(big.rows) > 2, "the library fixture should hold a cluster of three or more"
    # Every pair of that cluster now seen as two captures: it falls apart, whatever was remembered.
    inside = np.isin(np.searchsorted(search.ids, samephoto._unkeyed(search.keys)), big.rows).all(axis=1)
    apart = replace(search, distance=np.where(inside, np.inf, search.distance).astype(np.float32))
    remembered = _named(apart)
    samephoto._memo.clear()
    assert remembered == _named(apart)
    assert not any(set(g) >= {int(search.ids[r]) for r in big.rows[:2]} for g, _ in remembered)


def test_clusters_are_the_connected_rows() -> None:
    """Against a plain union-find, on random chains, stars and long paths."""
    rng = np.random.default_rng(3)
    for n, m in ((1, 0), (10, 3), (500, 400), (3000, 2900)):
        pairs = np.sort(rng.integers(0, n, (m, 2)), axis=1)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        if n == 3000:  # one long path as well: many rounds of hooking
            path = rng.permutation(n)
            pairs = np.concatenate([pairs, np.sort(np.stack([path[:-1], path[1:]], axis=1), axis=1)])
        parent = list(range(n))

        def find(x: int) -> int:
            while parent[x] != x:
                x = parent[x]
            return x

        for i, j in pairs.tolist():
            parent[max(find(i), find(j))] = min(find(i), find(j))
        expected: dict[int, list[int]] = {}
        for x in sorted(set(pairs.ravel().tolist())):
            expected.setdefault(find(x), []).append(x)
        clusters, root = samephoto._clusters(n, pairs)
        assert clusters == [c for c in expected.values() if len(c) > 1]
        assert all(root[x] == c[0] for c in clusters for x in c)


def test_a_pair_is_told_as_a_cluster_of_two_is() -> None:
    """The quick path for clusters of two gives what the general split gives, for every orientation
    and with or without agreeing capture records."""
    shot = Capture("Apple iPhone 12", "2023:05:01 10:00:00", "016")
    records = [shot.to_text(), shot.to_text(), Capture("Canon", "2020:01:01 00:00:00", None).to_text(), None]
    captures = samephoto.CaptureTexts(samephoto._texts(records))
    for orientation in range(8):
        for a, b in ((0, 1), (0, 2), (1, 3), (2, 3)):
            known = {(a, b): 0}
            general = samephoto._complete_groups([a, b], known, np.array([orientation]), np.array([0.5], np.float32),
                                                 captures)
            assert [samephoto._pair_group(a, b, orientation, captures)] == general, (orientation, a, b)
