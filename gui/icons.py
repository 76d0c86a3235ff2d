"""The app's icons, drawn as SVG, installed with clipfind as package data (clipfind.assets/icons)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QIcon, QPixmap

ICONS = files("clipfind.assets") / "icons"


@cache
def icon(name: str) -> QIcon:
    """The icon `name` (e.g. "search"), found through importlib.resources, so the same in a wheel
    install as in the repository; a null QIcon if there is no such icon."""
    source = ICONS / f"{name}.svg"
    if not source.is_file():
        return QIcon()
    if isinstance(source, Path):  # installed as plain files (the usual case): Qt's SVG engine, sharp at any size
        return QIcon(str(source))
    pixmap = QPixmap()  # from an archive: rendered once from the bytes
    pixmap.loadFromData(QByteArray(source.read_bytes()), "SVG")
    return QIcon(pixmap)
