"""The map tab: every photo as a point placed by its vector (Library.map_work), clusters coloured and named.

Why it is built this way:

* **Off the GUI thread, in two lanes.** ``Library.map_work`` reads the catalog (and the vocabulary's
  vectors) on the window's library lane; the layout itself (UMAP: seconds, plus ~30 s of numba compiling
  the first time in a process) runs on this view's own lane, so searches are not queued behind it. A
  refresh while a map is being made drops the stale result (a token per request).
* **One painted widget, no item per photo.** The dots are splatted with numpy into one RGBA image per
  view change (a few milliseconds at 100k points) and reused for paint events that only add a hover ring
  or a thumbnail. Level of detail: thumbnails only once zoomed in far enough that one is
  :data:`THUMB_MIN_PX` wide, one per free spot (a grid fixed to the map picks the candidates with numpy,
  so a dense cluster costs no Python loop), at most :data:`THUMB_MAX`, the rest stay dots; each comes
  from the app's ThumbnailCache (decoded off the GUI thread) and is scaled once per size, so panning
  only copies pixels. ``python -m bench.map --only view`` measures frames at 100k points.
* **Cheap lookups.** Hover and click find the nearest point with a k-d tree built with the map (off the
  GUI thread); rectangle and lasso selections test every point's screen position with numpy.
* **Colours follow the theme.** Background and text come from the palette; cluster hues are generated
  (golden-angle steps), lighter on a dark background.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from clipfind.errors import ClipfindError

from .icons import icon
from .preview import PhotoPreview
from .tasks import TaskRunner
from .theme import is_dark

if TYPE_CHECKING:
    from clipfind.library import Library, MapWork, PhotoMap
    from clipfind.records import PhotoInfo

    from .results_model import ThumbnailCache

MARGIN = 0.04  # of the shorter side, around the map when fitted
ZOOM_MIN, ZOOM_MAX = 0.5, 400.0  # times the fitted scale
THUMB_SPAN = 0.012  # a thumbnail's side in map units (the map spans 0..1): grows with the zoom
THUMB_MIN_PX = 48  # thumbnails from this side on (closer in); dots only below it
THUMB_MAX_PX = 160  # a thumbnail never grows past this
THUMB_MAX = 600  # thumbnails drawn at most in one frame (about one per free spot of a large window at 48 px)
THUMB_SPACING = 0.85  # two thumbnails' centres are at least this share of a side apart (else the later stays a dot)
HIT_PX = 6  # hover and click find a point within this many pixels (or within a thumbnail)
CLICK_PX = 4  # a press and release closer than this is a click, not a drag
HIGHLIGHT_MAX = 5000  # rings drawn at most (a search shows far fewer)
NEIGHBOURS = 40  # photos the preview steps through from a clicked point: its nearest on the map
LABELS_MAX = 60  # cluster names drawn at most, largest clusters first
HINT = "wheel zooms, Shift+drag selects, click opens, right-click finds similar"


@dataclass(frozen=True)
class Prepared:
    """A map ready to draw: the PhotoMap plus what hover and highlight look up (built off the GUI thread)."""

    photo_map: PhotoMap
    tree: object | None  # scipy.spatial.cKDTree over the points, None for an empty map
    index_of: dict[str, int]  # path -> row
    rank: np.ndarray  # (n,) a fixed shuffle: which photos get a thumbnail first where they crowd


def prepare(photo_map: PhotoMap) -> Prepared:
    """The lookups of a map (a k-d tree of 100k points takes ~50 ms: not on the GUI thread)."""
    from scipy.spatial import cKDTree

    xy = np.asarray(photo_map.xy, np.float64).reshape(-1, 2)
    tree = cKDTree(xy) if len(xy) else None
    rank = np.random.default_rng(7).permutation(len(xy)).astype(np.int64)
    return Prepared(photo_map, tree, {p.path: i for i, p in enumerate(photo_map.photos)}, rank)


def cluster_colours(count: int, dark: bool) -> np.ndarray:
    """(count, 4) RGBA bytes: hues a golden angle apart, brighter on a dark background."""
    out = np.zeros((max(count, 1), 4), np.uint8)
    for c in range(count):
        colour = QColor.fromHsv(int(c * 137.508) % 360, 150 if dark else 200, 245 if dark else 185)
        out[c] = (colour.red(), colour.green(), colour.blue(), 255)
    return out


def _disc(radius: float) -> list[tuple[int, int]]:
    """The pixel offsets of a dot: a 3x3 square at 1.5 px, round from about 2.5 px on."""
    r = int(math.ceil(radius))
    limit = (radius + 0.5) ** 2 - 0.5
    return [(dx, dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dx * dx + dy * dy <= limit]


def inside_polygon(x: np.ndarray, y: np.ndarray, polygon: Sequence[tuple[float, float]]) -> np.ndarray:
    """Which points lie inside a closed polygon (even-odd rule), for every point at once."""
    inside = np.zeros(len(x), bool)
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at)
    return inside


class MapCanvas(QWidget):
    """The painted map: dots, thumbnails close in, cluster names, rings on highlighted photos."""

    point_clicked = Signal(int)  # row of the photo clicked
    point_menu = Signal(int, QPoint)  # row, global position: a context menu on a photo
    selected = Signal(object)  # np.ndarray of rows inside a rectangle or lasso

    def __init__(self, cache: ThumbnailCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self.cache = cache
        self.data: Prepared | None = None
        self.mode = "pan"  # or "rect", "lasso": what a plain left drag does
        self.scale = 1.0  # pixels per map unit
        self.centre = QPointF(0.5, 0.5)  # map point at the widget's centre
        self.highlighted = np.zeros(0, np.int64)
        self.hovered: int | None = None
        self.thumbs_drawn = 0  # thumbnails in the last frame (tests, the benchmark)
        self.dots_drawn = 0
        self._fitted = False
        self._layer: tuple[tuple, QImage] | None = None  # (view key, dot image)
        self._colours = cluster_colours(1, False)
        self._dark = False
        self._thumb_rects: dict[int, QRectF] = {}  # rows drawn as thumbnails in the last frame
        self._labels: dict[tuple[str, bool, float], QImage] = {}  # cluster names, drawn once
        self._scaled_thumbs: OrderedDict[tuple[str, int, int], QPixmap] = OrderedDict()  # at the side shown
        self._press: QPointF | None = None
        self._last: QPointF | None = None
        self._drag: list[QPointF] = []  # the rectangle's corners or the lasso's points
        self._dragging = ""  # "", "pan", "rect", "lasso"
        if cache is not None:
            cache.loader.ready.connect(self._thumbnail_ready)

    # -- data and view ----------------------------------------------------------------------
    def set_data(self, data: Prepared | None) -> None:
        """Show this map; the view is fitted the first time, kept after (a refresh moves nothing)."""
        self.data = data
        self.hovered = None
        self.highlighted = np.zeros(0, np.int64)  # rows of the old map: the view sets them again
        self._thumb_rects = {}
        self._layer = None
        self._update_colours()
        if not self._fitted:
            self.fit()
        self.update()

    def set_highlight(self, rows: np.ndarray) -> None:
        self.highlighted = np.asarray(rows, np.int64)
        self.update()

    @property
    def fit_scale(self) -> float:
        return max(1.0, min(self.width(), self.height()) * (1 - 2 * MARGIN))

    @property
    def zoom(self) -> float:
        """The scale as a multiple of the fitted one."""
        return self.scale / self.fit_scale

    def fit(self) -> None:
        """Every point in view, as large as the widget allows."""
        self.scale, self.centre = self.fit_scale, QPointF(0.5, 0.5)
        if self.data is not None and len(self.data.photo_map):
            xy = self.data.photo_map.xy
            low, high = xy.min(axis=0).astype(float), xy.max(axis=0).astype(float)
            span = np.maximum(high - low, 0.05)  # one point, or a line of them: not an infinite zoom
            self.scale = min(self.width() * (1 - 2 * MARGIN) / span[0], self.height() * (1 - 2 * MARGIN) / span[1],
                             ZOOM_MAX * self.fit_scale)
            self.centre = QPointF(float(low[0] + high[0]) / 2, float(low[1] + high[1]) / 2)
        self._fitted = True
        self._moved()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the map point under ``anchor`` (default: the centre) where it is."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self.to_map(anchor)
        self.scale = min(max(self.scale * factor, ZOOM_MIN * self.fit_scale), ZOOM_MAX * self.fit_scale)
        after = self.to_map(anchor)
        self.centre = QPointF(self.centre.x() + before.x() - after.x(), self.centre.y() + before.y() - after.y())
        self._moved()

    def zoom_to(self, point: QPointF, zoom: float) -> None:
        """Centre on a map point at ``zoom`` times the fitted scale."""
        self.scale = min(max(zoom, ZOOM_MIN), ZOOM_MAX) * self.fit_scale
        self.centre = QPointF(point)
        self._moved()

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the map by pixels (as a drag does)."""
        self.centre = QPointF(self.centre.x() - dx / self.scale, self.centre.y() + dy / self.scale)
        self._moved()

    def _moved(self) -> None:
        """The view changed: the last frame's thumbnails are no longer where the mouse can hit them."""
        self._thumb_rects = {}
        self.update()

    def to_screen(self, x: float, y: float) -> QPointF:
        return QPointF((x - self.centre.x()) * self.scale + self.width() / 2,
                       self.height() / 2 - (y - self.centre.y()) * self.scale)

    def to_map(self, p: QPointF) -> QPointF:
        return QPointF(self.centre.x() + (p.x() - self.width() / 2) / self.scale,
                       self.centre.y() - (p.y() - self.height() / 2) / self.scale)

    def screen_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Every point's position in widget pixels."""
        if self.data is None:
            return np.zeros(0), np.zeros(0)
        xy = self.data.photo_map.xy
        sx = (xy[:, 0].astype(np.float64) - self.centre.x()) * self.scale + self.width() / 2
        sy = self.height() / 2 - (xy[:, 1].astype(np.float64) - self.centre.y()) * self.scale
        return sx, sy

    def thumb_side(self) -> float:
        return min(self.scale * THUMB_SPAN, THUMB_MAX_PX)

    def point_at(self, pos: QPointF) -> int | None:
        """The photo under a widget position (nearest within a few pixels, or within its thumbnail)."""
        if self.data is None or self.data.tree is None:
            return None
        for row, frame in reversed(self._thumb_rects.items()):  # the one drawn last is on top
            if frame.adjusted(-2, -2, 2, 2).contains(pos):
                return row
        p = self.to_map(pos)
        distance, row = self.data.tree.query((p.x(), p.y()), distance_upper_bound=HIT_PX / self.scale)
        return int(row) if math.isfinite(distance) else None

    # -- painting ---------------------------------------------------------------------------
    def _update_colours(self) -> None:
        count = max((c.cluster for c in self.data.photo_map.clusters), default=-1) + 1 if self.data else 0
        self._dark = is_dark(self.palette())
        self._colours = cluster_colours(count, self._dark)

    def _dot_radius(self, visible: int) -> float:
        base = 1.2 if visible > 30_000 else 1.6 if visible > 5_000 else 2.4
        return min(base * max(1.0, self.zoom) ** 0.3, 5.0)

    def _dot_layer(self, sx: np.ndarray, sy: np.ndarray, visible: np.ndarray, dpr: float) -> QImage:
        """The dots of the points in sight as one image (cached while the view does not change)."""
        key = (self.scale, self.centre.x(), self.centre.y(), self.width(), self.height(), dpr, self._dark,
               id(self.data))
        if self._layer is not None and self._layer[0] == key:
            return self._layer[1]
        w, h = max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr))
        radius = self._dot_radius(int(visible.size)) * dpr
        pad = int(math.ceil(radius)) + 1
        canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.uint32)
        px = np.rint(sx[visible] * dpr).astype(np.int64) + pad
        py = np.rint(sy[visible] * dpr).astype(np.int64) + pad
        reach = int(math.ceil(radius))
        keep = (px >= reach) & (px < w + 2 * pad - reach) & (py >= reach) & (py < h + 2 * pad - reach)
        px, py = px[keep], py[keep]
        assert self.data is not None
        clusters = self.data.photo_map.cluster[visible[keep]]
        rgba = np.ascontiguousarray(self._colours).view(np.uint32)[:, 0]
        noise = self.palette().color(QPalette.ColorRole.PlaceholderText)
        alpha = 150  # noise lighter than the clusters; premultiplied, as Qt blends that format fastest
        noise_rgba = np.array([[noise.red() * alpha // 255, noise.green() * alpha // 255, noise.blue() * alpha // 255,
                                alpha]], np.uint8).view(np.uint32)[0, 0]
        colours = np.where(clusters >= 0, rgba[np.maximum(clusters, 0) % len(rgba)], noise_rgba)
        order = np.argsort(clusters >= 0, kind="stable")  # noise below the clusters
        px, py, colours = px[order], py[order], colours[order]
        for dx, dy in _disc(radius):
            canvas[py + dy, px + dx] = colours
        pixels = np.ascontiguousarray(canvas[pad:pad + h, pad:pad + w])
        image = QImage(pixels.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888_Premultiplied).copy()
        image.setDevicePixelRatio(dpr)
        self._layer = (key, image)
        return image

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        if self.data is None or not len(self.data.photo_map):
            self.dots_drawn = self.thumbs_drawn = 0
            painter.end()
            return
        if is_dark(palette) != self._dark:
            self._update_colours()
        sx, sy = self.screen_xy()
        margin = THUMB_MAX_PX
        visible = np.flatnonzero((sx > -margin) & (sx < self.width() + margin)
                                 & (sy > -margin) & (sy < self.height() + margin))
        dpr = self.devicePixelRatioF()
        painter.drawImage(0, 0, self._dot_layer(sx, sy, visible, dpr))
        self.dots_drawn = int(visible.size)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.thumbs_drawn = self._draw_thumbnails(painter, sx, sy, visible)
        self._draw_labels(painter)
        self._draw_rings(painter, sx, sy)
        self._draw_drag(painter)
        painter.end()

    def _draw_thumbnails(self, painter: QPainter, sx: np.ndarray, sy: np.ndarray, visible: np.ndarray) -> int:
        """Close in (see the module's notes): a thumbnail per point with room for one, others stay dots."""
        side = self.thumb_side()
        if side < THUMB_MIN_PX or self.data is None:
            self._thumb_rects = {}
            return 0
        in_view = visible[(sx[visible] > -side) & (sx[visible] < self.width() + side)
                          & (sy[visible] > -side) & (sy[visible] < self.height() + side)]
        first = np.isin(in_view, self.highlighted)  # search results get their thumbnail first
        order = in_view[np.lexsort((self.data.rank[in_view], ~first))]
        spacing = side * THUMB_SPACING
        # One candidate per cell of a grid fixed to the map (the same choice while panning), so a dense
        # cluster costs numpy work, not a Python loop over thousands of points.
        xy = self.data.photo_map.xy[order].astype(np.float64) * (self.scale / spacing)
        cells = (np.floor(xy[:, 0]).astype(np.int64) << 32) + np.floor(xy[:, 1]).astype(np.int64)
        _, firsts = np.unique(cells, return_index=True)
        order = order[np.sort(firsts)]
        taken: dict[tuple[int, int], list[tuple[float, float]]] = {}
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)  # square frames: 6x cheaper without
        photos, clusters = self.data.photo_map.photos, self.data.photo_map.cluster
        mid = palette_colour(self, QPalette.ColorRole.Mid)
        noise = palette_colour(self, QPalette.ColorRole.PlaceholderText)
        self._thumb_rects = {}
        for row in order.tolist():
            if len(self._thumb_rects) >= THUMB_MAX:
                break
            x, y = float(sx[row]), float(sy[row])
            cx, cy = int(x // spacing), int(y // spacing)
            if any(abs(x - ox) < spacing and abs(y - oy) < spacing
                   for i in (-1, 0, 1) for j in (-1, 0, 1) for ox, oy in taken.get((cx + i, cy + j), ())):
                continue
            taken.setdefault((cx, cy), []).append((x, y))
            target = QRectF(x - side / 2, y - side / 2, side, side)
            frame = _photo_rect(target, photos[row])
            pixmap = self._scaled(photos[row].path, side)
            if pixmap is None:
                painter.fillRect(frame, mid)
            else:
                painter.drawPixmap(target.topLeft(), pixmap)
            c = int(clusters[row])
            colour = QColor(*self._colours[c % len(self._colours)].tolist()) if c >= 0 else noise
            painter.setPen(QPen(colour, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(frame.adjusted(-1, -1, 1, 1))  # which cluster it belongs to, as its dot said
            self._thumb_rects[row] = frame
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        return len(self._thumb_rects)

    def _scaled(self, path: str, side: float) -> QPixmap | None:
        """The thumbnail at this side, scaled once and kept: panning then only copies pixels (scaling
        200 thumbnails on every frame took most of it). None until the cache has decoded it."""
        source = self.cache.get(path) if self.cache is not None else None
        if source is None:
            return None
        dpr = self.devicePixelRatioF()
        key = (path, source.cacheKey(), round(side * dpr))
        scaled = self._scaled_thumbs.get(key)
        if scaled is None:
            scaled = source.scaled(key[2], key[2], Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
            scaled.setDevicePixelRatio(dpr)
            self._scaled_thumbs[key] = scaled
            while len(self._scaled_thumbs) > 2 * THUMB_MAX:
                self._scaled_thumbs.popitem(last=False)
        else:
            self._scaled_thumbs.move_to_end(key)
        return scaled

    def _draw_rings(self, painter: QPainter, sx: np.ndarray, sy: np.ndarray) -> None:
        """Rings on the search's results, and on the photo under the mouse."""
        highlight = self.palette().color(QPalette.ColorRole.Highlight)
        rows = self.highlighted
        if rows.size:
            on = (sx[rows] > -20) & (sx[rows] < self.width() + 20) & (sy[rows] > -20) & (sy[rows] < self.height() + 20)
            rows = rows[on][:HIGHLIGHT_MAX]
            radius = self._dot_radius(self.dots_drawn) + 3
            painter.setPen(QPen(highlight, 2.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for row, x, y in zip(rows.tolist(), sx[rows].tolist(), sy[rows].tolist()):
                frame = self._thumb_rects.get(row)
                if frame is not None:
                    painter.drawRect(frame.adjusted(-3, -3, 3, 3))
                else:
                    painter.drawEllipse(QPointF(x, y), radius, radius)
        if self.hovered is not None and self.hovered < len(sx):
            painter.setPen(QPen(palette_colour(self, QPalette.ColorRole.Text), 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            frame = self._thumb_rects.get(self.hovered)
            if frame is not None:
                painter.drawRect(frame.adjusted(-2, -2, 2, 2))
            else:
                r = self._dot_radius(self.dots_drawn) + 4
                painter.drawEllipse(QPointF(float(sx[self.hovered]), float(sy[self.hovered])), r, r)

    def _draw_labels(self, painter: QPainter) -> None:
        """Each cluster's name just above its centre, largest clusters first, none over another; a halo
        keeps it readable over dots and thumbnails. Each name is drawn once into an image (stroking
        text is slow) and the image is placed on later frames."""
        if self.data is None:
            return
        placed: list[QRectF] = []
        bounds = QRectF(self.rect())
        lift = 2 + self._dot_radius(self.dots_drawn)  # above the centre: the dots there stay visible
        named = sorted((c for c in self.data.photo_map.clusters if c.names), key=lambda c: -c.size)
        for cluster in named[:LABELS_MAX]:
            image = self._label(cluster.names[0])
            size = image.deviceIndependentSize()
            at = self.to_screen(cluster.x, cluster.y)
            box = QRectF(at.x() - size.width() / 2, at.y() - lift - size.height(), size.width(), size.height())
            if not bounds.intersects(box) or any(box.intersects(other) for other in placed):
                continue
            placed.append(box)
            painter.drawImage(box.topLeft(), image)

    def _label(self, text: str) -> QImage:
        """A cluster's name with its halo, in the palette's colours, at the screen's pixel ratio."""
        dpr = self.devicePixelRatioF()
        key = (text, self._dark, dpr)
        image = self._labels.get(key)
        if image is not None:
            return image
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.05)
        metrics = QFontMetricsF(font)
        halo = QColor(palette_colour(self, QPalette.ColorRole.Base))
        halo.setAlpha(190)
        width, height = metrics.horizontalAdvance(text) + 8, metrics.height() + 4
        image = QImage(max(1, math.ceil(width * dpr)), max(1, math.ceil(height * dpr)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath()
        path.addText(4, 2 + metrics.ascent(), font, text)
        painter.strokePath(path, QPen(halo, 4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                                      Qt.PenJoinStyle.RoundJoin))
        painter.fillPath(path, palette_colour(self, QPalette.ColorRole.Text))
        painter.end()
        if len(self._labels) > 4 * LABELS_MAX:
            self._labels.clear()
        self._labels[key] = image
        return image

    def _draw_drag(self, painter: QPainter) -> None:
        if self._dragging not in ("rect", "lasso") or len(self._drag) < 2:
            return
        colour = QColor(palette_colour(self, QPalette.ColorRole.Highlight))
        painter.setPen(QPen(colour, 1.5, Qt.PenStyle.DashLine))
        colour.setAlpha(40)
        painter.setBrush(colour)
        if self._dragging == "rect":
            painter.drawRect(QRectF(self._drag[0], self._drag[-1]).normalized())
        else:
            painter.drawPolygon(QPolygonF(self._drag))

    # -- mouse ------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25 ** steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self._press = self._last = event.position()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        self._dragging = "lasso" if alt else "rect" if shift else self.mode
        self._drag = [event.position()]
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self._press is not None and self._last is not None:
            if self._dragging == "pan":
                self.pan_by(pos.x() - self._last.x(), pos.y() - self._last.y())
            elif self._dragging == "rect":
                self._drag = [self._drag[0], pos]
                self.update()
            elif self._dragging == "lasso":
                self._drag.append(pos)
                self.update()
            self._last = pos
            return
        self.hover(pos, event.globalPosition().toPoint())

    def hover(self, pos: QPointF, global_pos: QPoint | None = None) -> str:
        """The photo under ``pos`` gets a ring and its file name as the tooltip ("" where none)."""
        row = self.point_at(pos)
        if row != self.hovered:
            self.hovered = row
            self.update()
        name = os.path.basename(self.data.photo_map.photos[row].path) if row is not None and self.data else ""
        self.setToolTip(name)
        if global_pos is not None:
            if name:
                QToolTip.showText(global_pos, name, self)
            else:
                QToolTip.hideText()
        return name

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        if self.hovered is not None:
            self.hovered = None
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or self._press is None:
            return super().mouseReleaseEvent(event)
        pos, press, dragging = event.position(), self._press, self._dragging
        self._press = self._last = None
        self._dragging = ""
        moved = math.hypot(pos.x() - press.x(), pos.y() - press.y())
        if moved < CLICK_PX:
            self._drag = []
            self.update()
            row = self.point_at(pos)
            if row is not None:
                self.point_clicked.emit(row)
            return
        if dragging == "rect":
            self.select_rect(QRectF(press, pos).normalized())
        elif dragging == "lasso":
            self.select_lasso(self._drag + [pos])
        self._drag = []
        self.update()

    def select_rect(self, rect: QRectF) -> np.ndarray:
        """The rows whose points lie in a widget rectangle; emitted as ``selected``."""
        sx, sy = self.screen_xy()
        rows = np.flatnonzero((sx >= rect.left()) & (sx <= rect.right()) & (sy >= rect.top()) & (sy <= rect.bottom()))
        self.selected.emit(rows)
        return rows

    def select_lasso(self, points: Sequence[QPointF]) -> np.ndarray:
        """The rows whose points lie inside a lasso drawn in widget pixels; emitted as ``selected``."""
        sx, sy = self.screen_xy()
        polygon = [(p.x(), p.y()) for p in points]
        if len(polygon) < 3:
            rows = np.zeros(0, np.int64)
        else:
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            near = np.flatnonzero((sx >= min(xs)) & (sx <= max(xs)) & (sy >= min(ys)) & (sy <= max(ys)))
            rows = near[inside_polygon(sx[near], sy[near], polygon)]
        self.selected.emit(rows)
        return rows

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        row = self.point_at(QPointF(event.pos()))
        if row is not None:
            self.point_menu.emit(row, event.globalPos())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        elif key == Qt.Key.Key_0:
            self.fit()
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        old = event.oldSize()
        if old.isValid() and old.width() > 0 and old.height() > 0:  # keep the zoom relative to the fitted scale
            self.scale *= min(self.width(), self.height()) / max(1, min(old.width(), old.height()))
        elif not self._fitted or self.data is None:
            self.scale = self.fit_scale
        super().resizeEvent(event)

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        if self.thumbs_drawn and self.data is not None and path in self.data.index_of:
            self.update()


def _photo_rect(square: QRectF, photo: PhotoInfo) -> QRectF:
    """Where a photo of its own shape sits, fitted and centred, in a square thumbnail (the cache's
    thumbnails are centred on a transparent square)."""
    w, h = photo.width or 1, photo.height or 1
    side = square.width()
    fw, fh = (side, side * h / w) if w >= h else (side * w / h, side)
    return QRectF(square.center().x() - fw / 2, square.center().y() - fh / 2, fw, fh)


def palette_colour(widget: QWidget, role: QPalette.ColorRole) -> QColor:
    return widget.palette().color(role)


class MapView(QWidget):
    """The map tab: a bar (fit, pan/rectangle/lasso, what is shown, busy state) over the canvas.

    Signals are answered by the window: ``selection_made`` puts photos in the search grid,
    ``find_similar`` searches with a photo, ``trash_requested`` goes through the search view's
    confirmation. The map is made when the tab is first shown, and again after :meth:`refresh`.
    """

    selection_made = Signal(list)  # list[PhotoInfo]: inside a rectangle or lasso
    find_similar = Signal(str)  # path of the photo to search with
    trash_requested = Signal(list)  # list[PhotoInfo], from the preview
    status = Signal(str)

    def __init__(self, library: Library, cache: ThumbnailCache | None, tasks: TaskRunner | None = None) -> None:
        super().__init__()
        self.library = library
        self.tasks = tasks or TaskRunner(self, "clipfind-map-library")
        self._own_tasks = tasks is None
        self.layouts = TaskRunner(self, "clipfind-map")  # UMAP: its own lane, searches do not wait for it
        self.stale = True  # the map on screen (if any) is not the collection's: make it when shown
        self.loading = False
        self._token = 0
        self._highlight_paths: list[str] = []
        self.canvas = MapCanvas(cache)
        self.canvas.point_clicked.connect(self.open_photo)
        self.canvas.point_menu.connect(self._point_menu)
        self.canvas.selected.connect(self._selected)

        def tool(name: str, text: str, tip: str) -> QToolButton:
            button = QToolButton(icon=icon(name), text=text, toolTip=tip, autoRaise=True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setIconSize(QSize(18, 18))
            return button

        self.fit_button = tool("fit", "Fit", "Show the whole map (0)")
        self.fit_button.clicked.connect(self.canvas.fit)
        self.modes = QButtonGroup(self)
        for mode, text, tip in (("pan", "Pan", "Drag to move the map; the wheel zooms"),
                                ("rect", "Select", "Drag a rectangle around photos (or Shift+drag)"),
                                ("lasso", "Lasso", "Draw around photos (or Alt+drag)")):
            button = QToolButton(text=text, toolTip=tip, autoRaise=True)
            button.setCheckable(True)
            button.setChecked(mode == "pan")
            button.setProperty("mode", mode)
            self.modes.addButton(button)
        self.modes.buttonClicked.connect(lambda b: setattr(self.canvas, "mode", b.property("mode")))
        self.summary = QLabel()
        self.summary.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a narrow window cuts it
        self.summary.setToolTip(HINT)
        self.busy_label = QLabel()
        self.busy = QProgressBar(maximumWidth=120, maximumHeight=14, textVisible=False)
        self.busy.setRange(0, 0)
        self.busy.hide()
        self.busy_label.hide()
        bar = QHBoxLayout()
        bar.addWidget(self.fit_button)
        for button in self.modes.buttons():
            bar.addWidget(button)
        bar.addSpacing(12)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.busy_label)
        bar.addWidget(self.busy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.canvas, 1)

    # -- loading ----------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self.stale and not self.loading:
            self.load()

    def refresh(self) -> None:
        """The collection changed: make the map again now if it is on screen, else when next shown."""
        self.stale = True
        if self.isVisible():
            self.load()

    def load(self) -> None:
        """Make the map: the catalog read on the library lane, the layout on this view's own lane."""
        self._token += 1
        token = self._token
        self.stale = False
        self.loading = True
        self.layouts.supersede("map")
        self._busy("Reading the library…")

        def read_done(work: MapWork) -> None:
            if token != self._token:
                return
            self._busy(f"Laying out {work.size:,} photos…" if work.lays_out else f"Placing {work.size:,} photos…")
            self.layouts.submit(lambda: prepare(work.run()), lambda data: self._ready(token, data),
                                lambda exc: self._failed(token, exc), kind="map")

        library = self.library
        self.tasks.submit(lambda: library.map_work(), read_done, lambda exc: self._failed(token, exc), kind="map")

    def _busy(self, text: str) -> None:
        self.busy_label.setText(text)
        self.busy_label.show()
        self.busy.show()

    def _idle(self) -> None:
        self.loading = False
        self.busy.hide()
        self.busy_label.hide()

    def _ready(self, token: int, data: Prepared) -> None:
        if token != self._token:
            return
        self._idle()
        self.set_map(data)
        for preview in self.findChildren(PhotoPreview):
            if preview.isVisible():
                preview.resync()

    def _failed(self, token: int, exc: BaseException) -> None:
        if token != self._token:
            return
        self._idle()
        message = str(exc) if isinstance(exc, ClipfindError) else f"the map could not be made: {exc}"
        self.summary.setText(message)
        self.status.emit(message)

    def set_map(self, data: Prepared | PhotoMap) -> None:
        """Show a map (a Prepared one, or a PhotoMap whose lookups are built here: tests, benchmarks)."""
        if not isinstance(data, Prepared):
            data = prepare(data)
        photo_map = data.photo_map
        self.canvas.set_data(data)
        self.highlight(self._highlight_paths)
        count = len(photo_map)
        if not count:
            self.summary.setText("No photos on the map yet: add a folder and let it be indexed")
        else:
            named = sum(1 for c in photo_map.clusters if c.names)
            self.summary.setText(f"{count:,} photo{'s' if count != 1 else ''} · "
                                 f"{len(photo_map.clusters)} cluster{'s' if len(photo_map.clusters) != 1 else ''}"
                                 + ("" if named or not photo_map.clusters else " (unnamed: the model is not loaded)")
                                 + " · " + HINT)

    @property
    def photo_map(self) -> PhotoMap | None:
        return self.canvas.data.photo_map if self.canvas.data is not None else None

    # -- answers ----------------------------------------------------------------------------
    def highlight(self, paths: Sequence[str]) -> None:
        """Ring these photos (the current search's results)."""
        self._highlight_paths = list(paths)
        data = self.canvas.data
        if data is None:
            return
        rows = [data.index_of[p] for p in self._highlight_paths if p in data.index_of]
        self.canvas.set_highlight(np.asarray(rows, np.int64))

    def _selected(self, rows: np.ndarray) -> None:
        photo_map = self.photo_map
        if photo_map is None:
            return
        if not len(rows):
            self.status.emit("No photo inside the selection")
            return
        self.selection_made.emit([photo_map.photos[int(r)] for r in rows])

    def _neighbourhood(self, row: int) -> list[int]:
        """The clicked photo and its nearest on the map, nearest first: what ←/→ steps through."""
        data = self.canvas.data
        assert data is not None and data.tree is not None
        k = min(NEIGHBOURS, len(data.photo_map))
        _, rows = data.tree.query(data.photo_map.xy[row].astype(np.float64), k=k)
        rows = [int(r) for r in np.atleast_1d(rows) if int(r) != row]
        return [row] + rows

    def open_photo(self, row: int) -> PhotoPreview | None:
        """The preview at this photo, stepping through its neighbours on the map."""
        photo_map = self.photo_map
        if photo_map is None or not 0 <= row < len(photo_map):
            return None
        for open_one in self.findChildren(PhotoPreview):
            open_one.close()
        photos = [photo_map.photos[r] for r in self._neighbourhood(row)]
        preview = PhotoPreview(photos, 0, self)
        preview.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def still_here() -> list[PhotoInfo]:
            now = self.canvas.data
            return [p for p in photos if now is not None and p.path in now.index_of]

        def similar(photo: PhotoInfo) -> None:
            preview.close()
            self.find_similar.emit(photo.path)

        preview.source = still_here
        preview.similar_requested.connect(similar)
        preview.trash_requested.connect(lambda photo: self.trash_requested.emit([photo]))
        preview.show()
        preview.raise_()
        return preview

    def _point_menu(self, row: int, where: QPoint) -> None:
        photo_map = self.photo_map
        if photo_map is None:
            return
        path = photo_map.photos[row].path
        menu = QMenu(self)
        menu.addAction(icon("image"), "Open", lambda: self.open_photo(row))
        menu.addAction(icon("similar"), "Find similar", lambda: self.find_similar.emit(path))
        menu.popup(where)

    def shutdown(self) -> None:
        """Drop what is pending and end the layout lane (the window closes; a layout in flight is waited for)."""
        self.layouts.shutdown()
        if self._own_tasks:
            self.tasks.shutdown()
