"""Filter inputs of the search bar: a date field that takes dates as people type them.

Qt's QDateEdit types into one section at a time: selecting its text and typing "2019-03-04" gave
2025-03-04 (the year section kept), and "2019" was refused. This field reads the whole text instead:
"2019-03-04", "2019/3/4", "20190304", "4.3.2019", or a month ("2019-03") or a year ("2019"), which
mean their first day in a "from" field and their last day in a "to" field. A calendar is one click away.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QDate, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QCalendarWidget, QLineEdit, QWidget

from .icons import TintedSvgEngine

# A small calendar in the palette's text colour (the style's own arrow was black on the dark theme).
_CALENDAR = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
             b'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><rect x="3" y="5" width="18" '
             b'height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/></svg>')

_FORMATS = (
    (re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), ("d", "m", "y")),  # 4.3.2019, as much of Europe writes it
    (re.compile(r"^(\d{4})[-/.](\d{1,2})$"), ("y", "m")),
    (re.compile(r"^(\d{4})$"), ("y",)),
)


def parse_date(text: str, end: bool = False) -> QDate | None:
    """The date a typed text means, or None; a month or a year alone is its first day (its last with ``end``)."""
    text = text.strip()
    for pattern, parts in _FORMATS:
        match = pattern.match(text)
        if not match:
            continue
        got = dict(zip(parts, (int(g) for g in match.groups())))
        year, month = got["y"], got.get("m", 12 if end else 1)
        if not 1 <= month <= 12:
            return None
        day = got.get("d", QDate(year, month, 1).daysInMonth() if end else 1)
        date = QDate(year, month, day)
        return date if date.isValid() else None
    return None


class DateField(QLineEdit):
    """A date typed in any of the usual ways (see the module), or picked in a calendar; ``dateChanged`` when
    the text means a new date (per key: the filters wait a moment before they apply)."""

    dateChanged = Signal(QDate)  # noqa: N815 (as QDateEdit names it)

    def __init__(self, date: QDate, end: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.end = end
        self._date = date
        self.setPlaceholderText("YYYY-MM-DD")
        self.setToolTip("A date (2019-03-04), a month (2019-03) or a year (2019)")
        self.setText(date.toString("yyyy-MM-dd"))
        self.setMaximumWidth(130)
        pick = QAction(QIcon(TintedSvgEngine(_CALENDAR)), "Pick a date", self)  # drawn in the text colour
        pick.triggered.connect(self._calendar)
        self.addAction(pick, QLineEdit.ActionPosition.TrailingPosition)
        self.textEdited.connect(self._typed)
        self.editingFinished.connect(self._tidy)

    def date(self) -> QDate:
        return self._date

    def setDate(self, date: QDate) -> None:  # noqa: N802 (as QDateEdit names it)
        self.setText(date.toString("yyyy-MM-dd"))
        self._set(date)

    def _set(self, date: QDate) -> None:
        if date != self._date:
            self._date = date
            self.dateChanged.emit(date)

    def _typed(self, text: str) -> None:
        date = parse_date(text, self.end)
        self.setStyleSheet("" if date is not None or not text.strip() else "color: palette(link-visited);")
        if date is not None:
            self._set(date)

    def _tidy(self) -> None:
        """Leaving the field: what it holds is written out in full (a year typed shows as its day)."""
        self.setStyleSheet("")
        self.setText(self._date.toString("yyyy-MM-dd"))

    def _calendar(self) -> None:
        calendar = QCalendarWidget(self, windowFlags=Qt.WindowType.Popup)
        calendar.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        calendar.setSelectedDate(self._date)
        calendar.clicked.connect(lambda date: (self.setDate(date), calendar.close()))
        calendar.move(self.mapToGlobal(QPoint(0, self.height())))
        calendar.show()

