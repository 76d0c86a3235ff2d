"""Undo of the last trash: files back from a private freedesktop trash (real send2trash), never over
a file that is there again, and their photos back in the catalog without the model."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from clipfind.catalog import Catalog
from clipfind.imageload import content_hash
from clipfind.library import Library
from clipfind.restore import TAKEN, restore_files
from clipfind.trash import move_to_trash
from tests.helpers import copy_photos, index, needs_shared_data


def _send(path: Path) -> None:
    from send2trash import send2trash

    send2trash(str(path))


def test_a_trashed_file_goes_back_to_its_path(tmp_path: Path, trash_home: Path) -> None:
    photo = tmp_path / "pics" / "a b%.jpg"  # a space and a percent sign: the info file quotes them
    photo.parent.mkdir()
    photo.write_bytes(b"first")
    os.utime(photo, ns=(1, 1_500_000_000_123_456_789))
    _send(photo)
    assert not photo.exists() and len(list(trash_home.iterdir())) == 1
    result = restore_files([(str(photo), 5)])
    assert result.restored == [str(photo)] and not result.failed
    assert photo.read_bytes() == b"first" and photo.stat().st_mtime_ns == 1_500_000_000_123_456_789
    assert list(trash_home.iterdir()) == [] and list((trash_home.parent / "info").iterdir()) == []


def test_the_newest_of_that_size_is_taken_when_a_path_was_trashed_twice(tmp_path: Path, trash_home: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"older, longer")
    _send(photo)
    photo.write_bytes(b"newer")
    _send(photo)
    info = trash_home.parent / "info"
    for entry in info.iterdir():  # make the dates tell the two apart (one second is the format's grain)
        text = entry.read_text()
        older = "older" in (trash_home / entry.name.removesuffix(".trashinfo")).read_text()
        date = "2020-01-01T00:00:00" if older else "2021-01-01T00:00:00"
        entry.write_text("\n".join(line if not line.startswith("DeletionDate=") else f"DeletionDate={date}"
                                   for line in text.splitlines()) + "\n")
    assert restore_files([(str(photo), None)]).restored == [str(photo)]
    assert photo.read_bytes() == b"newer"
    photo.unlink()
    assert restore_files([(str(photo), 13)]).restored == [str(photo)]
    assert photo.read_bytes() == b"older, longer"


def test_never_over_a_file_that_is_there_again(tmp_path: Path, trash_home: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"trashed")
    _send(photo)
    photo.write_bytes(b"new file")
    result = restore_files([(str(photo), 7)])
    assert result.restored == [] and result.failed == [(str(photo), TAKEN)]
    assert "a file is at that path again" in TAKEN
    assert photo.read_bytes() == b"new file" and len(list(trash_home.iterdir())) == 1  # still in the trash


def test_a_file_not_in_the_trash_is_reported(tmp_path: Path, trash_home: Path) -> None:
    result = restore_files([(str(tmp_path / "never.jpg"), 1)])
    assert result.failed and "not in the trash" in result.failed[0][1]


def test_a_trash_at_the_top_of_another_disk_with_a_relative_path(tmp_path: Path, trash_home: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """$topdir/.Trash-$uid records paths relative to $topdir (the spec allows it)."""
    top = tmp_path / "disk"
    trash = top / f".Trash-{os.getuid()}"
    (trash / "files").mkdir(parents=True)
    (trash / "info").mkdir()
    (trash / "files" / "IMG 1.jpg").write_bytes(b"x")
    (trash / "info" / "IMG 1.jpg.trashinfo").write_text(
        f"[Trash Info]\nPath={urllib.parse.quote('DCIM/IMG 1.jpg')}\nDeletionDate=2024-01-01T00:00:00\n")
    monkeypatch.setattr("clipfind.restore._mount_point", lambda folder: str(top))
    target = top / "DCIM" / "IMG 1.jpg"  # its folder went too: made again
    assert restore_files([(str(target), 1)]).restored == [str(target)]
    assert target.read_bytes() == b"x" and not (trash / "info" / "IMG 1.jpg.trashinfo").exists()


@pytest.mark.parametrize(("platform", "where"), [("darwin", "in the Trash: use Put Back"),
                                                  ("win32", "in the Recycle Bin: use Restore")])
def test_other_platforms_say_where_the_files_are(platform: str, where: str) -> None:
    result = restore_files([("/p/a.jpg", 1), ("/p/b.jpg", 1)], platform=platform)
    assert result.restored == [] and [why for _, why in result.failed] == [f"is {where}"] * 2
    assert len(result.notices) == 1 and "2 files are in" in result.notices[0]


def test_undo_puts_back_the_catalog_rows_of_the_last_batch(tmp_path: Path, trash_home: Path) -> None:
    """Rows are kept whole (vector, fingerprint); an undo re-inserts them without any model."""
    home = tmp_path / "home"
    home.mkdir()
    cat = Catalog(home / "catalog.sqlite3")
    cat.bind_model("clipfind-tiny/none", 4, "clipfind-tiny", None)
    photos = []
    for name, data in (("a.jpg", b"aaaa"), ("b.jpg", b"bbbb"), ("c.jpg", b"cccc")):
        path = tmp_path / name
        path.write_bytes(data)
        st = path.stat()
        cat.put_photo(str(path), st.st_size, st.st_mtime_ns, content_hash(data), 1, 1, None,
                      np.ones(4, np.float32) / 2, thumb=b"t", capture="Cam\t\t\t1")
        photos.append(cat.photo_by_path(str(path))[0])
    move_to_trash(cat, photos[:1])
    report = move_to_trash(cat, photos[1:])  # a new batch replaces the first
    assert len(report.moved) == 2
    cat.close()
    lib = Library(home, "clipfind-tiny", "none")
    try:
        batch = lib.last_trash()
        assert batch is not None and [p.path for p in batch.photos] == [p.path for p in photos[1:]]
        (tmp_path / "c.jpg").write_bytes(b"someone else's")  # c's path is taken again
        generation = lib.catalog.generation
        undo = lib.undo_trash()
        assert [p.path for p in undo.restored] == [photos[1].path]
        assert undo.failed == [(photos[2].path, TAKEN)]
        assert (tmp_path / "b.jpg").read_bytes() == b"bbbb" and (tmp_path / "c.jpg").read_bytes() == b"someone else's"
        back = lib.photo_by_path(photos[1].path)
        assert back is not None and back.id == photos[1].id and back.gps and back.camera == "Cam"
        assert lib.catalog.generation == generation + 1
        assert lib._model is None  # no model was needed
        # c stays listed for a later undo, once its path is free again
        assert [p.path for p in lib.last_trash().photos] == [photos[2].path]
        (tmp_path / "c.jpg").unlink()
        assert [p.path for p in lib.undo_trash().restored] == [photos[2].path]
        assert lib.last_trash() is None and "nothing to undo" in lib.undo_trash().notices[0]
        assert (tmp_path / "a.jpg").exists() is False  # the first batch was replaced, its file stays in the trash
    finally:
        lib.close()


def test_a_file_changed_in_the_trash_comes_back_for_the_indexer(tmp_path: Path, trash_home: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cat = Catalog(home / "catalog.sqlite3")
    cat.bind_model("clipfind-tiny/none", 4, "clipfind-tiny", None)
    path = tmp_path / "a.jpg"
    path.write_bytes(b"aaaa")
    st = path.stat()
    cat.put_photo(str(path), st.st_size, st.st_mtime_ns, content_hash(b"aaaa"), 1, 1, None, np.ones(4, np.float32) / 2)
    move_to_trash(cat, [cat.photo_by_path(str(path))[0]])
    cat.close()
    (trash_home / "a.jpg").write_bytes(b"edited in the trash")
    lib = Library(home, "clipfind-tiny", "none")
    try:
        undo = lib.undo_trash()
        assert [p.path for p in undo.restored] == [str(path)] and "changed meanwhile" in undo.notices[0]
        assert lib.photo_by_path(str(path)) is None and lib.last_trash() is None
    finally:
        lib.close()


@needs_shared_data
def test_undo_after_clean_up_brings_the_photo_back_to_search_and_duplicates(
        tiny_env: Path, tmp_path: Path, trash_home: Path) -> None:
    from clipfind.library import build_query

    pics = tmp_path / "pics"
    original = copy_photos(pics, 3)[0]
    copy = pics / "copy.png"
    shutil.copy2(original, copy)
    lib = Library()
    try:
        index(lib, pics)
        hits_before = [h.photo.path for h in lib.search(build_query(["a photo"], [], []), k=10)]
        groups = [g for g in lib.duplicates(1.0) if g.tier == "identical"]
        lib.save_choices({groups[0].others[0].path: True, groups[0].keeper.path: False})
        report = lib.clean_up(groups)
        assert len(report.moved) == 1
        moved = report.moved[0].path
        assert not os.path.exists(moved) and lib.choices() == {groups[0].keeper.path: False}
        assert moved not in [h.photo.path for h in lib.search(build_query(["a photo"], [], []), k=10)]
        assert not [g for g in lib.duplicates(1.0) if g.tier == "identical"]
    finally:
        lib.close()
    lib = Library()  # a new start: the undo and the duplicates need no model
    try:
        undo = lib.undo_trash()
        assert [p.path for p in undo.restored] == [moved] and os.path.exists(moved)
        assert [sorted(m.photo.path for m in g.members) for g in lib.duplicates(1.0) if g.tier == "identical"] == [
            sorted([str(original), str(copy)])]
        assert lib._model is None and lib._onnx_image is None
        assert sorted(h.photo.path for h in lib.search(build_query(["a photo"], [], []), k=10)) == sorted(hits_before)
    finally:
        lib.close()


@needs_shared_data
def test_undo_puts_vectors_back_into_the_loaded_index(tiny_env: Path, tmp_path: Path, trash_home: Path) -> None:
    pics = tmp_path / "pics"
    photos = copy_photos(pics, 3)
    lib = Library()
    try:
        index(lib, pics)
        gone = lib.lookup([str(photos[0])])[0]
        lib.load()
        assert gone.id in lib.index()
        lib.trash([gone])
        assert gone.id not in lib.index()
        lib.undo_trash()
        assert gone.id in lib.index()
    finally:
        lib.close()
