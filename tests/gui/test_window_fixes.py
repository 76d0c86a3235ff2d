"""Main-window defects of issue 9: Enter in the search field (item 15), Ctrl+V with a photo anywhere
(item 16), a missing libxcb-cursor0 (item 17), and removing a nested folder in the app (item 18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage

from tests.gui.conftest import shoot, wait_idle
from tests.helpers import copy_photos, needs_shared_data

WAIT = 120_000  # ms: model load plus indexing on a busy 2-core machine


def _ready(window, count: int, qtbot) -> None:
    qtbot.waitUntil(lambda: window.model_ready and window.idle
                    and window.library.catalog.count("ok") >= count, timeout=WAIT)
    window.activateWindow()  # shortcuts answer only in the active window
    qtbot.waitUntil(window.isActiveWindow)


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """What the app asked the system to open, instead of opening it."""
    urls: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: urls.append(url.toLocalFile()) or True)
    return urls


@needs_shared_data
def test_enter_in_the_search_field_searches_even_with_a_photo_selected(make_window, tmp_path: Path, qtbot,
                                                                      opened: list[str], monkeypatch) -> None:
    folder = tmp_path / "Photos"
    copy_photos(folder, 6, "kodak24")
    window = make_window([str(folder)])
    _ready(window, 6, qtbot)
    view = window.search
    queries: list[object] = []
    search = window.library.search_results
    monkeypatch.setattr(window.library, "search_results",
                        lambda query, *a: queries.append(query) or search(query, *a))
    window.focus_search()
    qtbot.keyClicks(view.text, "a red barn")
    qtbot.keyClick(view.text, Qt.Key.Key_Return)
    wait_idle(window, qtbot)
    assert len(queries) == 1 and view.model.rowCount() == 6
    view.grid.setCurrentIndex(view.model.index(2, 0))  # a result selected, as after a click
    window.focus_search()
    qtbot.keyClicks(view.text, "a boat on a lake")
    qtbot.keyClick(view.text, Qt.Key.Key_Return)
    wait_idle(window, qtbot)
    assert len(queries) == 2 and opened == []  # the new query ran; nothing was opened
    view.grid.setCurrentIndex(view.model.index(2, 0))
    view.grid.setFocus()
    qtbot.keyClick(view.grid, Qt.Key.Key_Return)  # in the grid, Enter still opens the current photo
    assert opened == [view.model.hits[2].photo.path] and len(queries) == 2


@needs_shared_data
def test_ctrl_v_pastes_a_photo_wherever_focus_is_and_text_as_text(make_window, tmp_path: Path, qtbot) -> None:
    folder = tmp_path / "Photos"
    copy_photos(folder, 6, "kodak24")
    window = make_window([str(folder)])
    _ready(window, 6, qtbot)
    view = window.search
    clipboard = QGuiApplication.clipboard()

    window.focus_search()  # Ctrl+F: the search field has focus
    clipboard.setImage(QImage(str(folder / "kodim03.png")))
    qtbot.keyClick(view.text, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    wait_idle(window, qtbot)
    assert view.query_image and Path(view.query_image).is_file() and view.chip.isVisible()
    assert view.text.text() == "" and view.model.rowCount() == 6
    shoot(window, "12-pasted-photo", qtbot, 1000)

    view.clear_query_image()
    clipboard.setText("a dog on a beach")  # text goes into the field, as text
    qtbot.keyClick(view.text, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert view.text.text() == "a dog on a beach" and view.query_image is None

    mime = QMimeData()  # a photo file copied in a file manager, pasted while the duplicates tab has focus
    mime.setUrls([QUrl.fromLocalFile(str(folder / "kodim04.png"))])
    clipboard.setMimeData(mime)
    window.tabs.setCurrentWidget(window.dupes)
    window.dupes.slider.setFocus()
    qtbot.keyClick(window.dupes.slider, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is view and view.query_image == str(folder / "kodim04.png")
    clipboard.clear()  # a QMimeData made here and still held by the clipboard crashes Qt's exit (offscreen)


def test_missing_xcb_cursor_is_named_before_qt_aborts(monkeypatch, capsys) -> None:
    import gui.app

    monkeypatch.setattr(gui.app.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(gui.app, "_loads", lambda library: False)
    assert gui.app.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sudo apt install libxcb-cursor0" in err

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # another platform plugin needs no xcb library
    assert gui.app.missing_platform_library() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert gui.app.missing_platform_library() is not None
    monkeypatch.setattr(gui.app, "_loads", lambda library: True)
    assert gui.app.missing_platform_library() is None


@needs_shared_data
def test_removing_a_subfolder_keeps_what_its_parent_covers_and_nothing_stays_stale(
        make_window, tmp_path: Path, qtbot) -> None:
    parent = tmp_path / "par"
    child = parent / "child"
    copy_photos(parent, 3, "kodak24")
    copy_photos(child, 3, "skimage_data")
    shutil.copy2(parent / "kodim01.png", child / "kodim01 again.png")  # an identical pair across the two
    window = make_window([str(child), str(parent)])
    _ready(window, 7, qtbot)
    view = window.search
    qtbot.keyClicks(view.text, "anything")
    qtbot.keyClick(view.text, Qt.Key.Key_Return)
    wait_idle(window, qtbot)
    assert view.model.rowCount() == 7

    window.apply_folder_changes([], [str(child)])  # the parent still covers the child's photos
    wait_idle(window, qtbot)
    assert window.library.catalog.count("ok") == 7 and view.model.rowCount() == 7
    assert window.library.folders() == [str(parent)]

    window.tabs.setCurrentWidget(window.dupes)
    wait_idle(window, qtbot)
    assert str(child / "kodim01 again.png") in {m.photo.path for g in window.dupes.groups for m in g.members}
    window.apply_folder_changes([], [str(parent)])
    wait_idle(window, qtbot)
    assert window.library.catalog.count("ok") == 0
    assert window.counts.text() == "0 photos" and window.dupes.groups == []
    assert view.model.rowCount() == 0 and view.count.text() == "no matching photos yet"
    assert all(p.exists() for p in (parent / "kodim01.png", child / "kodim01 again.png"))


@needs_shared_data
def test_removing_a_folder_while_it_is_indexed_stops_the_pass_then_forgets_it(
        make_window, tmp_path: Path, qtbot, monkeypatch) -> None:
    """The writer lock is the indexer's until its pass ends: the window cancels it and forgets the folder
    once it has stopped, off the event loop, with no warning for the cancelled pass."""
    from PySide6.QtWidgets import QMessageBox

    from gui.main_window import MainWindow

    keep, drop = tmp_path / "keep", tmp_path / "drop"
    copy_photos(keep, 3, "kodak24")
    copy_photos(drop, 24, "pexels_interior")
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warned.append(text))
    monkeypatch.setattr(MainWindow, "index_batch_size", 2)  # many batches: the cancel lands mid-pass
    window = make_window([str(keep), str(drop)])
    qtbot.waitUntil(lambda: window.indexer is not None, timeout=WAIT)
    progress: list[int] = []
    window.indexer.progress.connect(lambda p: p.phase == "indexing" and progress.append(p.done))
    qtbot.waitUntil(lambda: bool(progress), timeout=WAIT)
    window.apply_folder_changes([], [str(drop)])
    wait_idle(window, qtbot)
    assert window.library.folders() == [str(keep)] and window.known_folders == [str(keep)]
    assert all(not p.path.startswith(str(drop)) for p in window.library.catalog.photos())
    assert window.indexer is None and warned == []
    assert all(p.exists() for p in drop.iterdir()) and len(list(drop.iterdir())) == 24
