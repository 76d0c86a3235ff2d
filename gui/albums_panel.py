"""The albums side list of the search tab: "All photos", the tag albums, and the user's saved searches.

Tags are albums people want to clean up ("Screenshots", "Documents", "Receipts"), so the clean-up
categories come first, then the other tags by how many photos they hold (the order
``Library.tag_albums`` gives), then the searches the user saved by name. The panel only draws what the
search view hands it and says which entry was chosen; the view makes the Library calls (off the GUI
thread). It is narrow, and the search view hides it when the window is too narrow for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .icons import icon

if TYPE_CHECKING:
    from clipfind.records import SavedSearch, TagAlbum

KeyRole = Qt.ItemDataRole.UserRole + 1  # (kind, key): ("all", ""), ("tag", tag), ("saved", name)
ALL = ("all", "")
PANEL_WIDTH = 190  # wide enough for "Screenshots (1,204)", narrow enough to leave the grid room at 640 px


class AlbumsPanel(QWidget):
    """A list of albums in sections; ``chosen(kind, key)`` when the user picks one."""

    chosen = Signal(str, str)  # kind ("all", "tag", "saved"), key (the tag or the saved search's name)
    delete_requested = Signal(str)  # a saved search's name
    save_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(150)
        self.setMaximumWidth(PANEL_WIDTH + 40)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.list = QListWidget()
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setIconSize(QSize(16, 16))
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemClicked.connect(self._clicked)
        self.list.itemActivated.connect(self._clicked)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.note = QLabel()  # "Finding tags…", or why there are none
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text);")
        self.note.hide()
        self.save_button = QPushButton(icon("plus"), "Save search…")
        self.save_button.setToolTip("Save the search on screen, with its cut-off, as an album")
        self.save_button.clicked.connect(self.save_requested)
        self.save_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.note)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button, 1)
        layout.addLayout(buttons)
        self.tags: list[TagAlbum] = []
        self.saved: list[SavedSearch] = []
        self._current: tuple[str, str] = ALL
        self._rebuild()

    def sizeHint(self):  # noqa: ANN201, N802 (Qt naming)
        hint = super().sizeHint()
        hint.setWidth(PANEL_WIDTH)
        return hint

    # -- what the view hands over ------------------------------------------------------------------
    def set_tags(self, albums: list[TagAlbum]) -> None:
        self.tags = list(albums)
        self._rebuild()

    def set_saved(self, saved: list[SavedSearch]) -> None:
        self.saved = list(saved)
        self._rebuild()

    def set_note(self, text: str) -> None:
        """A line under the list ("Finding tags…"); empty hides it."""
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def select(self, kind: str, key: str = "") -> None:
        """Mark an entry as the one on screen, without emitting ``chosen`` (the view already shows it)."""
        self._current = (kind, key)
        self._mark_current()

    def current(self) -> tuple[str, str]:
        return self._current

    def items(self) -> list[tuple[str, str, str]]:
        """(kind, key, text) of every entry that can be chosen, top to bottom (for tests and the tag menu)."""
        out = []
        for row in range(self.list.count()):
            item = self.list.item(row)
            data = item.data(KeyRole)
            if data:
                out.append((data[0], data[1], item.text()))
        return out

    # -- drawing -----------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self._add(icon("image"), "All photos", ALL)
        cleanup = [a for a in self.tags if a.cleanup]
        others = [a for a in self.tags if not a.cleanup]
        for title, albums in (("Clean up", cleanup), ("Tags", others)):
            if albums:
                self._header(title)
                for album in albums:
                    self._add(None, f"{album.title} ({album.count:,})", ("tag", album.tag),
                              f"{album.title}: {album.count:,} photo{'s' if album.count != 1 else ''} "
                              f"tagged “{album.tag}”")
        self._header("Saved searches")
        if self.saved:
            for saved in self.saved:
                cut = "automatic cut-off" if saved.min_score is None else (
                    "every match" if saved.min_score <= -1 else f"score ≥ {saved.min_score:.2f}")
                self._add(icon("search"), saved.name, ("saved", saved.name),
                          f"{_query_text(saved)}\n{cut}\nRight-click to delete")
        else:
            hint = QListWidgetItem("None yet")
            hint.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(hint)
        self.list.blockSignals(False)
        self._mark_current()

    def _add(self, item_icon, text: str, key: tuple[str, str], tip: str = "") -> None:  # noqa: ANN001
        item = QListWidgetItem(text)
        if item_icon is not None:
            item.setIcon(item_icon)
        item.setData(KeyRole, key)
        item.setToolTip(tip or text)
        self.list.addItem(item)

    def _header(self, text: str) -> None:
        item = QListWidgetItem(text.upper())
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        item.setFont(font)
        item.setFlags(Qt.ItemFlag.NoItemFlags)  # a section title: not chosen, not selected
        self.list.addItem(item)

    def _mark_current(self) -> None:
        self.list.blockSignals(True)
        self.list.clearSelection()
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(KeyRole) and tuple(item.data(KeyRole)) == self._current:
                item.setSelected(True)
                self.list.setCurrentItem(item)
                break
        self.list.blockSignals(False)

    # -- input -------------------------------------------------------------------------------------
    def _clicked(self, item: QListWidgetItem) -> None:
        data = item.data(KeyRole)
        if data:
            self._current = (data[0], data[1])
            self.chosen.emit(data[0], data[1])

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        data = item.data(KeyRole) if item is not None else None
        if not data or data[0] != "saved":
            return
        menu = QMenu(self)
        menu.addAction(icon("trash"), f"Delete “{data[1]}”", lambda: self.delete_requested.emit(data[1]))
        menu.exec(self.list.viewport().mapToGlobal(pos))


def _query_text(saved: SavedSearch) -> str:
    """A saved search's query as the search bar shows it: its phrases, "minus" ones, and photos."""
    parts = []
    for term in saved.query.terms:
        if term.kind == "text":
            parts.append(("− " if term.weight < 0 else "") + term.value)
        else:
            parts.append(("− photo " if term.weight < 0 else "photo ") + term.value.rsplit("/", 1)[-1])
    return ", ".join(parts)
