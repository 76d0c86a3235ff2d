"""The keyboard shortcut sheet (gui/shortcuts.py): every listed key is shown, F1 and ? open it from the window."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel

from gui.shortcuts import SHORTCUTS, ShortcutSheet
from tests.gui.conftest import shoot, wait_idle


def test_the_sheet_shows_every_key_and_what_it_does(qtbot) -> None:
    sheet = ShortcutSheet()
    qtbot.addWidget(sheet)
    sheet.show()
    shown = {label.text() for label in sheet.findChildren(QLabel)}
    for section, keys in SHORTCUTS:
        assert section in shown
        for key, what in keys:
            assert f"<b>{key}</b>" in shown and what in shown
    shoot(sheet, "shortcuts-light")


def test_f1_and_question_mark_open_the_sheet_from_the_window(make_window, qtbot) -> None:
    window = make_window()
    wait_idle(window, qtbot)
    window.activateWindow()  # shortcuts answer only in the active window
    opened: list[str] = []

    def close_sheet() -> None:
        sheet = QApplication.activeModalWidget()
        if isinstance(sheet, ShortcutSheet):
            opened.append(sheet.windowTitle())
            sheet.reject()

    for count, key in enumerate((Qt.Key.Key_F1, "?"), 1):
        window.activateWindow()  # back from the sheet
        qtbot.waitUntil(window.isActiveWindow)
        window.tabs.setFocus()
        QTimer.singleShot(200, close_sheet)
        qtbot.keyClick(window.tabs, key)  # returns when the modal sheet has closed
        assert len(opened) == count
    window.activateWindow()
    window.search.text.setFocus()
    qtbot.keyClick(window.search.text, "?")  # typed in a text field, it stays text
    assert window.search.text.text() == "?" and len(opened) == 2
    assert opened == ["Keyboard shortcuts"] * 2


def test_dark_screenshot(qtbot, dark) -> None:
    sheet = ShortcutSheet()
    qtbot.addWidget(sheet)
    sheet.show()
    shoot(sheet, "shortcuts-dark", qtbot, 50)
