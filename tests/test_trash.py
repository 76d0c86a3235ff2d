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
