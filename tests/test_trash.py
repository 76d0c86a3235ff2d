from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from clipfind.catalog import Catalog
from clipfind.imageload import content_hash
from clipfind.trash import move_to_trash


def make(catalog: Catalog, path: Path, data: bytes):
    path.write_bytes(data)
    st = path.stat()
    catalog.put_photo(str(path), st.st_size, st.st_mtime_ns, content_hash(data), 1, 1, None, np.ones(4, np.float32) / 2)
    return catalog.photo_by_path(str(path))[0]


def test_moves_only_selected_unchanged_files_and_forgets_them(tmp_path: Path, trash_home: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 4, "m", None)
    a = make(cat, tmp_path / "a.jpg", b"aaaa")
    b = make(cat, tmp_path / "b.jpg", b"bbbb")
    c = make(cat, tmp_path / "c.jpg", b"cccc")
    (tmp_path / "b.jpg").write_bytes(b"changed!")  # changed after grouping
    report = move_to_trash(cat, [a, b])
    assert [p.path for p in report.moved] == [a.path]
    assert [(p.path, r) for p, r in report.refused] == [(b.path, "changed on disk since it was grouped")]
    assert not os.path.exists(a.path) and os.path.exists(b.path) and os.path.exists(c.path)
    trashed = list(trash_home.iterdir())
    assert [t.read_bytes() for t in trashed] == [b"aaaa"]
    assert cat.photo_by_path(a.path) is None and cat.photo_by_path(c.path) is not None


def test_trash_failure_never_deletes(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 4, "m", None)
    a = make(cat, tmp_path / "a.jpg", b"aaaa")

    def broken(path: str) -> None:
        raise OSError("no trash on this volume")

    report = move_to_trash(cat, [a], send=broken)
    assert report.moved == [] and "no trash" in report.refused[0][1]
    assert os.path.exists(a.path) and cat.photo_by_path(a.path) is not None


def _group(keeper, *others, protected=()):
    from clipfind.records import DupeGroup, DupeMember

    members = (DupeMember(keeper, 1.0),) + tuple(
        DupeMember(p, 1.0, keeper.id, reasons=("identical",), protected=p.id in protected) for p in others)
    return DupeGroup("identical", keeper, members)


def test_clean_up_refuses_a_member_in_a_protected_folder(tmp_path: Path, trash_home: Path) -> None:
    from clipfind.trash import clean_up

    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 4, "m", None)
    (tmp_path / "Originals").mkdir()
    (tmp_path / "Originals-old").mkdir()
    keeper = make(cat, tmp_path / "keep.jpg", b"same")
    original = make(cat, tmp_path / "Originals" / "a.jpg", b"same")
    sibling = make(cat, tmp_path / "Originals-old" / "a.jpg", b"same")  # not under Originals
    flagged = make(cat, tmp_path / "flagged.jpg", b"same")
    group = _group(keeper, original, sibling, flagged, protected={flagged.id})
    report = clean_up(cat, [group], [original, sibling, flagged], protect=[str(tmp_path / "Originals") + "/"])
    assert [p.path for p in report.moved] == [sibling.path]
    assert sorted(report.refused, key=lambda r: r[0].path) == sorted([
        (original, f"is in the protected folder {tmp_path / 'Originals'}"),
        (flagged, "is in a protected folder")], key=lambda r: r[0].path)
    assert os.path.exists(original.path) and os.path.exists(flagged.path)
    assert cat.photo_by_path(original.path) is not None


def test_a_clean_up_that_moves_nothing_keeps_the_last_batch(tmp_path: Path, trash_home: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 4, "m", None)
    a = make(cat, tmp_path / "a.jpg", b"aaaa")
    b = make(cat, tmp_path / "b.jpg", b"bbbb")
    move_to_trash(cat, [a])
    (tmp_path / "b.jpg").write_bytes(b"changed")
    assert move_to_trash(cat, [b]).moved == []
    when, photos = cat.trashed()
    assert [p.path for p in photos] == [a.path]


def test_a_move_a_kill_interrupted_can_still_be_undone(tmp_path: Path) -> None:
    from clipfind.trash import finish_interrupted

    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 4, "m", None)
    a = make(cat, tmp_path / "a.jpg", b"aaaa")
    cat.set_trash_pending(a.path, True)  # marked, sent, then killed before the catalog heard of it
    os.unlink(a.path)
    finish_interrupted(cat)
    assert cat.photo_by_path(a.path) is None and cat.trash_pending() == []
    assert [p.path for p in cat.trashed()[1]] == [a.path]
