"""The app's icons, drawn as SVG, installed with clipfind as package data (clipfind.assets/icons).

The line icons are drawn in ``currentColor``: each time one is painted it takes the text colour of the
palette in force (dark on a light theme, light on a dark one, greyed when disabled), so an icon made
once follows a theme switch without being made again. Icons with colours of their own (the app's logo)
have no ``currentColor`` and are drawn as they are.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from PySide6.QtCore import QByteArray, QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

ICONS = files("clipfind.assets") / "icons"
CURRENT = b"currentColor"


def _role(mode: QIcon.Mode) -> tuple[QPalette.ColorGroup, QPalette.ColorRole]:
    if mode == QIcon.Mode.Disabled:
        return QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText
    if mode == QIcon.Mode.Selected:
        return QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText
    return QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText


@cache
def _renderer(svg: bytes, colour: str) -> QSvgRenderer:
    return QSvgRenderer(QByteArray(svg.replace(CURRENT, colour.encode())))


class TintedSvgEngine(QIconEngine):
    """Draws an SVG with ``currentColor`` replaced by the palette's text colour at paint time."""

    def __init__(self, svg: bytes) -> None:
        super().__init__()
        self.svg = svg

    def colour(self, mode: QIcon.Mode) -> str:
        group, role = _role(mode)
        return QGuiApplication.palette().color(group, role).name()

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        _renderer(self.svg, self.colour(mode)).render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:  # noqa: N802
        pixmap = QPixmap(size * scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(QPoint(0, 0), pixmap.size()), mode, state)
        painter.end()
        pixmap.setDevicePixelRatio(scale)
        return pixmap

    def clone(self) -> QIconEngine:
        return TintedSvgEngine(self.svg)

    def key(self) -> str:
        return "clipfind-tinted-svg"


@cache
def icon(name: str) -> QIcon:
    """The icon `name` (e.g. "search"), found through importlib.resources, so the same in a wheel
    install as in the repository; a null QIcon if there is no such icon."""
    source = ICONS / f"{name}.svg"
    if not source.is_file():
        return QIcon()
    return QIcon(TintedSvgEngine(source.read_bytes()))  # sharp at any size; a logo's own colours stay
