"""A layout that wraps its widgets into rows, like words in a paragraph.

A duplicate group of 60 photos laid out in one row was 13,000 px wide behind one scrollbar for the
whole list; wrapped, a group is as wide as the window and only as tall as it needs.

Justified (``justify=True``), the rows that wrap are spread to the full width and the last row keeps their
spacing, so cards of one size line up in columns with no dead gutter at the right of a wide window.
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QWidget


class FlowLayout(QLayout):
    """Items left to right, wrapping to a new row when the next one would not fit."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 8, justify: bool = False) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.justify = justify
        # Qt asks a layout's height for the same width many times per resize, each a walk over every card in
        # Python (some 200 walks per resize of a page of 170 cards), so a measure is kept until something changes
        self._heights: dict[int, int] = {}
        self._minimum: QSize | None = None
        self.setSpacing(spacing)
        self.setContentsMargins(QMargins(0, 0, 0, 0))

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt's name)
        self._items.append(item)
        self._forget()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        self._forget()
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def invalidate(self) -> None:
        """An item's size changed (Qt says so here): the measures kept are stale."""
        self._forget()
        super().invalidate()

    def _forget(self) -> None:
        self._heights.clear()
        self._minimum = None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        height = self._heights.get(width)
        if height is None:
            height = self._heights[width] = self._arrange(QRect(0, 0, width, 0), move=False)
        return height

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        if self._minimum is None:
            size = QSize()
            for item in self._items:
                size = size.expandedTo(item.minimumSize())
            margins = self.contentsMargins()
            self._minimum = size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())
        return QSize(self._minimum)

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        """Place the items (or only measure) within rect's width; returns the height used."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        gap = self.spacing()
        rows: list[list[tuple[QLayoutItem, QSize]]] = [[]]
        x = 0
        for item in self._items:
            hint = item.sizeHint()
            if rows[-1] and x + hint.width() > area.width():  # does not fit: next row
                rows.append([])
                x = 0
            rows[-1].append((item, hint))
            x += hint.width() + gap
        y, spread = area.y(), float(gap)
        for i, row in enumerate(rows):
            if not row:
                continue
            used = sum(hint.width() for _, hint in row)
            room = area.width() - used
            if self.justify and len(row) > 1:
                if i < len(rows) - 1:  # a full row: stretched to the edge
                    spread = max(float(gap), room / (len(row) - 1))
                elif used + spread * (len(row) - 1) > area.width():  # a last row of wider items: as they come
                    spread = float(gap)
            step = spread if self.justify else float(gap)
            if move:
                at = float(area.x())
                for item, hint in row:
                    item.setGeometry(QRect(QPoint(round(at), y), hint))
                    at += hint.width() + step
            y += max(hint.height() for _, hint in row) + gap
        return (y - gap if self._items else y) - rect.y() + margins.bottom()
