"""The duplicates as a compact table (dupeGuru's list): one row per photo under its group's title row.

Thousands of groups fit without a widget per photo: a QTableView over one flat model, which Qt asks
only about the rows in sight (a tree view walks every row to expand it: a second at 5,000 groups).
The remove boxes are drawn from the view's selection (ids) and a click is handed back as a signal,
never stored here, so the table and the cards cannot disagree about what a clean-up takes.
Also the words both modes use about a member (its badge and its notes).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QFont, QGuiApplication, QKeyEvent, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView, QWidget

from clipfind.records import TIER_NAMES, human_bytes, human_duration

from .theme import css, tinted, tone

if TYPE_CHECKING:
    from clipfind.records import DupeGroup, DupeMember, PhotoInfo

WARNING = "warning"  # a note the user should read before removing a photo (a tone of gui.theme)
PROTECTED = "info"
COLUMNS = ("Remove", "Name", "Folder", "Pixels", "Size", "Date", "Similarity", "Reasons · notes")
REMOVE, NAME, FOLDER, PIXELS, SIZE, DATE, SIMILARITY, NOTES = range(len(COLUMNS))
_Index = QModelIndex | QPersistentModelIndex


def and_join(words: Sequence[str]) -> str:
    """"GPS", "GPS and camera", "GPS, capture date and camera"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def member_badge(group: DupeGroup, member: DupeMember) -> str:
    """Why a non-keeper is in its group, and for a similar shot how far apart in time."""
    if member.copy_of is not None:
        return "identical copy" if member.reasons == ("identical",) else "same photo"
    if "crop" in member.reasons:
        return "crop: you decide"
    if group.tier == "same":
        turned = [r for r in member.reasons if r in ("turned", "mirrored")]
        return "same photo" + (f" ({', '.join(turned)})" if turned else "")
    gap = group.capture_gap(member.photo)
    when = "" if gap is None else f" · {human_duration(gap)} apart"
    return f"similarity {member.similarity:.3f}{when}"


def lacks_note(member: DupeMember) -> str:
    """What removing this photo would lose (immich #30491): said on its card and its row."""
    return f"has {and_join(member.keeper_lacks)} the kept photo lacks" if member.keeper_lacks else ""


def member_notes(member: DupeMember, keeper: bool = False, chosen: bool = False) -> list[tuple[str, str]]:
    """(text, style-sheet colour read from the theme now) notes about a member: chosen keeper, protected
    folder, metadata the keeper lacks."""
    notes = []
    if keeper and chosen:
        notes.append(("kept: your choice", css("good")))
    if member.protected:
        notes.append(("protected folder", css(PROTECTED)))
    if member.keeper_lacks:
        notes.append((lacks_note(member), css(WARNING)))
    return notes


def without(group: DupeGroup, gone: set[int]) -> DupeGroup | None:
    """The group minus photos that left (trashed); None when fewer than two are left or its keeper went."""
    if group.keeper.id in gone:
        return None
    members = tuple(m for m in group.members if m.photo.id not in gone)
    if len(members) < 2:
        return None
    if len(members) == len(group.members):
        return group
    kept = {m.photo.id for m in members}
    return replace(group, members=tuple(m if m.copy_of is None or m.copy_of in kept else replace(m, copy_of=None)
                                        for m in members))


_PLAIN = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_CHECKABLE = _PLAIN | Qt.ItemFlag.ItemIsUserCheckable
_BOLD = QFont()
_BOLD.setBold(True)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
TITLE = -1  # the member position of a group's title row


