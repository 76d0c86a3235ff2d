"""The welcome page (gui/welcome.py): several folders gathered before indexing starts, a column that wraps
in a narrow window; light and dark screenshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from gui import welcome as welcome_module
from gui.welcome import COLUMN, WelcomePage
from tests.gui.conftest import shoot


@pytest.fixture
def page(qtbot) -> WelcomePage:
    page = WelcomePage()
    qtbot.addWidget(page)
    page.resize(1000, 720)
    page.show()
    return page


def test_folders_gather_once_each_and_start_hands_them_over(page: WelcomePage, tmp_path: Path, qtbot) -> None:
    assert not page.start_button.isVisible() and page.choose_button.text() == "Choose photo folders…"
    page.start()  # nothing chosen: nothing to start
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    page.add_folder(str(tmp_path / "a"))
    page.add_folder(str(tmp_path / "b" / ".." / "a"))  # the same folder written another way
    page.add_folder(str(tmp_path / "b"))
    assert page.chosen() == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert page.start_button.isVisible() and page.start_button.text() == "Index 2 folders"
    assert page.choose_button.text() == "Add more folders…"
    page.folders.item(0).setSelected(True)
    page.remove_selected()
    assert page.chosen() == [str(tmp_path / "b")] and page.start_button.text() == "Index 1 folder"
    with qtbot.waitSignal(page.folders_chosen) as started:
        page.start_button.click()
    assert started.args == [[str(tmp_path / "b")]]


def test_one_dialog_gives_several_folders(page: WelcomePage, tmp_path: Path, monkeypatch) -> None:
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.jpg").write_bytes(b"")
    seen: list[QFileDialog] = []

    def accept(dialog: QFileDialog) -> int:
        seen.append(dialog)
        return 1

    monkeypatch.setattr(QFileDialog, "exec", accept)
    monkeypatch.setattr(QFileDialog, "selectedFiles",
                        lambda dialog: [str(tmp_path / "x"), str(tmp_path / "y"), str(tmp_path / "file.jpg")])
    page.pick()
    assert page.chosen() == [str(tmp_path / "x"), str(tmp_path / "y")]  # a file is not a folder
    assert seen and seen[0].fileMode() == QFileDialog.FileMode.Directory
    monkeypatch.setattr(QFileDialog, "exec", lambda dialog: 0)  # cancelled: nothing changes
    page.pick()
    assert page.chosen() == [str(tmp_path / "x"), str(tmp_path / "y")]
    assert welcome_module.choose_folders(None) == []


def test_the_column_is_readable_wide_and_wraps_narrow(page: WelcomePage, tmp_path: Path, qtbot) -> None:
    (tmp_path / "Pictures").mkdir()
    page.add_folder(str(tmp_path / "Pictures"))
    qtbot.waitUntil(lambda: page.column.width() == COLUMN)
    shoot(page, "welcome-light")
    page.resize(480, 720)
    qtbot.waitUntil(lambda: page.column.width() <= 480 - 48)
    assert page.minimumSizeHint().width() <= 480 and page.column.geometry().right() < page.width()
    assert page.title.height() > page.title.fontMetrics().height()  # the headline wraps onto two lines
    shoot(page, "welcome-narrow")


def _ink(label) -> float:  # noqa: ANN001
    image = label.pixmap().toImage()
    inked = [image.pixelColor(x, y).lightness() for x in range(image.width()) for y in range(image.height())
             if image.pixelColor(x, y).alpha() > 128]
    return sum(inked) / len(inked)


def test_dark_screenshot(page: WelcomePage, qtbot, dark) -> None:
    glyph = page._glyphs[1][0]  # made in the light palette, the dark one came after
    qtbot.waitUntil(lambda: _ink(glyph) > 180)  # redrawn in the dark palette's ink
    page.add_folder(str(Path.home()))
    shoot(page, "welcome-dark", qtbot, 50)
