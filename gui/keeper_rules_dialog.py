"""Settings: the user's keeper rules (which photo of a duplicate group stays).

The dialog only edits a KeeperRules value: the duplicates view reads the saved rules and saves the
result through its task runner, so no Library call runs here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
    QListWidget, QPushButton, QVBoxLayout, QWidget,
)

from clipfind.records import KeeperRules

FORMAT_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("No preference", ()),
    ("RAW, then HEIC, then JPEG (keep the original)", ("raw", "heic", "jpeg")),
    ("JPEG, then HEIC, then RAW (keep what opens everywhere)", ("jpeg", "heic", "raw")),
)


class _FolderList(QWidget):
    """A list of folders with Add… and Remove, and Up/Down when its order matters."""

    def __init__(self, folders: Sequence[str], ordered: bool, what: str) -> None:
        super().__init__()
        self.what = what
        self.list = QListWidget()
        self.list.addItems(list(folders))
        self.list.setMinimumHeight(70)
        buttons = QVBoxLayout()
        self.add_button = QPushButton("Add folder…")
        self.add_button.clicked.connect(self._pick)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        if ordered:
            up, down = QPushButton("Up"), QPushButton("Down")
            up.clicked.connect(lambda: self.move(-1))
            down.clicked.connect(lambda: self.move(1))
            buttons.addWidget(up)
            buttons.addWidget(down)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def folders(self) -> tuple[str, ...]:
        return tuple(self.list.item(i).text() for i in range(self.list.count()))

    def _pick(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.what)
        if folder:
            self.add(folder)

    def add(self, folder: str) -> None:
        folder = os.path.abspath(folder)
        if folder not in self.folders():
            self.list.addItem(folder)

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))

    def move(self, step: int) -> None:
        row = self.list.currentRow()
        to = row + step
        if row < 0 or not 0 <= to < self.list.count():
            return
        self.list.insertItem(to, self.list.takeItem(row))
        self.list.setCurrentRow(to)


class KeeperRulesDialog(QDialog):
    """Protect folders, prefer folders (in order), prefer a format, prefer dated or located photos.

    ``rules()`` is the edited value; the photos the user chose with "Keep this one" (``keep``) are kept
    as they were unless "Forget them" was pressed.
    """

    def __init__(self, rules: KeeperRules, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keeper rules")
        self.resize(640, 600)
        self._keep = rules.keep
        intro = QLabel("Which photo of a duplicate group stays. The rules apply in this order; after them clipfind "
                       "keeps the photo with the most pixels, then the largest file, the earliest date, a name "
                       "without a copy marker such as “(1)”, and the shortest path.")
        intro.setWordWrap(True)

        self.protect = _FolderList(rules.protect, False, "Protect a folder")
        protect_box = self._box("Protected folders: never removed from, whatever else the rules say", self.protect)
        self.prefer = _FolderList(rules.prefer_folders, True, "Prefer a folder")
        prefer_box = self._box("Preferred folders: their photos are kept over others, the first listed first",
                               self.prefer)

        self.formats = QComboBox()
        for text, formats in FORMAT_CHOICES:
            self.formats.addItem(text, formats)
        if rules.formats and rules.formats not in [f for _, f in FORMAT_CHOICES]:
            self.formats.addItem("Custom: " + " > ".join(f.upper() for f in rules.formats), rules.formats)
        self.formats.setCurrentIndex(next((i for i in range(self.formats.count())
                                           if tuple(self.formats.itemData(i) or ()) == rules.formats), 0))
        self.dated = QCheckBox("Prefer photos with a capture date (EXIF)")
        self.dated.setChecked(rules.prefer_dated)
        self.gps = QCheckBox("Prefer photos with a GPS position")
        self.gps.setChecked(rules.prefer_gps)
        form = QFormLayout()
        form.addRow("Formats:", self.formats)
        form.addRow(self.dated)
        form.addRow(self.gps)

        self.keep_label = QLabel()
        self.forget_button = QPushButton("Forget them")
        self.forget_button.clicked.connect(self.forget_chosen)
        keep_row = QHBoxLayout()
        keep_row.addWidget(self.keep_label, 1)
        keep_row.addWidget(self.forget_button)
        self._show_keep()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(protect_box, 1)
        layout.addWidget(prefer_box, 1)
        layout.addLayout(form)
        layout.addLayout(keep_row)
        layout.addWidget(buttons)

    @staticmethod
    def _box(title: str, content: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        layout = QVBoxLayout(box)
        layout.addWidget(content)
        return box

    def _show_keep(self) -> None:
        count = len(self._keep)
        self.keep_label.setText(f"{count} photo{'s' if count != 1 else ''} you chose with “Keep this one”: "
                                "kept before any rule." if count else "No photo chosen with “Keep this one”.")
        self.keep_label.setToolTip("\n".join(self._keep))
        self.forget_button.setEnabled(bool(count))

    def forget_chosen(self) -> None:
        """Drop the "Keep this one" choices: the rules and the default order choose again."""
        self._keep = ()
        self._show_keep()

    def rules(self) -> KeeperRules:
        return KeeperRules(keep=self._keep, protect=self.protect.folders(), prefer_folders=self.prefer.folders(),
                           formats=tuple(self.formats.currentData() or ()), prefer_dated=self.dated.isChecked(),
                           prefer_gps=self.gps.isChecked())

