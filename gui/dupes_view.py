"""Duplicates tab: a similarity slider, groups by tier, keeper marked, others pre-selected."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QScrollArea, QSlider, QVBoxLayout, QWidget,
)

from clipfind.dupes import DupeGroup
from clipfind.library import Library
from clipfind.records import PhotoInfo, human_bytes
from gui.dialogs import confirm_trash, describe
from gui.icons import icon
from gui.results_model import ThumbnailCache

PAGE = 40  # groups built per page: widgets only for what the user can reach
THUMB = 150


def threshold_hint(value: float) -> str:
    """What a similarity means, in plain words."""
    if value >= 0.98:
        return "only copies: the same photo re-saved, resized or re-compressed"
    if value >= 0.95:
        return "copies and lightly edited versions (crops, filters)"
    if value >= 0.90:
        return "near-identical shots, e.g. a burst of the same moment"
    if value >= 0.85:
        return "similar shots of the same scene"
    return "loosely similar photos: expect many that you want to keep"


class _Card(QFrame):
    """One photo in a group: thumbnail, keep/remove choice, size, date and path."""

    toggled = Signal()

    def __init__(self, photo: PhotoInfo, similarity: float, keeper: bool, selected: bool) -> None:
        super().__init__()
        self.photo = photo
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(THUMB + 70)
        self.thumb = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setStyleSheet("background: #e9ecef;")
        self.remove = QCheckBox("remove")
        self.remove.setChecked(selected)
        self.remove.toggled.connect(self.toggled)
        badge = QLabel("KEEP" if keeper else f"similarity {similarity:.3f}")
        badge.setStyleSheet("color: white; background: #2b8a3e; padding: 1px 6px; border-radius: 3px;" if keeper
                            else "color: #495057;")
        info = QLabel(describe(photo).replace(" · ", "\n"))
        info.setStyleSheet("color: #495057; font-size: 11px;")
        name = QLabel(os.path.basename(photo.path))
        name.setToolTip(photo.path)
        name.setWordWrap(True)
        folder = QLabel(os.path.dirname(photo.path))
        folder.setStyleSheet("color: #868e96; font-size: 10px;")
        folder.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(badge)
        top.addStretch(1)
        top.addWidget(self.remove)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(name)
        layout.addWidget(info)
        layout.addWidget(folder)

    def set_thumbnail(self, pixmap: QPixmap) -> None:
        self.thumb.setPixmap(pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))


class _GroupBox(QFrame):
    not_duplicates = Signal(object)

    def __init__(self, group: DupeGroup, chosen: dict[str, bool]) -> None:
        super().__init__()
        self.group = group
        self.setFrameShape(QFrame.Shape.Box)
        self.setStyleSheet("_GroupBox { border: 1px solid #dee2e6; border-radius: 6px; }")
        title = QLabel(f"<b>{len(group.members)} photos</b> · {human_bytes(group.reclaimable_bytes)} to reclaim")
        ignore = QPushButton("Not duplicates")
        ignore.setToolTip("Never show these photos as duplicates of each other again")
        ignore.clicked.connect(lambda: self.not_duplicates.emit(self.group))
        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(ignore)
        row = QHBoxLayout()
        self.cards: list[_Card] = []
        for member in group.members:
            keeper = member.photo.id == group.keeper.id
            card = _Card(member.photo, member.similarity, keeper, chosen.get(member.photo.path, not keeper))
            self.cards.append(card)
            row.addWidget(card)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addLayout(row)


class DupesView(QWidget):
    status = Signal(str)
    photos_trashed = Signal()

    def __init__(self, library: Library, cache: ThumbnailCache, threshold: float = 0.95) -> None:
        super().__init__()
        self.library = library
        self.cache = cache
        self.groups: list[DupeGroup] = []
        self.chosen: dict[str, bool] = {}  # the user's own ticks, kept across regrouping
        self.shown = 0
        self.boxes: list[_GroupBox] = []

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

        layout = QVBoxLayout(self)
        layout.addLayout(top)
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

    def regroup(self) -> None:
        """Group again from the stored neighbours: no model, no index query."""
        self.groups = self.library.duplicates(self.threshold)
        self.boxes.clear()
        while self.body_layout.count():
            widget = self.body_layout.takeAt(0).widget()
            if widget is not None and widget is not self.more:
                widget.deleteLater()
        self.shown = 0
        self._show_page()
        self._update_summary()

    def _show_page(self) -> None:
        """Append the next page of groups; the "more" button and the stretch stay last."""
        if self.shown:
            self.body_layout.takeAt(self.body_layout.count() - 1)  # the stretch
            self.body_layout.removeWidget(self.more)
        end = min(self.shown + PAGE, len(self.groups))
        for i in range(self.shown, end):
            group = self.groups[i]
            if i == 0 or self.groups[i - 1].tier != group.tier:
                self.body_layout.addWidget(self._tier_title(group.tier))
            box = _GroupBox(group, self.chosen)
            box.not_duplicates.connect(self.mark_not_duplicates)
            for card in box.cards:
                card.toggled.connect(self._card_toggled)
                pixmap = self.cache.get(card.photo.path)
                if pixmap is not None:
                    card.set_thumbnail(pixmap)
            self.boxes.append(box)
            self.body_layout.addWidget(box)
        self.shown = end
        if not self.groups:
            empty = QLabel("No duplicates at this similarity. Move the slider left to look wider.")
            empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
            empty.setStyleSheet("color: #6c757d; font-size: 15px; padding: 40px;")
            self.body_layout.addWidget(empty)
        self.more.setVisible(self.shown < len(self.groups))
        if self.more.isVisible():
            self.body_layout.addWidget(self.more)
        self.body_layout.addStretch(1)

    def _tier_title(self, tier: str) -> QLabel:
        count = sum(1 for g in self.groups if g.tier == tier)
        text = "Identical files (byte for byte the same)" if tier == "identical" else "Near-duplicates"
        label = QLabel(f"<h3>{text} · {count} group{'s' if count != 1 else ''}</h3>")
        return label

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        pixmap = self.cache.get(path)
        if pixmap is None:
            return
        for box in self.boxes:
            for card in box.cards:
                if card.photo.path == path:
                    card.set_thumbnail(pixmap)

    def _card_toggled(self) -> None:
        for box in self.boxes:
            for card in box.cards:
                self.chosen[card.photo.path] = card.remove.isChecked()
        self._update_summary()

    def selected(self) -> list[PhotoInfo]:
        """Photos ticked for removal across all groups, including pages not yet shown."""
        photos = []
        for group in self.groups:
            for member in group.members:
                keeper = member.photo.id == group.keeper.id
                if self.chosen.get(member.photo.path, not keeper):
                    photos.append(member.photo)
        return photos

    def _update_summary(self) -> None:
        selected = self.selected()
        self.summary.setText(
            f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''} · {len(selected)} photos selected for removal "
            f"({human_bytes(sum(p.size for p in selected))})"
        )
        self.trash_button.setEnabled(bool(selected))

    def mark_not_duplicates(self, group: DupeGroup) -> None:
        self.library.mark_not_duplicates([m.photo for m in group.members])
        self.status.emit("those photos will not be shown as duplicates again")
        self.regroup()

    def trash_selected(self) -> None:
        photos = self.selected()
        if not confirm_trash(self, photos):
            return
        report = self.library.trash(photos)
        self.status.emit(f"moved {len(report.moved)} photos ({human_bytes(report.freed_bytes)}) to the trash")
        if report.refused:
            QMessageBox.warning(self, "Some photos were kept",
                                "\n".join(f"{p.path}: {why}" for p, why in report.refused[:20]))
        for photo in report.moved:
            self.chosen.pop(photo.path, None)
        self.regroup()
        self.photos_trashed.emit()
