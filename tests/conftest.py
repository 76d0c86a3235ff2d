"""Shared fixtures: the real photos in ../shared/data, temporary homes, a tiny random model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipfind.library import Library
from tests.helpers import PHOTOS, copy_photos


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def lib(home: Path) -> Iterator[Library]:
    """A Library on the temporary home with the tiny random-weight model."""
    library = Library(home, "clipfind-tiny", "none")
    yield library
    library.close()


@pytest.fixture
def tiny_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """CLI and Library default to the tiny random-weight model and a temporary home."""
    monkeypatch.setenv("CLIPFIND_MODEL", "clipfind-tiny")
    monkeypatch.setenv("CLIPFIND_PRETRAINED", "none")
    monkeypatch.setenv("CLIPFIND_HOME", str(home))
    return home


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A small folder of real photos from ../shared/data/photos, with a subfolder."""
    if not PHOTOS.is_dir():
        pytest.skip(f"real test photos not found at {PHOTOS}")
    folder = tmp_path / "Pictures"
    copy_photos(folder, 6, "kodak24")
    copy_photos(folder / "trip", 4, "skimage_data")
    return folder


@pytest.fixture
def trash_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private system trash: $XDG_DATA_HOME/Trash inside the test.

    send2trash reads XDG_DATA_HOME once, when first imported, so its module constants are
    pointed here too; otherwise a test would use the trash of whichever test imported it first.
    """
    import os

    from send2trash import plat_other

    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(xdg))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(xdg / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(xdg / "Trash"))
    return xdg / "Trash" / "files"


@pytest.fixture
def looked_at(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the indexer's scan stats and hands on (full walk or `only`), on whichever thread."""
    import clipfind.scan

    seen: list[str] = []
    real = clipfind.scan.scanned

    def scanned(path: str, st: os.stat_result, skip: str | None = None) -> object:
        seen.append(path)
        return real(path, st, skip)

    monkeypatch.setattr(clipfind.scan, "scanned", scanned)
    return seen
