"""GUI test fixtures: offscreen Qt, a temporary home, settings and trash, the tiny random model; a library
built from real photos with chosen vectors; and a heartbeat that measures event-loop stalls."""

from __future__ import annotations

import contextlib
import gc
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from clipfind.catalog import Catalog, FileStamp  # noqa: E402
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


def wait_idle(window, qtbot, timeout: int = 120_000) -> None:  # noqa: ANN001
    """Until the window has no Library call queued or running and no indexing pass."""
    qtbot.waitUntil(lambda: window.idle, timeout=timeout)


def indexed_home(home: Path, folder: Path) -> Path:
    """A home whose catalog holds `folder`, indexed with the tiny random-weight model (no window)."""
    library = Library(home, "clipfind-tiny", "none")
    try:
        library.index_folders([str(folder)])
    finally:
        library.close()
    return home


def place_vectors(home: Path, near: dict[Path, Path]) -> None:
    """Random weights mean nothing: give each content in `near` a vector close to its anchor's, spread the rest.

    Every byte-identical copy gets its content's vector, and each row keeps its file identity and fingerprint.
    """
    cat = Catalog(home / "catalog.sqlite3")
    rng = np.random.default_rng(0)
    by_hash: dict[str, np.ndarray] = {}
    anchors = {cat.photo_by_path(str(a))[0].content_hash for a in near.values()}
    for content in sorted({p.content_hash for p in cat.photos()} - anchors) + sorted(anchors):
        by_hash[content] = rng.standard_normal(cat.dim).astype(np.float32)
    for path, anchor in near.items():
        base = by_hash[cat.photo_by_path(str(anchor))[0].content_hash]
        by_hash[cat.photo_by_path(str(path))[0].content_hash] = base + 0.005 * rng.standard_normal(cat.dim).astype(
            np.float32)
    known = cat.known_files()
    for photo in cat.photos():
        v = by_hash[photo.content_hash]
        stamp = FileStamp(photo.device, photo.inode, known[photo.path].ctime_ns)
        stored = cat.vector_by_hash(photo.content_hash)  # the pixel fingerprint stays as indexed
        cat.put_photo(photo.path, photo.size, photo.mtime_ns, photo.content_hash, photo.width, photo.height,
                      photo.taken_at, v / np.linalg.norm(v), stamp, thumb=stored.thumb, capture=stored.capture)
    cat.close()


class Heartbeat:
    """A 10 ms timer on the GUI thread; `worst_ms` is the longest the event loop kept it waiting beyond that.

    Use as a context manager around the work to watch, while the event loop runs (qtbot.wait/waitUntil).
    """

    def __init__(self, interval_ms: int = 10) -> None:
        self.interval_ms = interval_ms
        self.worst_ms = 0.0
        self.ticks = 0
        self._last = 0.0
        self._timer = QTimer(interval=interval_ms, timeout=self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst_ms = max(self.worst_ms, (now - self._last) * 1000 - self.interval_ms)
        self._last = now
        self.ticks += 1

    def __enter__(self) -> Heartbeat:
        self._last = time.perf_counter()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._tick()  # a stall at the very end counts too
        self._timer.stop()


def shoot(widget: QWidget, name: str, qtbot=None, settle_ms: int = 0) -> Path:
    """Save a screenshot; a first grab triggers lazy thumbnails, the second shows them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if qtbot is not None and settle_ms:
        widget.grab()
        qtbot.wait(settle_ms)
    path = ARTIFACTS / f"{name}.png"
    widget.grab().save(str(path))
    return path


@contextlib.contextmanager
def dark_palette() -> Iterator[None]:
    """The app in its own dark palette (gui.theme, as it draws on a dark system), the light one restored after."""
    from PySide6.QtWidgets import QApplication

    from gui import theme

    app = QApplication.instance()
    before = app.palette()
    theme.apply(app, True)
    try:
        yield
    finally:
        app.setPalette(before)
        app.setStyleSheet(app.styleSheet())


@pytest.fixture
def dark() -> Iterator[None]:
    """The dark palette for one test."""
    with dark_palette():
        yield


def shoot_light_and_dark(widget: QWidget, name: str, qtbot) -> None:  # noqa: ANN001
    """``name-light.png``, then ``name-dark.png`` in the dark palette; light again after."""
    shoot(widget, f"{name}-light", qtbot, 800)
    with dark_palette():
        shoot(widget, f"{name}-dark", qtbot, 300)
