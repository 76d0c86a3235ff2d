from __future__ import annotations

import os
from pathlib import Path

from clipfind.scan import scan_folders


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
