from __future__ import annotations

import os
from pathlib import Path

import pytest

from clipfind.scan import hidden_below, scan_folders, scan_paths


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(folder: Path) -> list[str]:
    return sorted(os.path.relpath(f.path, folder) for f in scan_folders([str(folder)]))


def test_finds_photos_recursively_with_size_and_mtime(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.JPG", b"12345")
    touch(tmp_path / "sub" / "deeper" / "b.heic")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "noext")
    assert names(tmp_path) == ["a.JPG", "sub/deeper/b.heic"]
    first = next(f for f in scan_folders([str(tmp_path)]) if f.path.endswith("a.JPG"))
    assert first.size == 5 and first.mtime_ns == a.stat().st_mtime_ns


def test_skips_hidden_and_system_folders(tmp_path: Path) -> None:
    touch(tmp_path / ".thumbnails" / "t.jpg")
    touch(tmp_path / "@eaDir" / "t.jpg")
    touch(tmp_path / ".hidden.jpg")
    touch(tmp_path / "ok.jpg")
    assert names(tmp_path) == ["ok.jpg"]


def test_symlink_loop_and_overlap_listed_once(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "p.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    files = list(scan_folders([str(tmp_path), str(tmp_path / "a")]))
    assert len(files) == 1


def test_fifo_named_like_photo_is_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    touch(tmp_path / "ok.png")
    assert names(tmp_path) == ["ok.png"]


def test_unreadable_folder_reported_not_raised(tmp_path: Path) -> None:
    errors: list[str] = []
    list(scan_folders([str(tmp_path / "gone")], on_error=lambda p, e: errors.append(p)))
    assert errors == [str(tmp_path / "gone")]


def test_scan_paths_looks_only_at_the_paths_given(tmp_path: Path) -> None:
    """A watcher's batch: a file, a folder walked as a full scan walks it, a path gone, a non-photo."""
    touch(tmp_path / "old.jpg")  # not asked for: never looked at
    new = touch(tmp_path / "new.jpg", b"123")
    touch(tmp_path / "dir" / "a.png")
    touch(tmp_path / "dir" / ".cache" / "b.jpg")
    touch(tmp_path / "dir" / "notes.txt")
    note = touch(tmp_path / "notes.txt")
    os.mkfifo(tmp_path / "pipe.jpg")
    asked = [new, tmp_path / "dir", tmp_path / "gone.jpg", note, tmp_path / "pipe.jpg", new]
    found = list(scan_paths([str(p) for p in asked], include_skipped=True))
    assert sorted(os.path.relpath(f.path, tmp_path) for f in found) == ["dir/a.png", "new.jpg", "pipe.jpg"]
    by_name = {os.path.basename(f.path): f for f in found}
    assert by_name["new.jpg"].size == 3 and by_name["new.jpg"].skip is None
    assert by_name["pipe.jpg"].skip is not None and "FIFO" in by_name["pipe.jpg"].skip
    assert [f.path for f in scan_paths([str(tmp_path / "pipe.jpg")])] == []  # as the walk: not without include_skipped


def test_scan_paths_reports_a_path_it_cannot_look_at_with_its_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not gone: its folder cannot be searched, so its photo must be kept (the indexer keeps what is under it)."""
    photo = touch(tmp_path / "sub" / "p.jpg")
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fspath(path) == str(photo):
            raise PermissionError(13, "Permission denied", str(photo))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    errors: list[str] = []
    assert list(scan_paths([str(photo)], on_folder_error=lambda p, e: errors.append(p))) == []
    assert errors == [str(tmp_path / "sub")]


def test_hidden_below() -> None:
    assert hidden_below("/p/.thumbs/a.jpg", "/p") and hidden_below("/p/@eaDir", "/p")
    assert hidden_below("/p/a/.b.jpg", "/p")
    assert not hidden_below("/p/a/b.jpg", "/p") and not hidden_below("/p", "/p")
    assert not hidden_below("/.home/p/a.jpg", "/.home/p")  # above the folder does not count
