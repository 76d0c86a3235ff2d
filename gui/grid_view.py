"""The photo grid: a painted item view over a list model, in sections (the timeline's months).

One view draws every photo of a 100k library: nothing is made per photo. Rows are computed from the
sections' counts by arithmetic (a month of 3,000 photos is one division), and a paint draws only the
rows in the viewport; a thumbnail is asked for (DecorationRole, decoded off the GUI thread) only when
its cell is painted. Columns fill the width: the cells grow to share what is left of a row, so there is
no dead gutter at the right. A caption shows the file name elided in the middle ("IMG_20…_0042.jpg"),
a search's score is a small badge. Selection shows as a check mark on the photo; clicking the round
mark (shown on hover) adds or takes away one photo without losing the others.
"""

from __future__ import annotations

import bisect
import math

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPalette, QPen, QPixmap, QRegion
from PySide6.QtWidgets import QAbstractItemView, QWidget

ScoreRole = Qt.ItemDataRole.UserRole + 2  # float | None: a search's similarity, for the badge
NameRole = Qt.ItemDataRole.UserRole + 3  # str: the caption (the file name)
PixmapRole = Qt.ItemDataRole.UserRole + 4  # QPixmap: the thumbnail, a placeholder until decoded

MARGIN = 8  # around the grid
GAP = 6  # between cells
CHECK = 22  # the check mark's diameter


