"""The ignore-list manager: every "Not duplicates" decision, to review and take back.

Reads and changes the marks only through the task runner (the Library is used on its worker); the
duplicates view regroups when ``changed`` fires.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTreeWidget,
    QTreeWidgetItem, QVBoxLayout, QWidget,
)

from clipfind.errors import ClipfindError
from clipfind.records import TIER_NAMES

if TYPE_CHECKING:
    from clipfind.library import Library
    from clipfind.records import NotDuplicatesMark

    from .results_model import ThumbnailCache
    from .tasks import TaskRunner

THUMB = 40
STRIP = 4  # thumbnails per row
NAMES = 4  # names spelled out per row; the rest are in the tooltip


class MarksDialog(QDialog):
    """Marks as rows (tier, a strip of thumbnails with the names, how many pictures); "Take back" removes
    the selected marks, so those photos can be grouped again."""

    changed = Signal()  # a mark was taken back: the groups on screen are out of date

    def __init__(self, library: Callable[[], Library], tasks: TaskRunner, cache: ThumbnailCache,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Not duplicates")
        self.resize(820, 440)
        self._library = library  # the view's current Library (the window may reopen it)
        self.tasks = tasks
        self.cache = cache
        self.marks: list[NotDuplicatesMark] = []
        self.loaded = False
        self._note = ""  # what the last take-back did, said once the list is read again
        self.intro = QLabel("Photos you marked as “Not duplicates”. clipfind remembers them by content, so a "
                            "copy moved or renamed stays apart too. Take a mark back to let them be grouped again.")
        self.intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Tier", "Photos", "Pictures"])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)  # names wrap within the thumbnails' height rather than being cut
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.tree.setIconSize(QSize(STRIP * (THUMB + 2), THUMB))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.status = QLabel("Loading…")
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows a light/dark switch
        self.take_back = QPushButton("Take back")
        self.take_back.setToolTip("Forget the selected marks: their photos can be shown as duplicates again")
        self.take_back.setEnabled(False)
        self.take_back.clicked.connect(self.take_back_selected)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.take_back)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        layout.addWidget(buttons)
        cache.loader.ready.connect(self._thumbnail_ready)
        self.load()

    def load(self) -> None:
        library = self._library()
        self.tasks.submit(lambda: library.not_duplicate_marks(), self._show, self._failed, kind="marks")

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(str(exc) if isinstance(exc, ClipfindError) else f"could not read the marks: {exc}")

    def _show(self, marks: list[NotDuplicatesMark]) -> None:
        self.loaded = True
        self.marks = list(marks)
        self.tree.clear()
        for mark in self.marks:
            names = [os.path.basename(p.path) for p in mark.photos]
            shown = ", ".join(names[:NAMES]) + (f" and {len(names) - NAMES} more" if len(names) > NAMES else "")
            tier = TIER_NAMES[mark.tier] if mark.tier is not None else "Every tier"
            missing = mark.contents - len({p.content_hash for p in mark.photos})
            pictures = f"{mark.contents}" + (f" ({missing} not in the catalog)" if missing > 0 else "")
            item = QTreeWidgetItem([tier, shown or "(none of its photos is in the catalog now)", pictures])
            item.setData(0, Qt.ItemDataRole.UserRole, mark.mark)
            item.setToolTip(1, "\n".join(p.path for p in mark.photos))
            item.setIcon(1, self._strip(mark))
            self.tree.addTopLevelItem(item)
        count = len(self.marks)
        said = (f"{count} mark{'s' if count != 1 else ''}" if count else
                "No marks: nothing is hidden from the duplicates.")
        self.status.setText(f"{self._note}. {said}" if self._note else said)
        self._note = ""
        self._selection_changed()

    def _strip(self, mark: NotDuplicatesMark) -> QIcon:
        """Up to STRIP thumbnails side by side (grey until decoded)."""
        strip = QPixmap(STRIP * (THUMB + 2), THUMB)
        strip.fill(Qt.GlobalColor.transparent)
        painter = QPainter(strip)
        for i, photo in enumerate(mark.photos[:STRIP]):
            pixmap = self.cache.get(photo.path)
            target = (i * (THUMB + 2), 0, THUMB, THUMB)
            if pixmap is None:
                painter.fillRect(*target, self.palette().color(QPalette.ColorRole.AlternateBase))
            else:
                painter.drawPixmap(*target, pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                          Qt.TransformationMode.SmoothTransformation))
        painter.end()
        return QIcon(strip)

    def _thumbnail_ready(self, path: str, _image: QImage) -> None:
        for row, mark in enumerate(self.marks):
            if any(p.path == path for p in mark.photos[:STRIP]):
                item = self.tree.topLevelItem(row)
                if item is not None:
                    item.setIcon(1, self._strip(mark))

    def _selection_changed(self) -> None:
        self.take_back.setEnabled(bool(self.tree.selectedItems()) and not self.tasks.busy("take-back"))

    def selected_marks(self) -> list[int]:
        return [item.data(0, Qt.ItemDataRole.UserRole) for item in self.tree.selectedItems()]

    def take_back_selected(self) -> None:
        """Remove the selected marks (on the worker), then list the marks again."""
        marks = self.selected_marks()
        if not marks:
            return
        library = self._library()

        def remove() -> int:
            for mark in marks:
                library.remove_mark(mark)
            return len(marks)

        def done(count: int) -> None:
            self._note = f"{count} mark{'s' if count != 1 else ''} taken back: those photos can be grouped again"
            self.changed.emit()
            self.load()

        self.take_back.setEnabled(False)
        self.tasks.submit(remove, done, self._failed, kind="take-back")

