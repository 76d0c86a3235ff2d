"""Duplicates tab: a similarity slider, groups by tier as cards or as a table, keeper marked, others pre-selected.

The selection is each group's default (``DupeGroup.suggested``) overridden by what the user clicked,
and nothing else: the boxes on screen (cards and table alike) are drawn from it, never read back into
it, so a card that is redrawn, paged in or regrouped cannot turn into a choice the user did not make.
Clicks are saved in the catalog as they happen (Library.save_choices) and read back with the groups,
so they survive a restart, a crash or a failed clean-up.

Cards are sized to the window (bigger on a wide screen, rows filled to the edge) or to the size the user
picks; a resize rescales the cards in place. One card at a time has the keyboard focus ring: arrows, Home/End
and PageUp/PageDown move it, Space ticks, Enter compares, K keeps.
"""

from __future__ import annotations

import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QFocusEvent, QImage, QKeyEvent, QKeySequence, QPainter, QPaintEvent, QPalette, QPen, QPixmap, QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton, QButtonGroup, QCheckBox, QFrame, QHBoxLayout, QLabel, QMenu, QProgressBar,
    QPushButton, QScrollArea, QSlider, QStackedWidget, QVBoxLayout, QWidget,
)

from clipfind.errors import ClipfindError
from clipfind.records import TIER_NAMES, human_bytes

from .compare_view import CompareDialog, highlight_brush
from .dialogs import confirm_cleanup, describe, photos_text, show_problems
from .dupes_table import DupesTable, DupesTableModel, lacks_note, member_badge, member_notes, without
from .flow_layout import FlowLayout
from .icons import icon
from .keeper_rules_dialog import KeeperRulesDialog
from .marks_dialog import MarksDialog
from .results_model import ThumbnailCache, cached_or_requested, centred
from .tasks import TaskRunner
from .theme import css
from .workers import ThumbnailLoader

if TYPE_CHECKING:
    from clipfind.library import Library
    from clipfind.records import (
        DupeGroup,
        DupeMember,
        KeeperRules,
        PhotoInfo,
        RestoreReport,
        TrashBatch,
        TrashReport,
    )

PAGE = 12  # groups built per page (a screen shows 3 or 4): widgets only for what the user can reach
BUILD_SLICE_S = 0.015  # groups are built for this long per event-loop turn, so the window keeps answering
REAPED_PER_TURN = 4  # old groups destroyed per event-loop turn
THUMB = 150  # the thumbnail side before the window's width is known
THUMB_MIN, THUMB_MAX = 100, 400  # the size slider's range
THUMB_STEP = 25  # one Ctrl+plus / Ctrl+minus / Ctrl+wheel notch
CARD_EXTRA = 70  # a card is this much wider than its thumbnail: room for the badge, the box and the buttons
SHARP_SIDE = 400  # thumbnails bigger than the shared cache's are decoded again at this side (off the GUI thread)
SHARP_KEPT = 150  # ... and this many kept (640 KB each)
RESIZE_REST_MS = 60  # the cards are rescaled once a window resize rests this long
SIZE_KEY = "dupes/thumb_size"  # QSettings key of the size the user chose; absent: follow the window
LISTED = 12  # groups spelled out in the trash confirmation; the rest are under "Show Details"


def threshold_hint(value: float) -> str:
    """What a similarity means for the similar tier, in plain words (copies are found apart, whatever it is)."""
    if value >= 0.98:
        return "only shots that look nearly identical, e.g. lightly edited versions"
    if value >= 0.95:
        return "edited versions and the frames of a burst"
    if value >= 0.90:
        return "near-identical shots, e.g. a burst of the same moment"
    if value >= 0.85:
        return "similar shots of the same scene"
    return "loosely similar photos: expect many that you want to keep"


TIER_HINTS = {
    "identical": "Byte for byte the same file: the copies are ticked for removal.",
    "same": "One picture saved again (resized, re-compressed, another format, turned, grey), found from the "
            "pixels and the camera's record, without the model: the copies are ticked for removal; crops "
            "(found where the model is there) are not: you decide.",
    "similar": "Different shots that look alike (a burst, the next frame): nothing is ticked, you pick.",
}


def _name(photo: PhotoInfo) -> str:
    return os.path.basename(photo.path)


def _whole_contents(group: DupeGroup, chosen: set[int]) -> list[PhotoInfo]:
    """Similar shots that would leave the disk with every copy of them: that picture then survives
    only as the keeper, which is similar, not the same."""
    if group.tier != "similar":
        return []
    return [m.photo for m in group.members[1:]
            if m.copy_of is None and m.photo.id in chosen and all(c.id in chosen for c in group.copies_of(m.photo.id))]


def cleanup_summary(groups: Sequence[DupeGroup], selected: Sequence[PhotoInfo]) -> tuple[str, str]:
    """The trash confirmation in plain words, group by group: (text, details listing every group).

    The user must see what leaves and what stays before anything moves, above all when a picture
    would be left only as a similar photo.
    """
    chosen = {p.id for p in selected}
    lines: list[str] = []
    whole = 0
    for group in groups:
        doomed = [m.photo for m in group.members[1:] if m.photo.id in chosen]
        if not doomed:
            continue
        kind = TIER_NAMES[group.tier].lower()
        line = (f"• {_name(group.keeper)} ({kind}): {photos_text(len(doomed))} "
                f"move{'s' if len(doomed) == 1 else ''}, {human_bytes(sum(p.size for p in doomed))} freed; "
                f"{_name(group.keeper)} stays.")
        for photo in _whole_contents(group, chosen):
            whole += 1
            line += f" Every copy of {_name(photo)} goes: no file with exactly this picture stays."
        for member in group.members[1:]:
            if member.photo.id in chosen and member.keeper_lacks:
                line += f" {_name(member.photo)} {lacks_note(member)}."
        lines.append(line)
    count, size = len(chosen), human_bytes(sum({p.id: p.size for p in selected}.values()))
    parts = [f"Move {photos_text(count)} ({size}) from {len(lines)} group{'s' if len(lines) != 1 else ''} "
             "to the system trash?"]
    if whole:
        parts.append(f"Careful: {photos_text(whole)} only similar to {'its' if whole == 1 else 'their'} keeper "
                     f"{'goes' if whole == 1 else 'go'} with all {'its' if whole == 1 else 'their'} copies.")
    parts.append("\n".join(lines[:LISTED] + ([f"… and {len(lines) - LISTED} more groups (Show Details)"]
                                             if len(lines) > LISTED else [])))
    parts.append("One photo of every group stays on disk: its keeper. Moved photos can be restored from the "
                 "system trash; nothing is deleted permanently.")
    return "\n\n".join(parts), "\n".join(lines) if len(lines) > LISTED else ""


def report_problems(report: TrashReport) -> list[str]:
    """Everything a clean-up left alone, with its reason, for the user to read."""
    return ([why for _, why in report.skipped_groups] + [f"{p.path}: {why}" for p, why in report.refused]
            + report.notices)


