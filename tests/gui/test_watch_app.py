"""Watched folders in the app (issue 12): photos copied into a watched folder appear without re-indexing,
applied off the GUI thread; a second watcher on the same home is refused and the status bar says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clipfind.library import Library
from tests.gui.conftest import Heartbeat, indexed_home, shoot, wait_idle
from tests.helpers import PHOTOS, copy_photos, needs_shared_data

pytestmark = needs_shared_data
WAIT = 120_000  # ms: model load (imports) plus indexing, on a busy 2-core machine


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "Photos"
    copy_photos(path, 4, "kodak24")
    return path


def test_a_photo_copied_into_a_watched_folder_appears(make_window, folder: Path, tmp_path: Path, qtbot) -> None:
    home = indexed_home(tmp_path / "home", folder)
    window = make_window()
    qtbot.waitUntil(lambda: window.watch.active and window.watch_state.text().startswith("Watching"),
                    timeout=WAIT)
    wait_idle(window, qtbot)
    qtbot.waitUntil(lambda: window.counts.text() == "4 photos", timeout=WAIT)

    passes: list[list[str] | None] = []  # what each index pass was asked to look at
    index_folders = window.library.index_folders
    window.library.index_folders = lambda *a, **k: passes.append(k.get("only")) or index_folders(*a, **k)
    sources = sorted((PHOTOS / "kodak24").glob("*.png"))
    with Heartbeat() as beat:
        new = [folder / "new one.png", folder / "new two.png"]
        for src, dest in zip(sources[10:12], new):
            shutil.copy2(src, dest)  # the user copies photos in; nobody asks to re-index
        qtbot.waitUntil(lambda: window.counts.text() == "6 photos", timeout=30_000)
        wait_idle(window, qtbot)
    assert beat.worst_ms < 1000, f"the GUI thread stalled {beat.worst_ms:.0f} ms"
    # The watcher's passes looked at the new files alone, not at the whole folder.
    assert passes and all(only is not None for only in passes), passes
    assert {str(p) for p in new} <= {path for only in passes for path in only or ()}

    # Found by a search in the app (through its library lane, as the user's search goes).
    window.search.text.setText("a photo")
    window.search.run_search()
    qtbot.waitUntil(lambda: {str(p) for p in new} <= {h.photo.path for h in window.search.model.hits},
                    timeout=30_000)
    assert window.progress_text.text().startswith("Up to date")
    path = shoot(window, "watch-01-photo-copied-in", qtbot, 1000)
    assert path.exists()
    assert (home / "watcher.lock").exists()

    (folder / "new two.png").unlink()
    qtbot.waitUntil(lambda: window.counts.text() == "5 photos", timeout=30_000)


def test_the_app_does_not_watch_where_another_process_does(make_window, folder: Path, tmp_path: Path,
                                                           qtbot) -> None:
    home = indexed_home(tmp_path / "home", folder)
    other = Library(home, "clipfind-tiny", "none")
    watcher = other.watch()  # `clipfind index --watch` in another process, as far as the lock goes
    try:
        window = make_window()
        qtbot.waitUntil(lambda: window.watch_state.text() == "Not watching folders", timeout=WAIT)
        assert "already watching" in window.watch_state.toolTip()
        assert not window.watch.active
        wait_idle(window, qtbot)
        shoot(window, "watch-02-not-watching", qtbot, 500)
    finally:
        watcher.stop()
        other.close()


def test_closing_the_window_lets_go_of_the_watch_lock(make_window, folder: Path, tmp_path: Path, qtbot) -> None:
    home = indexed_home(tmp_path / "home", folder)
    window = make_window()
    qtbot.waitUntil(lambda: window.watch.active, timeout=WAIT)
    wait_idle(window, qtbot)
    window.close()
    lib = Library(home, "clipfind-tiny", "none")
    try:
        lib.watch().stop()  # free again: the CLI may watch now
    finally:
        lib.close()
