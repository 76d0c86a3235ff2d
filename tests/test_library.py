"""The Library facade: its caches follow the catalog, and every front-end capability is a method
here (so the CLI and the app reach nothing else)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clipfind.errors import ClipfindError
from clipfind.library import Library
from clipfind.records import Counts, Failure, KeeperRules, PhotoInfo
from tests.helpers import index


@dataclass
class Copied:
    """An indexed photo folder in which one photo has a byte-identical copy."""

    lib: Library
    folder: Path
    original: Path
    copy: Path


@pytest.fixture
def copied(tiny_env: Path, photo_folder: Path) -> Iterator[Copied]:
    original = sorted(photo_folder.glob("*.png"))[0]
    copy = photo_folder / "copy of it.png"
    shutil.copy2(original, copy)
    lib = Library()
    index(lib, photo_folder)
    yield Copied(lib, photo_folder, original, copy)
    lib.close()


def test_duplicates_follow_the_catalog_between_calls(copied: Copied, trash_home: Path) -> None:
    lib = copied.lib
    identical = [g for g in lib.duplicates(1.0) if g.tier == "identical"]  # 1.0: no near group takes them in
    assert [sorted(m.photo.path for m in g.members) for g in identical] == [
        sorted([str(copied.original), str(copied.copy)])]
    assert lib.duplicates(0.95) == lib.duplicates(0.95)  # the cached contents give the same answer

    report = lib.trash([p for p in identical[0].others + (identical[0].keeper,) if p.path == str(copied.copy)])
    assert [p.path for p in report.moved] == [str(copied.copy)]
    assert not [g for g in lib.duplicates(1.0) if g.tier == "identical"]


def test_forget_a_parent_keeps_an_indexed_subfolder(tiny_env: Path, photo_folder: Path) -> None:
    """Index par/child, then par, then forget par: child stayed listed with 0 files."""
    lib = Library()
    index(lib, photo_folder / "trip")
    index(lib, photo_folder)
    assert lib.forget_folder(str(photo_folder)) == 6
    assert [(f.path, f.files) for f in lib.status().folders] == [(str(photo_folder / "trip"), 4)]
    index(lib, photo_folder)
    assert lib.forget_folder(str(photo_folder / "trip")) == 0  # the parent still covers it
    assert lib.status().files_indexed == 10
    with pytest.raises(ClipfindError, match="empty"):
        lib.forget_folder("")
    lib.close()


def test_not_duplicates_needs_two_photos_and_can_be_taken_back(copied: Copied) -> None:
    lib = copied.lib
    a, copy = lib.lookup([str(copied.original), str(copied.copy)])
    for alone in ([a], [a, a]):  # one photo hid the whole identical group
        with pytest.raises(ClipfindError, match="at least two"):
            lib.mark_not_duplicates(alone)
    assert [g.tier for g in lib.duplicates(1.0)] == ["identical"]
    lib.mark_not_duplicates([a, copy])
    assert lib.duplicates(1.0) == []
    assert lib.unmark_not_duplicates([a]) == 1
    assert [g.tier for g in lib.duplicates(1.0)] == ["identical"]


def test_lookup_says_why_a_path_is_not_a_photo(tiny_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "notes.jpg").write_text("not a photo")
    lib = Library()
    index(lib, folder)
    with pytest.raises(ClipfindError, match="could not be read when it was indexed"):
        lib.lookup([str(folder / "notes.jpg")])
    with pytest.raises(ClipfindError, match="not in the catalog"):
        lib.lookup([str(folder / "other.jpg")])
    with pytest.raises(ClipfindError, match="empty path"):
        lib.lookup([""])
    lib.close()


def test_pretrained_alone_means_the_catalogs_model(tiny_env: Path, photo_folder: Path, monkeypatch) -> None:
    lib = Library()
    index(lib, photo_folder / "trip")
    lib.close()
    monkeypatch.delenv("CLIPFIND_MODEL")
    lib = Library()  # CLIPFIND_PRETRAINED=none alone
    assert lib.spec.identity == "clipfind-tiny/none"
    lib.close()


def test_a_damaged_catalog_is_not_written_and_can_be_rebuilt(copied: Copied) -> None:
    lib, tiny_env = copied.lib, copied.lib.home
    photos = lib.lookup([str(copied.original), str(copied.copy)])
    lib.mark_not_duplicates(photos, tier="identical")
    rules = KeeperRules(protect=(str(copied.folder),), formats=("png", "jpeg"))
    lib.set_keeper_rules(rules)
    lib.close()
    path = tiny_env / "catalog.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    data[-page:-page + 64] = b"\xa5" * 64  # the last page's header: opens fine, fails the integrity check
    path.write_bytes(bytes(data))
    lib = copied.lib = Library()
    for write in (lambda: lib.trash(photos), lambda: lib.mark_not_duplicates(photos),
                  lambda: lib.forget_folder(str(copied.folder)), lambda: index(lib)):
        with pytest.raises(ClipfindError, match="index --rebuild"):
            write()
    lib.close()
    notices = Library.rebuild(tiny_env)
    assert any("1 folder and 1" in n for n in notices)
    lib = copied.lib = Library()
    assert lib.folders() == [str(copied.folder)] and lib.spec.identity == "clipfind-tiny/none"
    index(lib)
    assert lib.status().files_indexed == 11 and lib.catalog.integrity_ok()
    assert lib.duplicates(1.0) == []  # the "not duplicates" mark survived
    assert [m.tier for m in lib.not_duplicate_marks()] == ["identical"]  # with its tier
    assert lib.keeper_rules() == rules


# -- what the front ends need, through the facade only ------------------------------------------
def test_reopen_keeps_every_option_but_the_weights(tiny_env: Path, tmp_path: Path) -> None:
    def progress(done: int, total: int | None) -> None:
        pass

    lib = Library(precision="fp32", device="cpu", download_progress=progress)
    checkpoint = tmp_path / "tuned.safetensors"
    other = lib.reopen(pretrained=str(checkpoint))
    assert (other.home, other.spec.name, other.spec.pretrained) == (lib.home, "clipfind-tiny", str(checkpoint))
    assert (other.precision, other._device, other._download_progress) == ("fp32", "cpu", progress)
    same = other.reopen(None, "none")
    assert same.spec == lib.spec and same.precision == "fp32" and same._device == "cpu"
    assert other.reopen().spec == other.spec  # nothing given: the very same weights
    assert lib.folders() == []  # the old one stays open, for its caller to close
    for each in (lib, other, same):
        each.close()


@pytest.mark.filterwarnings("ignore:.*random weights:UserWarning")
def test_index_folders_adds_a_folder_only_once_the_model_loads(tiny_env: Path, photo_folder: Path) -> None:
    unknown = Library(model="no-such-model", pretrained="none")
    with pytest.raises(ClipfindError, match="no-such-model"):
        unknown.index_folders([str(photo_folder)], batch_size=4)
    assert unknown.folders() == [] and unknown.counts() == Counts(0, 0, 0)
    unknown.close()

    lib = Library()
    seen: list[str] = []
    report = lib.index_folders([str(photo_folder / "trip")], progress=lambda p: seen.append(p.phase), batch_size=4)
    assert report.added == 4 and seen[0] == "scanning" and seen[-1] == "done"
    assert lib.folders() == [str(photo_folder / "trip")]
    # Other weights that cannot be loaded, re-embedding: the new folder is not added either.
    missing = lib.reopen(pretrained=str(photo_folder / "missing.safetensors"))
    with pytest.raises(ClipfindError):
        missing.index_folders([str(photo_folder)], batch_size=4, reembed=True)
    assert missing.folders() == lib.folders() == [str(photo_folder / "trip")]
    missing.close()
    lib.close()


def test_photo_by_path_and_photos_in_the_given_order(tiny_env: Path, tmp_path: Path, photo_folder: Path) -> None:
    (photo_folder / "notes.jpg").write_text("not a photo")
    lib = Library()
    index(lib, photo_folder)
    first, second = sorted(photo_folder.glob("*.png"))[:2]
    a, b = lib.photo_by_path(str(first)), lib.photo_by_path(str(second))
    assert isinstance(a, PhotoInfo) and isinstance(b, PhotoInfo) and a.path == str(first)
    for not_a_photo in (photo_folder / "notes.jpg", tmp_path / "nowhere.jpg", ""):
        assert lib.photo_by_path(str(not_a_photo) if not_a_photo else "") is None
    assert lib.photos([b.id, 10**9, a.id]) == [b, a]  # unknown ids drop out
    lib.forget_folder(str(photo_folder))
    assert lib.photos([b.id, a.id]) == []
    lib.close()


def test_counts_and_failures(tiny_env: Path, photo_folder: Path) -> None:
    (photo_folder / "trip" / "notes.jpg").write_text("not a photo")
    lib = Library()
    assert lib.counts() == Counts(photos=0, failed=0, folders=0) and lib.failures() == []
    index(lib, photo_folder)
    assert lib.counts() == Counts(photos=10, failed=1, folders=1)
    [failure] = lib.failures()
    assert isinstance(failure, Failure) and failure.path == str(photo_folder / "trip" / "notes.jpg")
    status = lib.status()
    assert (status.files_indexed, status.files_failed, status.failures) == (10, 1, (failure,))
    lib.close()


@pytest.mark.filterwarnings("ignore:.*random weights:UserWarning")
def test_load_opens_the_index_and_saves_one_that_was_never_saved(tiny_env: Path, photo_folder: Path) -> None:
    lib = Library()
    index(lib, photo_folder / "trip")
    lib.close()
    for name in ("vectors.hnsw", "vectors.hnsw.json"):
        (tiny_env / name).unlink()
    lib = Library()
    lib.load()
    assert len(lib.index()) == 4 and lib.notices == []  # never saved: nothing to repair, nothing said
    assert (tiny_env / "vectors.hnsw").exists()  # kept, so the next start does not rebuild it again
    lib.close()


@pytest.mark.filterwarnings("ignore:.*random weights:UserWarning")
def test_prepare_loads_a_saved_index_and_leaves_a_rebuild_to_load(tiny_env: Path, photo_folder: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import clipfind.annindex

    lib = Library()
    index(lib, photo_folder / "trip")
    lib.close()
    lib = Library()
    lib.prepare()
    assert lib._index is not None and len(lib._index) == 4  # the saved one, read behind the splash
    lib.close()

    (tiny_env / "vectors.hnsw").write_bytes(b"damaged")
    builds: list[int] = []
    real_build = clipfind.annindex.build_index
    monkeypatch.setattr(clipfind.annindex, "build_index",
                        lambda catalog, dim: builds.append(dim) or real_build(catalog, dim))
    lib = Library()
    lib.prepare()  # a rebuild takes minutes at scale: not behind a splash that has no progress
    assert lib._index is None and builds == []
    lib.load()  # behind the open window, with a notice
    assert len(lib.index()) == 4 and builds and "damaged" in lib.notices[0]
    lib.close()


def test_thumbnail_fits_the_side_and_says_why_a_file_cannot_be_shown(photo_folder: Path) -> None:
    from clipfind.errors import ImageLoadError
    from clipfind.library import thumbnail

    image = thumbnail(str(sorted(photo_folder.glob("*.png"))[0]), 64)
    assert max(image.size) == 64 and image.mode == "RGB"
    (photo_folder / "notes.jpg").write_text("not a photo")
    with pytest.raises(ImageLoadError):
        thumbnail(str(photo_folder / "notes.jpg"), 64)


def test_a_row_gone_without_the_generation_moving_is_read_again_not_an_error(copied: Copied) -> None:
    """Duplicates read the rows of their groups' photos when they need them (clipfind.phototable), within
    one catalog state. A row removed behind the catalog's back (no generation change) makes the next
    call read the state afresh instead of failing."""
    import sqlite3

    lib = copied.lib
    lib.duplicates(1.0)  # contents kept for this state; only the copies' rows read
    gone = sorted(p for p in copied.folder.glob("*.png") if p not in (copied.original, copied.copy))[-1]
    with sqlite3.connect(lib.home / "catalog.sqlite3") as db:
        assert db.execute("DELETE FROM files WHERE path = ?", (os.fsencode(gone),)).rowcount == 1
    groups = lib.duplicates(0.0)  # every photo in a group: the gone row would be read now
    members = {m.photo.path for g in groups for m in g.members}
    assert str(gone) not in members and str(copied.original) in members


def _identical(lib: Library, rules=None) -> list:
    return [g for g in lib.duplicates(1.0, rules) if g.tier == "identical"]  # 1.0: no similar group takes them


def test_keep_this_wins_over_the_rules_and_can_be_taken_back(copied: Copied) -> None:
    from clipfind.records import KeeperRules

    lib = copied.lib
    original, copy = str(copied.original), str(copied.copy)
    assert _identical(lib)[0].keeper.path == original  # "copy of it" carries a copy marker
    copy_photo = lib.photo_by_path(copy)
    lib.keep_this(copy_photo)
    assert lib.keeper_rules().keep == (copy,)
    assert _identical(lib)[0].keeper.path == copy
    # Rules given for one run (the CLI's options) keep the user's choice too, and are not saved.
    assert _identical(lib, KeeperRules(prefer_folders=(str(copied.folder),)))[0].keeper.path == copy
    lib.keep_this(lib.photo_by_path(original))  # the latest choice moves the keeper back
    assert lib.keeper_rules().keep == (original, copy) and _identical(lib)[0].keeper.path == original
    lib.unkeep(lib.photo_by_path(original))
    lib.unkeep(copy_photo)
    assert lib.keeper_rules() == KeeperRules() and _identical(lib)[0].keeper.path == original


def test_duplicates_are_cached_per_rules(copied: Copied, tmp_path: Path) -> None:
    from clipfind.records import KeeperRules

    lib = copied.lib
    other = copied.folder / "other"
    other.mkdir()
    moved = other / copied.copy.name
    shutil.move(copied.copy, moved)
    index(lib, copied.folder)
    plain = _identical(lib)[0].keeper.path
    preferred = _identical(lib, KeeperRules(prefer_folders=(str(other),)))[0].keeper.path
    assert plain == str(copied.original) and preferred == str(moved)
    assert _identical(lib)[0].keeper.path == plain  # not the cached contents of the other rules


def test_protected_members_are_flagged_never_suggested_and_refused(copied: Copied, trash_home: Path) -> None:
    from clipfind.records import KeeperRules

    lib = copied.lib
    lib.set_keeper_rules(KeeperRules(protect=(str(copied.folder),)))
    assert lib.keeper_rules().protect == (str(copied.folder),)
    group = _identical(lib)[0]
    assert all(m.protected for m in group.members) and group.suggested() == ()
    report = lib.clean_up([group], group.others)
    assert report.moved == [] and report.refused == [
        (group.others[0], f"is in the protected folder {copied.folder}")]
    assert copied.copy.exists() and copied.original.exists()


def test_choices_survive_a_reopen_and_drop_with_a_trashed_photo(copied: Copied, trash_home: Path) -> None:
    lib = copied.lib
    lib.save_choices({str(copied.copy): True, str(copied.original): False})
    lib.close()
    copied.lib = lib = Library()
    assert lib.choices() == {str(copied.copy): True, str(copied.original): False}
    lib.trash([lib.photo_by_path(str(copied.copy))])
    assert lib.choices() == {str(copied.original): False}
    lib.clear_choices()
    assert lib.choices() == {}


def test_a_not_duplicates_mark_holds_in_its_tier_and_can_be_listed_and_removed(copied: Copied) -> None:
    lib = copied.lib
    pair = lib.lookup([str(copied.original), str(copied.copy)])
    lib.mark_not_duplicates(pair, tier="same")
    assert _identical(lib)  # a mark made in the same tier does not hide identical files
    lib.mark_not_duplicates(pair, tier="identical")
    assert not _identical(lib)
    marks = lib.not_duplicate_marks()
    assert [(m.tier, m.contents, sorted(p.path for p in m.photos)) for m in marks] == [
        ("same", 1, sorted([str(copied.original), str(copied.copy)])),
        ("identical", 1, sorted([str(copied.original), str(copied.copy)]))]
    lib.remove_mark(marks[1].mark)
    assert _identical(lib) and [m.mark for m in lib.not_duplicate_marks()] == [marks[0].mark]
    with pytest.raises(ClipfindError, match="no \"not duplicates\" mark 99"):
        lib.remove_mark(99)
    lib.catalog.add_mark({pair[0].content_hash: 2})  # a mark made before tiers: every tier
    assert not _identical(lib)
    assert lib.not_duplicate_marks()[-1].tier is None


def test_crops_join_the_same_tier_and_each_pair_is_checked_once_across_restarts(
        tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random weights give no meaningful cosines, so every CLIP neighbour is let through the gate;
    the crop check itself is the real one."""
    import clipfind.cropcheck as cropcheck
    import clipfind.dupes as dupes
    from tests.helpers import real_photo

    monkeypatch.setattr(dupes, "CROP_MIN_SIMILARITY", -1.0)
    folder = tmp_path / "crops"
    folder.mkdir()
    original = real_photo("kodak24/kodim05.png", 768)
    w, h = original.size
    original.save(folder / "original.jpg", quality=95)
    original.crop((w // 5, h // 5, w - w // 5, h - h // 5)).save(folder / "cropped.jpg", quality=90)
    real_photo("kodak24/kodim23.png", 768).save(folder / "other.jpg", quality=95)
    lib = Library()
    try:
        index(lib, folder)
        [group] = [g for g in lib.duplicates(0.999) if g.tier == "same"]
        assert [Path(m.photo.path).name for m in group.members] == ["original.jpg", "cropped.jpg"]
        assert group.members[1].reasons == ("crop",) and group.suggested() == ()
        checked = lib.catalog.crop_checks()
        assert len(checked) >= 2 and sorted(v for v in checked.values() if v) == [group.members[1].photo.content_hash]
    finally:
        lib.close()
    fitted: list[int] = []
    real_fit = cropcheck.fit_crop
    monkeypatch.setattr(cropcheck, "fit_crop", lambda a, b: fitted.append(1) or real_fit(a, b))
    again = Library()
    try:
        [group] = [g for g in again.duplicates(0.999) if g.tier == "same"]
        assert group.members[1].reasons == ("crop",) and not fitted  # read back from the catalog
    finally:
        again.close()


@pytest.mark.parametrize("search", ["exact", "index"])
def test_the_neighbour_graph_is_brought_up_to_date_not_rebuilt_after_a_small_change(
        tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, search: str) -> None:
    import numpy as np

    import clipfind.library as library_module
    from clipfind.home import NEIGHBOURS_FILE
    from tests.helpers import copy_photos

    if search == "index":  # the HNSW path of large libraries (24 photos: it finds every neighbour)
        monkeypatch.setattr(library_module, "EXACT_LIMIT", 4)
    folder = tmp_path / "many"
    copy_photos(folder, 24, "kodak24")
    (folder / "later").mkdir()
    moved_in = sorted(folder.glob("*.png"))[-1]
    lib = Library()
    try:
        index(lib, folder)
        lib.neighbour_graph()
        builds: list[int] = []
        real_build = library_module.build_graph
        monkeypatch.setattr(library_module, "build_graph", lambda *a, **k: builds.append(1) or real_build(*a, **k))
        monkeypatch.setattr(library_module, "GRAPH_UPDATE_MAX_SHARE", 10.0)  # 24 photos: any change is "small"
        shutil.move(moved_in, folder / "later" / "elsewhere.png")  # the same bytes: a move keeps its row
        copy_photos(folder / "new", 1, "skimage_data")
        (sorted(folder.glob("*.png"))[0]).unlink()
        index(lib, folder)
        updated = lib.neighbour_graph()
        assert not builds and updated is not None
    finally:
        lib.close()
    (lib.home / NEIGHBOURS_FILE).unlink()
    fresh = Library()
    try:
        rebuilt = fresh.neighbour_graph()
        assert builds == [1] and rebuilt is not None
        assert np.array_equal(rebuilt.ids, updated.ids) and np.array_equal(rebuilt.neighbours, updated.neighbours)
        np.testing.assert_allclose(rebuilt.similarities, updated.similarities, atol=1e-6)
    finally:
        fresh.close()


def test_the_same_photo_search_is_kept_in_the_home_and_brought_up_to_date(
        tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-saved copy added later joins its photo's group by an update (a fresh Library, as a
    `clipfind dupes` run, reads the saved search); a damaged file costs only a new search."""
    import clipfind.samephoto as samephoto
    from clipfind.home import SAME_FILE
    from tests.helpers import real_photo

    folder = tmp_path / "same"
    folder.mkdir()
    for n in range(1, 7):
        real_photo(f"kodak24/kodim{n:02d}.png", 512).save(folder / f"photo{n}.jpg", quality=92)
    real_photo("kodak24/kodim01.png", 256).save(folder / "photo1 small.jpg", quality=70)

    def same_groups_of(lib: Library) -> list[list[str]]:
        return sorted(sorted(Path(m.photo.path).name for m in g.members)
                      for g in lib.duplicates(0.999) if g.tier == "same")

    lib = Library()
    try:
        index(lib, folder)
        assert same_groups_of(lib) == [["photo1 small.jpg", "photo1.jpg"]]
    finally:
        lib.close()
    assert (lib.home / SAME_FILE).is_file()

    builds: list[int] = []
    real_build = samephoto.SameSearch.build.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(samephoto.SameSearch, "build",
                        classmethod(lambda cls, *a: builds.append(1) or real_build(cls, *a)))
    monkeypatch.setattr(samephoto, "UPDATE_MAX_SHARE", 1.0)  # 8 photos: any change is "small"
    real_photo("kodak24/kodim04.png", 300).rotate(90, expand=True).save(folder / "photo4 turned.jpg", quality=80)
    lib = Library()
    try:
        index(lib, folder)
        assert same_groups_of(lib) == [["photo1 small.jpg", "photo1.jpg"], ["photo4 turned.jpg", "photo4.jpg"]]
        assert not builds  # brought up to date from the saved search
        kept = lib._same
    finally:
        lib.close()

    (lib.home / SAME_FILE).write_bytes(b"not a zip")
    again = Library()
    try:
        assert same_groups_of(again) == [["photo1 small.jpg", "photo1.jpg"], ["photo4 turned.jpg", "photo4.jpg"]]
        assert builds == [1] and again._same is not None and kept is not None
        assert again._same.keys.tolist() == kept.keys.tolist()  # the same pairs compared, the same verdicts
    finally:
        again.close()
