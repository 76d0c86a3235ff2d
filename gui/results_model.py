"""The search results as a Qt list model, with thumbnails filled in lazily as they decode.

Results are SearchHits; photos shown without a query (a tag album, the map's selection) are hits whose
score is NaN: they draw no score badge and no score in their caption or tooltip.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPainter, QPalette, QPixmap

from clipfind.records import SearchHit

from .grid_view import NameRole, PixmapRole, ScoreRole
from .workers import ThumbnailLoader

if TYPE_CHECKING:
    from clipfind.records import PhotoInfo, Timeline

HitRole = Qt.ItemDataRole.UserRole + 1  # the SearchHit itself
CACHE_SIZE = 2000


def cached_or_requested(pixmaps: OrderedDict[str, QPixmap], loader: ThumbnailLoader, path: str) -> QPixmap | None:
    """The decoded thumbnail, marked as just used; else None and asked of the loader (its ready follows)."""
    pixmap = pixmaps.get(path)
    if pixmap is None:
        loader.request(path)
        return None
    pixmaps.move_to_end(path)
    return pixmap


class ThumbnailCache:
    """Decoded thumbnails by path, least recently used dropped first."""

    def __init__(self, loader: ThumbnailLoader, square: bool = True) -> None:
        self.loader = loader
        self.square = square  # centred on a square canvas (cards); False keeps the photo's shape (the grids crop)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        side = loader.size.width()
        self.placeholder = QPixmap(side, side)
        # a quiet tile of the theme in force (light or dark), where the thumbnail will be
        self.placeholder.fill(QGuiApplication.palette().color(QPalette.ColorRole.AlternateBase))
        loader.ready.connect(self._store)

    def get(self, path: str) -> QPixmap | None:
        return cached_or_requested(self._pixmaps, self.loader, path)

    def _store(self, path: str, image: QImage) -> None:
        if image.isNull():
            pixmap = QPixmap(self.placeholder)
            painter = QPainter(pixmap)
            painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "unreadable")
            painter.end()
        else:
            pixmap = QPixmap.fromImage(image)
            if self.square:
                pixmap = centred(pixmap, self.placeholder.width())
        self._pixmaps[path] = pixmap
        while len(self._pixmaps) > CACHE_SIZE:
            self._pixmaps.popitem(last=False)


class ResultsModel(QAbstractListModel):
    """Search hits in rank order: caption, thumbnail (placeholder until decoded), tooltip, and the hit (HitRole)."""

    def __init__(self, cache: ThumbnailCache) -> None:
        super().__init__()
        self.cache = cache
        self.hits: list[SearchHit] = []
        self._row_of: dict[str, int] = {}
        cache.loader.ready.connect(self._thumbnail_ready)

    def set_hits(self, hits: list[SearchHit]) -> None:
        self.beginResetModel()
        self.cache.loader.cancel_pending()
        self.hits = hits
        self._row_of = {h.photo.path: i for i, h in enumerate(hits)}
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self.hits):
            return None
        hit = self.hits[index.row()]
        scored = not math.isnan(hit.score)  # photos shown without a query (an album, the map's) have no score
        if role == Qt.ItemDataRole.DisplayRole:
            name = os.path.basename(hit.photo.path)
            return f"{hit.score:.3f}  {name}" if scored else name
        if role == Qt.ItemDataRole.DecorationRole:
            return QIcon(self.cache.get(hit.photo.path) or self.cache.placeholder)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{hit.photo.path}\nsimilarity {hit.score:.3f}" if scored else hit.photo.path
        if role == HitRole:
            return hit
        if role == NameRole:
            return os.path.basename(hit.photo.path)
        if role == PixmapRole:
            return self.cache.get(hit.photo.path) or self.cache.placeholder
        if role == ScoreRole:
            return hit.score if scored else None
        return None

    def sections(self) -> list[tuple[str, int, int]]:
        """One untitled section: results are in rank order."""
        return [("", 0, len(self.hits))]

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        row = self._row_of.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class TimelineModel(QAbstractListModel):
    """Every photo newest first, in months (a Library.timeline()): the "All photos" view. Rows are read
    from the timeline's tuples as they are painted; nothing is made per photo up front."""

    def __init__(self, cache: ThumbnailCache) -> None:
        super().__init__()
        self.cache = cache
        self.timeline: Timeline | None = None
        # The rows whose thumbnail was asked for and not there yet, by path: a map of every photo,
        # made on this thread when the first thumbnail arrived, held the window 0.3 s at 1M photos.
        self._waiting: dict[str, int] = {}
        cache.loader.ready.connect(self._thumbnail_ready)

    @property
    def photos(self) -> tuple[PhotoInfo, ...]:
        return self.timeline.photos if self.timeline is not None else ()

    def set_timeline(self, timeline: Timeline) -> None:
        self.beginResetModel()
        self.timeline = timeline
        self._waiting = {}
        self.endResetModel()

    def sections(self) -> list[tuple[str, int, int]]:
        return [(m.label, m.start, m.count) for m in self.timeline.months] if self.timeline else []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.photos)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self.photos):
            return None
        photo = self.photos[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, NameRole):
            return os.path.basename(photo.path)
        if role == PixmapRole:
            pixmap = self.cache.get(photo.path)
            if pixmap is None:
                self._waiting[photo.path] = index.row()
            return pixmap or self.cache.placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{photo.path}\n{self.timeline.dates[index.row()].replace('T', ' ')}"
        if role == HitRole:
            return SearchHit(photo, float("nan"))
        return None

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        row = self._waiting.pop(path, None)
        if row is not None and row < len(self.photos) and self.photos[row].path == path:
            index = self.index(row)
            self.dataChanged.emit(index, index, [PixmapRole])


def centred(pixmap: QPixmap, side: int) -> QPixmap:
    """On a square transparent canvas, so captions line up whatever the photo's shape."""
    canvas = QPixmap(side, side)
    canvas.fill(QColor(0, 0, 0, 0))
    painter = QPainter(canvas)
    painter.drawPixmap((side - pixmap.width()) // 2, (side - pixmap.height()) // 2, pixmap)
    painter.end()
    return canvas