class PhotoGrid(QAbstractItemView):
    """A justified grid of thumbnails with captions, in titled sections; selection with check marks.

    The model is a list model with a ``sections()`` method giving (title, first row, row count) in row
    order ("" for no title); without one the grid is a single untitled section.
    """

    def __init__(self, parent: QWidget | None = None, side: int = 160) -> None:
        super().__init__(parent)
        self.side = side  # the wanted cell width; the real one grows to fill the row
        self._hover = -1
        self._cols = 1
        self._cell_w = float(side)
        self._cell_h = side
        self._header_h = 0
        self._tops: list[int] = []  # y of each section, content coordinates
        self._sections: list[tuple[str, int, int]] = []
        self._starts: list[int] = []
        self._height = 0
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setMouseTracking(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.painted_rows = 0  # rows drawn by the last paint (tests check a paint stays small)

    # -- layout --------------------------------------------------------------------------------
    def setModel(self, model) -> None:  # noqa: N802, ANN001 (Qt naming)
        super().setModel(model)
        for signal in (model.modelReset, model.layoutChanged, model.rowsInserted, model.rowsRemoved):
            signal.connect(self._relayout)
        self._relayout()

    def set_side(self, side: int) -> None:
        """The thumbnail size slider: cells of about ``side`` pixels, keeping the current photo in view."""
        current = self.currentIndex()
        self.side = side
        self._relayout()
        if current.isValid():
            self.scrollTo(current, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _relayout(self, *args: object) -> None:
        model = self.model()
        count = model.rowCount() if model is not None else 0
        sections = model.sections() if model is not None and hasattr(model, "sections") else [("", 0, count)]
        self._sections = [s for s in sections if s[2] > 0]
        self._starts = [s[1] for s in self._sections]
        width = max(1, self.viewport().width() - 2 * MARGIN)
        self._cols = max(1, (width + GAP) // (self.side + GAP))
        self._cell_w = (width - (self._cols - 1) * GAP) / self._cols
        caption = self.fontMetrics().height() + 8
        self._cell_h = int(self._cell_w) + caption
        self._header_h = self.fontMetrics().height() * 2 + 12 if any(s[0] for s in self._sections) else 0
        y = MARGIN
        self._tops = []
        for title, _, n in self._sections:
            self._tops.append(y)
            rows = math.ceil(n / self._cols)
            y += (self._header_h if title else 0) + rows * (self._cell_h + GAP)
        self._height = y + MARGIN
        self.updateGeometries()
        self.viewport().update()

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        self._relayout()

    def updateGeometries(self) -> None:  # noqa: N802
        bar = self.verticalScrollBar()
        bar.setRange(0, max(0, self._height - self.viewport().height()))
        bar.setPageStep(self.viewport().height())
        bar.setSingleStep(max(20, self._cell_h // 3))
        super().updateGeometries()

    @property
    def columns(self) -> int:
        return self._cols

    def _section_of(self, row: int) -> int:
        return bisect.bisect_right(self._starts, row) - 1

    def _content_rect(self, row: int) -> QRect:
        s = self._section_of(row)
        if s < 0:
            return QRect()
        title, start, _ = self._sections[s]
        r, c = divmod(row - start, self._cols)
        x = MARGIN + c * (self._cell_w + GAP)
        y = self._tops[s] + (self._header_h if title else 0) + r * (self._cell_h + GAP)
        return QRect(round(x), y, round(self._cell_w), self._cell_h)

    # -- QAbstractItemView -----------------------------------------------------------------------
    def visualRect(self, index: QModelIndex) -> QRect:  # noqa: N802
        if not index.isValid() or not self._sections:
            return QRect()
        return self._content_rect(index.row()).translated(0, -self.verticalOffset())

    def _row_at(self, x: int, y: int) -> int:
        """The row under a point in content coordinates, or -1 (a heading, a gap, past the end)."""
        s = bisect.bisect_right(self._tops, y) - 1
        if s < 0:
            return -1
        title, start, n = self._sections[s]
        y -= self._tops[s] + (self._header_h if title else 0)
        if y < 0:
            return -1
        r = y // (self._cell_h + GAP)
        c = int((x - MARGIN) // (self._cell_w + GAP))
        if not 0 <= c < self._cols or x < MARGIN:
            return -1
        local = r * self._cols + c
        return start + local if local < n else -1

    def indexAt(self, point: QPoint) -> QModelIndex:  # noqa: N802
        row = self._row_at(point.x(), point.y() + self.verticalOffset())
        return self.model().index(row, 0) if row >= 0 and self.model() is not None else QModelIndex()

    def scrollTo(self, index: QModelIndex, hint=QAbstractItemView.ScrollHint.EnsureVisible) -> None:  # noqa: N802, ANN001
        if not index.isValid():
            return
        rect = self._content_rect(index.row())
        bar, top, height = self.verticalScrollBar(), self.verticalOffset(), self.viewport().height()
        if hint == QAbstractItemView.ScrollHint.PositionAtCenter:
            bar.setValue(rect.center().y() - height // 2)
        elif hint == QAbstractItemView.ScrollHint.PositionAtTop or rect.top() < top:
            s = self._section_of(index.row())
            first_in_section = index.row() - self._sections[s][1] < self._cols
            bar.setValue(self._tops[s] if first_in_section else rect.top() - GAP)
        elif rect.bottom() > top + height:
            bar.setValue(rect.bottom() - height + GAP)

    def horizontalOffset(self) -> int:  # noqa: N802
        return 0

    def verticalOffset(self) -> int:  # noqa: N802
        return self.verticalScrollBar().value()

    def isIndexHidden(self, index: QModelIndex) -> bool:  # noqa: N802
        return False

    def moveCursor(self, action: QAbstractItemView.CursorAction, modifiers) -> QModelIndex:  # noqa: N802, ANN001
        model = self.model()
        count = model.rowCount() if model is not None else 0
        if count == 0:
            return QModelIndex()
        row = self.currentIndex().row() if self.currentIndex().isValid() else 0
        A = QAbstractItemView.CursorAction
        if action in (A.MoveLeft, A.MovePrevious):
            row -= 1
        elif action in (A.MoveRight, A.MoveNext):
            row += 1
        elif action in (A.MoveUp, A.MoveDown, A.MovePageUp, A.MovePageDown):
            rect = self._content_rect(row)
            step = self._cell_h + GAP
            if action in (A.MovePageUp, A.MovePageDown):
                step = max(step, self.viewport().height() - step)
            sign = -1 if action in (A.MoveUp, A.MovePageUp) else 1
            y = rect.center().y() + sign * step
            # a heading or a short last row in the way: go on to the nearest photo in that direction
            target = -1
            for _ in range(4):
                target = self._row_at(rect.center().x(), y)
                if target < 0:
                    target = self._row_at(MARGIN + 1, y)
                    if target >= 0:  # a short row: its last photo
                        s = self._section_of(target)
                        start, n = self._sections[s][1], self._sections[s][2]
                        row_start = target
                        target = min(start + n - 1, row_start + self._cols - 1)
                if target >= 0:
                    break
                y += sign * max(self._header_h, GAP)
            row = target if target >= 0 else (0 if sign < 0 else count - 1)
        elif action == A.MoveHome:
            row = 0
        elif action == A.MoveEnd:
            row = count - 1
        return model.index(max(0, min(count - 1, row)), 0)

    def setSelection(self, rect: QRect, flags: QItemSelectionModel.SelectionFlag) -> None:  # noqa: N802
        """Rubber band or shift-click: every photo whose cell meets the rectangle (viewport coordinates)."""
        rect = rect.normalized().translated(0, self.verticalOffset())
        selection = QItemSelection()
        model = self.model()
        first = last = -1
        for y in range(rect.top(), rect.bottom() + self._cell_h + GAP, max(1, self._cell_h + GAP)):
            for x in (rect.left(), rect.right()):
                row = self._row_at(x, min(y, rect.bottom()))
                if row >= 0:
                    first = row if first < 0 else min(first, row)
                    last = max(last, row)
        if first >= 0:
            for row in range(first, last + 1):
                if self._content_rect(row).intersects(rect):
                    selection.select(model.index(row, 0), model.index(row, 0))
        self.selectionModel().select(selection, flags)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:  # noqa: N802
        return QRegion(self.viewport().rect())  # repaint what shows: a selection may span 100k rows

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802, ANN001
        model = self.model()
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = self.palette()
        top = self.verticalOffset()
        bottom = top + self.viewport().height()
        selection = self.selectionModel()
        current = self.currentIndex().row() if self.currentIndex().isValid() else -1
        painted = 0
        heading = QFont(self.font())
        heading.setPointSizeF(heading.pointSizeF() * 1.25)
        heading.setBold(True)
        for s, (title, start, n) in enumerate(self._sections):
            y0 = self._tops[s]
            y1 = self._tops[s + 1] if s + 1 < len(self._tops) else self._height
            if y1 < top or y0 > bottom:
                continue
            if title:
                painter.setFont(heading)
                painter.setPen(palette.color(QPalette.ColorRole.WindowText))
                painter.drawText(QRect(MARGIN, y0 - top, self.viewport().width() - 2 * MARGIN, self._header_h),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
                painter.setFont(self.font())
            body = y0 + (self._header_h if title else 0)
            step = self._cell_h + GAP
            first_row = max(0, (top - body) // step)
            last_row = min(math.ceil(n / self._cols) - 1, (bottom - body) // step)
            for r in range(first_row, last_row + 1):
                painted += 1
                for c in range(self._cols):
                    local = r * self._cols + c
                    if local >= n:
                        break
                    index = model.index(start + local, 0)
                    rect = self._content_rect(start + local).translated(0, -top)
                    self._paint_cell(painter, index, rect, selection.isSelected(index), start + local == current)
        self.painted_rows = painted
        painter.end()

    def _paint_cell(self, painter: QPainter, index: QModelIndex, rect: QRect, selected: bool, current: bool) -> None:
        palette = self.palette()
        side = rect.width()
        image_rect = QRect(rect.left(), rect.top(), side, side)
        highlight = palette.color(QPalette.ColorRole.Highlight)
        if selected:
            tint = QColor(highlight)
            tint.setAlpha(60)
            painter.fillRect(rect, tint)
        pixmap = index.data(PixmapRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            # square tiles filled by the photo's middle, as photo apps show a library; a selected one shrinks a little
            inset = 10 if selected else 0
            box = image_rect.adjusted(inset, inset, -inset, -inset)
            w, h = pixmap.width(), pixmap.height()
            side_px = min(w, h)
            painter.drawPixmap(box, pixmap, QRect((w - side_px) // 2, (h - side_px) // 2, side_px, side_px))
        hovered = index.row() == self._hover
        if selected or hovered:
            self._paint_check(painter, self._check_rect(rect), selected, highlight)
        score = index.data(ScoreRole)
        if isinstance(score, float) and not math.isnan(score):
            text = f"{score:.2f}"
            metrics = painter.fontMetrics()
            badge = QRect(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
            badge.moveTopRight(image_rect.topRight() + QPoint(-4, 4))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(badge, 6, 6)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        name = index.data(NameRole) or ""
        caption = QRect(rect.left() + 2, image_rect.bottom() + 3, side - 4, rect.bottom() - image_rect.bottom() - 3)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(caption, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                         painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, caption.width()))
        if current and self.hasFocus():
            painter.setPen(QPen(highlight, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.adjusted(1, 1, -1, -1))

    @staticmethod
    def _check_rect(cell: QRect) -> QRect:
        return QRect(cell.left() + 6, cell.top() + 6, CHECK, CHECK)

    @staticmethod
    def _paint_check(painter: QPainter, rect: QRect, checked: bool, colour: QColor) -> None:
        painter.setPen(QPen(QColor("white"), 2))
        painter.setBrush(colour if checked else QColor(0, 0, 0, 90))
        painter.drawEllipse(rect)
        if checked:
            r = QRectF(rect)
            path = QPainterPath()
            path.moveTo(r.left() + r.width() * 0.27, r.top() + r.height() * 0.52)
            path.lineTo(r.left() + r.width() * 0.45, r.top() + r.height() * 0.70)
            path.lineTo(r.left() + r.width() * 0.75, r.top() + r.height() * 0.34)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)

    # -- mouse ---------------------------------------------------------------------------------
    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = self.indexAt(event.position().toPoint())
        row = index.row() if index.isValid() else -1
        if row != self._hover:
            self._hover = row
            self.viewport().update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802, ANN001
        self._hover = -1
        self.viewport().update()
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """A click on the round mark adds the photo to the selection or takes it out (as Ctrl+click)."""
        point = event.position().toPoint()
        index = self.indexAt(point)
        if (index.isValid() and event.button() == Qt.MouseButton.LeftButton
                and self._check_rect(self.visualRect(index)).contains(point)):
            self.selectionModel().select(index, QItemSelectionModel.SelectionFlag.Toggle)
            self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
            return
        super().mousePressEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(640, 480)
