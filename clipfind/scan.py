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
    skip: str | None = None  # why a file named like a photo cannot be one (with include_skipped)
    dev: int | None = None  # with ino: which file this is, whichever path reached it
    ino: int | None = None
    ctime_ns: int | None = None  # changes with the content even when size and mtime are set back


def scanned(path: str, st: os.stat_result, skip: str | None = None) -> ScannedFile:
    return ScannedFile(path, st.st_size, st.st_mtime_ns, skip, st.st_dev, st.st_ino, st.st_ctime_ns)


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in SYSTEM_FOLDERS


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS


def scan_folders(
    folders: Iterable[str],
    on_error: OnError | None = None,
    *,
    include_skipped: bool = False,
    on_folder_error: OnError | None = None,
) -> Iterator[ScannedFile]:
    """Yield each photo once, even when folders overlap or symlinks point back up the tree.

    With include_skipped, files named like photos that are not regular files (FIFOs, devices)
    come too, with `skip` set, and those that cannot be looked at (a symlink loop, a dangling
    link) with what lstat says: the indexer records each with its reason instead of ignoring it.
    A folder that cannot be listed goes to on_folder_error (else on_error): it is not empty, and
    the photos known under it must be kept.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for folder in folders:
        yield from _walk(os.path.abspath(folder), seen_dirs, seen_files, on_error, include_skipped,
                         on_folder_error or on_error)


def _walk(
    top: str,
    seen_dirs: set[tuple[int, int]],
    seen_files: set[tuple[int, int]],
    on_error: OnError | None,
    include_skipped: bool = False,
    on_folder_error: OnError | None = None,
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
            if on_folder_error:
                on_folder_error(folder, exc)
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
                if include_skipped and is_photo_name(entry.name):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # gone already
                    yield scanned(entry.path, st)  # reading it says why
                continue
            if not stat.S_ISREG(st.st_mode):
                # FIFOs, sockets and devices named like photos: never opened
                if include_skipped:
                    yield scanned(entry.path, st, _not_regular(st.st_mode))
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen_files:
                continue  # a hard or symbolic link to a file already listed
            seen_files.add(key)
            yield scanned(entry.path, st)
        stack.extend(reversed(subdirs))


def _not_regular(mode: int) -> str:
    kind = ("a pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"not a photo: {kind} named like one"
