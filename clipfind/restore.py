"""Put files back from the system trash: the undo of a clean-up.

On Linux and the BSDs the trash is the freedesktop.org one (what send2trash writes): a folder
with ``files/NAME`` and ``info/NAME.trashinfo``, whose ``Path=`` line is the original path,
URL-quoted (absolute, or relative to the trash's top folder). It lives in
``$XDG_DATA_HOME/Trash`` (default ``~/.local/share/Trash``) for the home's disk, and in
``$topdir/.Trash/$uid`` or ``$topdir/.Trash-$uid`` on other mounts. macOS and Windows offer no
way to restore from a program, so there the user is told where the files are.

A file goes back only where nothing is now: a file at that path again is never overwritten.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from clipfind.errors import one_line

__all__ = ["RestoreResult", "restore_files", "trash_dirs"]

INFO_SUFFIX = ".trashinfo"
TAKEN = "was not put back: a file is at that path again"


@dataclass
class RestoreResult:
    restored: list[str] = field(default_factory=list)  # paths back where they were
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why it is not back)
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Entry:
    trash: str  # the trash folder (holding files/ and info/)
    name: str  # NAME of files/NAME and info/NAME.trashinfo
    deleted: str  # DeletionDate, YYYY-MM-DDThh:mm:ss (sorts as text)


def restore_files(items: Sequence[tuple[str, int | None]], platform: str = sys.platform) -> RestoreResult:
    """Move each file back from the trash to its original path.

    Args:
        items: (original path, its size or None); of several trashed files once at one path the
            newest of that size is taken (else the newest).
        platform: sys.platform (a parameter for the tests of the other platforms' messages).
    """
    result = RestoreResult()
    if platform == "darwin" or platform.startswith("win"):
        where, action = ("the Trash", "Put Back") if platform == "darwin" else ("the Recycle Bin", "Restore")
        result.failed = [(path, f"is in {where}: use {action}") for path, _ in items]
        if items:
            result.notices.append(f"{len(items)} file{'s are' if len(items) != 1 else ' is'} in {where}: "
                                  f"select them there and use {action} (this system offers no way to do it for you)")
        return result
    entries: dict[bytes, list[_Entry]] = {}
    seen: set[str] = set()
    for path, _ in items:
        for trash, topdir in trash_dirs(path):
            if trash not in seen:
                seen.add(trash)
                _read_trash(trash, topdir, entries)
    for path, size in items:
        found = entries.get(os.fsencode(os.path.abspath(path)), [])
        if not found:
            result.failed.append((path, "is not in the trash any more (emptied, or put back by hand?)"))
            continue
        entry = _pick(found, size)
        why = _put_back(entry, path)
        if why is None:
            result.restored.append(path)
            found.remove(entry)
        else:
            result.failed.append((path, why))
    return result


def trash_dirs(path: str) -> list[tuple[str, str]]:
    """(trash folder, its top folder) where a file at `path` may have gone: the home trash, then the
    trashes at the top of the path's mount."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    found = [(os.path.join(data, "Trash"), data)]
    top = _mount_point(os.path.dirname(os.path.abspath(path)))
    uid = str(os.getuid()) if hasattr(os, "getuid") else ""
    found += [(os.path.join(top, ".Trash", uid), top), (os.path.join(top, f".Trash-{uid}"), top)]
    return found


def _mount_point(folder: str) -> str:
    path = os.path.realpath(folder)
    while not os.path.exists(path):  # the folder itself may be gone with the file
        path = os.path.dirname(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def _read_trash(trash: str, topdir: str, entries: dict[bytes, list[_Entry]]) -> None:
    """Index a trash's info files by the original path they record."""
    info = os.path.join(trash, "info")
    try:
        names = os.listdir(info)
    except OSError:
        return  # no such trash
    for name in names:
        if not name.endswith(INFO_SUFFIX):
            continue
        try:
            with open(os.path.join(info, name), encoding="utf-8", errors="surrogateescape") as fh:
                fields = dict(line.rstrip("\n").partition("=")[::2] for line in fh if "=" in line)
        except OSError:
            continue
        if "Path" not in fields:
            continue
        original = urllib.parse.unquote_to_bytes(fields["Path"])
        if not original.startswith(b"/"):
            original = os.path.join(os.fsencode(topdir), original)
        original = os.path.normpath(original)
        entry = _Entry(trash, name[: -len(INFO_SUFFIX)], fields.get("DeletionDate", ""))
        entries.setdefault(original, []).append(entry)


def _pick(found: list[_Entry], size: int | None) -> _Entry:
    def size_of(entry: _Entry) -> int | None:
        try:
            return os.lstat(os.path.join(entry.trash, "files", entry.name)).st_size
        except OSError:
            return None

    matching = [e for e in found if size is not None and size_of(e) == size]
    return max(matching or found, key=lambda e: e.deleted)


def _put_back(entry: _Entry, path: str) -> str | None:
    """Move one trashed file back, never over another; why not, or None once it is back."""
    source = os.path.join(entry.trash, "files", entry.name)
    if os.path.lexists(path):
        return TAKEN
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # its folder may have gone with it
        _move_no_replace(source, path)
    except FileExistsError:
        return TAKEN
    except FileNotFoundError:
        return "is not in the trash any more (emptied, or put back by hand?)"
    except OSError as exc:
        return f"could not be put back: {one_line(exc, names=False)}"
    try:
        os.unlink(os.path.join(entry.trash, "info", entry.name + INFO_SUFFIX))
    except OSError:
        pass  # a stale info file only lists a missing file in the trash
    return None


def _move_no_replace(source: str, target: str) -> None:
    """rename(2) would replace a file that appears at the target meanwhile; a hard link cannot, so
    link then unlink, and rename only where links are not supported (after one more check)."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV:  # the trash of another disk: copy into a new file only
            with open(source, "rb") as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst)
            shutil.copystat(source, target)
            os.unlink(source)
            return
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", target) from None
        os.rename(source, target)
        return
    os.unlink(source)
