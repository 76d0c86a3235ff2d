"""The photo preview: one photo large, fitted to its window, stepping through the results it was opened from.

Keys: ←/→ (or Page Up/Down) step, Z or 1 toggles 100 % and fit, F or F11 fullscreen, Esc leaves
fullscreen (then closes), Space closes (quick look: Space in the grid opened it).

Decoding runs in a thread pool, never on the GUI thread (a 50-megapixel photo takes a second): a
screen-sized image first, the full-size one only when 100 % asks for more pixels than that holds. Until
an image arrives the canvas says "Loading…" and a busy bar runs. The preview only shows; "find similar"
and "move to trash" are signals, answered by whoever opened it (the search view runs its one trash
confirmation and then calls :meth:`PhotoPreview.set_photos` with what is left).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QAbstractItemModel,
    QObject,
    QPoint,
    QPointF,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QImage, QKeySequence, QMouseEvent, QPainter, QPaintEvent, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from clipfind.library import thumbnail

from .dialogs import describe
from .icons import icon

if TYPE_CHECKING:
    from clipfind.records import PhotoInfo, SearchHit

    from .search_view import SearchView

FIT_SIDE = 2560  # decoded for fitting: sharp on a large screen, cheap to scale on every resize
FULL_SIDE = 16384  # 100 %: the photo's own pixels, up to a bound no screen needs more of
KEPT = 6  # decoded images kept (the neighbours are decoded ahead, so ←/→ is instant)


class _Signals(QObject):
    decoded = Signal(str, int, QImage)  # path, side asked for, image (null: cannot be shown)


class _Decode(QRunnable):
    def __init__(self, path: str, side: int, signals: _Signals) -> None:
        super().__init__()
        self.path, self.side, self.signals = path, side, signals

    def run(self) -> None:
        try:
            image = thumbnail(self.path, self.side)
            data = image.tobytes("raw", "RGB")
            qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()
        except Exception:  # unreadable, gone, or not a photo: said on the canvas
            qimage = QImage()
        self.signals.decoded.emit(self.path, self.side, qimage)


class Decoder(QObject):
    """Decodes photos at a given side in a pool of its own; ``decoded`` arrives on the GUI thread."""

    decoded = Signal(str, int, QImage)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _Signals()
        self._signals.decoded.connect(self._done)
        self._pending: set[tuple[str, int]] = set()

    def request(self, path: str, side: int) -> None:
        if (path, side) not in self._pending:
            self._pending.add((path, side))
            self._pool.start(_Decode(path, side, self._signals))

    def pending(self, path: str, side: int) -> bool:
        return (path, side) in self._pending

    def _done(self, path: str, side: int, image: QImage) -> None:
        self._pending.discard((path, side))
        self.decoded.emit(path, side, image)

    def wait(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()


class PhotoCanvas(QLabel):
    """The photo fitted to the widget (never enlarged past 100 %), or at 100 % and dragged to pan.

    A QLabel so that a message ("Loading…", "This photo cannot be shown.") is plain label text;
    the photo itself is painted here, scaled once per size, not set as the label's pixmap (which
    would make the label ask for the photo's size)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setBackgroundRole(self.backgroundRole())
        self._pixmap: QPixmap | None = None
        self._scaled: QPixmap | None = None
        self.actual = False  # 100 %: one photo pixel per screen pixel
        self.natural = QSize()  # the photo's own size (the decoded image may be smaller)
        self._offset = QPointF(0, 0)  # at 100 %: the photo point at the widget's centre, as a fraction
        self._drag: QPoint | None = None

    def pixmap(self) -> QPixmap | None:  # type: ignore[override]
        return self._pixmap

    def show_message(self, text: str) -> None:
        self._pixmap = self._scaled = None
        self.setText(text)
        self.update()

    def show_image(self, image: QImage, natural: QSize) -> None:
        self.setText("")
        self._pixmap = QPixmap.fromImage(image)
        self._scaled = None
        self.natural = natural if natural.isValid() and not natural.isEmpty() else image.size()
        self.update()

    def set_actual(self, actual: bool) -> None:
        self.actual = actual
        self._offset = QPointF(0.5, 0.5)
        self._scaled = None
        self.update()
        self.setCursor(Qt.CursorShape.OpenHandCursor if actual else Qt.CursorShape.ArrowCursor)

    def scale(self) -> float:
        """Screen pixels per photo pixel as drawn now."""
        if self.actual or not self.natural.isValid() or self.natural.isEmpty():
            return 1.0
        return min(1.0, self.width() / self.natural.width(), self.height() / self.natural.height())

    def target(self) -> QRect:
        """Where the photo is drawn, in widget coordinates."""
        w = round(self.natural.width() * self.scale())
        h = round(self.natural.height() * self.scale())
        if not self.actual:
            return QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)
        x = round(self.width() / 2 - self._offset.x() * w) if w > self.width() else (self.width() - w) // 2
        y = round(self.height() / 2 - self._offset.y() * h) if h > self.height() else (self.height() - h) // 2
        return QRect(x, y, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt naming)
        if self._pixmap is None or self._pixmap.isNull():
            super().paintEvent(event)
            return
        target = self.target()
        painter = QPainter(self)
        if self.actual:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, self._pixmap)
        else:
            if self._scaled is None or self._scaled.size() != target.size():
                self._scaled = self._pixmap.scaled(target.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                                   Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap(target.topLeft(), self._scaled)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.actual:
            self._drag = event.position().toPoint()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.actual and self._drag is not None and not self.natural.isEmpty():
            delta = event.position().toPoint() - self._drag
            self._drag = event.position().toPoint()
            self.pan(-delta.x(), -delta.y())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag = None
        if self.actual:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        super().mouseReleaseEvent(event)

    def pan(self, dx: int, dy: int) -> None:
        """Move the view by screen pixels, kept inside the photo."""
        w, h = self.natural.width(), self.natural.height()
        half_x, half_y = min(0.5, self.width() / 2 / w), min(0.5, self.height() / 2 / h)
        x = min(max(self._offset.x() + dx / w, half_x), 1 - half_x)
        y = min(max(self._offset.y() + dy / h, half_y), 1 - half_y)
        self._offset = QPointF(x, y)
        self.update()


class PhotoPreview(QDialog):
    """The photos it was opened with, one at a time; see the module's docstring for keys and signals."""

    similar_requested = Signal(object)  # PhotoInfo: "find similar" pressed on the photo shown
    trash_requested = Signal(object)  # PhotoInfo: the opener confirms and moves it, then set_photos()
    current_changed = Signal(object)  # PhotoInfo now shown

    def __init__(self, photos: Sequence[PhotoInfo], index: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint, True)
        self.photos: list[PhotoInfo] = list(photos)
        self.index = min(max(index, 0), max(len(self.photos) - 1, 0))
        self.loaded = False  # the photo shown is decoded (or known unreadable)
        self.source: Callable[[], list[PhotoInfo]] | None = None  # the opener's photos, read again by resync()
        self._images: OrderedDict[tuple[str, int], QImage] = OrderedDict()
        self._decoder = Decoder(self)
        self._decoder.decoded.connect(self._decoded)
        self.resize(960, 720)

        self.image = PhotoCanvas()
        self.busy = QProgressBar(maximumWidth=120, maximumHeight=10, textVisible=False)
        self.busy.setRange(0, 0)
        self.busy.hide()
        self.title = QLabel()
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.info = QLabel()
        self.info.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows a light/dark switch
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a narrow window elides
        self.position = QLabel()

        def button(name: str, tip: str, slot: Callable[[], None]) -> QToolButton:
            b = QToolButton(icon=icon(name), toolTip=tip, autoRaise=True)
            b.setIconSize(QSize(22, 22))
            b.clicked.connect(slot)
            return b

        self.previous_button = button("previous", "Previous photo (←)", self.previous)
        self.next_button = button("next", "Next photo (→)", self.next)
        self.zoom_button = button("zoom", "Zoom to 100 % (Z); again to fit the window", self.toggle_zoom)
        self.zoom_button.setCheckable(True)
        self.fullscreen_button = button("fullscreen", "Fullscreen (F or F11; Esc leaves)", self.toggle_fullscreen)
        self.similar_button = button("similar", "Find similar photos (S)", self._similar)
        self.trash_button = button("trash", "Move to trash… (Delete)", self._trash)

        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 4)
        bar.addWidget(self.previous_button)
        bar.addWidget(self.position)
        bar.addWidget(self.next_button)
        bar.addSpacing(12)
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(self.title)
        text.addWidget(self.info)
        bar.addLayout(text, 1)
        bar.addWidget(self.busy)
        for b in (self.zoom_button, self.fullscreen_button, self.similar_button, self.trash_button):
            bar.addWidget(b)
        self.bar = QWidget()
        self.bar.setLayout(bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.bar)

        keys: list[tuple[Sequence[QKeySequence | Qt.Key], Callable[[], None]]] = [
            ((Qt.Key.Key_Left, Qt.Key.Key_PageUp, Qt.Key.Key_Backspace), self.previous),
            ((Qt.Key.Key_Right, Qt.Key.Key_PageDown), self.next),
            ((Qt.Key.Key_Home,), lambda: self.show_index(0)),
            ((Qt.Key.Key_End,), lambda: self.show_index(len(self.photos) - 1)),
            ((Qt.Key.Key_Z, Qt.Key.Key_1), self.toggle_zoom),
            ((Qt.Key.Key_F, Qt.Key.Key_F11), self.toggle_fullscreen),
            ((Qt.Key.Key_Space,), self.close),
            ((Qt.Key.Key_S,), self._similar),
            ((Qt.Key.Key_Delete,), self._trash),
        ]
        for sequences, slot in keys:
            for key in sequences:
                QShortcut(QKeySequence(key), self, activated=slot)
        self._show()

    # -- what is shown ---------------------------------------------------------------------------
    @property
    def current(self) -> PhotoInfo | None:
        return self.photos[self.index] if self.photos else None

    def show_index(self, index: int) -> None:
        if self.photos and 0 <= index < len(self.photos) and index != self.index:
            self.index = index
            self._show()

    def previous(self) -> None:
        self.show_index(self.index - 1)

    def next(self) -> None:
        self.show_index(self.index + 1)

    def set_photos(self, photos: Sequence[PhotoInfo]) -> None:
        """The results changed (a photo was trashed): keep the photo shown if it is still there, else show
        the one that took its place; close when none is left."""
        current = self.current
        old_index = self.index
        self.photos = list(photos)
        if not self.photos:
            self.close()
            return
        paths = [p.path for p in self.photos]
        self.index = paths.index(current.path) if current and current.path in paths else min(old_index,
                                                                                           len(self.photos) - 1)
        self._show()

    def _elide_title(self) -> None:
        """The path cut in the middle to the label's width: the folder's start and the file's name stay."""
        path = self.title.toolTip()
        self.title.setText(self.title.fontMetrics().elidedText(path, Qt.TextElideMode.ElideMiddle,
                                                               max(self.title.width(), 40)))

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt naming)
        super().resizeEvent(event)
        self._elide_title()

    def resync(self) -> None:
        """Show what :attr:`source` holds now (the opener's results after a trash)."""
        if self.source is not None:
            self.set_photos(self.source())

    def _show(self) -> None:
        photo = self.current
        self.zoom_button.setChecked(False)
        self.image.set_actual(False)
        count = len(self.photos)
        self.previous_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < count - 1)
        self.position.setText(f"{self.index + 1} / {count}" if count > 1 else "")
        self.position.setVisible(count > 1)
        for widget in (self.similar_button, self.trash_button, self.zoom_button):
            widget.setEnabled(photo is not None)
        if photo is None:
            self.setWindowTitle("Preview")
            self.image.show_message("No photo")
            self.loaded = True
            return
        name = os.path.basename(photo.path)
        self.setWindowTitle(name)
        self.title.setToolTip(photo.path)
        self._elide_title()
        self.info.setText(describe(photo))
        self.current_changed.emit(photo)
        image = self._images.get((photo.path, FIT_SIDE))
        if image is not None:
            self._put(photo, image)
        else:
            self.loaded = False
            self.image.show_message("Loading…")
            self._decoder.request(photo.path, FIT_SIDE)
        self._busy()
        for neighbour in (self.index + 1, self.index - 1):  # decoded ahead: stepping shows them at once
            if 0 <= neighbour < count and (self.photos[neighbour].path, FIT_SIDE) not in self._images:
                self._decoder.request(self.photos[neighbour].path, FIT_SIDE)

    def _natural(self, photo: PhotoInfo, image: QImage) -> QSize:
        if photo.width and photo.height:
            size = QSize(photo.width, photo.height)
            if (size.width() > size.height()) != (image.width() > image.height()) and image.width() != image.height():
                size.transpose()  # the catalog's size is before EXIF rotation; the image is upright
            return size
        return image.size()

    def _put(self, photo: PhotoInfo, image: QImage) -> None:
        self.loaded = True
        if image.isNull():
            self.image.show_message("This photo cannot be shown.")
            self.zoom_button.setEnabled(False)
            return
        self.image.show_image(image, self._natural(photo, image))

    def _decoded(self, path: str, side: int, image: QImage) -> None:
        self._images[(path, side)] = image
        self._images.move_to_end((path, side))
        while len(self._images) > KEPT:
            self._images.popitem(last=False)
        photo = self.current
        if photo is not None and photo.path == path:
            if side == FIT_SIDE and not self.image.actual:
                self._put(photo, image)
            elif side == FULL_SIDE and self.image.actual and not image.isNull():
                self._put(photo, image)
        self._busy()

    def _busy(self) -> None:
        photo = self.current
        waiting = photo is not None and (self._decoder.pending(photo.path, FIT_SIDE)
                                          or self._decoder.pending(photo.path, FULL_SIDE))
        self.busy.setVisible(waiting)

    # -- actions ---------------------------------------------------------------------------------
    def toggle_zoom(self) -> None:
        """100 % and back to fit; the full-size photo is decoded (off the GUI thread) when fit had fewer pixels."""
        photo = self.current
        if photo is None or self.image.pixmap() is None:
            self.zoom_button.setChecked(False)
            return
        actual = not self.image.actual
        self.zoom_button.setChecked(actual)
        self.image.set_actual(actual)
        shown = self.image.pixmap()
        if actual and shown is not None and shown.width() < self.image.natural.width():
            full = self._images.get((photo.path, FULL_SIDE))
            if full is not None and not full.isNull():
                self._put(photo, full)
            else:
                self._decoder.request(photo.path, FULL_SIDE)
        elif not actual:
            fit = self._images.get((photo.path, FIT_SIDE))
            if fit is not None:
                self._put(photo, fit)
        self._busy()

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.bar.setVisible(not self.isFullScreen())

    def _similar(self) -> None:
        if self.current is not None:
            self.similar_requested.emit(self.current)

    def _trash(self) -> None:
        if self.current is not None:
            self.trash_requested.emit(self.current)

    def keyPressEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt naming)
        if event.key() == Qt.Key.Key_Escape and self.isFullScreen():
            self.toggle_fullscreen()  # Esc leaves fullscreen first; a second Esc closes
            return
        super().keyPressEvent(event)

    def done(self, result: int) -> None:
        self._decoder.wait()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001
        self._decoder.wait()
        super().closeEvent(event)


