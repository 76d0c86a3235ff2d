"""Result types shared by the core, the CLI and the GUI (one per capability)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """What the catalog knows of one indexed file; enough to rank, show and clean it up."""

    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None  # ISO 8601 from EXIF DateTimeOriginal, local time, no zone
    device: int | None = None  # st_dev and st_ino when indexed: two paths with the same pair are one file
    inode: int | None = None

    @property
    def file_key(self) -> tuple[int, int] | None:
        """Which file this is on disk, whatever path reached it (None for rows indexed before it was kept)."""
        return (self.device, self.inode) if self.device is not None and self.inode is not None else None

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


def human_bytes(n: float) -> str:
    """Sizes as people read them (decimal units, like file managers)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
