"""Dialogs: photo preview, folders (settings), unreadable files, and the one trash confirmation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QListWidget, QMessageBox, QPushButton,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from clipfind.records import human_bytes

if TYPE_CHECKING:
    from clipfind.records import Failure, PhotoInfo

    from .preview import PhotoPreview


def describe(photo: PhotoInfo) -> str:
    size = f"{photo.width} × {photo.height}" if photo.width else "size unknown"
    taken = photo.taken_at.replace("T", " ") if photo.taken_at else "no capture date"
    return f"{size} · {human_bytes(photo.size)} · {taken}"


def photos_text(count: int) -> str:
    """"1 photo", "2 photos": every count the user reads goes through here."""
    return f"{count} photo{'s' if count != 1 else ''}"


def confirm_trash(parent: QWidget, photos: Sequence[PhotoInfo]) -> bool:
    """The single confirmation before chosen search results move: how many files, how much space."""
    if not photos:
        return False
    total = human_bytes(sum(p.size for p in photos))
    return confirm_cleanup(parent, f"Move {photos_text(len(photos))} ({total}) to the system trash?\n\n"
                           "You can restore them from the trash later; nothing is deleted permanently.")


def confirm_cleanup(parent: QWidget, text: str, details: str = "") -> bool:
    """Yes/Cancel before anything moves to the trash, Cancel by default; long lists go under "Show Details"."""
    box = QMessageBox(QMessageBox.Icon.Question, "Move to trash", text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    if details:
        box.setDetailedText(details)
    return box.exec() == QMessageBox.StandardButton.Yes


def show_problems(parent: QWidget, title: str, lines: Sequence[str], shown: int = 20) -> None:
    """What was left alone and why, the first lines in view and every line under "Show Details"."""
    more = [f"… and {len(lines) - shown} more"] if len(lines) > shown else []
    box = QMessageBox(QMessageBox.Icon.Warning, title, "\n".join([*lines[:shown], *more]),
                      QMessageBox.StandardButton.Ok, parent)
    if more:
        box.setDetailedText("\n".join(lines))
    box.exec()


class PreviewDialog:
    """The older one-photo call, ``PreviewDialog(photo, parent)``: the preview (gui/preview.py) with that photo."""

    def __new__(cls, photo: PhotoInfo, parent: QWidget | None = None) -> PhotoPreview:  # type: ignore[misc]
        from .preview import PhotoPreview

        return PhotoPreview([photo], 0, parent)


class FoldersDialog(QDialog):
    """Settings: the photo folders. Removing one drops its photos from the catalog (not the disk)."""

    def __init__(self, folders: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Photo folders")
        self.resize(560, 360)
        self.added: list[str] = []
        self.removed: list[str] = []
        self.list = QListWidget()
        self.list.addItems(folders)
        add = QPushButton("Add folder…")
        add.clicked.connect(self._add)
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove)
        side = QVBoxLayout()
        side.addWidget(add)
        side.addWidget(remove)
        side.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(side)
        note = QLabel("Removing a folder takes its photos out of search and duplicates, except those another folder "
                      "in this list holds; the files stay on disk.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def _add(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        folder = os.path.abspath(folder)
        if not self.list.findItems(folder, Qt.MatchFlag.MatchExactly):
            self.list.addItem(folder)
            self.added.append(folder)

    def _remove(self) -> None:
        for item in self.list.selectedItems():
            folder = item.text()
            self.list.takeItem(self.list.row(item))
            if folder in self.added:
                self.added.remove(folder)
            else:
                self.removed.append(folder)


class ErrorsDialog(QDialog):
    """Unreadable files, listed together rather than thrown at the user one by one."""

    def __init__(self, failures: Sequence[Failure], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Photos that could not be read")
        self.resize(820, 420)
        table = QTableWidget(len(failures), 2)
        table.setHorizontalHeaderLabels(["File", "Why"])
        for row, failure in enumerate(failures):
            table.setItem(row, 0, QTableWidgetItem(failure.path))
            table.setItem(row, 1, QTableWidgetItem(failure.error))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table = table
        text = (f"{len(failures)} file{'s' if len(failures) != 1 else ''} skipped. They stay where they are; clipfind "
                "tries again when a file changes." if failures else "Every photo could be read.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(text))
        layout.addWidget(table, 1)
        layout.addWidget(buttons)
