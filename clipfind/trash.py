"""Safe clean-up: move photos to the system trash, never delete, never touch a changed file,
and never leave a duplicate group without a copy of its photo on disk."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Sequence

from clipfind.catalog import Catalog
from clipfind.errors import ClipfindError, one_line
from clipfind.records import DupeGroup, PhotoInfo, TrashReport

__all__ = ["TrashReport", "clean_up", "finish_interrupted", "move_to_trash"]

SendFn = Callable[[str], None]


def _send(path: str) -> None:
    from send2trash import send2trash

    send2trash(path)


def finish_interrupted(catalog: Catalog) -> None:
    """Settle moves a kill interrupted: forget the files that did reach the trash, keep the rest.

    Each move is marked in the catalog before the file is sent and unmarked, together with
    forgetting the file, once it is in the trash; a mark left behind means the mover died
    in between (or the disk filled up), and whether the file is still at its path says which
    way it went.
    """
    for path in catalog.trash_pending():
        with catalog.transaction():
            if not os.path.lexists(path):  # it reached the trash: kept with the batch it was part of
                catalog.forget_trashed(path, max(1, catalog.next_trash_batch() - 1), time.time())
            catalog.set_trash_pending(path, False)


def _same_content(photo: PhotoInfo) -> str | None:
    """Why the file at photo.path is not the photo that was grouped, or None if it is.

    FileNotFoundError passes through: a file that is gone is reported apart.
    """
    from clipfind.imageload import content_hash, read_photo

    try:
        st = os.stat(photo.path)
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file any more"
        if st.st_size != photo.size or st.st_mtime_ns != photo.mtime_ns:
            return "changed on disk since it was grouped"
        # Same size and time can still be other bytes (a file restored or copied with its date).
        if photo.content_hash and content_hash(read_photo(photo.path)) != photo.content_hash:
            return "changed on disk since it was grouped"
    except FileNotFoundError:
        raise
    except (OSError, ClipfindError) as exc:
        return f"cannot be read: {one_line(exc, names=False)}"
    return None


def _file_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _keeper_problem(keeper: PhotoInfo) -> str | None:
    """Why the keeper cannot vouch for its group now: it must be on disk, readable, and the same bytes
    (by hash: its date may have been touched, its bytes swapped with the date set back)."""
    from clipfind.imageload import content_hash, read_photo

    try:
        if not stat.S_ISREG(os.stat(keeper.path).st_mode):
            return f"its keeper {keeper.path} is not a regular file"
        if content_hash(read_photo(keeper.path)) != keeper.content_hash:
            return f"its keeper {keeper.path} no longer holds the photo that was grouped"
    except FileNotFoundError:
        return f"its keeper {keeper.path} is missing"
    except (OSError, ClipfindError) as exc:
        return f"its keeper {keeper.path} cannot be read ({one_line(exc, names=False)})"
    return None


class _Batch:
    """One clean-up's moves: the catalog keeps their rows under one number, for an undo. The number
    is taken at the first file that moves, so a clean-up that moves nothing keeps the last batch."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._number: int | None = None
        self._when = time.time()

    def forget(self, path: str) -> None:
        if self._number is None:
            self._number = self._catalog.next_trash_batch()
        self._catalog.forget_trashed(path, self._number, self._when)


def _move(catalog: Catalog, photo: PhotoInfo, send: SendFn, report: TrashReport, batch: _Batch) -> None:
    """One file to the trash with a journal mark around it, so a kill or a full disk is settled later."""
    try:
        catalog.set_trash_pending(photo.path, True)
    except sqlite3.DatabaseError as exc:
        report.refused.append((photo, f"stays where it is: the catalog cannot record the move ({exc})"))
        return
    try:
        send(photo.path)
    except Exception as exc:  # send2trash raises OSError subclasses and its own TrashPermissionError
        catalog.set_trash_pending(photo.path, False)
        report.refused.append((photo, f"could not be moved to the trash: {one_line(exc, names=False)}"))
        return
    report.moved.append(photo)  # it is in the trash, whatever the catalog says next
    try:
        with catalog.transaction():
            batch.forget(photo.path)  # its row is kept for an undo
            catalog.set_trash_pending(photo.path, False)
    except sqlite3.DatabaseError as exc:
        # The pending mark stays in the journal: the next start sees the file gone and forgets it.
        report.notices.append(f"moved {photo.path} to the trash, but the catalog could not be updated "
                              f"({exc}); it will be on the next run")


def _gone(catalog: Catalog, photo: PhotoInfo, report: TrashReport) -> None:
    report.refused.append((photo, "is already gone"))
    try:
        catalog.remove_paths([photo.path])
    except sqlite3.DatabaseError:
        pass  # the next index pass drops it


