"""Helpers shared by tests: where the real photos are, and small builders."""

from __future__ import annotations

import os
import shutil
import sqlite3
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from PIL import Image

    from clipfind.indexer import IndexReport
    from clipfind.library import Library

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PHOTOS = SHARED_DATA / "photos"
FORMATS = SHARED_DATA / "formats"

needs_shared_data = pytest.mark.skipif(
    not PHOTOS.is_dir(), reason=f"real test photos not found at {SHARED_DATA} (../shared/data beside the project)"
)


def real_photo(name: str, side: int) -> Image.Image:
    """A real photo from ../shared/data/photos, upright RGB, fit in side x side (the first interior
    photo when the name is absent); skips the test when the folder is not there."""
    from PIL import Image, ImageOps

    if not PHOTOS.is_dir():
        pytest.skip(f"real test photos not found at {PHOTOS}")
    path = PHOTOS / name
    if not path.exists():
        path = sorted((PHOTOS / "pexels_interior").glob("*.jpg"))[0]
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((side, side))
    return image


def copy_photos(dest: Path, count: int, subfolder: str = "kodak24") -> list[Path]:
    """Copy `count` real photos into dest (PNG and JPEG sources as they are)."""
    dest.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in (PHOTOS / subfolder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    out = []
    for src in sources[:count]:
        target = dest / src.name
        shutil.copy2(src, target)
        out.append(target)
    return out


def index(lib: Library, *folders: Path, **options: Any) -> IndexReport:
    """One indexing pass over these folders (none: the known ones), random weights' warning quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return lib.indexer(batch_size=4).run([str(f) for f in folders] or None, **options)


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def set_mtime(path: Path, seconds: float) -> None:
    os.utime(path, (seconds, seconds))


def catalog_rows(home: Path, columns: str) -> dict[bytes, tuple[Any, ...]]:
    """The catalog's files rows by path (the first column must be path), read-only from outside the Library."""
    with sqlite3.connect(f"file:{home / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
        return {r[0]: r for r in db.execute(f"SELECT {columns} FROM files")}


def catalog_vectors(home: Path) -> dict[bytes, np.ndarray]:
    """Every stored vector by path, read-only."""
    with sqlite3.connect(f"file:{home / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
        return {p: np.frombuffer(v, dtype=np.float32) for p, v in
                db.execute("SELECT path, vector FROM files WHERE vector IS NOT NULL")}


def committed_rows(home: Path) -> int:
    """How many files rows the catalog holds now, read from outside while an indexer writes (0 until it exists)."""
    try:
        with sqlite3.connect(f"file:{home / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.Error:
        return 0
