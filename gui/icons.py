"""The app's icons, drawn as SVG in assets/icons."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ICONS = Path(__file__).resolve().parent.parent / "assets" / "icons"


@cache
def icon(name: str) -> QIcon:
    return QIcon(str(ICONS / f"{name}.svg"))