class DupesTableModel(QAbstractTableModel):
    """Each group as a title row followed by its members' rows (keeper first).

    A row is (group key, member position or TITLE); a key stays with its group while rows above it go.
    """

    clicked = Signal(object, object, bool)  # (group, photo, ticked): a click on a remove box

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.groups: dict[int, DupeGroup] = {}  # key -> group, in the order shown
        self.rows: list[tuple[int, int]] = []  # (group key, member position or TITLE)
        self._row_of_photo: dict[int, int] = {}  # photo id -> its row (rebuilt after rows go)
        self.selected: set[int] = set()
        self.keep_paths: frozenset[str] = frozenset()

    # -- filling ---------------------------------------------------------------------------------
    def set_groups(self, groups: Sequence[DupeGroup], selected: set[int], keep_paths: Iterable[str] = ()) -> None:
        self.beginResetModel()
        self.groups = dict(enumerate(groups))
        self.rows = [(key, i) for key, group in self.groups.items() for i in range(TITLE, len(group.members))]
        self._index_photos()
        self.selected = set(selected)
        self.keep_paths = frozenset(keep_paths)
        self.endResetModel()

    def _index_photos(self) -> None:
        groups = self.groups
        self._row_of_photo = {groups[key].members[i].photo.id: row for row, (key, i) in enumerate(self.rows)
                              if i != TITLE}

    def title_rows(self) -> list[int]:
        return [row for row, (_, i) in enumerate(self.rows) if i == TITLE]

    def show_selection(self, selected: set[int]) -> None:
        """Redraw the remove boxes from the view's selection: only the rows whose boxes changed."""
        changed = sorted(self._row_of_photo[i] for i in self.selected ^ selected if i in self._row_of_photo)
        self.selected = set(selected)
        if changed:
            self.dataChanged.emit(self.index(changed[0], REMOVE), self.index(changed[-1], REMOVE),
                                  [Qt.ItemDataRole.CheckStateRole])

    def remove_photos(self, gone: set[int]) -> None:
        """Take trashed photos out in place (rows removed, not a reset): the scroll position stays.

        The rows go in runs while the old groups still answer for the rows left; the new groups and
        member positions take over at the end."""
        groups: dict[int, DupeGroup] = {}
        for key, group in self.groups.items():
            after = without(group, gone)
            if after is not None:
                groups[key] = after
        position = {key: {m.photo.id: i for i, m in enumerate(g.members)} for key, g in groups.items()
                    if g is not self.groups[key]}
        rows: list[tuple[int, int] | None] = []
        for key, i in self.rows:
            if key not in groups:
                rows.append(None)
            elif i == TITLE or key not in position:
                rows.append((key, i))
            else:
                photo_id = self.groups[key].members[i].photo.id
                rows.append(None if photo_id in gone else (key, position[key][photo_id]))
        end = len(rows) - 1
        while end >= 0:
            if rows[end] is None:
                start = end
                while start > 0 and rows[start - 1] is None:
                    start -= 1
                self.beginRemoveRows(QModelIndex(), start, end)
                del self.rows[start:end + 1]
                self.endRemoveRows()
                end = start
            end -= 1
        self.groups = groups
        self.rows = [r for r in rows if r is not None]
        self._index_photos()
        if self.rows:  # titles count fewer photos; copies whose original left are copies no more
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    # -- looking up ------------------------------------------------------------------------------
    def group_at(self, index: _Index) -> DupeGroup | None:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        return self.groups[self.rows[index.row()][0]]

    def member_at(self, index: _Index) -> DupeMember | None:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        key, i = self.rows[index.row()]
        return None if i == TITLE else self.groups[key].members[i]

    def is_keeper_row(self, index: _Index) -> bool:
        return index.isValid() and index.row() < len(self.rows) and self.rows[index.row()][1] == 0

    def index_of(self, photo_id: int, column: int = NAME) -> QModelIndex:
        """The row of a photo (in ``column``), or an invalid index."""
        row = self._row_of_photo.get(photo_id)
        return QModelIndex() if row is None else self.index(row, column)

    # -- QAbstractTableModel ---------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if index.column() == REMOVE:
            key, i = self.rows[index.row()]
            if i > 0 and not self.groups[key].members[i].protected:
                return _CHECKABLE
        return _PLAIN

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        key, i = self.rows[index.row()]
        group = self.groups[key]
        if i == TITLE:
            return self._title_data(group, index.column(), role)
        member = group.members[i]
        keeper = i == 0
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(group, member, keeper, column)
        if role == Qt.ItemDataRole.CheckStateRole:
            if column == REMOVE and not keeper and not member.protected:
                return Qt.CheckState.Checked if member.photo.id in self.selected else Qt.CheckState.Unchecked
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return member.photo.path if column != NOTES else "\n".join(
                [t for t, _ in member_notes(member, keeper, member.photo.path in self.keep_paths)]
                + [f"also at {p}" for p in member.aliases]) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == NOTES and member.keeper_lacks:
                return QBrush(tone(WARNING))  # read from the theme at each ask: a switch shows at the next paint
            if column == NOTES and member.protected:
                return QBrush(tone(PROTECTED))
            return QBrush(tone("good")) if column == REMOVE and keeper else None
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(tinted("good")) if keeper else None
        if role == Qt.ItemDataRole.FontRole:
            return _BOLD if keeper else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (PIXELS, SIZE):
            return _RIGHT
        return None

    def _text(self, group: DupeGroup, member: DupeMember, keeper: bool, column: int) -> str:
        photo: PhotoInfo = member.photo
        if column == REMOVE:
            return "KEEP" if keeper else "protected" if member.protected else ""
        if column == NAME:
            return os.path.basename(photo.path)
        if column == FOLDER:
            return os.path.dirname(photo.path)
        if column == PIXELS:
            return f"{photo.width} × {photo.height}" if photo.width else "?"
        if column == SIZE:
            return human_bytes(photo.size)
        if column == DATE:
            return photo.taken_at.replace("T", " ") if photo.taken_at else ""
        if column == SIMILARITY:
            return "keeper" if keeper else member_badge(group, member)
        notes = [", ".join(member.reasons)] if member.reasons else []  # the signals that put it here
        notes += [t for t, _ in member_notes(member, keeper, photo.path in self.keep_paths)]
        if member.aliases:
            notes.append(f"also at {len(member.aliases)} other path{'s' if len(member.aliases) > 1 else ''}")
        return " · ".join(notes)

    def _title_data(self, group: DupeGroup, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and column == 0:
            return (f"{TIER_NAMES[group.tier]} · {len(group.members)} photos · "
                    f"{human_bytes(group.reclaimable_bytes)} to reclaim · keeps {os.path.basename(group.keeper.path)}")
        if role == Qt.ItemDataRole.FontRole:
            return _BOLD
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(QGuiApplication.palette().color(QPalette.ColorRole.AlternateBase))
        return None

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        """A click on a remove box: handed to the view (which owns the selection), not stored here."""
        if role != Qt.ItemDataRole.CheckStateRole or not self.flags(index) & Qt.ItemFlag.ItemIsUserCheckable:
            return False
        member, group = self.member_at(index), self.group_at(index)
        assert member is not None and group is not None
        ticked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value)
        self.clicked.emit(group, member.photo, ticked)
        return True


