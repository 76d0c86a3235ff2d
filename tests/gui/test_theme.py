"""The app follows the palette: icons drawn in the text colour of the theme in force, semantic tones per theme."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from gui import theme
from gui.icons import icon


def _ink(name: str) -> float:
    """Mean lightness (0..255) of the opaque pixels of the icon drawn at 32 px."""
    image = icon(name).pixmap(32).toImage()
    values = [image.pixelColor(x, y) for x in range(32) for y in range(32)]
    inked = [c.lightness() for c in values if c.alpha() > 128]
    assert inked, "the icon drew nothing"
    return sum(inked) / len(inked)


def test_icons_are_dark_on_light_and_light_on_dark(qapp) -> None:
    app = QApplication.instance()
    before = app.palette()
    try:
        theme.apply(app, False)
        assert not theme.is_dark() and _ink("search") < 80 and _ink("trash") < 80
        theme.apply(app, True)
        assert theme.is_dark() and _ink("search") > 180 and _ink("trash") > 180  # the same QIcon, redrawn
        assert theme.tone("warning") != QColor(theme.TONES["warning"][0])
    finally:
        app.setPalette(before)
