"""The first screen, before any folder is known: what clipfind does, and a picker that takes several folders.

Hierarchy: the app's mark, one headline, one line of explanation, three things it does, then the one
action (choose folders). Folders gather in a list (several from one dialog, or several dialogs) and
indexing starts when the user says so, so a second folder is not an afterthought.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from .icons import icon

COLUMN = 560  # the readable width of the page's text; narrower windows wrap it

POINTS = [
    ("search", "Search by description", "\u201ca dog on a beach at sunset\u201d, in your own words"),
    ("similar", "Find by example", "drop or paste a photo to find the ones like it"),
    ("duplicates", "Clean up duplicates", "copies, resaved and edited versions, with a safe keeper"),
]


def choose_folders(parent: QWidget | None, title: str = "Choose photo folders") -> list[str]:
    """Several folders from one dialog (Ctrl- or Shift-click); the platform's own dialog picks only one,
    so Qt's is used, with its lists switched to extended selection."""
    dialog = QFileDialog(parent, title)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    for view in dialog.findChildren(QListView) + dialog.findChildren(QTreeView):
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    if not dialog.exec():
        return []
    return [os.path.abspath(f) for f in dialog.selectedFiles() if os.path.isdir(f)]


class WelcomePage(QWidget):
    """``folders_chosen(list[str])`` when the user starts with the folders in the list."""

    folders_chosen = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        mark = QLabel()
        self._glyphs: list[tuple[QLabel, str, int]] = [(mark, "clipfind", 72)]  # redrawn when the palette changes
        mark.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.title = QLabel("Find your photos by what is in them")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.9)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.text = QLabel("Pick the folders where you keep photos. clipfind looks at each photo once, on this "
                           "computer: nothing is uploaded.")
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        body = self.text.font()
        body.setPointSizeF(body.pointSizeF() * 1.15)
        self.text.setFont(body)
        self.text.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows a light/dark switch

        points = QVBoxLayout()
        points.setSpacing(12)
        for name, head, line in POINTS:
            glyph = QLabel()
            self._glyphs.append((glyph, name, 24))
            glyph.setAlignment(Qt.AlignmentFlag.AlignTop)
            said = QLabel(f"<b>{head}</b><br>{line}")
            said.setWordWrap(True)
            row = QHBoxLayout()
            row.setSpacing(12)
            row.addWidget(glyph)
            row.addWidget(said, 1)
            points.addLayout(row)

        self.folders = QListWidget()
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.folders.setMaximumHeight(110)
        self.folders.hide()
        self.choose_button = QPushButton(icon("folder"), "Choose photo folders…")
        self.choose_button.setMinimumHeight(40)
        self.choose_button.clicked.connect(self.pick)
        self.remove_button = QPushButton(icon("minus"), "Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.remove_button.hide()
        self.start_button = QPushButton(icon("search"), "Start")
        self.start_button.setMinimumHeight(40)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.start_button.hide()
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.choose_button, 1)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.start_button, 1)
        self.hint = QLabel("Ctrl- or Shift-click to choose several folders at once; subfolders are included.")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows a light/dark switch

        column = QVBoxLayout()
        column.setSpacing(0)
        column.addWidget(mark)
        column.addSpacing(16)
        column.addWidget(self.title)
        column.addSpacing(10)
        column.addWidget(self.text)
        column.addSpacing(28)
        column.addLayout(points)
        column.addSpacing(32)
        column.addWidget(self.folders)
        column.addSpacing(8)
        column.addLayout(buttons)
        column.addSpacing(8)
        column.addWidget(self.hint)
        self.column = QWidget()
        self.column.setLayout(column)
        self.column.setMaximumWidth(COLUMN)
        self.column.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        middle = QHBoxLayout()  # the column takes the width up to COLUMN; narrower, its text wraps
        middle.addStretch(1)
        middle.addWidget(self.column, 100)
        middle.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 24)
        outer.addStretch(1)
        outer.addLayout(middle)
        outer.addStretch(2)

        self._draw_glyphs()

    def _draw_glyphs(self) -> None:
        for label, name, side in self._glyphs:
            label.setPixmap(icon(name).pixmap(QSize(side, side)))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.PaletteChange:  # light <-> dark: pixmaps drawn in the old ink
            self._draw_glyphs()
        super().changeEvent(event)

    def chosen(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    def pick(self) -> None:
        for folder in choose_folders(self):
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        folder = os.path.abspath(folder)
        if folder not in self.chosen():
            self.folders.addItem(QListWidgetItem(icon("folder"), folder))
        self._update()

    def remove_selected(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))
        self._update()

    def start(self) -> None:
        folders = self.chosen()
        if folders:
            self.folders_chosen.emit(folders)

    def _update(self) -> None:
        count = self.folders.count()
        for widget in (self.folders, self.remove_button, self.start_button):
            widget.setVisible(count > 0)
        self.choose_button.setText("Add more folders…" if count else "Choose photo folders…")
        self.start_button.setText(f"Index {count} folder{'s' if count != 1 else ''}")