class DupesTable(QTableView):
    """The table mode's view: each group's title across its row, a context menu per photo and group,
    Space ticks, Enter compares. Its actions are signals; the duplicates view does the work."""

    keep_this = Signal(object, object)  # (group, photo)
    compare = Signal(object, object)  # (group, photo)
    mark_group = Signal(object, bool)  # (group, ticked): all but the keeper, or none
    not_duplicates = Signal(object)  # group

    def __init__(self, model: DupesTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long folder keeps its last part in sight
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu_at)
        self.doubleClicked.connect(self._double_clicked)
        rows = self.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform rows: Qt never measures them all
        rows.setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.horizontalHeader()
        header.setStretchLastSection(True)
        for column, width in ((REMOVE, 80), (NAME, 220), (FOLDER, 260), (PIXELS, 100), (SIZE, 80), (DATE, 140),
                              (SIMILARITY, 170)):
            header.resizeSection(column, width)
        model.modelReset.connect(self._span)

    def model(self) -> DupesTableModel:  # type: ignore[override]
        return super().model()  # type: ignore[return-value]

    def _span(self) -> None:
        """Each group's title across the whole row."""
        self.clearSpans()
        for row in self.model().title_rows():
            self.setSpan(row, 0, 1, len(COLUMNS))

    def menu_for(self, index: QModelIndex) -> QMenu | None:
        """The context menu of a row (a member's or a group's title), or None off the rows."""
        model = self.model()
        group, member = model.group_at(index), model.member_at(index)
        if group is None:
            return None
        menu = QMenu(self)
        if member is not None:
            keep = menu.addAction("Keep this one", lambda: self.keep_this.emit(group, member.photo))
            keep.setEnabled(member.photo.id != group.keeper.id)
            menu.addAction("Compare…", lambda: self.compare.emit(group, member.photo))
            menu.addSeparator()
        menu.addAction("Select all but the keeper in this group", lambda: self.mark_group.emit(group, True))
        menu.addAction("Select none in this group", lambda: self.mark_group.emit(group, False))
        menu.addSeparator()
        menu.addAction("Not duplicates", lambda: self.not_duplicates.emit(group))
        return menu

    def _menu_at(self, point: QPoint) -> None:
        menu = self.menu_for(self.indexAt(point))
        if menu is not None:
            menu.popup(self.viewport().mapToGlobal(point))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt naming)
        """Space ticks or unticks the current photo whatever its column; Enter compares it."""
        index = self.currentIndex()
        model = self.model()
        member, group = model.member_at(index), model.group_at(index)
        if member is not None and group is not None and event.key() == Qt.Key.Key_Space:
            box = model.index(index.row(), REMOVE)
            if model.flags(box) & Qt.ItemFlag.ItemIsUserCheckable:
                model.setData(box, Qt.CheckState.Unchecked if member.photo.id in model.selected
                              else Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
            return
        if member is not None and group is not None and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.compare.emit(group, member.photo)
            return
        super().keyPressEvent(event)

    def _double_clicked(self, index: QModelIndex) -> None:
        member, group = self.model().member_at(index), self.model().group_at(index)
        if member is not None and group is not None and index.column() != REMOVE:
            self.compare.emit(group, member.photo)
