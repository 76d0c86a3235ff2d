"""Thumbnails kept on disk in the home, so the grid of a second start fills from small files instead
of decoding every photo again (a 24-megapixel JPEG takes 100-300 ms to decode; its cached
thumbnail a millisecond).

An entry is a JPEG named by a hash of the photo's path, size, modification time and the thumbnail's
side: a photo that changes gets a new name, and the old entry is simply never asked for again.
Entries are written whole or not at all (a temp file beside them, then a rename), so a crash leaves
no half thumbnail; an entry that is damaged anyway (a full disk, a stray edit) fails to decode, is
removed and made again from the photo. Safe to use from several threads: every writer writes its own
temp file and the rename is atomic. No Qt here; the app turns the image into a pixmap.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from pathlib import Path

from PIL import Image

THUMBS_FOLDER = "thumbs"  # in the home
JPEG_QUALITY = 85  # ~10-20 KB for a 256 px thumbnail


class ThumbCache:
    """Thumbnails of ``side`` pixels (largest width and height) cached under ``folder``."""

    def __init__(self, folder: str | os.PathLike[str], side: int = 256) -> None:
        self.folder = Path(folder)
        self.side = side
        self.hits = self.misses = self.repaired = 0  # counted for tests and the benchmark

    def key(self, path: str, size: int, mtime_ns: int) -> str:
        """The entry's name for this photo as it is on disk now."""
        text = f"{self.side}\0{size}\0{mtime_ns}\0".encode() + os.fsencode(path)
        return hashlib.blake2b(text, digest_size=16).hexdigest()

    def entry(self, path: str) -> Path:
        """Where the thumbnail of ``path`` (as it is on disk now) is, or would be, kept.
        Raises OSError when the photo cannot be stat'ed."""
        st = os.stat(path)
        name = self.key(os.path.abspath(path), st.st_size, st.st_mtime_ns)
        return self.folder / name[:2] / f"{name}.jpg"

    def thumbnail(self, path: str) -> Image.Image:
        """The photo upright in RGB, fitting in ``side`` x ``side``: from the cache, else decoded from
        the photo and kept. Raises ImageLoadError or OSError for a photo that cannot be shown."""
        entry = self.entry(path)
        cached = self._read(entry)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        from clipfind.imageload import load_image

        image = load_image(path, min_side=self.side).image
        image.thumbnail((self.side, self.side))
        image = image.convert("RGB")
        self._write(entry, image)
        return image

    def _read(self, entry: Path) -> Image.Image | None:
        try:
            data = entry.read_bytes()
        except OSError:
            return None
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # a truncated or garbled file fails here, not later in the view
                return im.convert("RGB")
        except Exception:  # noqa: BLE001 (any decode failure means: make it again)
            self.repaired += 1
            entry.unlink(missing_ok=True)
            return None

    def _write(self, entry: Path, image: Image.Image) -> None:
        """Whole or not at all; a cache that cannot be written (read-only or full disk) is only slower."""
        temp = entry.with_name(f".{entry.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=JPEG_QUALITY)
            temp.write_bytes(buffer.getvalue())
            os.replace(temp, entry)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
