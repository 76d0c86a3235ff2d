"""The window works down to 640 px wide: every tab lays out there without clipping its controls."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractButton, QWidget

from tests.gui.conftest import shoot, wait_idle
from tests.helpers import copy_photos

NARROW = 640


def _clipped(tab: QWidget) -> list[str]:
    """Buttons of a tab that are shown but cut by the tab's right edge."""
    cut = []
    for button in tab.findChildren(QAbstractButton):
        if button.isVisibleTo(tab) and button.width() > 0:
            right = button.mapTo(tab, button.rect().topRight()).x()
            if right > tab.width():
                cut.append(button.text() or button.toolTip() or button.objectName())
    return cut


def test_every_tab_fits_a_640_px_window(make_window, tmp_path, qtbot) -> None:
    folder = tmp_path / "photos"
    copy_photos(folder, 6)
    window = make_window([str(folder)])
    wait_idle(window, qtbot)
    window.resize(NARROW, 720)
    qtbot.waitUntil(lambda: window.width() == NARROW)
    assert window.minimumSizeHint().width() <= NARROW
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)  # Duplicates regroups, the Map lays out: their busy states show
        tab = window.tabs.currentWidget()
        qtbot.waitUntil(tab.isVisible)
        wait_idle(window, qtbot)
        name = window.tabs.tabText(index)
        assert window.width() == NARROW, name  # nothing on the way pushed the window wider
        assert tab.minimumSizeHint().width() <= NARROW - 8, name
        assert _clipped(tab) == [], name
        shoot(window, f"window-640-{name.lower()}", qtbot, 300)
