"""Shared fixtures: the real photos in ../shared/data, temporary homes, a tiny random model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PHOTOS, copy_photos


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


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