def auto_side(width: int) -> int:
    """The thumbnail side a row this wide asks for until the user picks one: a tenth of the width, so a
    2,560 px screen shows bigger photos than a laptop, not just more of them."""
    return max(140, min(300, width // 10))


def fitted_side(width: int, target: int, gap: int) -> int:
    """The side nearest ``target`` (never under it, but for a row too narrow for one card) at which whole
    cards fill a row ``width`` wide: no dead gutter at the right of the window."""
    columns = max(1, (width + gap) // (target + CARD_EXTRA + gap))
    side = (width - (columns - 1) * gap) // columns - CARD_EXTRA
    return max(THUMB_MIN, min(side, target * 3 // 2))


def _square(pixmap: QPixmap) -> QPixmap:
    """A pixmap on a square transparent canvas, as the caches make them: the card scales it without distortion."""
    if pixmap.width() == pixmap.height() or pixmap.isNull():
        return pixmap
    return centred(pixmap, max(pixmap.width(), pixmap.height()))


class SharpThumbnails(QObject):
    """Thumbnails decoded at SHARP_SIDE for cards bigger than the shared cache's, through the same loader
    (a thread pool: never decoded on the GUI thread); only the last SHARP_KEPT are kept, as each is 640 KB."""

    ready = Signal(str, QPixmap)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loader = ThumbnailLoader(SHARP_SIDE, self)
        self.loader.ready.connect(self._store)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._unreadable: set[str] = set()  # not asked for again: the shared cache already says "unreadable"

    def get(self, path: str) -> QPixmap | None:
        """The sharp thumbnail if decoded; else asks for it (``ready`` follows) and returns None."""
        return None if path in self._unreadable else cached_or_requested(self._pixmaps, self.loader, path)

    def _store(self, path: str, image: QImage) -> None:
        if image.isNull():
            self._unreadable.add(path)  # the shared cache's placeholder says so
            return
        pixmap = _square(QPixmap.fromImage(image))
        self._pixmaps[path] = pixmap
        while len(self._pixmaps) > SHARP_KEPT:
            self._pixmaps.popitem(last=False)
        self.ready.emit(path, pixmap)


SECONDARY = "palette(placeholder-text)"  # grey text of the palette: legible on a light or a dark theme


def _small(text: str, color: str = SECONDARY) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(f"color: {color}; font-size: 10px;")
    label.setWordWrap(True)
    return label


def _notes(member: DupeMember, keeper: bool = False, chosen: bool = False) -> list[QLabel]:
    """A member's notes (protected folder, metadata the keeper lacks) and its other paths, as card labels."""
    labels = [_small(text, color) for text, color in member_notes(member, keeper, chosen)]
    return labels + [_small(f"also at {path} — same file, removing it frees nothing", css("notice"))
                     for path in member.aliases]


def _action(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setStyleSheet("font-size: 11px; padding: 2px 6px;")
    return button


class _Card(QFrame):
    """One picture of a group: thumbnail, KEEP or a remove box, Keep this one and Compare, size, date,
    path and notes, and the byte-identical copies that follow it (a near group lists them under their original)."""

    clicked = Signal(object, bool)  # (photo, ticked): the user's click only, never a redraw
    keep_this = Signal(object)  # photo
    unkeep = Signal(object)  # photo: the keeper the user chose, given back to the rules
    compare = Signal(object)  # photo
    focused = Signal(object)  # this card: it took the keyboard focus (a click on it, or Tab)
    key = Signal(object, object)  # (this card, QKeyEvent): accepted by the view when it is one of its keys

    def __init__(self, group: DupeGroup, member: DupeMember, copies: Sequence[DupeMember],
                 chosen: bool = False, side: int = THUMB) -> None:
        super().__init__()
        self.photo = member.photo
        self.boxes: dict[int, QCheckBox] = {}  # photo id -> remove box, for this photo and its copies
        self.copy_rows: dict[int, QWidget] = {}  # photo id -> the row of a copy riding on this card
        self.current = False  # draws the focus ring: the card the keys act on
        self.side = side
        keeper = member.photo.id == group.keeper.id
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # a click anywhere on the card (its buttons too, which take Tab focus only) makes it the current card
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFixedWidth(side + CARD_EXTRA)
        self.thumb = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.thumb.setFixedSize(side, side)
        self.thumb.setScaledContents(True)  # square pixmaps, scaled when painted: a resize costs no rescaling here
        self.thumb.setStyleSheet("background: palette(alternate-base);")
        top = QHBoxLayout()
        if keeper:
            badge = QLabel("KEEP")
            badge.setStyleSheet(f"color: palette(base); background: {css('good')}; padding: 1px 6px; "
                                "border-radius: 3px;")
            badge.setToolTip("The photo this group keeps; it cannot be removed here")
        else:
            badge = QLabel(member_badge(group, member))
            badge.setStyleSheet(f"color: {SECONDARY};")
        top.addWidget(badge)
        top.addStretch(1)
        if not keeper:
            top.addWidget(self._box(member))
        actions = QHBoxLayout()
        if keeper and chosen:
            button = _action("Let clipfind choose", "Forget that you chose this photo: the keeper rules choose again")
            button.clicked.connect(lambda: self.unkeep.emit(self.photo))
            actions.addWidget(button)
        elif not keeper:
            button = _action("Keep this one", "Keep this photo instead, now and at every regroup")
            button.clicked.connect(lambda: self.keep_this.emit(self.photo))
            actions.addWidget(button)
            self.keep_button = button
        compare = _action("Compare", "Side by side with the other photos of this group")
        compare.clicked.connect(lambda: self.compare.emit(self.photo))
        self.compare_button = compare
        actions.addWidget(compare)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(actions)
        name = QLabel(_name(member.photo))
        name.setToolTip(member.photo.path)
        name.setWordWrap(True)
        info = QLabel(describe(member.photo).replace(" · ", "\n"))
        info.setStyleSheet(f"color: {SECONDARY}; font-size: 11px;")
        for widget in (name, info, _small(os.path.dirname(member.photo.path)), *_notes(member, keeper, chosen)):
            layout.addWidget(widget)
        for copy in copies:
            row = self._copy_row(copy)
            self.copy_rows[copy.photo.id] = row
            layout.addWidget(row)
        for button in self.findChildren(QAbstractButton):
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)

    def set_side(self, side: int) -> None:
        """Rescale in place (a window resize, the size slider): the card and its pixmap stay."""
        if side != self.side:
            self.side = side
            self.setFixedWidth(side + CARD_EXTRA)
            self.thumb.setFixedSize(side, side)

    def set_current(self, current: bool) -> None:
        if current != self.current:
            self.current = current
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        """The focus ring, in the palette's highlight colour (a dark theme's too), inside the card's margins."""
        super().paintEvent(event)
        if self.current:
            painter = QPainter(self)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 3))
            painter.drawRoundedRect(self.rect().adjusted(2, 2, -2, -2), 4, 4)
            painter.end()

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        super().focusInEvent(event)
        self.focused.emit(self)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        event.ignore()
        self.key.emit(self, event)
        if not event.isAccepted():
            super().keyPressEvent(event)

    def _box(self, member: DupeMember) -> QWidget:
        """The remove box; a protected photo gets a label instead: nothing can tick it."""
        photo = member.photo
        if member.protected:
            label = QLabel("protected")
            label.setStyleSheet(f"color: {css('info')};")
            label.setToolTip(f"{photo.path} is in a protected folder (keeper rules): it is never removed")
            return label
        box = QCheckBox("remove")
        box.setToolTip(f"Move {photo.path} to the trash")
        box.clicked.connect(lambda ticked: self.clicked.emit(photo, ticked))
        self.boxes[photo.id] = box
        return box

    def _copy_row(self, copy: DupeMember) -> QWidget:
        row = QFrame()
        row.setStyleSheet("QFrame { border-top: 1px dashed palette(mid); }")
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>+ identical copy</b>" if copy.reasons == ("identical",) else
                                "<b>+ a crop of it: you decide</b>" if "crop" in copy.reasons else
                                "<b>+ same photo, saved again</b>"))
        header.addStretch(1)
        header.addWidget(self._box(copy))
        layout = QVBoxLayout(row)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(header)
        for label in (_small(copy.photo.path), *_notes(copy)):
            label.setStyleSheet(label.styleSheet() + " border: none;")
            layout.addWidget(label)
        return row

    def drop_copies(self, gone: set[int]) -> None:
        """Take the rows of trashed copies off this card."""
        for photo_id in [i for i in self.copy_rows if i in gone]:
            row = self.copy_rows.pop(photo_id)
            self.boxes.pop(photo_id, None)
            row.hide()
            row.deleteLater()

    def show_selection(self, selected: set[int]) -> None:
        for photo_id, box in self.boxes.items():
            box.setChecked(photo_id in selected)

    def set_thumbnail(self, pixmap: QPixmap) -> None:
        """Show ``pixmap`` unless a sharper one is shown already (a late small decode never blurs a big card)."""
        shown = self.thumb.pixmap()
        if not shown.isNull() and shown.width() > pixmap.width():
            return
        self.thumb.setPixmap(_square(pixmap))


def _group_title(group: DupeGroup) -> str:
    return (f"<b>{TIER_NAMES[group.tier]}</b> · {len(group.members)} photos · "
            f"{human_bytes(group.reclaimable_bytes)} to reclaim")


class _GroupBox(QFrame):
    not_duplicates = Signal(object)
    clicked = Signal(object, object, bool)  # (group, photo, ticked)
    mark = Signal(object, bool)  # (group, ticked): every member but the keeper, or none
    keep_this = Signal(object, object)  # (group, photo)
    unkeep = Signal(object)  # photo
    compare = Signal(object, object)  # (group, photo)

    def __init__(self, group: DupeGroup, keep_paths: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.group = group
        self.keep_paths = keep_paths
        self.setFrameShape(QFrame.Shape.Box)
        self.setStyleSheet("_GroupBox { border: 1px solid palette(mid); border-radius: 6px; }")
        self.side = THUMB  # the side its next cards get (the view's)
        self.title = QLabel(_group_title(group))
        ignore = QPushButton("Not duplicates")
        ignore.setToolTip("Never show these photos as duplicates of each other again (in this tier)")
        ignore.clicked.connect(lambda: self.not_duplicates.emit(self.group))
        self.ignore = ignore
        select = QPushButton("Select")
        select.setToolTip("Tick every photo of this group but its keeper, or none")
        menu = QMenu(select)
        menu.addAction("All but the keeper", lambda: self.mark.emit(self.group, True))
        menu.addAction("None", lambda: self.mark.emit(self.group, False))
        select.setMenu(menu)
        self.select = select
        header = QHBoxLayout()  # the group's actions at its start, where the eye begins: never out of sight
        header.addWidget(ignore)
        header.addWidget(select)
        header.addWidget(self.title)
        header.addStretch(1)
        self.row = FlowLayout(justify=True)  # cards wrap: a big burst is as wide as the window, not 13,000 px
        self.cards: list[_Card] = []
        # In a same or similar group a copy rides on the card of the picture it copies; in an
        # identical group every copy has its own card, since the keeper is their only original.
        attached = group.tier != "identical"
        self._pending = [(m, [c for c in group.members if c.copy_of == m.photo.id] if attached else [])
                         for m in group.members if not (attached and m.copy_of is not None)]
        self._pending.reverse()
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addLayout(self.row)

    @property
    def complete(self) -> bool:
        return not self._pending

    def add_cards(self, deadline: float, each: Callable[[_Card], None]) -> bool:
        """Add cards until ``deadline`` (perf_counter seconds) or the last one; a big group (a burst of
        dozens of shots) is built over several event-loop turns. Returns whether every card is there."""
        while self._pending:
            member, copies = self._pending.pop()
            card = _Card(self.group, member, copies, member.photo.path in self.keep_paths, self.side)
            card.clicked.connect(lambda photo, ticked: self.clicked.emit(self.group, photo, ticked))
            card.keep_this.connect(lambda photo: self.keep_this.emit(self.group, photo))
            card.unkeep.connect(self.unkeep)
            card.compare.connect(lambda photo: self.compare.emit(self.group, photo))
            self.cards.append(card)
            self.row.addWidget(card)
            each(card)
            if time.perf_counter() >= deadline:
                break
        return not self._pending

    def drop(self, gone: set[int], group: DupeGroup) -> None:
        """Trashed photos leave in place: their cards (and copy rows) go, the title counts what is left."""
        self.group = group
        for card in [c for c in self.cards if c.photo.id in gone]:
            self.cards.remove(card)
            self.row.removeWidget(card)
            card.hide()
            card.deleteLater()
        for card in self.cards:
            card.drop_copies(gone)
        self.title.setText(_group_title(group))


def suggested_ids(groups: Sequence[DupeGroup]) -> set[int]:
    """The ids each group suggests removing (identical files and same photos; of similar shots only their copies):
    the selection before any click."""
    return {p.id for g in groups for p in g.suggested()}


@dataclass
class Grouped:
    """What a regroup brings back from the worker: the groups and what is O(photos) about them, the saved
    clicks and the photos the user chose to keep."""

    groups: list[DupeGroup]
    suggested: set[int]
    tiers: Counter[str]
    choices: dict[str, bool] = field(default_factory=dict)
    keep: frozenset[str] = frozenset()
    unchanged: bool = False  # the same groups as those shown (compared on the worker: O(photos))
    last_trash: TrashBatch | None = None  # what an undo would put back, offered after a restart too
    # the selection these groups and the saved choices make, worked out here: walking every group on the
    # GUI thread took 130 ms at 100k photos (18,000 groups)
    selected: list[PhotoInfo] = field(default_factory=list)


def _grouped(library: Library, threshold: float, shown: tuple[list[DupeGroup], frozenset[str]] | None = None
             ) -> Grouped:
    groups = library.duplicates(threshold)
    keep = frozenset(library.keeper_rules().keep)
    selection = DupeSelection()
    selection.set_groups(groups)
    selection.load(library.choices())
    return Grouped(groups, selection._defaults, Counter(g.tier for g in groups), selection.choices, keep,
                   shown is not None and bool(groups) and (groups, keep) == shown, library.last_trash(),
                   selection.selected())


class DupeSelection:
    """What a clean-up takes: each group's suggestion, overridden by what the user clicked, and nothing else.

    Clicks are kept by path across regrouping (a slider move, a clean-up), so a choice outlives the
    groups it was made in; the view draws its boxes from here and never reads them back. A photo in
    a protected folder is never taken, whatever was clicked. The methods that change choices return
    the changes ({path: ticked}) for the view to save in the catalog.
    """

    def __init__(self) -> None:
        self.groups: list[DupeGroup] = []
        self.choices: dict[str, bool] = {}  # path -> ticked: only what the user clicked
        self._defaults: set[int] = set()  # ids the groups suggest removing

    def set_groups(self, groups: list[DupeGroup], suggested: set[int] | None = None) -> None:
        """New groups (a regroup); ``suggested`` is :func:`suggested_ids` of them when already worked out."""
        self.groups = groups
        self._defaults = suggested_ids(groups) if suggested is None else suggested

    def load(self, saved: Mapping[str, bool]) -> None:
        """Choices read back from the catalog; a click made since they were read wins."""
        self.choices = {**saved, **self.choices}

    def click(self, group: DupeGroup, photo: PhotoInfo, ticked: bool) -> dict[str, bool]:
        """The user ticked or unticked ``photo``: its byte-identical copies in ``group`` follow it."""
        protected = {m.photo.id for m in group.members if m.protected}
        changes = {p.path: ticked for p in (photo, *group.copies_of(photo.id)) if p.id not in protected}
        self.choices.update(changes)
        return changes

    def mark(self, groups: Sequence[DupeGroup], ticked: bool) -> dict[str, bool]:
        """Tick every member but the keeper (dupeGuru's "Mark all"), or none, in these groups."""
        changes = {m.photo.path: ticked for g in groups for m in g.members[1:]
                   if not m.protected and m.photo.id != g.keeper.id}
        self.choices.update(changes)
        return changes

    def forget(self, photos: Sequence[PhotoInfo]) -> None:
        """Drop the choices about photos that are gone (moved to the trash)."""
        for photo in photos:
            self.choices.pop(photo.path, None)

    def selected(self) -> list[PhotoInfo]:
        """Photos to remove across all groups, each once, never a keeper nor a protected photo, in group order."""
        keepers = {g.keeper.id for g in self.groups}
        seen: set[int] = set()
        photos = []
        for group in self.groups:
            for member in group.members[1:]:
                photo = member.photo
                if photo.id in keepers or photo.id in seen or member.protected:
                    continue
                if self.choices.get(photo.path, photo.id in self._defaults):
                    seen.add(photo.id)
                    photos.append(photo)
        return photos


def _saved_side(settings: QSettings | None) -> int | None:
    """The thumbnail size the user picked in an earlier session, if any and sane."""
    if settings is None:
        return None
    try:
        side = int(settings.value(SIZE_KEY, 0) or 0)
    except (TypeError, ValueError):
        return None
    return max(THUMB_MIN, min(THUMB_MAX, side)) if side else None


NAV_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End,
            Qt.Key.Key_PageUp, Qt.Key.Key_PageDown}
ACTION_KEYS = {Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_K}


class DupesView(QWidget):
    status = Signal(str)
    photos_trashed = Signal()
    photos_restored = Signal()

    def __init__(self, library: Library, cache: ThumbnailCache, threshold: float = 0.95,
                 tasks: TaskRunner | None = None, settings: QSettings | None = None) -> None:
        """``settings``: where the thumbnail size the user picks is remembered (none: for this session)."""
        super().__init__()
        self.library = library
        self.cache = cache
        self.tasks = tasks or TaskRunner(self, "clipfind-dupes")
        self._own_tasks = tasks is None
        self.tasks.busy_changed.connect(self._show_busy)
        self._selected_count = 0
        self.stale = True  # the groups on screen may not match the catalog: regroup when next shown
        self.selection = DupeSelection()
        self._marked: list[PhotoInfo] = []  # the last "Not duplicates", for Undo
        self._undo: Callable[[], None] | None = None  # what the Undo button takes back
        self._undo_tried = False  # an undo of the trash left files out: not offered again this session
        self.keep_paths: frozenset[str] = frozenset()  # photos the user chose with "Keep this one"
        self.shown = 0
        self._page_end = 0
        self._page = 0  # which page build is current: a regroup abandons the one under way
        self._building: _GroupBox | None = None  # the group whose cards are being added
        self._selected_ids: set[int] = set()  # the selection as drawn on the cards
        self._tiers: Counter[str] = Counter()  # groups per tier, for the titles
        self._tier_labels: list[tuple[str, QLabel]] = []
        self._scroll_to: tuple[int, int] | None = None  # where the lists were, restored after a quiet regroup
        self.boxes: list[_GroupBox] = []
        self._cards_by_path: dict[str, list[_Card]] = {}
        self._doomed: list[QWidget] = []  # widgets of an old page, destroyed a few at a time
        self._reaper = QTimer(self, interval=0, timeout=self._reap)
        self._table_stale = False  # the table does not show the current groups (filled when it is shown)
        self.compare_dialog: CompareDialog | None = None
        self.marks_dialog: MarksDialog | None = None
        self.rules_dialog: KeeperRulesDialog | None = None
        self.settings = settings
        self.chosen_side = _saved_side(settings)  # the size the user picked; None: follow the window's width
        self.side = THUMB  # the side of every card now
        self.sharp = SharpThumbnails(self)  # decodes for cards bigger than the shared cache's thumbnails
        self.sharp.ready.connect(self._sharp_ready)
        self.current: _Card | None = None  # the card with the focus ring, that the keys act on
        self._want: tuple[int | None, int, bool] | None = None  # (photo, place, focus): the current card to find
        # again when the cards are rebuilt (a regroup): that photo's card, else the one at that place in the list
        # while a window is being resized the cards keep their size (the justified rows take up the width) and are
        # rescaled once it rests: rescaling 170 cards costs 50 ms, too much for every step of a drag (or of the
        # size slider, or of a wheel)
        self._refit = QTimer(self, singleShot=True, interval=RESIZE_REST_MS, timeout=self._fit_cards)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(800, 1000)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(10)
        self.slider.setValue(round(threshold * 1000))
        self.value = QLabel()
        self.value.setMinimumWidth(48)
        self.hint = QLabel()
        self.hint.setStyleSheet(f"color: {SECONDARY};")
        self._debounce = QTimer(self, singleShot=True, interval=120)
        self._debounce.timeout.connect(self.regroup)
        self.slider.valueChanged.connect(self._slider_moved)
        top = QHBoxLayout()
        top.addWidget(QLabel("Similarity at least"))
        top.addWidget(self.slider, 1)
        top.addWidget(self.value)
        top.addWidget(self.hint, 1)

        self.cards_button = QPushButton("Cards", checkable=True, checked=True)
        self.table_button = QPushButton("Table", checkable=True)
        self.cards_button.setToolTip("Each photo as a card with its thumbnail")
        self.table_button.setToolTip("One row per photo: hundreds of groups at a glance")
        modes = QButtonGroup(self)
        modes.setExclusive(True)
        modes.addButton(self.cards_button)
        modes.addButton(self.table_button)
        self.table_button.toggled.connect(self._mode_changed)
        self.mark_button = QPushButton("Mark")
        mark_menu = QMenu(self.mark_button)
        self.mark_all_action = mark_menu.addAction("Select all but the keeper", lambda: self.mark_groups(True))
        self.mark_none_action = mark_menu.addAction("Select none", lambda: self.mark_groups(False))
        mark_menu.addSeparator()
        self.reset_action = mark_menu.addAction("Back to the suggestions", self.reset_selection)
        self.mark_button.setMenu(mark_menu)
        self.mark_button.setToolTip("Tick or untick every group's photos at once")
        self.rules_button = QPushButton(icon("settings"), "Keeper rules…")
        self.rules_button.setToolTip("Which photo of a group stays: protected and preferred folders, formats, "
                                     "capture date, GPS")
        self.rules_button.clicked.connect(self.edit_keeper_rules)
        self.marks_button = QPushButton("Not duplicates…")
        self.marks_button.setToolTip("Review the photos you marked as not duplicates, and take marks back")
        self.marks_button.clicked.connect(self.show_marks)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(THUMB_MIN, THUMB_MAX)
        self.size_slider.setSingleStep(10)
        self.size_slider.setPageStep(50)
        self.size_slider.setMinimumWidth(60)  # gives way in a narrow window (the window works down to 640 px)
        self.size_slider.setMaximumWidth(140)
        self.size_slider.setValue(self.chosen_side or THUMB)
        self.size_slider.setToolTip("Photo size: Ctrl+plus and Ctrl+minus, or Ctrl+wheel over the photos; "
                                    "Ctrl+0 fits the size to the window again")
        self.size_slider.valueChanged.connect(self._size_picked)
        self.size_label = QLabel("Size")
        self.size_label.setToolTip(self.size_slider.toolTip())
        tools = QHBoxLayout()
        tools.setSpacing(4)
        tools.addWidget(self.cards_button)
        tools.addWidget(self.table_button)
        tools.addSpacing(8)
        tools.addWidget(self.mark_button)
        tools.addSpacing(8)
        tools.addWidget(self.size_label)
        tools.addWidget(self.size_slider)
        tools.addStretch(1)
        tools.addWidget(self.rules_button)
        tools.addWidget(self.marks_button)

        self.working = QProgressBar(maximumWidth=200, maximumHeight=14, textVisible=False)
        self.working.setRange(0, 0)  # indeterminate
        self.working_label = QLabel()
        self.working_label.setStyleSheet(f"color: {css('info')};")
        self.working_label.setWordWrap(True)  # a long line held a narrow window at 1,100 px
        self.working_row = QWidget()  # the busy state: the slider and the groups on screen stay usable meanwhile
        working = QHBoxLayout(self.working_row)
        working.setContentsMargins(0, 0, 0, 0)
        working.addWidget(self.working)
        working.addWidget(self.working_label, 1)
        self.working_row.hide()

        self.undo_label = QLabel()
        self.undo_label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        self.undo_row = QWidget()
        self.undo_row.setObjectName("undo")
        self._paint_undo_row()
        undo = QHBoxLayout(self.undo_row)
        undo.setContentsMargins(6, 3, 6, 3)
        undo.addWidget(self.undo_label, 1)
        undo.addWidget(self.undo_button)
        self.undo_row.hide()

        self.summary = QLabel()
        self.trash_button = QPushButton(icon("trash"), "Move selected to trash…")
        self.trash_button.clicked.connect(self.trash_selected)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(self.trash_button)

        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.body)
        # always there: a scroll bar that came and went would change the width, the card size, the height...
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll.viewport().installEventFilter(self)  # its resizes fit the cards; Ctrl+wheel sizes them
        self.scroll.installEventFilter(self)  # arrow keys on the list itself move between cards
        self.more = QPushButton("Show more groups", self.body)
        self.more.clicked.connect(self._show_page)
        self.more.hide()

        self.table_model = DupesTableModel(self)
        self.table_model.clicked.connect(self._card_clicked)
        self.table = DupesTable(self.table_model)
        self.table.keep_this.connect(self.keep_this)
        self.table.compare.connect(self.compare)
        self.table.mark_group.connect(lambda group, ticked: self.mark_groups(ticked, [group]))
        self.table.not_duplicates.connect(self.mark_not_duplicates)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.scroll)
        self.stack.addWidget(self.table)

        layout = QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addLayout(top)
        layout.addWidget(self.working_row)
        layout.addWidget(self.undo_row)
        layout.addWidget(self.stack, 1)
        layout.addLayout(bottom)
        cache.loader.ready.connect(self._thumbnail_ready)
        self._slider_moved(self.slider.value(), regroup=False)
        for action, keys in ((self.mark_all_action, "Ctrl+Shift+A"), (self.mark_none_action, "Ctrl+Shift+N")):
            action.setShortcut(QKeySequence(keys))  # shown in the menu, active anywhere in the tab
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        QShortcut(QKeySequence("Ctrl+T"), self, activated=lambda: self.set_mode("cards" if self.mode == "table"
                                                                                  else "table"),
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.table_button.setToolTip(self.table_button.toolTip() + " (Ctrl+T switches)")
        for keys, step in ((QKeySequence.StandardKey.ZoomIn, THUMB_STEP), (QKeySequence("Ctrl+="), THUMB_STEP),
                           (QKeySequence.StandardKey.ZoomOut, -THUMB_STEP), (QKeySequence("Ctrl+0"), 0)):
            QShortcut(keys, self, activated=lambda step=step: self.zoom(step),
                      context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    @property
    def threshold(self) -> float:
        return self.slider.value() / 1000

    @property
    def mode(self) -> str:
        """"cards" or "table": how the groups are shown."""
        return "table" if self.table_button.isChecked() else "cards"

    def set_mode(self, mode: str) -> None:
        (self.table_button if mode == "table" else self.cards_button).setChecked(True)

    def _mode_changed(self) -> None:
        self.stack.setCurrentWidget(self.table if self.mode == "table" else self.scroll)
        self.size_slider.setEnabled(self.mode == "cards")
        self.size_label.setEnabled(self.mode == "cards")
        self._fill_table()

    def _fill_table(self) -> None:
        """The table is filled when it is shown (at 5,000 groups that costs a tenth of a second)."""
        if self._table_stale and self.mode == "table":
            self._table_stale = False
            self.table_model.set_groups(self.groups, self._selected_ids, self.keep_paths)

    # -- card size ------------------------------------------------------------------------------
    def _row_width(self) -> int:
        """The width a group's row of cards gets: the list's, less the margins around a group's cards."""
        width = self.scroll.viewport().width()
        margins = self.body_layout.contentsMargins()
        width -= margins.left() + margins.right()
        if self.boxes:
            box = self.boxes[0]
            frame, inner = box.contentsMargins(), box.layout().contentsMargins()
            width -= frame.left() + frame.right() + inner.left() + inner.right()
        else:
            width -= 24
        return width

    def _fit_cards(self) -> None:
        """Size the cards for the list's width and the size asked for (the user's, or the width's own),
        in place: a resize only rescales, it never rebuilds a card."""
        width = self._row_width()
        target = self.chosen_side or auto_side(width)
        if self.chosen_side is None and self.size_slider.value() != target:
            self.size_slider.blockSignals(True)  # shows the size the window chose: not a pick of the user's
            self.size_slider.setValue(target)
            self.size_slider.blockSignals(False)
        side = fitted_side(width, target, self.boxes[0].row.spacing() if self.boxes else 8)
        if side == self.side:
            return
        self.side = side
        for box in self.boxes:
            box.side = side
            for card in box.cards:
                card.set_side(side)
        if self._wants_sharp():
            for box in self.boxes:
                for card in box.cards:
                    self._sharpen(card)

    def _refit_soon(self) -> None:
        """Rescale the cards once a resize, a slider drag or a spin of the wheel rests (each step of one costs
        50 ms at 170 cards); with no cards yet, at once."""
        if self.boxes:
            self._refit.start()
        else:
            self._fit_cards()

    def _wants_sharp(self) -> bool:
        """Whether cards are bigger (in device pixels) than the shared cache's thumbnails."""
        return self.side * self.devicePixelRatioF() > self.cache.placeholder.width()

    def _sharpen(self, card: _Card) -> None:
        if card.thumb.pixmap().width() >= SHARP_SIDE:
            return  # sharp already
        pixmap = self.sharp.get(card.photo.path)
        if pixmap is not None:
            card.set_thumbnail(pixmap)

    def _sharp_ready(self, path: str, pixmap: QPixmap) -> None:
        for card in self._cards_by_path.get(path, ()):
            card.set_thumbnail(pixmap)

    def _size_picked(self, side: int) -> None:
        """The user moved the size slider (or zoomed): remembered, and the cards follow."""
        self.chosen_side = side
        if self.settings is not None:
            self.settings.setValue(SIZE_KEY, side)
        self._refit_soon()

    def zoom(self, step: int) -> None:
        """Bigger or smaller cards by ``step`` px; 0: follow the window's width again (and forget the pick)."""
        if step == 0:
            self.chosen_side = None
            if self.settings is not None:
                self.settings.remove(SIZE_KEY)
            self._refit_soon()
            return
        self.size_slider.setValue(max(THUMB_MIN, min(THUMB_MAX, self.size_slider.value() + step)))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """The list's resizes fit the cards, Ctrl+wheel over it zooms, and its arrow keys reach the cards."""
        if watched is self.scroll.viewport():
            if event.type() == QEvent.Type.Resize:
                self._refit_soon()
            elif (event.type() == QEvent.Type.Wheel and isinstance(event, QWheelEvent)
                  and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
                notches = event.angleDelta().y() / 120
                if notches:
                    self.zoom(round(notches * THUMB_STEP) or (THUMB_STEP if notches > 0 else -THUMB_STEP))
                return True
        elif (watched is self.scroll and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
              and event.key() in NAV_KEYS | ACTION_KEYS
              and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            cards = self._cards()
            if cards:
                if self.current is None:
                    self.set_current(self._first_visible(cards))
                else:
                    self._card_key(self.current, event)
                return True
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "undo_row"):
            self._paint_undo_row()  # a theme switched: the undo row follows it
            for box in self.boxes:  # and the cards: a widget with a style sheet keeps its old palette until
                box.setStyleSheet(box.styleSheet())  # polished again
        super().changeEvent(event)

    def _paint_undo_row(self) -> None:
        """The undo row's background: the palette's highlight, faded (as the compare view's), light or dark."""
        colour = highlight_brush(self.palette()).color()
        self.undo_row.setStyleSheet(f"QWidget#undo {{ background: rgba({colour.red()}, {colour.green()}, "
                                    f"{colour.blue()}, {colour.alpha()}); border-radius: 4px; }}")

    # -- the current card: keyboard navigation -------------------------------------------------
    def _cards(self) -> list[_Card]:
        """Every card on screen, in reading order: group by group."""
        return [card for box in self.boxes for card in box.cards]

    def _box_of(self, card: _Card) -> _GroupBox | None:
        return next((box for box in self.boxes if card in box.cards), None)

    def _first_visible(self, cards: list[_Card]) -> _Card:
        top = self.scroll.verticalScrollBar().value()
        return next((c for c in cards if c.mapTo(self.body, QPoint(0, 0)).y() + c.height() > top), cards[0])

    def set_current(self, card: _Card | None, focus: bool = True, scroll: bool = True) -> None:
        """Move the focus ring (and the keyboard focus) to ``card``, scrolled into view."""
        if self.current is not None and self.current is not card:
            self.current.set_current(False)
        self.current = card
        if card is None:
            return
        card.set_current(True)
        if focus:
            self._focus(card)
        if scroll:
            self._reveal(card)

    def _focus(self, card: _Card, tries: int = 20) -> None:
        """The keyboard focus to ``card``; a card just built is shown a few event-loop turns later (a hidden
        widget takes no focus), so until then this waits, as long as the card is still the current one."""
        if self.current is not card or card.hasFocus():
            return
        if card.isVisible():
            card.setFocus(Qt.FocusReason.OtherFocusReason)
        elif tries:
            QTimer.singleShot(0, lambda: self._focus(card, tries - 1))

    def _reveal(self, card: _Card) -> None:
        """Scroll ``card`` into view; on a group's first row, the group's title and actions too (the top of
        the list for the first card)."""
        bar, height = self.scroll.verticalScrollBar(), self.scroll.viewport().height()
        box = self._box_of(card)
        if box is None or not box.cards or card.y() != box.cards[0].y():
            self.scroll.ensureWidgetVisible(card, 0, 12)
            return
        top = 0 if box is self.boxes[0] else box.mapTo(self.body, QPoint(0, 0)).y() - 12
        bottom = card.mapTo(self.body, QPoint(0, card.height())).y() + 12
        if bottom - top > height:
            self.scroll.ensureWidgetVisible(card, 0, 12)
        elif top < bar.value():
            bar.setValue(top)
        elif bottom > bar.value() + height:
            bar.setValue(bottom - height)

    def _card_focused(self, card: _Card) -> None:
        """A click on a card (or Tab to it) makes it the current card."""
        self.set_current(card, focus=False, scroll=False)

    def _card_key(self, card: _Card, event: QKeyEvent) -> None:
        """The card keys: arrows, Home/End, PageUp/PageDown move; Space ticks, Enter compares, K keeps."""
        key = event.key()
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier or key not in NAV_KEYS | ACTION_KEYS:
            return  # not ours (Ctrl+plus and the other shortcuts, Tab): left to Qt
        event.accept()
        self.set_current(card, focus=False, scroll=False)
        if key in NAV_KEYS:
            self._move(card, key)
            return
        box = self._box_of(card)
        if box is None:
            return
        group, photo = box.group, card.photo
        if key == Qt.Key.Key_Space:
            if photo.id not in card.boxes:
                self.status.emit(f"{_name(photo)} is {'the keeper' if photo.id == group.keeper.id else 'protected'}"
                                 ": it cannot be ticked for removal")
                return
            self._card_clicked(group, photo, photo.id not in self._selected_ids)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.compare(group, photo)
        elif photo.id == group.keeper.id:
            self.status.emit(f"{_name(photo)} is already the photo this group keeps")
        else:
            self.keep_this(group, photo)

    def _move(self, card: _Card, key: int) -> None:
        """Left/Right: the previous/next card (on into the next group); Up/Down: the row above/below (the
        previous/next group after a group's last row), at the nearest column; PageUp/PageDown: a screen up or
        down; Home/End: the first/last card. Past the last card shown, the next page of groups comes."""
        cards = self._cards()
        at = cards.index(card) if card in cards else 0
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End):
            to = {Qt.Key.Key_Left: at - 1, Qt.Key.Key_Right: at + 1, Qt.Key.Key_Home: 0,
                  Qt.Key.Key_End: len(cards) - 1}[key]
            if to >= len(cards):
                self._more(len(cards))
                return
            self.set_current(cards[max(0, to)])
            return
        places = {c: c.mapTo(self.body, QPoint(0, 0)) for c in cards}
        here = places[card]
        centre = here.x() + card.width() // 2
        rows = sorted({p.y() for p in places.values()})
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            above = [y for y in rows if y < here.y()]
            below = [y for y in rows if y > here.y()]
            if key == Qt.Key.Key_Down and not below:
                self._more(len(cards))
                return
            row = (above[-1] if above else None) if key == Qt.Key.Key_Up else below[0]
        else:
            page = self.scroll.viewport().height()
            if key == Qt.Key.Key_PageDown:
                below = [y for y in rows if here.y() < y <= here.y() + page] or [y for y in rows if y > here.y()][:1]
                if not below:
                    self._more(len(cards))
                    return
                row = below[-1]
            else:
                above = [y for y in rows if here.y() - page <= y < here.y()] or [y for y in rows if y < here.y()][-1:]
                row = above[0] if above else None
        if row is None:
            return
        self.set_current(min((c for c in cards if places[c].y() == row),
                             key=lambda c: abs(places[c].x() + c.width() // 2 - centre)))

    def _more(self, place: int) -> None:
        """Past the last card shown: the next page of groups, its first card current once built."""
        if self.shown < len(self.groups) and not self.building:
            self._want = (None, place, True)
            self._show_page()

    def _remember_current(self) -> None:
        """Before the cards are rebuilt: what to make current again, and whether it had the keyboard focus."""
        card = self.current
        if card is None:
            return
        cards = self._cards()
        self._want = (card.photo.id, cards.index(card) if card in cards else 0, self.window().focusWidget() is card)
        self.current = None

    def _find_wanted(self, card: _Card | None = None) -> None:
        """A card was built (``card``) or the page is complete (None): make the wanted card current."""
        if self._want is None:
            return
        photo, place, focus = self._want
        if card is not None:
            if card.photo.id == photo:
                self._want = None
                self.set_current(card, focus=focus, scroll=False)
            return
        cards, self._want = self._cards(), None
        if cards:
            self.set_current(cards[min(place, len(cards) - 1)], focus=focus, scroll=photo is None)

    def _slider_moved(self, value: int, regroup: bool = True) -> None:
        self.value.setText(f"{value / 1000:.3f}")
        self.hint.setText(threshold_hint(value / 1000))
        if regroup:
            self._debounce.start()

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt naming)
        if self._own_tasks:
            self.tasks.shutdown()
        super().closeEvent(event)

    @property
    def busy(self) -> bool:
        """Whether groups, a clean-up or its undo are being worked out off the event loop."""
        return self.tasks.busy("regroup") or self.tasks.busy("cleanup") or self.tasks.busy("restore")

    def _show_busy(self) -> None:
        regrouping, cleaning, restoring = (self.tasks.busy("regroup"), self.tasks.busy("cleanup"),
                                           self.tasks.busy("restore"))
        working = regrouping or cleaning or restoring
        self.working_row.setVisible(working)
        self.working.setVisible(working)
        self.working_label.setText(
            "Moving the selected photos to the trash…" if cleaning else
            "Putting the photos back from the trash…" if restoring else
            "Finding duplicates… The first time after photos came or went this compares every photo again, "
            "which takes minutes in a large collection; you can keep using the app." if regrouping else "")
        self.trash_button.setEnabled(not working and self._selected_count > 0)

    def regroup(self, keep_place: bool = False) -> None:
        """Group again off the event loop (the first time after a catalog change builds the neighbour
        graph: minutes at 100k photos); a newer regroup (a slider move) supersedes this one.

        ``keep_place``: a quiet regroup after a change the view already shows (a clean-up, a keeper
        chosen): the groups on screen stay if nothing else changed, and the scroll position stays."""
        self.stale = False
        threshold = self.threshold
        library = self.library
        shown = (self.groups, self.keep_paths) if keep_place else None  # never changed in place: safe to read there
        # the groups, and what is O(photos) about them, worked out on the worker: at 100k photos walking
        # every group on the GUI thread cost a visible stall per slider move
        self.tasks.submit(lambda: _grouped(library, threshold, shown),
                          lambda grouped: self._show_groups(grouped, keep_place), self._regroup_failed,
                          kind="regroup")

    def _regroup_failed(self, exc: BaseException) -> None:
        self.status.emit(str(exc) if isinstance(exc, ClipfindError) else f"could not find duplicates: {exc}")

    def _show_groups(self, grouped: Grouped, keep_place: bool = False) -> None:
        self.selection.load(grouped.choices)
        # the worker's selection holds unless a click came in since it read the saved choices
        selected = grouped.selected if self.selection.choices == grouped.choices else None
        self._offer_last_trash(grouped.last_trash)
        if keep_place and grouped.unchanged and not self.building:
            self.selection.set_groups(grouped.groups, grouped.suggested)  # what is shown is what is there
            self._update_summary(selected)
            self._redraw_selection()
            return
        self._scroll_to = ((self.scroll.verticalScrollBar().value(), self.table.verticalScrollBar().value())
                           if keep_place else None)
        upto = self.shown if keep_place else 0
        self._tiers = grouped.tiers
        self.keep_paths = grouped.keep
        self.selection.set_groups(grouped.groups, grouped.suggested)
        self._retire_widgets()
        self.shown = 0
        self._update_summary(selected)  # the selection, once: every card of the page is drawn from it
        self._table_stale = True
        self._fill_table()
        self._show_page(upto)
        if self._scroll_to is not None:
            table_at = self._scroll_to[1]
            QTimer.singleShot(0, lambda: self.table.verticalScrollBar().setValue(table_at))

    def _retire_widgets(self) -> None:
        """Take the old page off screen now and destroy it a few widgets per event-loop turn: a page is
        hundreds of widgets, too many to free in one go without a visible stall."""
        self._remember_current()
        self.boxes.clear()
        self._cards_by_path.clear()
        self._tier_labels.clear()
        self._building = None
        while self.body_layout.count():
            widget = self.body_layout.takeAt(0).widget()
            if widget is not None and widget is not self.more:
                self._retire(widget)

    def _retire(self, widget: QWidget) -> None:
        self.body_layout.removeWidget(widget)
        widget.hide()
        self._doomed.append(widget)
        if not self._reaper.isActive():
            self._reaper.start()

    def _reap(self) -> None:
        for _ in range(min(REAPED_PER_TURN, len(self._doomed))):
            self._doomed.pop().deleteLater()
        if not self._doomed:
            self._reaper.stop()

    @property
    def building(self) -> bool:
        """Whether the page of groups is still being drawn (a few groups per event-loop turn)."""
        return self.shown < self._page_end or self._building is not None

    def _show_page(self, upto: int = 0) -> None:
        """Append the next page of groups (at least up to group ``upto``), a few per event-loop turn;
        the "more" button and the stretch stay last."""
        if self.body_layout.count():
            self.body_layout.takeAt(self.body_layout.count() - 1)  # the stretch
            self.body_layout.removeWidget(self.more)
        self.more.hide()
        self._page_end = min(max(self.shown + PAGE, upto or 0), len(self.groups))
        self._page += 1
        self._build_page(self._page)

    def _build_page(self, page: int) -> None:
        if page != self._page:
            return  # regrouped meanwhile: that page is gone
        deadline = time.perf_counter() + BUILD_SLICE_S
        while time.perf_counter() < deadline:
            if self._building is None or self._building.add_cards(deadline, self._card_added):
                self._building = None
                if self.shown >= self._page_end:
                    break
                self._building = self._add_group(self.shown)
                self.shown += 1
        if self.building:
            QTimer.singleShot(0, lambda: self._build_page(page))
            return
        self._find_wanted()
        if not self.groups:
            empty = QLabel("No duplicates at this similarity. Move the slider left to look wider.")
            empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
            empty.setStyleSheet(f"color: {SECONDARY}; font-size: 15px; padding: 40px;")
            self.body_layout.addWidget(empty)
        if self.shown < len(self.groups):
            self.body_layout.addWidget(self.more)
            self.more.show()
        self.body_layout.addStretch(1)
        if self._scroll_to is not None:
            cards_at, self._scroll_to = self._scroll_to[0], None
            QTimer.singleShot(0, lambda: self.scroll.verticalScrollBar().setValue(cards_at))

    def _add_group(self, i: int) -> _GroupBox:
        group = self.groups[i]
        if i == 0 or self.groups[i - 1].tier != group.tier:
            self.body_layout.addWidget(self._tier_title(group.tier))
        box = _GroupBox(group, self.keep_paths)
        box.not_duplicates.connect(self.mark_not_duplicates)
        box.clicked.connect(self._card_clicked)
        box.mark.connect(lambda g, ticked: self.mark_groups(ticked, [g]))
        box.keep_this.connect(self.keep_this)
        box.unkeep.connect(self.unkeep)
        box.compare.connect(self.compare)
        self.boxes.append(box)
        self.body_layout.addWidget(box)
        self._fit_cards()  # the first group tells the margins around the cards
        box.side = self.side
        return box

    def _card_added(self, card: _Card) -> None:
        card.show_selection(self._selected_ids)
        self._cards_by_path.setdefault(card.photo.path, []).append(card)
        card.focused.connect(self._card_focused)
        card.key.connect(self._card_key)
        pixmap = self.cache.get(card.photo.path)
        if pixmap is not None:
            card.set_thumbnail(pixmap)
        if self._wants_sharp():
            self._sharpen(card)
        self._find_wanted(card)

    def _tier_text(self, tier: str) -> str:
        count = self._tiers[tier]
        return (f"<h3>{TIER_NAMES[tier]} · {count} group{'s' if count != 1 else ''}</h3>"
                f"<span>{TIER_HINTS[tier]}</span>")

    def _tier_title(self, tier: str) -> QLabel:
        label = QLabel(self._tier_text(tier))
        label.setWordWrap(True)
        self._tier_labels.append((tier, label))
        return label

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        pixmap = self.cache.get(path)
        if pixmap is None:
            return
        for card in self._cards_by_path.get(path, ()):
            card.set_thumbnail(pixmap)

    # -- the selection ------------------------------------------------------------------------
    def _card_clicked(self, group: DupeGroup, photo: PhotoInfo, ticked: bool) -> None:
        """Record the one choice the user made (its byte-identical copies follow it) and save it."""
        self._selection_changed(self.selection.click(group, photo, ticked))

    def mark_groups(self, ticked: bool, groups: Sequence[DupeGroup] | None = None) -> None:
        """Select all but the keeper (``ticked``) or none, in ``groups`` (default: every group, shown or not)."""
        self._selection_changed(self.selection.mark(self.groups if groups is None else groups, ticked))

    def reset_selection(self) -> None:
        """Forget every click: each group's suggestion again, in the catalog too."""
        self.selection.choices.clear()
        library = self.library
        self.tasks.submit(lambda: library.clear_choices(), None, self._save_failed)
        self._update_summary()
        self._redraw_selection()

    def _selection_changed(self, changes: Mapping[str, bool]) -> None:
        self._update_summary()
        self._redraw_selection()
        self._save(changes)

    def _save(self, changes: Mapping[str, bool]) -> None:
        """Store clicks in the catalog (fire and forget, on the worker, in order with everything else)."""
        if not changes:
            return
        library, changes = self.library, dict(changes)
        self.tasks.submit(lambda: library.save_choices(changes), None, self._save_failed)

    def _save_failed(self, exc: BaseException) -> None:
        self.status.emit(f"your choice could not be saved: {exc}")

    def _redraw_selection(self) -> None:
        for box in self.boxes:
            for card in box.cards:
                card.show_selection(self._selected_ids)
        if not self._table_stale:
            self.table_model.show_selection(self._selected_ids)

    @property
    def groups(self) -> list[DupeGroup]:
        return self.selection.groups

    @property
    def choices(self) -> dict[str, bool]:
        return self.selection.choices

    def selected(self) -> list[PhotoInfo]:
        """Photos to remove across all groups (pages not shown yet included), each once, never a keeper."""
        return self.selection.selected()

    def _update_summary(self, selected: list[PhotoInfo] | None = None) -> None:
        """The count and size selected; ``selected``: the selection when already worked out."""
        if selected is None:
            selected = self.selected()
        self._selected_ids = {p.id for p in selected}
        self._selected_count = len(selected)
        self.summary.setText(
            f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''} · {photos_text(len(selected))} selected "
            f"for removal ({human_bytes(sum(p.size for p in selected))})"
        )
        self.trash_button.setEnabled(bool(selected) and not self.busy)

    # -- per photo: keep this one, compare --------------------------------------------------
    def keep_this(self, group: DupeGroup, photo: PhotoInfo) -> None:
        """"Keep this one": remembered by the library (the next grouping keeps it), then regroup in place."""
        library = self.library
        changes = {photo.path: False}  # a keeper the user chose is not to be ticked if it ever stops being one
        self.selection.choices.update(changes)

        def keep() -> None:
            library.keep_this(photo)
            library.save_choices(changes)

        def kept(_: None) -> None:
            self.status.emit(f"{_name(photo)} is kept; the others of its group are suggested for removal")
            self.regroup(keep_place=True)

        self.tasks.submit(keep, kept, self._regroup_failed)

    def unkeep(self, photo: PhotoInfo) -> None:
        """Take back a "Keep this one": the keeper rules choose again."""
        library = self.library

        def done(_: None) -> None:
            self.status.emit(f"{_name(photo)} is no longer kept by your choice")
            self.regroup(keep_place=True)

        self.tasks.submit(lambda: library.unkeep(photo), done, self._regroup_failed)

    def compare(self, group: DupeGroup, photo: PhotoInfo) -> None:
        """Open the side-by-side view of the group at this photo; its decisions come back as clicks."""
        start = next((i for i, m in enumerate(group.members) if m.photo.id == photo.id), 0)
        dialog = CompareDialog(group, set(self._selected_ids), start, self)
        dialog.decided.connect(lambda decisions: self.apply_decisions(group, decisions))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.compare_dialog = dialog
        dialog.open()

    def apply_decisions(self, group: DupeGroup, decisions: Mapping[int, bool]) -> None:
        """What the user toggled in the compare view, as clicks: originals first (their copies follow),
        then copies, so a copy decided on its own keeps its own decision."""
        members = {m.photo.id: m for m in group.members}
        changes: dict[str, bool] = {}
        for photo_id in sorted((i for i in decisions if i in members), key=lambda i: members[i].copy_of is not None):
            changes.update(self.selection.click(group, members[photo_id].photo, bool(decisions[photo_id])))
        self._selection_changed(changes)

    # -- dialogs: ignore list, keeper rules ---------------------------------------------------
    def show_marks(self) -> None:
        """The ignore-list manager; taking a mark back regroups quietly."""
        dialog = MarksDialog(lambda: self.library, self.tasks, self.cache, self)
        dialog.changed.connect(lambda: self.regroup(keep_place=True))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.marks_dialog = dialog
        dialog.open()

    def edit_keeper_rules(self) -> None:
        """Read the saved rules (worker), edit them in a dialog, save them (worker), regroup."""
        library = self.library
        self.tasks.submit(lambda: library.keeper_rules(), self._ask_rules, self._regroup_failed)

    def _ask_rules(self, rules: KeeperRules) -> None:
        dialog = KeeperRulesDialog(rules, self)
        dialog.accepted.connect(lambda: self.save_keeper_rules(dialog.rules()))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.rules_dialog = dialog
        dialog.open()

    def save_keeper_rules(self, rules: KeeperRules) -> None:
        library = self.library

        def saved(_: None) -> None:
            self.status.emit("keeper rules saved")
            self.regroup(keep_place=True)

        self.tasks.submit(lambda: library.set_keeper_rules(rules), saved, self._regroup_failed)

    # -- not duplicates, clean-up, undo ---------------------------------------------------------
    def _offer_undo(self, text: str, action: Callable[[], None]) -> None:
        self._undo = action
        self.undo_label.setText(text)
        self.undo_row.show()

    def _offer_last_trash(self, batch: TrashBatch | None) -> None:
        """A clean-up of an earlier session (or before a crash) can still be undone: say so, unless the
        undo row already offers something."""
        if batch is None or self._undo is not None or self._undo_tried:
            return
        when = time.strftime("%d %b %Y %H:%M", time.localtime(batch.when))
        moved = f"{photos_text(len(batch.photos))} ({human_bytes(sum(p.size for p in batch.photos))})"
        self._offer_undo(f"The last clean-up, on {when}, moved {moved} to the system trash.", self.undo_trash)

    def _close_undo(self) -> None:
        self._undo = None
        self.undo_row.hide()

    def undo(self) -> None:
        """The Undo button: take back what the undo row says."""
        if self._undo is not None:
            self._undo()

    def mark_not_duplicates(self, group: DupeGroup) -> None:
        """Hide this group's photos from each other, in the tier they were shown in."""
        photos = [m.photo for m in group.members]
        library, tier = self.library, group.tier

        def marked(_: None) -> None:
            self._marked = photos
            self._offer_undo(f"{photos_text(len(photos))} marked as not duplicates of each other: "
                             "they will not be grouped together again.", self.undo_not_duplicates)
            self.status.emit("those photos will not be shown as duplicates again")
            self.regroup(keep_place=True)

        self.tasks.submit(lambda: library.mark_not_duplicates(photos, tier=tier), marked, self._regroup_failed)

    def undo_not_duplicates(self) -> None:
        """Take back the last "Not duplicates" (the app's `clipfind not-dupes --undo`)."""
        if not self._marked:
            return
        photos, library = self._marked, self.library

        def unmarked(_: int) -> None:
            self._marked = []
            self._close_undo()
            self.status.emit("mark taken back: those photos can be grouped again")
            self.regroup(keep_place=True)

        self.tasks.submit(lambda: library.unmark_not_duplicates(photos), unmarked, self._regroup_failed)

    def trash_selected(self) -> None:
        photos = self.selected()
        if not photos or self.busy:
            return
        text, details = cleanup_summary(self.groups, photos)
        if not confirm_cleanup(self, text, details):
            return
        groups, library = self.groups, self.library
        self.tasks.submit(lambda: library.clean_up(groups, photos), self._cleaned, self._cleanup_failed,
                          kind="cleanup")

    def _cleanup_failed(self, exc: BaseException) -> None:
        show_problems(self, "Nothing was moved", [str(exc)])

    def _cleaned(self, report: TrashReport) -> None:
        moved = f"{photos_text(len(report.moved))} ({human_bytes(report.freed_bytes)})"
        self.status.emit(f"moved {moved} to the trash")
        problems = report_problems(report)
        if problems:
            show_problems(self, "Some photos were kept", problems)
        self.selection.forget(report.moved)
        if report.moved:
            self.drop_photos({p.id for p in report.moved})
            self._offer_undo(f"Moved {moved} to the system trash.", self.undo_trash)
        self.regroup(keep_place=True)  # quietly: what else the catalog says now, the scroll position kept
        self.photos_trashed.emit()

    def undo_trash(self) -> None:
        """Put the last clean-up back from the trash (or learn where it is), then regroup."""
        library = self.library
        self.tasks.submit(lambda: library.undo_trash(), self._restored, self._restore_failed, kind="restore")

    def _restore_failed(self, exc: BaseException) -> None:
        show_problems(self, "Nothing was put back", [str(exc)])

    def _restored(self, report: RestoreReport) -> None:
        self._close_undo()
        self._undo_tried = bool(report.failed)
        back = len(report.restored)
        self.status.emit(f"put {photos_text(back)} back from the trash" if back else "nothing was put back")
        lines = [f"{path}: {why}" for path, why in report.failed] + list(report.notices)
        if lines:
            show_problems(self, f"{photos_text(back)} put back" if back else "Nothing was put back", lines)
        self.photos_restored.emit()
        self.regroup(keep_place=True)

    def drop_photos(self, gone: set[int]) -> None:
        """Photos that left (trashed) go from the groups on screen in place: their cards and rows, and groups
        left with one photo; the rest of the page is not rebuilt."""
        if self.building:  # a page under construction: the quiet regroup that follows redraws it
            self.selection.set_groups([g for g in (without(g, gone) for g in self.groups) if g is not None])
            self._update_summary()
            return
        current, before = self.current, self._cards()
        focus = current is not None and self.window().focusWidget() is current
        groups: list[DupeGroup] = []
        boxes: list[_GroupBox] = []
        shown = 0
        for i, group in enumerate(self.groups):
            after = without(group, gone)
            if i < len(self.boxes):
                box = self.boxes[i]
                if after is None:
                    self._retire(box)
                    continue
                if after is not group:
                    box.drop(gone, after)
                boxes.append(box)
                shown += 1
            if after is not None:
                groups.append(after)
        self.boxes, self.shown, self._page_end = boxes, shown, shown
        self._cards_by_path = {}
        for box in boxes:
            for card in box.cards:
                self._cards_by_path.setdefault(card.photo.path, []).append(card)
        self._tiers = Counter(g.tier for g in groups)
        for tier, label in self._tier_labels:
            label.setText(self._tier_text(tier))
            label.setVisible(self._tiers[tier] > 0)
        self.selection.set_groups(groups)
        if not self._table_stale:
            self.table_model.remove_photos(gone)
        self._update_summary()
        self._redraw_selection()
        after = self._cards()
        if current is not None and current not in after:  # its card left (or its group did): the next that stays
            kept = set(after)
            place = sum(1 for c in before[:before.index(current)] if c in kept) if current in before else 0
            self.current = None
            self.set_current(after[min(place, len(after) - 1)] if after else None, focus=focus)
