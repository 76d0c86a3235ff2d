"""Walk photo folders: yield every photo file, skipping hidden and system folders and symlink loops."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from clipfind.imageload import PHOTO_EXTENSIONS

# Folders that hold caches, trash or OS metadata rather than the user's photos.
SYSTEM_FOLDERS = frozenset(
    {
        "@eaDir",  # Synology thumbnails
        "$RECYCLE.BIN",
        "System Volume Information",
        "lost+found",
        "__MACOSX",
        "node_modules",
        "#recycle",
    }
)

OnError = Callable[[str, OSError], None]


@dataclass(frozen=True, slots=True)
class ScannedFile:
    path: str
    size: int
    mtime_ns: int


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in SYSTEM_FOLDERS


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS


def scan_folders(folders: Iterable[str], on_error: OnError | None = None) -> Iterator[ScannedFile]:
    """Yield each photo once, even when folders overlap or symlinks point back up the tree."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for folder in folders:
        yield from _walk(os.path.abspath(folder), seen_dirs, seen_files, on_error)


def _walk(
    top: str,
    seen_dirs: set[tuple[int, int]],
    seen_files: set[tuple[int, int]],
    on_error: OnError | None,
) -> Iterator[ScannedFile]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue  # symlink loop, or a folder reached twice
            seen_dirs.add(key)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if on_error:
                on_error(folder, exc)
            continue
        subdirs = []
        for entry in entries:
            if is_hidden(entry.name):
                continue
            try:
                if entry.is_dir():  # follows symlinks; loops are caught by seen_dirs
                    subdirs.append(entry.path)
                    continue
                if not is_photo_name(entry.name):
                    continue
                st = entry.stat()
            except OSError as exc:
                if on_error:
                    on_error(entry.path, exc)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # FIFOs, sockets and devices named like photos
            key = (st.st_dev, st.st_ino)
            if key in seen_files:
                continue  # a hard or symbolic link to a file already listed
            seen_files.add(key)
            yield ScannedFile(entry.path, st.st_size, st.st_mtime_ns)
        stack.extend(reversed(subdirs))
