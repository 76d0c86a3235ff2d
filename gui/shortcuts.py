"""The keyboard shortcut sheet (F1 or ?): every key the app answers, by where it works.

The table is data: a key added to a view is added here too, and the sheet and its test read the same list.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

# (section, [(keys as the user reads them, what they do)])
SHORTCUTS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Anywhere", [
        ("Ctrl+F", "Search: put the cursor in the search field"),
        ("Ctrl+V", "Search with the photo on the clipboard"),
        ("Esc", "Clear the search"),
        ("F1 or ?", "This list of shortcuts"),
    ]),
    ("Photos (search results)", [
        ("Enter", "Open the photo in your photo viewer"),
        ("Space", "Quick look: preview the photo, Space again closes it"),
        ("Ctrl+A", "Select all"),
    ]),
    ("Preview", [
        ("← / →", "Previous / next photo"),
        ("Home / End", "First / last photo"),
        ("Z or 1", "Zoom to 100 %, again to fit the window"),
        ("F or F11", "Fullscreen; Esc leaves it"),
        ("S", "Find similar photos"),
        ("Delete", "Move to trash (asks first)"),
        ("Space or Esc", "Close"),
    ]),
    ("Map", [
        ("Wheel, + / −", "Zoom in and out around the pointer; 0 fits every photo"),
        ("Drag", "Pan"),
        ("Shift+drag", "Select the photos in a rectangle: they open in the search results"),
        ("Alt+drag", "Select with a lasso"),
        ("Click / right-click", "Preview a photo / find similar photos"),
    ]),
    ("Duplicates", [
        ("↑ / ↓", "Previous / next group"),
        ("Space", "Tick or untick the photo for removal"),
        ("Ctrl+plus / Ctrl+minus", "Larger / smaller photos; Ctrl+0 fits them to the window"),
    ]),
]

KEYS = (QKeySequence(Qt.Key.Key_F1), QKeySequence("?"))  # what opens the sheet


class ShortcutSheet(QDialog):
    """The table of :data:`SHORTCUTS`, one section under another, keys in a column of their own."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 560)
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(6)
        grid.setColumnStretch(1, 1)
        row = 0
        for section, keys in SHORTCUTS:
            head = QLabel(section)
            font = head.font()
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.1)
            head.setFont(font)
            if row:
                grid.setRowMinimumHeight(row, 12)
                row += 1
            grid.addWidget(head, row, 0, 1, 2)
            row += 1
            for key, what in keys:
                shown = QLabel(f"<b>{key}</b>")
                shown.setStyleSheet("background: palette(alternate-base); border: 1px solid palette(mid); "
                                    "border-radius: 4px; padding: 2px 6px;")
                shown.setAlignment(Qt.AlignmentFlag.AlignCenter)
                said = QLabel(what)
                said.setWordWrap(True)
                grid.addWidget(shown, row, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
                grid.addWidget(said, row, 1)
                row += 1
        body = QWidget()
        body.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
