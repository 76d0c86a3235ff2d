"""Light or dark, as the system says: the palette the app draws with, and the few colours that carry a meaning.

Widgets never name a colour. They use palette roles (``palette(placeholder-text)`` in a style sheet,
``QPalette.ColorRole.Highlight`` in a painter), and where a colour means something (a keeper is green, a
warning orange) they ask :func:`tone`, which picks the variant that reads on the current background.

Qt follows the system's colour scheme by itself where the platform theme supplies a dark palette (GNOME,
KDE, Windows, macOS). Where it only reports the scheme (a bare X11 session, some portals), :func:`follow_system`
supplies the dark palette, and it follows later switches through ``QStyleHints.colorSchemeChanged``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

# name: (on a light background, on a dark background). The only colour literals in gui/: one table.
TONES: dict[str, tuple[str, str]] = {
    "good": ("#2b8a3e", "#8ce99a"),  # the keeper, "kept: your choice"
    "warning": ("#d9480f", "#ffa94d"),  # what removing a photo would lose
    "notice": ("#e67700", "#ffd43b"),  # the same file at another path
    "info": ("#1864ab", "#74c0fc"),  # protected folders, "working…"
    "banner": ("#fff3bf", "#5c4813"),  # background of a message that needs the user
}

# The dark palette supplied where the platform reports a dark scheme but draws light.
_DARK: dict[QPalette.ColorRole, str] = {
    QPalette.ColorRole.Window: "#2b2d30",
    QPalette.ColorRole.WindowText: "#e8e8e8",
    QPalette.ColorRole.Base: "#1f2023",
    QPalette.ColorRole.AlternateBase: "#303236",
    QPalette.ColorRole.ToolTipBase: "#3a3c40",
    QPalette.ColorRole.ToolTipText: "#e8e8e8",
    QPalette.ColorRole.PlaceholderText: "#9a9ca0",
    QPalette.ColorRole.Text: "#e8e8e8",
    QPalette.ColorRole.Button: "#35373b",
    QPalette.ColorRole.ButtonText: "#e8e8e8",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Light: "#46484d",
    QPalette.ColorRole.Midlight: "#3c3e42",
    QPalette.ColorRole.Mid: "#55575c",
    QPalette.ColorRole.Dark: "#18191b",
    QPalette.ColorRole.Shadow: "#0d0d0e",
    QPalette.ColorRole.Highlight: "#3d7bd9",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#74c0fc",
    QPalette.ColorRole.LinkVisited: "#b197fc",
}
_DARK_DISABLED: dict[QPalette.ColorRole, str] = {
    QPalette.ColorRole.WindowText: "#7a7c80",
    QPalette.ColorRole.Text: "#7a7c80",
    QPalette.ColorRole.ButtonText: "#7a7c80",
    QPalette.ColorRole.Highlight: "#4a4c50",
}


def _palette(palette: QPalette | None) -> QPalette:
    return palette if palette is not None else QGuiApplication.palette()


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether text is drawn light on dark: judged from the palette itself, so it holds whoever set it."""
    p = _palette(palette)
    return p.color(QPalette.ColorRole.Window).lightness() < p.color(QPalette.ColorRole.WindowText).lightness()


def tone(name: str, palette: QPalette | None = None) -> QColor:
    """The colour meaning ``name`` (a key of :data:`TONES`) that reads on this palette's background."""
    light, dark = TONES[name]
    return QColor(dark if is_dark(palette) else light)


def css(name: str, palette: QPalette | None = None) -> str:
    """:func:`tone` for a style sheet (``color: {css('warning')}``)."""
    return tone(name, palette).name()


def tinted(name: str, palette: QPalette | None = None, amount: float = 0.18) -> QColor:
    """A background: the palette's Base with a little of the tone ``name`` mixed in (a row that stands out)."""
    base = _palette(palette).color(QPalette.ColorRole.Base)
    colour = tone(name, palette)
    mixed = [round(b + (c - b) * amount) for b, c in zip(base.getRgb()[:3], colour.getRgb()[:3], strict=True)]
    return QColor(*mixed)


def dark_palette() -> QPalette:
    """The dark palette used where the platform has none of its own."""
    palette = QPalette()
    for role, colour in _DARK.items():
        palette.setColor(role, QColor(colour))
    for role, colour in _DARK_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return palette


def light_palette() -> QPalette:
    """The style's own light palette."""
    return QApplication.style().standardPalette()


def apply(app: QApplication, dark: bool) -> None:
    """Draw the app light or dark now; style sheets are polished again so their palette() references follow."""
    app.setPalette(dark_palette() if dark else light_palette())
    app.setStyleSheet(app.styleSheet())


def system_is_dark(app: QGuiApplication) -> bool:
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def follow_system(app: QApplication) -> None:
    """Match the system's scheme now and whenever it changes, supplying the dark palette only where the
    platform reports dark but its palette is light (left alone where the platform draws dark itself)."""

    def match(*_: object) -> None:
        if system_is_dark(app) != is_dark(app.palette()):
            apply(app, system_is_dark(app))

    match()
    if not app.property("clipfind-follows-theme"):  # once per application (the splash and the window both ask)
        app.setProperty("clipfind-follows-theme", True)
        app.styleHints().colorSchemeChanged.connect(match)
