"""Safe clean-up: move photos to the system trash, never delete, never touch a changed file."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clipfind.catalog import Catalog
from clipfind.errors import ClipfindError
from clipfind.records import PhotoInfo


@dataclass
class TrashReport:
    moved: list[PhotoInfo] = field(default_factory=list)
    refused: list[tuple[PhotoInfo, str]] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(p.size for p in self.moved)


def _send(path: str) -> None:
    from send2trash import send2trash

    send2trash(path)


def finish_interrupted(catalog: Catalog) -> None:
    """Settle moves a kill interrupted: forget the files that did reach the trash, keep the rest.

    Each move is marked in the catalog before the file is sent and unmarked, together with
    forgetting the file, once it is in the trash; a mark left behind means the mover died
    in between, and whether the file is still at its path says which way it went.
    """
    for path in catalog.trash_pending():
        with catalog.transaction():
            if not os.path.lexists(path):
                catalog.remove_paths([path])
            catalog.set_trash_pending(path, False)


def _unchanged(photo: PhotoInfo) -> str | None:
    """Why the file at photo.path is not the photo that was grouped, or None if it is."""
    from clipfind.indexer import content_hash, read_photo

    try:
        st = os.stat(photo.path)
        if st.st_size != photo.size or st.st_mtime_ns != photo.mtime_ns:
            return "changed on disk since it was grouped"
        # Same size and time can still be other bytes (a file restored or copied with its date).
        if photo.content_hash and content_hash(read_photo(photo.path)) != photo.content_hash:
            return "changed on disk since it was grouped"
    except FileNotFoundError:
        raise
    except (OSError, ClipfindError) as exc:
        return f"cannot read: {getattr(exc, 'strerror', None) or exc}"
    return None


def move_to_trash(
    catalog: Catalog, photos: Sequence[PhotoInfo], send: Callable[[str], None] = _send
) -> TrashReport:
    """Trash exactly `photos`, one at a time, forgetting each in the catalog as soon as it moved.

    A file whose size, modification time or content differs from what was grouped is refused:
    the user decided about the photo they saw, not about whatever is at that path now. If the
    system trash cannot take a file, it stays where it is; there is no fallback to deleting.
    """
    report = TrashReport()
    finish_interrupted(catalog)
    for photo in photos:
        try:
            reason = _unchanged(photo)
        except FileNotFoundError:
            catalog.remove_paths([photo.path])
            report.refused.append((photo, "already gone"))
            continue
        if reason is not None:
            report.refused.append((photo, reason))
            continue
        catalog.set_trash_pending(photo.path, True)
        try:
            send(photo.path)
        except Exception as exc:  # send2trash raises OSError subclasses and its own TrashPermissionError
            catalog.set_trash_pending(photo.path, False)
            report.refused.append((photo, f"could not move to trash: {exc}"))
            continue
        with catalog.transaction():
            catalog.remove_paths([photo.path])
            catalog.set_trash_pending(photo.path, False)
        report.moved.append(photo)
    return report
