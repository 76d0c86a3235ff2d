"""GUI test fixtures: offscreen Qt, a temporary home, settings and trash, the tiny random model."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from clipfind.library import Library  # noqa: E402
from tests.helpers import ROOT  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def make_window(qtbot, tmp_path: Path, trash_home: Path) -> Iterator[Callable[..., object]]:
    from gui.main_window import MainWindow

    windows = []

    def make(folders: list[str] | None = None, library: Library | None = None) -> MainWindow:
        library = library or Library(tmp_path / "home", "clipfind-tiny", "none")
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(library, settings, folders)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    gc.collect()  # on the GUI thread, before the next test's workers start allocating


def shoot(widget: QWidget, name: str, qtbot=None, settle_ms: int = 0) -> Path:
    """Save a screenshot; a first grab triggers lazy thumbnails, the second shows them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if qtbot is not None and settle_ms:
        widget.grab()
        qtbot.wait(settle_ms)
    path = ARTIFACTS / f"{name}.png"
    widget.grab().save(str(path))
    return path
