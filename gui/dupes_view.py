"""Duplicates tab: a similarity slider, groups by tier, keeper marked, others pre-selected.

The selection is each group's default (``DupeGroup.suggested``) overridden by what the user clicked,
and nothing else: the boxes on screen are drawn from it, never read back into it, so a card that
is redrawn, paged in or regrouped cannot turn into a choice the user did not make.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSlider, QVBoxLayout, QWidget,
)

from clipfind.errors import ClipfindError
from clipfind.records import TIER_NAMES, human_bytes, human_duration

from .dialogs import confirm_cleanup, describe, photos_text, show_problems
from .flow_layout import FlowLayout
from .icons import icon
from .results_model import ThumbnailCache
from .tasks import TaskRunner

if TYPE_CHECKING:
    from clipfind.library import Library
    from clipfind.records import DupeGroup, DupeMember, PhotoInfo, TrashReport

PAGE = 12  # groups built per page (a screen shows 3 or 4): widgets only for what the user can reach
BUILD_SLICE_S = 0.015  # groups are built for this long per event-loop turn, so the window keeps answering
REAPED_PER_TURN = 4  # old groups destroyed per event-loop turn
THUMB = 150
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
            "pixels and the camera's record, without the model: the copies are ticked for removal.",
    "similar": "Different shots that look alike (a burst, the next frame): nothing is ticked, you pick.",
}


def _badge(group: DupeGroup, member: DupeMember) -> str:
    """What a non-keeper card says about itself: why it is here, and for a similar shot how far apart in time."""
    if member.copy_of is not None:
        return "identical copy" if member.reasons == ("identical",) else "same photo"
    if group.tier == "same":
        turned = [r for r in member.reasons if r in ("turned", "mirrored")]
        return "same photo" + (f" ({', '.join(turned)})" if turned else "")
    gap = group.capture_gap(member.photo)
    when = "" if gap is None else f" · {human_duration(gap)} apart"
    return f"similarity {member.similarity:.3f}{when}"


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


def _small(text: str, color: str = "#868e96") -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(f"color: {color}; font-size: 10px;")
    label.setWordWrap(True)
    return label


def _alias_notes(member: DupeMember) -> list[QLabel]:
    return [_small(f"also at {path} — same file, removing it frees nothing", "#e67700") for path in member.aliases]


class _Card(QFrame):
    """One picture of a group: thumbnail, KEEP or a remove box, size, date and path, and the
    byte-identical copies that follow it (a near group lists them under their original)."""

    clicked = Signal(object, bool)  # (photo, ticked): the user's click only, never a redraw

    def __init__(self, group: DupeGroup, member: DupeMember, copies: Sequence[DupeMember]) -> None:
        super().__init__()
        self.photo = member.photo
        self.boxes: dict[int, QCheckBox] = {}  # photo id -> remove box, for this photo and its copies
        keeper = member.photo.id == group.keeper.id
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(THUMB + 70)
        self.thumb = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setStyleSheet("background: #e9ecef;")
        top = QHBoxLayout()
        if keeper:
            badge = QLabel("KEEP")
            badge.setStyleSheet("color: white; background: #2b8a3e; padding: 1px 6px; border-radius: 3px;")
            badge.setToolTip("The photo this group keeps; it cannot be removed here")
        else:
            badge = QLabel(_badge(group, member))
            badge.setStyleSheet("color: #495057;")
        top.addWidget(badge)
        top.addStretch(1)
        if not keeper:
            top.addWidget(self._box(member.photo, "remove"))
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignHCenter)
        name = QLabel(_name(member.photo))
        name.setToolTip(member.photo.path)
        name.setWordWrap(True)
        info = QLabel(describe(member.photo).replace(" · ", "\n"))
        info.setStyleSheet("color: #495057; font-size: 11px;")
        for widget in (name, info, _small(os.path.dirname(member.photo.path)), *_alias_notes(member)):
            layout.addWidget(widget)
        for copy in copies:
            layout.addWidget(self._copy_row(copy))

    def _box(self, photo: PhotoInfo, text: str) -> QCheckBox:
        box = QCheckBox(text)
        box.setToolTip(f"Move {photo.path} to the trash")
        box.clicked.connect(lambda ticked: self.clicked.emit(photo, ticked))
        self.boxes[photo.id] = box
        return box

    def _copy_row(self, copy: DupeMember) -> QWidget:
        row = QFrame()
        row.setStyleSheet("QFrame { border-top: 1px dashed #ced4da; }")
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>+ identical copy</b>" if copy.reasons == ("identical",) else
                                "<b>+ same photo, saved again</b>"))
        header.addStretch(1)
        header.addWidget(self._box(copy.photo, "remove"))
        layout = QVBoxLayout(row)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(header)
        for label in (_small(copy.photo.path, "#495057"), *_alias_notes(copy)):
            label.setStyleSheet(label.styleSheet() + " border: none;")
            layout.addWidget(label)
        return row

    def show_selection(self, selected: set[int]) -> None:
        for photo_id, box in self.boxes.items():
            box.setChecked(photo_id in selected)

    def set_thumbnail(self, pixmap: QPixmap) -> None:
        self.thumb.setPixmap(pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))


class _GroupBox(QFrame):
    not_duplicates = Signal(object)
    clicked = Signal(object, object, bool)  # (group, photo, ticked)

    def __init__(self, group: DupeGroup) -> None:
        super().__init__()
        self.group = group
        self.setFrameShape(QFrame.Shape.Box)
        self.setStyleSheet("_GroupBox { border: 1px solid #dee2e6; border-radius: 6px; }")
        title = QLabel(f"<b>{TIER_NAMES[group.tier]}</b> · {len(group.members)} photos · "
                       f"{human_bytes(group.reclaimable_bytes)} to reclaim")
        ignore = QPushButton("Not duplicates")
        ignore.setToolTip("Never show these photos as duplicates of each other again")
        ignore.clicked.connect(lambda: self.not_duplicates.emit(self.group))
        self.ignore = ignore
        header = QHBoxLayout()  # the group's actions at its start, where the eye begins: never out of sight
        header.addWidget(ignore)
        header.addWidget(title)
        header.addStretch(1)
        self.row = FlowLayout()  # cards wrap: a big burst is as wide as the window, not 13,000 px
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
            card = _Card(self.group, member, copies)
            card.clicked.connect(lambda photo, ticked: self.clicked.emit(self.group, photo, ticked))
            self.cards.append(card)
            self.row.addWidget(card)
            each(card)
            if time.perf_counter() >= deadline:
                break
        return not self._pending


def suggested_ids(groups: Sequence[DupeGroup]) -> set[int]:
    """The ids each group suggests removing (identical files and same photos; of similar shots only their copies):
    the selection before any click."""
    return {p.id for g in groups for p in g.suggested()}


def _grouped(library: Library, threshold: float) -> tuple[list[DupeGroup], set[int], Counter[str]]:
    groups = library.duplicates(threshold)
    return groups, suggested_ids(groups), Counter(g.tier for g in groups)


class DupeSelection:
    """What a clean-up takes: each group's suggestion, overridden by what the user clicked, and nothing else.

    Clicks are kept by path across regrouping (a slider move, a clean-up), so a choice outlives the
    groups it was made in; the view draws its boxes from here and never reads them back.
    """

    def __init__(self) -> None:
        self.groups: list[DupeGroup] = []
        self.choices: dict[str, bool] = {}  # path -> ticked: only what the user clicked
        self._defaults: set[int] = set()  # ids the groups suggest removing

    def set_groups(self, groups: list[DupeGroup], suggested: set[int] | None = None) -> None:
        """New groups (a regroup); ``suggested`` is :func:`suggested_ids` of them when already worked out."""
        self.groups = groups
        self._defaults = suggested_ids(groups) if suggested is None else suggested

    def click(self, group: DupeGroup, photo: PhotoInfo, ticked: bool) -> None:
        """The user ticked or unticked ``photo``: its byte-identical copies in ``group`` follow it."""
        for chosen in (photo, *group.copies_of(photo.id)):
            self.choices[chosen.path] = ticked

    def forget(self, photos: Sequence[PhotoInfo]) -> None:
        """Drop the choices about photos that are gone (moved to the trash)."""
        for photo in photos:
            self.choices.pop(photo.path, None)

    def selected(self) -> list[PhotoInfo]:
        """Photos to remove across all groups, each once, never a keeper, in group order."""
        keepers = {g.keeper.id for g in self.groups}
        seen: set[int] = set()
        photos = []
        for group in self.groups:
            for member in group.members[1:]:
                photo = member.photo
                if photo.id in keepers or photo.id in seen:
                    continue
                if self.choices.get(photo.path, photo.id in self._defaults):
                    seen.add(photo.id)
                    photos.append(photo)
        return photos


class DupesView(QWidget):
    status = Signal(str)
    photos_trashed = Signal()

    def __init__(self, library: Library, cache: ThumbnailCache, threshold: float = 0.95,
                 tasks: TaskRunner | None = None) -> None:
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
        self.shown = 0
        self._page_end = 0
        self._page = 0  # which page build is current: a regroup abandons the one under way
        self._building: _GroupBox | None = None  # the group whose cards are being added
        self._selected_ids: set[int] = set()  # the selection as drawn on the cards
        self._tiers: Counter[str] = Counter()  # groups per tier, for the titles
        self.boxes: list[_GroupBox] = []
        self._cards_by_path: dict[str, list[_Card]] = {}
        self._doomed: list[QWidget] = []  # widgets of an old page, destroyed a few at a time
        self._reaper = QTimer(self, interval=0, timeout=self._reap)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(800, 1000)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(10)
        self.slider.setValue(round(threshold * 1000))
        self.value = QLabel()
        self.value.setMinimumWidth(48)
        self.hint = QLabel()
        self.hint.setStyleSheet("color: #495057;")
        self._debounce = QTimer(self, singleShot=True, interval=120)
        self._debounce.timeout.connect(self.regroup)
        self.slider.valueChanged.connect(self._slider_moved)
        top = QHBoxLayout()
        top.addWidget(QLabel("Similarity at least"))
        top.addWidget(self.slider, 1)
        top.addWidget(self.value)
        top.addWidget(self.hint, 1)
        self.working = QProgressBar(maximumWidth=200, maximumHeight=14, textVisible=False)
        self.working.setRange(0, 0)  # indeterminate
        self.working_label = QLabel()
        self.working_label.setStyleSheet("color: #1971c2;")
        self.working_row = QWidget()  # the busy state: the slider and the groups on screen stay usable meanwhile
        working = QHBoxLayout(self.working_row)
        working.setContentsMargins(0, 0, 0, 0)
        working.addWidget(self.working_label)
        working.addWidget(self.working)
        working.addStretch(1)
        self.working_row.hide()

        self.undo_label = QLabel()
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_not_duplicates)
        self.undo_row = QWidget()
        undo = QHBoxLayout(self.undo_row)
        undo.setContentsMargins(0, 0, 0, 0)
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
        self.more = QPushButton("Show more groups", self.body)
        self.more.clicked.connect(self._show_page)
        self.more.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.working_row)
        layout.addWidget(self.undo_row)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(bottom)
        cache.loader.ready.connect(self._thumbnail_ready)
        self._slider_moved(self.slider.value(), regroup=False)

    @property
    def threshold(self) -> float:
        return self.slider.value() / 1000

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
        """Whether groups or a clean-up are being worked out off the event loop."""
        return self.tasks.busy("regroup") or self.tasks.busy("cleanup")

    def _show_busy(self) -> None:
        regrouping, cleaning = self.tasks.busy("regroup"), self.tasks.busy("cleanup")
        self.working_row.setVisible(regrouping or cleaning)
        self.working.setVisible(regrouping or cleaning)
        self.working_label.setText(
            "Moving the selected photos to the trash…" if cleaning else
            "Finding duplicates… The first time after photos came or went this compares every photo again, "
            "which takes minutes in a large collection; you can keep using the app." if regrouping else "")
        self.trash_button.setEnabled(not (regrouping or cleaning) and self._selected_count > 0)

    def regroup(self) -> None:
        """Group again off the event loop (the first time after a catalog change builds the neighbour
        graph: minutes at 100k photos); a newer regroup (a slider move) supersedes this one."""
        self.stale = False
        threshold = self.threshold
        # the groups, and what is O(photos) about them, worked out on the worker: at 100k photos walking
        # every group on the GUI thread cost a visible stall per slider move
        self.tasks.submit(lambda: _grouped(self.library, threshold), self._show_groups, self._regroup_failed,
                          kind="regroup")

    def _regroup_failed(self, exc: BaseException) -> None:
        self.status.emit(str(exc) if isinstance(exc, ClipfindError) else f"could not find duplicates: {exc}")

    def _show_groups(self, grouped: tuple[list[DupeGroup], set[int], Counter[str]]) -> None:
        groups, suggested, self._tiers = grouped
        self.selection.set_groups(groups, suggested)
        self._retire_widgets()
        self.shown = 0
        self._update_summary()  # the selection, once: every card of the page is drawn from it
        self._show_page()

    def _retire_widgets(self) -> None:
        """Take the old page off screen now and destroy it a few widgets per event-loop turn: a page is
        hundreds of widgets, too many to free in one go without a visible stall."""
        self.boxes.clear()
        self._cards_by_path.clear()
        self._building = None
        while self.body_layout.count():
            widget = self.body_layout.takeAt(0).widget()
            if widget is not None and widget is not self.more:
                widget.hide()
                self._doomed.append(widget)
        if self._doomed and not self._reaper.isActive():
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

    def _show_page(self) -> None:
        """Append the next page of groups, a few per event-loop turn; the "more" button and the stretch stay last."""
        if self.body_layout.count():
            self.body_layout.takeAt(self.body_layout.count() - 1)  # the stretch
            self.body_layout.removeWidget(self.more)
        self.more.hide()
        self._page_end = min(self.shown + PAGE, len(self.groups))
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
        if not self.groups:
            empty = QLabel("No duplicates at this similarity. Move the slider left to look wider.")
            empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
            empty.setStyleSheet("color: #6c757d; font-size: 15px; padding: 40px;")
            self.body_layout.addWidget(empty)
        if self.shown < len(self.groups):
            self.body_layout.addWidget(self.more)
            self.more.show()
        self.body_layout.addStretch(1)

    def _add_group(self, i: int) -> _GroupBox:
        group = self.groups[i]
        if i == 0 or self.groups[i - 1].tier != group.tier:
            self.body_layout.addWidget(self._tier_title(group.tier))
        box = _GroupBox(group)
        box.not_duplicates.connect(self.mark_not_duplicates)
        box.clicked.connect(self._card_clicked)
        self.boxes.append(box)
        self.body_layout.addWidget(box)
        return box

    def _card_added(self, card: _Card) -> None:
        card.show_selection(self._selected_ids)
        self._cards_by_path.setdefault(card.photo.path, []).append(card)
        pixmap = self.cache.get(card.photo.path)
        if pixmap is not None:
            card.set_thumbnail(pixmap)

    def _tier_title(self, tier: str) -> QLabel:
        count = self._tiers[tier]
        label = QLabel(f"<h3>{TIER_NAMES[tier]} · {count} group{'s' if count != 1 else ''}</h3>"
                       f"<span style='color:#495057'>{TIER_HINTS[tier]}</span>")
        label.setWordWrap(True)
        return label

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        pixmap = self.cache.get(path)
        if pixmap is None:
            return
        for card in self._cards_by_path.get(path, ()):
            card.set_thumbnail(pixmap)

    def _card_clicked(self, group: DupeGroup, photo: PhotoInfo, ticked: bool) -> None:
        """Record the one choice the user made; the photo's byte-identical copies follow it."""
        self.selection.click(group, photo, ticked)
        self._update_summary()
        for box in self.boxes:
            for card in box.cards:
                card.show_selection(self._selected_ids)

    @property
    def groups(self) -> list[DupeGroup]:
        return self.selection.groups

    @property
    def choices(self) -> dict[str, bool]:
        return self.selection.choices

    def selected(self) -> list[PhotoInfo]:
        """Photos to remove across all groups (pages not shown yet included), each once, never a keeper."""
        return self.selection.selected()

    def _update_summary(self) -> None:
        selected = self.selected()
        self._selected_ids = {p.id for p in selected}
        self._selected_count = len(selected)
        self.summary.setText(
            f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''} · {photos_text(len(selected))} selected "
            f"for removal ({human_bytes(sum(p.size for p in selected))})"
        )
        self.trash_button.setEnabled(bool(selected) and not self.busy)

    def mark_not_duplicates(self, group: DupeGroup) -> None:
        photos = [m.photo for m in group.members]

        def marked(_: None) -> None:
            self._marked = photos
            self.undo_label.setText(f"{photos_text(len(photos))} marked as not duplicates of each other: "
                                    "they will not be grouped together again.")
            self.undo_row.show()
            self.status.emit("those photos will not be shown as duplicates again")
            self.regroup()

        self.tasks.submit(lambda: self.library.mark_not_duplicates(photos), marked, self._regroup_failed)

    def undo_not_duplicates(self) -> None:
        """Take back the last "Not duplicates" (the app's `clipfind not-dupes --undo`)."""
        if not self._marked:
            return
        photos = self._marked

        def unmarked(_: int) -> None:
            self._marked = []
            self.undo_row.hide()
            self.status.emit("mark taken back: those photos can be grouped again")
            self.regroup()

        self.tasks.submit(lambda: self.library.unmark_not_duplicates(photos), unmarked, self._regroup_failed)

    def trash_selected(self) -> None:
        photos = self.selected()
        if not photos or self.busy:
            return
        text, details = cleanup_summary(self.groups, photos)
        if not confirm_cleanup(self, text, details):
            return
        groups = self.groups
        self.tasks.submit(lambda: self.library.clean_up(groups, photos), self._cleaned, self._cleanup_failed,
                          kind="cleanup")

    def _cleanup_failed(self, exc: BaseException) -> None:
        show_problems(self, "Nothing was moved", [str(exc)])

    def _cleaned(self, report: TrashReport) -> None:
        self.status.emit(f"moved {photos_text(len(report.moved))} ({human_bytes(report.freed_bytes)}) to the trash")
        problems = report_problems(report)
        if problems:
            show_problems(self, "Some photos were kept", problems)
        self.selection.forget(report.moved)
        self.regroup()
        self.photos_trashed.emit()