def install_quick_look(view: QAbstractItemView, open_current: Callable[[], None]) -> QShortcut:
    """Space in ``view`` opens the preview of its current item (Space in the preview closes it again).

    A shortcut of the view alone: Space still types a space in a text field."""
    return QShortcut(QKeySequence(Qt.Key.Key_Space), view, activated=open_current,
                     context=Qt.ShortcutContext.WidgetShortcut)


def _hits(model: QAbstractItemModel) -> list[SearchHit]:
    from .results_model import HitRole

    hits = (model.index(row, 0).data(HitRole) for row in range(model.rowCount()))
    return [h for h in hits if h is not None]


def _photos(model: QAbstractItemModel) -> Sequence[PhotoInfo]:
    """The photos of a grid's model in its order, from the model's own list: asking Qt for every row's
    hit held the window 1.1 s in an All photos timeline of 100k photos (about 11 s at a million)."""
    from .results_model import ResultsModel, TimelineModel

    if isinstance(model, TimelineModel):
        return model.photos
    if isinstance(model, ResultsModel):
        return [h.photo for h in model.hits]
    return [h.photo for h in _hits(model)]


def _hit_at(model: QAbstractItemModel, path: str) -> SearchHit | None:
    """The model's hit of the photo at ``path`` (a search's hit keeps its score), or None."""
    from clipfind.records import SearchHit

    from .results_model import ResultsModel

    if isinstance(model, ResultsModel):
        return next((h for h in model.hits if h.photo.path == path), None)
    photo = next((p for p in _photos(model) if p.path == path), None)
    return None if photo is None else SearchHit(photo, math.nan)


def preview_results(view: SearchView, model: QAbstractItemModel, hit: SearchHit) -> PhotoPreview:
    """Open the preview (not modal) over the results in ``model``, at ``hit``; a second call while one is
    open closes it (quick look). "Find similar" searches with the photo; trash goes through the view's own
    confirmation, and the preview then shows what the view still holds."""
    for open_one in view.findChildren(PhotoPreview):
        if open_one.isVisible():
            open_one.close()
            return open_one
    photos = _photos(model)
    index = next((i for i, p in enumerate(photos) if p.path == hit.photo.path), 0)
    preview = PhotoPreview(photos or [hit.photo], index, view)
    preview.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def similar(photo: PhotoInfo) -> None:
        preview.close()
        view.set_query_image(photo.path)

    def trash(photo: PhotoInfo) -> None:
        view.trash([_hit_at(model, photo.path) or hit])

    preview.source = lambda: _photos(model)
    preview.similar_requested.connect(similar)
    preview.trash_requested.connect(trash)
    view.photos_trashed.connect(preview.resync)  # a bound slot: let go of when the preview is deleted
    preview.show()
    preview.raise_()
    preview.activateWindow()
    return preview
