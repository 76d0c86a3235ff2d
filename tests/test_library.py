"""Library's caches follow the catalog: what it answers after a change is the new state."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from clipfind.errors import ClipfindError
from clipfind.library import Library


def test_duplicates_follow_the_catalog_between_calls(tiny_env: Path, photo_folder: Path, trash_home: Path) -> None:
    original = sorted(photo_folder.glob("*.png"))[0]
    copy = photo_folder / "copy of it.png"
    shutil.copy2(original, copy)
    lib = Library()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lib.indexer(batch_size=4).run([str(photo_folder)])
    identical = [g for g in lib.duplicates(1.0) if g.tier == "identical"]  # 1.0: no near group takes them in
    assert [sorted(m.photo.path for m in g.members) for g in identical] == [sorted([str(original), str(copy)])]
    assert lib.duplicates(0.95) == lib.duplicates(0.95)  # the cached contents give the same answer

    report = lib.trash([p for p in identical[0].others + (identical[0].keeper,) if p.path == str(copy)])
    assert [p.path for p in report.moved] == [str(copy)]
    assert not [g for g in lib.duplicates(1.0) if g.tier == "identical"]
    lib.close()


def _index(lib: Library, *folders: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lib.indexer(batch_size=4).run([str(f) for f in folders] or None)


def test_forget_a_parent_keeps_an_indexed_subfolder(tiny_env: Path, photo_folder: Path) -> None:
    """Index par/child, then par, then forget par: child stayed listed with 0 files."""
    lib = Library()
    _index(lib, photo_folder / "trip")
    _index(lib, photo_folder)
    assert lib.forget_folder(str(photo_folder)) == 6
    assert [(f.path, f.files) for f in lib.status().folders] == [(str(photo_folder / "trip"), 4)]
    _index(lib, photo_folder)
    assert lib.forget_folder(str(photo_folder / "trip")) == 0  # the parent still covers it
    assert lib.status().files_indexed == 10
    with pytest.raises(ClipfindError, match="empty"):
        lib.forget_folder("")
    lib.close()


def test_not_duplicates_needs_two_photos_and_can_be_taken_back(tiny_env: Path, photo_folder: Path) -> None:
    original = sorted(photo_folder.glob("*.png"))[0]
    shutil.copy2(original, photo_folder / "copy.png")
    lib = Library()
    _index(lib, photo_folder)
    a, copy = lib.lookup([str(original), str(photo_folder / "copy.png")])
    for alone in ([a], [a, a]):  # one photo hid the whole identical group
        with pytest.raises(ClipfindError, match="at least two"):
            lib.mark_not_duplicates(alone)
    assert [g.tier for g in lib.duplicates(1.0)] == ["identical"]
    lib.mark_not_duplicates([a, copy])
    assert lib.duplicates(1.0) == []
    assert lib.unmark_not_duplicates([a]) == 1
    assert [g.tier for g in lib.duplicates(1.0)] == ["identical"]
    lib.close()


def test_lookup_says_why_a_path_is_not_a_photo(tiny_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "notes.jpg").write_text("not a photo")
    lib = Library()
    _index(lib, folder)
    with pytest.raises(ClipfindError, match="could not be read when it was indexed"):
        lib.lookup([str(folder / "notes.jpg")])
    with pytest.raises(ClipfindError, match="not in the catalog"):
        lib.lookup([str(folder / "other.jpg")])
    with pytest.raises(ClipfindError, match="empty path"):
        lib.lookup([""])
    lib.close()


def test_pretrained_alone_means_the_catalogs_model(tiny_env: Path, photo_folder: Path, monkeypatch) -> None:
    lib = Library()
    _index(lib, photo_folder / "trip")
    lib.close()
    monkeypatch.delenv("CLIPFIND_MODEL")
    lib = Library()  # CLIPFIND_PRETRAINED=none alone
    assert lib.spec.identity == "clipfind-tiny/none"
    lib.close()


def test_a_damaged_catalog_is_not_written_and_can_be_rebuilt(tiny_env: Path, photo_folder: Path) -> None:
    original = sorted(photo_folder.glob("*.png"))[0]
    shutil.copy2(original, photo_folder / "copy.png")
    lib = Library()
    _index(lib, photo_folder)
    photos = lib.lookup([str(original), str(photo_folder / "copy.png")])
    lib.mark_not_duplicates(photos)
    lib.catalog.close()
    import sqlite3

    path = tiny_env / "catalog.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    data[-page:-page + 64] = b"\xa5" * 64  # the last page's header: opens fine, fails the integrity check
    path.write_bytes(bytes(data))
    lib = Library()
    for write in (lambda: lib.trash(photos), lambda: lib.mark_not_duplicates(photos),
                  lambda: lib.forget_folder(str(photo_folder)), lambda: _index(lib)):
        with pytest.raises(ClipfindError, match="index --rebuild"):
            write()
    lib.close()
    notices = Library.rebuild(tiny_env)
    assert any("1 folder and 1" in n for n in notices)
    lib = Library()
    assert lib.folders() == [str(photo_folder)] and lib.spec.identity == "clipfind-tiny/none"
    _index(lib)
    assert lib.status().files_indexed == 11 and lib.catalog.integrity_ok()
    assert lib.duplicates(1.0) == []  # the "not duplicates" mark survived
    lib.close()
