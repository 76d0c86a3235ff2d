"""Compare before deleting (issue 11, item 4): two members of a duplicate group side by side.

Scores alone cannot tell a re-saved copy from the next frame of a burst; the user can, by looking at
the same spot of both photos at full size, flipping between them, and reading what each file records.
The dialog only decides: it gets a :class:`DupeGroup` and the current selection, and reports the
user's changes through :attr:`CompareDialog.decided`; the caller saves them (it never calls Library).
Photos decode in the thumbnail pool (never on the GUI thread): a screen-sized preview first, the
full-size image once the zoom shows more pixels than the preview has.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush, QColor, QFont, QImage, QKeyEvent, QPainter, QPalette, QPixmap, QResizeEvent, QTransform, QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox, QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene,
    QGraphicsSimpleTextItem, QGraphicsView, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSizePolicy,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from clipfind.records import TIER_NAMES, human_bytes

from .workers import ThumbnailLoader

if TYPE_CHECKING:
    from clipfind.records import DupeGroup, DupeMember, PhotoInfo

PREVIEW_SIDE = 1600  # enough to fill the dialog at "Fit" on most screens, quick to decode
FULL_SIDE = 1 << 15  # asks the loader for the photo at its own size (it never enlarges)
ZOOM_STEP = 1.25
MAX_ZOOM = 16.0  # 1,600 %: single pixels are squares a few millimetres wide
ROWS = ("Pixels", "File size", "Format", "Capture date", "Camera", "GPS", "Path", "Similarity", "Reasons")


def facts(group: DupeGroup, member: DupeMember) -> list[str]:
    """What the table shows of one member, one text per row of :data:`ROWS`; equal texts are equal facts."""
    photo = member.photo
    keeper = photo.id == group.keeper.id
    return [
        f"{photo.width} × {photo.height}" if photo.width and photo.height else "unknown",
        f"{human_bytes(photo.size)} ({photo.size:,} bytes)",
        photo.format.upper() or "unknown",
        photo.taken_at.replace("T", " ") if photo.taken_at else "not recorded",
        photo.camera or "not recorded",
        "yes" if photo.gps else "no",
        photo.path,
        "keeper" if keeper else f"{member.similarity:.3f}",
        "keeper" if keeper else ", ".join(member.reasons) or "—",
    ]


def highlight_brush(palette: QPalette) -> QBrush:
    """The selection colour, faded over the base: visible on a light or a dark theme, text still legible."""
    colour = QColor(palette.color(QPalette.ColorRole.Highlight))
    colour.setAlpha(90)
    return QBrush(colour)


class PhotoView(QGraphicsView):
    """One side of the comparison: a photo in a scene whose units the two sides share, so that the same
    transform and scroll position show the same spot of both photos (see :meth:`CompareDialog._layout`).

    Wheel and resize are handed to the dialog, which applies them to both sides.
    """

    wheel_zoom = Signal(float, QPoint)  # factor, the viewport point that stays put
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.scene().addItem(self.item)
        self.note = QGraphicsSimpleTextItem("Loading…")
        self.note.setBrush(self.palette().brush(QPalette.ColorRole.Text))
        self.note.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.scene().addItem(self.note)
        self.shown: str | None = None  # the path whose pixels are on screen (None: still loading)
        self.full = False  # the pixmap holds every pixel of the photo
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        # panning is dragging; scroll bars that come and go with the zoom would resize the viewport and
        # shift the spot both sides are looking at
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the dialog (Space, arrows)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(self.palette().brush(QPalette.ColorRole.Window))
        self.setMinimumSize(240, 200)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        steps = event.angleDelta().y() / 120
        if steps:
            self.wheel_zoom.emit(ZOOM_STEP ** steps, event.position().toPoint())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.resized.emit()

    def place(self, pixmap: QPixmap | None, rect: QRectF, full: bool, path: str | None) -> None:
        """Show `pixmap` stretched over `rect` (scene units), or "Loading…" there while there is none."""
        self.shown, self.full = (path, full) if pixmap is not None and not pixmap.isNull() else (None, False)
        if pixmap is None or pixmap.isNull():
            self.item.setPixmap(QPixmap())
            self.note.setText("Loading…" if pixmap is None else "This photo cannot be shown.")
            self.note.setPos(rect.center())
            self.note.show()
            return
        self.note.hide()
        self.item.setPixmap(pixmap)
        self.item.setScale(rect.width() / pixmap.width())
        self.item.setPos(rect.topLeft())


class CompareDialog(QDialog):
    """Two members of `group` side by side, synced zoom and pan, a flip, and their facts in a table.

    Left: the keeper; right: member `start` (the next member when `start` is the keeper). Left/Right
    keys move the right side through the other members, Space ticks or unticks it for removal (never
    the keeper nor a protected member), Enter confirms and Escape cancels. On Enter, ``decided`` carries
    {photo id: ticked} for the members whose state the user changed from `selected` (emitted only when
    there is a change); the caller applies it, with the copies that follow their picture.
    """

    # {photo id: ticked}. Declared as object: PySide6 turns a Signal(dict) into a QVariantMap, which
    # needs string keys and drops a dict of int ids on the floor ("Cannot copy-convert ... (dict)").
    decided = Signal(object)

    def __init__(self, group: DupeGroup, selected: set[int], start: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = group
        self.selected = frozenset(selected)
        self.ticked: set[int] = set(selected)
        self.left_index = next((i for i, m in enumerate(group.members) if m.photo.id == group.keeper.id), 0)
        self.right_index = self.left_index
        self.zoom = 1.0
        self.fitting = True  # "Fit" follows the window's size until the user zooms
        self.flipped = False  # the right side shows the left photo, at the same spot
        self._previews: dict[str, QPixmap] = {}  # decoded photos of the two sides, converted once
        self._fulls: dict[str, QPixmap] = {}
        self._syncing = False
        self.setWindowTitle(f"Compare: {TIER_NAMES.get(group.tier, group.tier)}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.resize(1200, 860)

        self._preview_loader = ThumbnailLoader(PREVIEW_SIDE, self)
        self._preview_loader.ready.connect(self._preview_ready)
        self._full_loader = ThumbnailLoader(FULL_SIDE, self)
        self._full_loader.ready.connect(self._full_ready)

        self.left, self.right = PhotoView(), PhotoView()
        self.left_title, self.right_title = QLabel(), QLabel()
        self.left_state, self.right_state = QLabel(), QLabel()
        self.remove_box = QCheckBox("Remove this photo (Space)")
        self.remove_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.remove_box.clicked.connect(lambda _checked: self.toggle_remove())
        self.lacks = QLabel()
        self.lacks.setWordWrap(True)
        self.lacks.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for view, other in ((self.left, self.right), (self.right, self.left)):
            view.wheel_zoom.connect(lambda factor, at, v=view: self.zoom_by(factor, v, at))
            view.resized.connect(self._refit)
            for bar, other_bar in ((view.horizontalScrollBar(), other.horizontalScrollBar()),
                                   (view.verticalScrollBar(), other.verticalScrollBar())):
                bar.valueChanged.connect(lambda value, b=other_bar: self._sync_bar(b, value))

        self.fit_button = self._button("Fit (0)", self.fit)
        self.actual_button = self._button("100% (1)", self.actual_pixels)
        zoom_out = self._button("−", lambda: self.zoom_by(1 / ZOOM_STEP))
        zoom_in = self._button("+", lambda: self.zoom_by(ZOOM_STEP))
        self.flip_button = self._button("Flip (F)", self.toggle_flip)
        self.flip_button.setCheckable(True)
        self.flip_button.setToolTip("Show the left photo on the right too, at the same spot: flip to see what differs")
        self.zoom_label = QLabel()
        tools = QHBoxLayout()
        for widget in (self.fit_button, self.actual_button, zoom_out, zoom_in, self.zoom_label, self.flip_button):
            tools.addWidget(widget)
        tools.addStretch(1)
        tools.addWidget(QLabel("← → other photo · Space remove · Enter confirm · Esc cancel"))

        # one grid for both sides: the two views share a row and equal columns, so their viewports have the
        # same size and one scroll position means one spot on both
        sides = QGridLayout()
        for column, (title, view, state) in enumerate(((self.left_title, self.left, self.left_state),
                                                       (self.right_title, self.right, self.right_state))):
            title.setTextFormat(Qt.TextFormat.PlainText)
            # a long file name must not widen its column: the two views stay the same size
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            sides.addWidget(title, 0, column)
            sides.addWidget(view, 1, column)
            sides.setColumnStretch(column, 1)
        sides.setRowStretch(1, 1)
        decision = QHBoxLayout()
        decision.addWidget(self.right_state)
        decision.addStretch(1)
        decision.addWidget(self.remove_box)
        sides.addWidget(self.left_state, 2, 0)
        sides.addLayout(decision, 2, 1)
        sides.addWidget(self.lacks, 3, 1)

        self.table = QTableWidget(len(ROWS), 2)
        self.table.setVerticalHeaderLabels(list(ROWS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMaximumHeight(self.table.verticalHeader().length() + 64)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Confirm (Enter)")
        for button in buttons.buttons():
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setAutoDefault(False)
        buttons.accepted.connect(self.confirm)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addLayout(sides, 1)
        layout.addWidget(self.table)
        layout.addWidget(buttons)

        self._request(self.members[self.left_index].photo)
        self.show_member(self._step(start, 0))
        self.table.setFixedHeight(self.table.verticalHeader().length() + self.table.horizontalHeader().height()
                                  + 2 * self.table.frameWidth() + 2)

    # -- who is shown -----------------------------------------------------------------------
    @property
    def members(self) -> tuple[DupeMember, ...]:
        return self.group.members

    @property
    def left_member(self) -> DupeMember:
        return self.members[self.left_index]

    @property
    def right_member(self) -> DupeMember:
        return self.members[self.right_index]

    def _step(self, index: int, step: int) -> int:
        """The member `step` places from `index` among those the right side may show (all but the left
        one), wrapping around; from the left one itself, step 0 is the member after it."""
        order = [i for i in range(len(self.members)) if i != self.left_index]
        if not order:  # a group of one: nothing to compare it with
            return self.left_index
        if index not in order:
            after = next((n for n, i in enumerate(order) if i > index), 0)
            return order[(after + max(step - 1, 0) if step >= 0 else after + step) % len(order)]
        return order[(order.index(index) + step) % len(order)]

    def show_member(self, index: int) -> None:
        """Put member `index` on the right; the zoom and the spot stay where they were."""
        self.right_index = index
        self._request(self.right_member.photo)
        keep = {self.left_member.photo.path, self.right_member.photo.path}
        for cache in (self._previews, self._fulls):  # a 60-photo group must not hold 60 full-size photos
            for path in set(cache) - keep:
                del cache[path]
        self._describe()
        self._layout()

    def go(self, step: int) -> None:
        """Left/Right: the previous or next member on the right side."""
        if len(self.members) > 1:
            self.show_member(self._step(self.right_index, step))

    # -- decisions --------------------------------------------------------------------------
    def can_tick(self, member: DupeMember) -> bool:
        """Neither the keeper nor a photo in a protected folder may go: clean-up would refuse it anyway."""
        return member.photo.id != self.group.keeper.id and not member.protected

    def toggle_remove(self) -> None:
        """Space: tick or untick the right-hand photo for removal, where it may go."""
        member = self.right_member
        if self.can_tick(member):
            self.ticked ^= {member.photo.id}
        self._describe()

    def changes(self) -> dict[int, bool]:
        """{photo id: ticked} for the members whose state differs from what the dialog was given."""
        return {m.photo.id: m.photo.id in self.ticked for m in self.members
                if (m.photo.id in self.ticked) != (m.photo.id in self.selected)}

    def confirm(self) -> None:
        """Enter: hand the changes over (when there are any) and close."""
        changes = self.changes()
        if changes:
            self.decided.emit(changes)
        self.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        actions = {
            Qt.Key.Key_Right: lambda: self.go(1), Qt.Key.Key_Left: lambda: self.go(-1),
            Qt.Key.Key_Space: self.toggle_remove, Qt.Key.Key_Return: self.confirm, Qt.Key.Key_Enter: self.confirm,
            Qt.Key.Key_Escape: self.reject, Qt.Key.Key_Plus: lambda: self.zoom_by(ZOOM_STEP),
            Qt.Key.Key_Equal: lambda: self.zoom_by(ZOOM_STEP), Qt.Key.Key_Minus: lambda: self.zoom_by(1 / ZOOM_STEP),
            Qt.Key.Key_0: self.fit, Qt.Key.Key_1: self.actual_pixels, Qt.Key.Key_F: self.toggle_flip,
        }
        action = actions.get(key)
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    def _describe(self) -> None:
        """Titles, states and the table for the pair on screen; rows that differ are highlighted."""
        for title, state, member in ((self.left_title, self.left_state, self.left_member),
                                     (self.right_title, self.right_state, self.right_member)):
            position = f"{self.members.index(member) + 1} of {len(self.members)}"
            title.setText(f"{os.path.basename(member.photo.path)}  ({position})")
            state.setText(self._state(member))
        if self.flipped:
            self.right_title.setText(f"{os.path.basename(self.left_member.photo.path)}  (flipped: the left photo; "
                                     f"F shows {os.path.basename(self.right_member.photo.path)} again)")
        right = self.right_member
        self.remove_box.setChecked(right.photo.id in self.ticked)
        self.remove_box.setEnabled(self.can_tick(right))
        self.remove_box.setToolTip("" if self.can_tick(right) else self._state(right))
        lacks = right.keeper_lacks if right.photo.id in self.ticked else ()
        self.lacks.setText(f"⚠ Records {', '.join(lacks)} that the keeper lacks: removing it loses that."
                           if lacks else "")
        self.lacks.setVisible(bool(lacks))
        self.table.setHorizontalHeaderLabels([self._state(self.left_member), self._state(right)])
        brush, bold = highlight_brush(self.palette()), QFont(self.font())
        bold.setBold(True)
        left_facts, right_facts = facts(self.group, self.left_member), facts(self.group, right)
        for row, (a, b) in enumerate(zip(left_facts, right_facts, strict=True)):
            for column, text in enumerate((a, b)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if a != b:
                    item.setBackground(brush)
                    item.setFont(bold)
                self.table.setItem(row, column, item)

    def _state(self, member: DupeMember) -> str:
        if member.photo.id == self.group.keeper.id:
            return "★ Keeper: kept"
        if member.protected:
            return "Protected folder: kept"
        return "Marked for removal" if member.photo.id in self.ticked else "Kept"

    # -- decoding ---------------------------------------------------------------------------
    def _request(self, photo: PhotoInfo) -> None:
        if photo.path not in self._previews:
            self._preview_loader.request(photo.path)

    def _preview_ready(self, path: str, image: QImage) -> None:
        if path in {self.left_member.photo.path, self.right_member.photo.path}:
            self._previews[path] = QPixmap.fromImage(image)
            self._layout()

    def _full_ready(self, path: str, image: QImage) -> None:
        if path in {self.left_member.photo.path, self.right_member.photo.path}:
            self._fulls[path] = QPixmap.fromImage(image)
            self._layout()

    @property
    def loaded(self) -> bool:
        """Both sides show pixels (or say that a photo cannot be shown)."""
        return all(p in self._previews for p in (self.left_member.photo.path, self.right_member.photo.path))

    def _image(self, photo: PhotoInfo) -> tuple[QPixmap | None, bool]:
        """The best decoded image of a photo so far, and whether it holds every pixel."""
        full = self._fulls.get(photo.path)
        if full is not None and not full.isNull():
            return full, True
        preview = self._previews.get(photo.path)
        if preview is None or preview.isNull():
            return preview, False
        return preview, max(preview.width(), preview.height()) >= max(self._size(photo, preview))

    @staticmethod
    def _size(photo: PhotoInfo, image: QPixmap | None) -> tuple[int, int]:
        """The photo's upright size in pixels: the catalog's, turned to the decoded image's orientation."""
        if photo.width and photo.height:
            w, h = photo.width, photo.height
            if image is not None and not image.isNull() and (w > h) != (image.width() > image.height()) \
                    and image.width() != image.height():
                w, h = h, w
            return w, h
        if image is not None and not image.isNull():
            return image.width(), image.height()
        return 4, 3

    # -- geometry: one scene for both sides -------------------------------------------------
    def _shown(self) -> tuple[PhotoInfo, PhotoInfo]:
        right = self.left_member.photo if self.flipped else self.right_member.photo
        return self.left_member.photo, right

    def _layout(self) -> None:
        """Both photos span the same scene width (the wider photo's pixels), centred in height: one
        transform and one scroll position then show the same spot of each, and zoom 1 is actual pixels
        of the larger photo (a smaller copy is enlarged to match, which shows what it lost)."""
        left, right = self.left_member.photo, self.right_member.photo
        sizes = {p.path: self._size(p, self._image(p)[0]) for p in (left, right)}
        width = max(w for w, _ in sizes.values())
        heights = {path: width * h / w for path, (w, h) in sizes.items()}
        scene = QRectF(0, 0, width, max(heights.values()))
        for view, photo in zip((self.left, self.right), self._shown(), strict=True):
            image, full = self._image(photo)
            rect = QRectF(0, (scene.height() - heights[photo.path]) / 2, width, heights[photo.path])
            view.setSceneRect(scene)
            view.scene().setSceneRect(scene)
            view.place(image, rect, full, photo.path)
        self._apply(self.fitted_zoom() if self.fitting else self.zoom)

    def fitted_zoom(self) -> float:
        rect, port = self.left.sceneRect(), self.left.viewport().size()
        if rect.isEmpty() or port.isEmpty():
            return 1.0
        return min((port.width() - 2) / rect.width(), (port.height() - 2) / rect.height())

    def _apply(self, zoom: float, anchor: tuple[PhotoView, QPoint] | None = None) -> None:
        """Set both sides to `zoom`, keeping the scene point under `anchor` (or the centre) in place."""
        self.zoom = max(min(zoom, MAX_ZOOM), min(self.fitted_zoom(), 1.0) / 4)
        source, at = anchor if anchor else (self.left, self.left.viewport().rect().center())
        spot = source.mapToScene(at)
        self._syncing = True
        try:
            for view in (self.left, self.right):
                view.setTransform(QTransform.fromScale(self.zoom, self.zoom))
                view.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1)
            # put `spot` back under `at` (a view shows scene point p at p * zoom - scroll); unlike
            # centerOn, which rounds differently from mapToScene, this does not creep on every call
            source.horizontalScrollBar().setValue(round(spot.x() * self.zoom - at.x()))
            source.verticalScrollBar().setValue(round(spot.y() * self.zoom - at.y()))
        finally:
            self._syncing = False
        self._copy_scroll(source, self.right if source is self.left else self.left)
        self.zoom_label.setText(f"{'Fit, ' if self.fitting else ''}{self.zoom * 100:.0f}%")
        self._want_full()

    def _want_full(self) -> None:
        """Ask for the full-size photo once the zoom shows more pixels than its preview holds."""
        scene_width = self.left.sceneRect().width()
        for photo in {p.path: p for p in self._shown()}.values():
            image, full = self._image(photo)
            if not full and photo.path not in self._fulls and image is not None and not image.isNull() \
                    and self.zoom * scene_width > image.width():  # (a failed full decode is not retried)
                self._full_loader.request(photo.path)

    def _copy_scroll(self, source: PhotoView, target: PhotoView) -> None:
        self._syncing = True
        try:
            target.horizontalScrollBar().setValue(source.horizontalScrollBar().value())
            target.verticalScrollBar().setValue(source.verticalScrollBar().value())
        finally:
            self._syncing = False

    def _sync_bar(self, bar: object, value: int) -> None:
        """Dragging or scrolling one side pans the other to the same spot."""
        if not self._syncing:
            self._syncing = True
            try:
                bar.setValue(value)  # type: ignore[attr-defined]
            finally:
                self._syncing = False

    def _refit(self) -> None:
        if self.fitting:
            self._apply(self.fitted_zoom())

    # -- zoom and flip ----------------------------------------------------------------------
    def zoom_by(self, factor: float, source: PhotoView | None = None, at: QPoint | None = None) -> None:
        """Wheel, +/-: zoom both sides, around the pointer for the wheel."""
        self.fitting = False
        self._apply(self.zoom * factor, (source, at) if source is not None and at is not None else None)

    def fit(self) -> None:
        """The whole photos in view; they stay fitted as the window is resized."""
        self.fitting = True
        self._apply(self.fitted_zoom())

    def actual_pixels(self) -> None:
        """100 %: one screen pixel per pixel of the photo (the larger one), where details show."""
        self.fitting = False
        self._apply(1.0)

    def toggle_flip(self) -> None:
        """Show the left photo on the right and back, at the same spot: what changes is what differs."""
        self.flipped = not self.flipped
        self.flip_button.setChecked(self.flipped)
        self._describe()
        self._layout()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        """A theme switched while open repaints the highlight from the new palette."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "table"):
            self._describe()

    def _button(self, text: str, slot: object) -> QPushButton:
        button = QPushButton(text)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setAutoDefault(False)
        button.clicked.connect(lambda _checked=False: slot())  # type: ignore[operator]
        return button

    def done(self, result: int) -> None:
        """Closing drops queued decodes: a closed dialog must not keep the pool busy with large photos."""
        self._preview_loader.cancel_pending()
        self._full_loader.cancel_pending()
        super().done(result)
