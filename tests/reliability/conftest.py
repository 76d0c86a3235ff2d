"""Fixtures of the reliability suite: small real photos, a fork server for cheap kills, an isolated trash."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.support import PHOTOS, ForkServer, make_small_jpegs


@pytest.fixture(scope="session")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 distinct ~300 px JPEGs made once from the real photos (cheap to index, cheap to kill)."""
    if not PHOTOS.is_dir():
        pytest.skip(f"real test photos not found at {PHOTOS} (../shared/data beside the project)")
    folder = tmp_path_factory.mktemp("small-set")
    make_small_jpegs(folder, 160)
    return folder


@pytest.fixture
def photos(tmp_path: Path, small_set: Path) -> Path:
    """A fresh, writable copy of the small set."""
    folder = tmp_path / "Photos"
    shutil.copytree(small_set, folder)
    return folder


@pytest.fixture(scope="session")
def fork_server() -> ForkServer:
    return ForkServer()


@pytest.fixture
def trash_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """XDG_DATA_HOME in tmp, so send2trash never touches the real trash."""
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    # send2trash reads XDG_DATA_HOME once, when first imported (clipfind imports it when it first
    # trashes): make that import happen under this environment, and leave none behind for the next.
    _forget_send2trash()
    yield xdg / "Trash"
    _forget_send2trash()


def _forget_send2trash() -> None:
    for name in [m for m in sys.modules if m == "send2trash" or m.startswith("send2trash.")]:
        del sys.modules[name]


IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
