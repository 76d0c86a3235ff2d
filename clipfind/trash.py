"""Safe clean-up: move photos to the system trash, never delete, never touch a changed file."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clipfind.catalog import Catalog
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


def move_to_trash(
    catalog: Catalog, photos: Sequence[PhotoInfo], send: Callable[[str], None] = _send
) -> TrashReport:
    """Trash exactly `photos`, one at a time, forgetting each in the catalog as soon as it moved.

    A file whose size or modification time differs from what was grouped is refused: the
    user decided about the photo they saw, not about whatever is at that path now. If the
    system trash cannot take a file, it stays where it is; there is no fallback to deleting.
    """
    report = TrashReport()
    for photo in photos:
        try:
            st = os.stat(photo.path)
        except FileNotFoundError:
            catalog.remove_paths([photo.path])
            report.refused.append((photo, "already gone"))
            continue
        except OSError as exc:
            report.refused.append((photo, f"cannot read: {exc.strerror or exc}"))
            continue
        if st.st_size != photo.size or st.st_mtime_ns != photo.mtime_ns:
            report.refused.append((photo, "changed on disk since it was grouped"))
            continue
        try:
            send(photo.path)
        except Exception as exc:  # send2trash raises OSError subclasses and its own TrashPermissionError
            report.refused.append((photo, f"could not move to trash: {exc}"))
            continue
        catalog.remove_paths([photo.path])
        report.moved.append(photo)
    return report