def move_to_trash(catalog: Catalog, photos: Sequence[PhotoInfo], send: SendFn = _send, *,
                  protect: Sequence[str] = ()) -> TrashReport:
    """Trash exactly `photos`, one at a time, forgetting each in the catalog as soon as it moved.

    A file whose size, modification time or content differs from what was grouped is refused:
    the user decided about the photo they saw, not about whatever is at that path now. If the
    system trash cannot take a file, it stays where it is; there is no fallback to deleting.
    Nothing moves out of a folder of ``protect`` (the keeper rules'), whoever asks.
    """
    report = TrashReport()
    batch = _Batch(catalog)
    finish_interrupted(catalog)
    for photo in photos:
        folder = _protected_by(photo.path, protect)
        if folder is not None:
            report.refused.append((photo, f"is in the protected folder {folder}"))
            continue
        try:
            reason = _same_content(photo)
        except FileNotFoundError:
            _gone(catalog, photo, report)
            continue
        if reason is not None:
            report.refused.append((photo, reason))
            continue
        _move(catalog, photo, send, report, batch)
    return report


def clean_up(
    catalog: Catalog,
    groups: Sequence[DupeGroup],
    selected: Iterable[PhotoInfo] | None = None,
    *,
    include_similar: bool = False,
    protect: Sequence[str] = (),
    send: SendFn = _send,
) -> TrashReport:
    """Move the selected members of duplicate groups to the trash, so that every group keeps its photo.

    ``selected`` defaults to each group's :meth:`DupeGroup.suggested`. Group by group, before any of
    its members moves, the keeper must be at its path, a regular readable file, with the group's
    content (re-hashed); otherwise the whole group is left alone. A keeper is never moved, nor any
    path that reaches the same file as a photo that stays (a link or a second mount of it): that
    would remove the last copy while freeing nothing. Each member moved must still be the file
    that was grouped. Nothing moves out of a protected folder: those of ``protect`` (the keeper
    rules') and the members a group marks ``protected``.
    """
    report = TrashReport()
    batch = _Batch(catalog)
    finish_interrupted(catalog)
    keepers = {g.keeper.id for g in groups}
    picked = {p.id: p for p in (selected if selected is not None else
                                 (p for g in groups for p in g.suggested(include_similar)))}
    members = {m.photo.id for g in groups for m in g.members}
    flagged = {m.photo.id for g in groups for m in g.members if m.protected}
    guarded: set[int] = set()
    for photo in picked.values():
        folder = _protected_by(photo.path, protect)
        if photo.id in keepers:
            report.refused.append((photo, "is the photo its group keeps"))
        elif photo.id not in members:
            report.refused.append((photo, "is not in any duplicate group shown"))
        elif folder is not None or photo.id in flagged:
            guarded.add(photo.id)
            report.refused.append((photo, f"is in the protected folder {folder}" if folder is not None
                                   else "is in a protected folder"))
    chosen = picked.keys() - keepers - guarded
    keeper_files = {k for k in map(_file_key, (g.keeper.path for g in groups)) if k is not None}
    for group in groups:
        doomed = [m.photo for m in group.members[1:] if m.photo.id in chosen]
        if doomed:
            _clean_group(catalog, group, doomed, keeper_files, send, report, batch)
    return report


def _protected_by(path: str, folders: Sequence[str]) -> str | None:
    """The protected folder that holds path, if any."""
    for folder in folders:
        base = folder.rstrip("/\\") or folder
        if path == base or path.startswith((base + "/", base + "\\")):
            return base
    return None


def _clean_group(
    catalog: Catalog,
    group: DupeGroup,
    doomed: list[PhotoInfo],
    keeper_files: set[tuple[int, int]],
    send: SendFn,
    report: TrashReport,
    batch: _Batch,
) -> None:
    problem = _keeper_problem(group.keeper)
    if problem is not None:
        report.skipped_groups.append((group, f"group of {group.keeper.path} left alone: {problem}"))
        return
    doomed_ids = {p.id for p in doomed}
    staying = [m.photo.path for m in group.members if m.photo.id not in doomed_ids]
    kept_files = keeper_files | {k for k in map(_file_key, staying) if k is not None}
    for photo in doomed:
        try:
            reason = _same_content(photo)
        except FileNotFoundError:
            _gone(catalog, photo, report)
            continue
        if reason is not None:
            report.refused.append((photo, reason))
            continue
        if _file_key(photo.path) in kept_files:
            report.refused.append((photo, f"is the same file as {group.keeper.path} or another "
                                          "photo that stays (a link), so moving it would free nothing"))
            continue
        if _file_key(group.keeper.path) not in keeper_files:  # the keeper went while we were moving
            report.skipped_groups.append((group, f"group of {group.keeper.path} left alone: its keeper "
                                                 "changed during the clean-up"))
            return
        _move(catalog, photo, send, report, batch)
