"""Walk photo folders: yield every photo file, skipping hidden and system folders and symlink loops."""

from __future__ import annotations

import functools
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


def hidden_below(path: str, folder: str) -> bool:
    """Whether a walk from `folder` skips `path`: a hidden or system name on the way down (or the path's own)."""
    rel = os.path.relpath(path, folder)
    return rel != "." and any(is_hidden(part) for part in rel.split(os.sep))


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


def scan_paths(
    paths: Iterable[str],
    on_error: OnError | None = None,
    *,
    include_skipped: bool = False,
    on_folder_error: OnError | None = None,
) -> Iterator[ScannedFile]:
    """Yield the photos at these paths as scan_folders finds them there, for a watcher's batch that knows
    what changed: a folder is walked, a file named like a photo looked at, a path gone yields nothing.

    Hidden folders above a path are the caller's to leave out (it knows the watched folder). A path that
    cannot be looked at for another reason than being gone (its folder unreadable) goes to on_folder_error
    (else on_error) with its folder: it is not gone, and its photo must be kept.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    folder_error = on_folder_error or on_error
    for path in paths:
        path = os.path.abspath(path)
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            if folder_error:
                folder_error(os.path.dirname(path), exc)
            continue
        if stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and os.path.isdir(path)):  # links followed, as the walk does
            yield from _walk(path, seen_dirs, seen_files, on_error, include_skipped, folder_error)
        elif is_photo_name(os.path.basename(path)):
            yield from _look(path, functools.partial(os.stat, path), seen_files, on_error, include_skipped)


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
            except OSError as exc:  # a symlink loop, say
                if not is_photo_name(entry.name):
                    if on_error:
                        on_error(entry.path, exc)
                    continue
                # named like a photo: looking at it reports the error, and records it with include_skipped
            if is_photo_name(entry.name):
                yield from _look(entry.path, entry.stat, seen_files, on_error, include_skipped)
        stack.extend(reversed(subdirs))


def _look(
    path: str,
    stat_of: Callable[..., os.stat_result],
    seen_files: set[tuple[int, int]],
    on_error: OnError | None,
    include_skipped: bool,
) -> Iterator[ScannedFile]:
    """One file named like a photo, looked at the same way whether a walk or a watcher's event found it."""
    try:
        st = stat_of()
    except OSError as exc:
        if on_error:
            on_error(path, exc)
        if include_skipped:
            try:
                st = stat_of(follow_symlinks=False)
            except OSError:
                return  # gone already
            yield scanned(path, st)  # reading it says why
        return
    if not stat.S_ISREG(st.st_mode):
        # FIFOs, sockets and devices named like photos: never opened
        if include_skipped:
            yield scanned(path, st, _not_regular(st.st_mode))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return  # a hard or symbolic link to a file already listed
    seen_files.add(key)
    yield scanned(path, st)


def _not_regular(mode: int) -> str:
    kind = ("a pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"not a photo: {kind} named like one"
