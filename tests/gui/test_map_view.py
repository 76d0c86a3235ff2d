"""The map tab (gui/map_view.py): made off the GUI thread with a busy state, every photo on it, hover names
the file, a click opens the preview, rectangle and lasso select exactly the photos inside, search results
ringed, thumbnails only close in; the tab in the window; light and dark screenshots far out and zoomed in."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QContextMenuEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QMenu

from clipfind.catalog import Catalog, FileStamp
from clipfind.home import MAP_FILE
from clipfind.library import Library, MapWork
from gui import theme
from gui.map_view import NEIGHBOURS, THUMB_MIN_PX, MapView, inside_polygon
from gui.preview import PhotoPreview
from gui.results_model import ThumbnailCache
from gui.workers import ThumbnailLoader
from tests.gui.conftest import indexed_home, shoot, wait_idle
from tests.helpers import copy_photos, needs_shared_data

pytestmark = needs_shared_data
WAIT = 120_000
GROUPS = 4  # islands of photos with similar vectors
PHOTOS = 48


def spread_vectors(home: Path, groups: int, spread: float = 0.45) -> None:
    """Random weights mean nothing: give the photos ``groups`` families of similar vectors (each an anchor
    plus noise), in path order, so the map has islands to show and clusters to name."""
    cat = Catalog(home / "catalog.sqlite3")
    rng = np.random.default_rng(3)
    anchors = rng.standard_normal((groups, cat.dim)).astype(np.float32)
    known = cat.known_files()
    photos = sorted(cat.photos(), key=lambda p: p.path)
    for i, photo in enumerate(photos):
        v = anchors[i * groups // len(photos)] + spread * rng.standard_normal(cat.dim).astype(np.float32)
        stamp = FileStamp(photo.device, photo.inode, known[photo.path].ctime_ns)
        stored = cat.vector_by_hash(photo.content_hash)
        cat.put_photo(photo.path, photo.size, photo.mtime_ns, photo.content_hash, photo.width, photo.height,
                      photo.taken_at, v / np.linalg.norm(v), stamp, thumb=stored.thumb, capture=stored.capture)
    cat.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """48 real photos in four families of vectors, indexed once for the module, with the map laid out
    once (UMAP, and numba's first compile) and kept in the home that each test copies."""
    root = tmp_path_factory.mktemp("map")
    folder = root / "Photos"
    copy_photos(folder, 24, "kodak24")
    copy_photos(folder / "interior", 24, "pexels_interior")
    home = indexed_home(root / "home", folder)
    spread_vectors(home, GROUPS)
    lib = Library(home, "clipfind-tiny", "none")
    try:
        lib.photo_map()
    finally:
        lib.close()
    return home, folder


@pytest.fixture
def library(made: tuple[Path, Path], tmp_path: Path) -> Iterator[Library]:
    home = tmp_path / "home"
    shutil.copytree(made[0], home)
    lib = Library(home, "clipfind-tiny", "none")
    yield lib
    lib.close()


def _shown(library: Library, qtbot) -> tuple[MapView, ThumbnailCache]:
    """A map view shown in the palette of the moment, its layout done."""
    cache = ThumbnailCache(ThumbnailLoader(200))
    view = MapView(library, cache)
    qtbot.addWidget(view)
    view.resize(900, 650)
    view.show()
    qtbot.waitUntil(lambda: not view.loading, timeout=WAIT)
    return view, cache


@pytest.fixture
def view(library: Library, qtbot) -> MapView:
    view, cache = _shown(library, qtbot)
    view.canvas.repaint()
    yield view
    view.shutdown()
    cache.loader.wait()


def _at(view: MapView, row: int) -> QPointF:
    x, y = view.photo_map.xy[row].tolist()
    return view.canvas.to_screen(x, y)


def test_the_map_is_made_off_the_gui_thread_and_shows_every_photo(library: Library, qtbot,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    threads: dict[str, list[str]] = {"read": [], "layout": []}
    read, lay_out = library.map_work, MapWork.run

    def map_work(*args: object, **kwargs: object) -> MapWork:
        threads["read"].append(threading.current_thread().name)
        return read(*args, **kwargs)

    def run(work: MapWork) -> object:
        threads["layout"].append(threading.current_thread().name)
        return lay_out(work)

    library.map_work = map_work  # type: ignore[method-assign]
    monkeypatch.setattr(MapWork, "run", run)
    (library.home / MAP_FILE).unlink()  # laid out again: UMAP, on the map's own lane
    view = MapView(library, None)
    qtbot.addWidget(view)
    said: list[str] = []
    show_busy = view._busy
    view._busy = lambda text: (said.append(text), show_busy(text))[1]  # type: ignore[method-assign]
    assert view.photo_map is None, "nothing is made before the tab is shown"
    view.resize(800, 600)
    view.show()
    assert view.loading and view.busy.isVisible() and view.busy_label.isVisible()
    qtbot.waitUntil(lambda: not view.loading, timeout=WAIT)
    assert said == ["Reading the library…", f"Laying out {PHOTOS} photos…"]
    main = threading.main_thread().name
    assert threads["read"] == ["clipfind-map-library"] and threads["layout"] == ["clipfind-map"] != [main], (
        "the catalog is read on the library's lane, the layout on the map's own")
    assert not view.busy.isVisible()
    assert len(view.photo_map) == PHOTOS == library.counts().photos
    view.canvas.repaint()
    assert view.canvas.dots_drawn == PHOTOS and view.canvas.thumbs_drawn == 0, "far out: dots only"
    assert f"{PHOTOS} photos" in view.summary.text()
    clusters = view.photo_map.clusters
    assert clusters and all(c.names for c in clusters), "clusters named by the tag vocabulary"
    view.shutdown()


def test_a_refresh_drops_the_stale_map(view: MapView, qtbot) -> None:
    shown = []
    view.canvas.set_data = lambda data, keep=view.canvas.set_data: (shown.append(data), keep(data))[1]
    view.refresh()
    view.refresh()
    qtbot.waitUntil(lambda: not view.loading, timeout=WAIT)
    qtbot.wait(200)
    assert len(shown) == 1, "the first request's map was dropped"
    assert view.photo_map is shown[0].photo_map


def test_hover_names_the_file(view: MapView, qtbot) -> None:
    photo = view.photo_map.photos[3]
    at = _at(view, 3)
    assert view.canvas.hover(at) == os.path.basename(photo.path)
    view.canvas.hover(QPointF(2, 2))
    move = QMouseEvent(QEvent.Type.MouseMove, at, view.canvas.mapToGlobal(at), Qt.MouseButton.NoButton,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.canvas, move)  # QTest's moves without a button do not reach an offscreen widget
    assert view.canvas.toolTip() == os.path.basename(photo.path)
    assert view.canvas.hovered is not None
    corner = QPointF(2, 2)
    assert view.canvas.point_at(corner) is None and view.canvas.hover(corner) == ""


def test_a_click_opens_the_preview_at_that_photo(view: MapView, qtbot) -> None:
    at = _at(view, 5).toPoint()
    photo = view.photo_map.photos[view.canvas.point_at(QPointF(at))]  # where points touch: the nearest
    qtbot.mouseClick(view.canvas, Qt.MouseButton.LeftButton, pos=at)
    previews = [p for p in view.findChildren(PhotoPreview) if p.isVisible()]
    assert len(previews) == 1 and previews[0].current.path == photo.path
    assert len(previews[0].photos) == NEIGHBOURS, "←/→ step through its neighbours on the map"
    with qtbot.waitSignal(view.find_similar) as similar:
        previews[0].similar_requested.emit(photo)
    assert similar.args == [photo.path]

    # Right-click on a photo: "Find similar".
    with qtbot.waitSignal(view.canvas.point_menu) as menu_at:
        menu_event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, view.canvas.mapToGlobal(at))
        QApplication.sendEvent(view.canvas, menu_event)
    assert menu_at.args[0] == view.photo_map.photos.index(photo)
    menu = view.findChildren(QMenu)[-1]
    similar_action = next(a for a in menu.actions() if a.text() == "Find similar")
    with qtbot.waitSignal(view.find_similar) as similar:
        similar_action.trigger()
    assert similar.args == [photo.path]


def test_rectangle_and_lasso_select_exactly_the_photos_inside(view: MapView, qtbot) -> None:
    canvas = view.canvas
    sx, sy = canvas.screen_xy()
    # a rectangle around the top-left quarter of the points' span
    left, top = float(sx.min()) - 5, float(sy.min()) - 5
    right, bottom = float(np.median(sx)) + 1, float(np.median(sy)) + 1
    inside = {view.photo_map.photos[r].path for r in range(len(sx))
              if left <= sx[r] <= right and top <= sy[r] <= bottom}
    assert 0 < len(inside) < PHOTOS
    with qtbot.waitSignal(view.selection_made) as chosen:
        qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                         QPoint(round(left), round(top)))
        qtbot.mouseMove(canvas, QPoint(round((left + right) / 2), round((top + bottom) / 2)))
        qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                           QPoint(round(right), round(bottom)))
    assert {p.path for p in chosen.args[0]} == inside
    assert canvas.mode == "pan", "Shift+drag selects without leaving pan mode"

    # The lasso: a triangle; only points inside it.
    triangle = [QPointF(left, top), QPointF(right + 200, top), QPointF(left, bottom + 200)]
    expected = {view.photo_map.photos[r].path for r in np.flatnonzero(
        inside_polygon(sx, sy, [(p.x(), p.y()) for p in triangle]))}
    with qtbot.waitSignal(view.selection_made) as lassoed:
        canvas.select_lasso(triangle)
    assert {p.path for p in lassoed.args[0]} == expected

    # The same lasso drawn with the mouse in lasso mode: press, moves, release.
    canvas.mode = "lasso"
    left_button, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    with qtbot.waitSignal(view.selection_made) as drawn:
        for kind, at in ([(QEvent.Type.MouseButtonPress, triangle[0])]
                         + [(QEvent.Type.MouseMove, p) for p in triangle[1:]]
                         + [(QEvent.Type.MouseButtonRelease, triangle[-1])]):
            buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else left_button
            QApplication.sendEvent(canvas, QMouseEvent(kind, at, canvas.mapToGlobal(at), left_button, buttons, none))
    assert {p.path for p in drawn.args[0]} == expected
    canvas.mode = "pan"
    assert inside_polygon(np.array([1.0, 5.0]), np.array([1.0, 5.0]), [(0, 0), (4, 0), (0, 4)]).tolist() == [True,
                                                                                                            False]
    with qtbot.assertNotEmitted(view.selection_made):
        canvas.select_rect(QRectF(0, 0, 1, 1))  # nothing inside: said in the status line instead


def test_search_results_are_ringed(view: MapView, qtbot) -> None:
    paths = [view.photo_map.photos[r].path for r in (0, 7)]
    view.highlight(paths + ["/not/on/the/map.jpg"])
    assert sorted(view.canvas.highlighted.tolist()) == [0, 7]
    at = _at(view, 7)
    image = view.canvas.grab().toImage()
    highlight = view.canvas.palette().color(view.canvas.palette().ColorRole.Highlight)

    def ringed(image) -> int:  # noqa: ANN001
        return sum(1 for dx in range(-12, 13) for dy in range(-12, 13)
                   if _close(image.pixelColor(round(at.x()) + dx, round(at.y()) + dy), highlight))

    assert ringed(image) > 10, "a ring in the highlight colour"
    view.highlight([])
    assert view.canvas.highlighted.size == 0
    assert ringed(view.canvas.grab().toImage()) == 0


def _close(a, b) -> bool:  # noqa: ANN001
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue()) < 60


def test_zooming_in_turns_dots_into_thumbnails(view: MapView, qtbot) -> None:
    canvas = view.canvas
    assert canvas.thumbs_drawn == 0 and canvas.thumb_side() < THUMB_MIN_PX
    for _ in range(12):
        canvas.zoom_by(1.25, _at(view, 0))
        if canvas.thumb_side() >= THUMB_MIN_PX:
            break
    before = _at(view, 0)
    canvas.zoom_by(1.25, before)
    assert (_at(view, 0) - before).manhattanLength() < 0.5, "zoom keeps the point under the cursor in place"
    canvas.repaint()
    assert canvas.thumbs_drawn > 0
    row, frame = next(iter(canvas._thumb_rects.items()))
    assert canvas.point_at(frame.topLeft() + QPointF(3, 3)) == row, "a thumbnail is hit anywhere on it"
    zoom = canvas.zoom
    wheel = QWheelEvent(QPointF(300, 300), canvas.mapToGlobal(QPointF(300, 300)), QPoint(), QPoint(0, -240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, wheel)
    assert canvas.zoom == pytest.approx(zoom / 1.25 ** 2), "the wheel zooms out"
    canvas.fit()
    canvas.repaint()
    assert canvas.thumbs_drawn == 0


def _shoot_both(view: MapView, qtbot, scheme: str) -> None:
    view.canvas.fit()
    view.highlight([view.photo_map.photos[r].path for r in (0, 1)])
    shoot(view, f"map-far-{scheme}", qtbot, 300)
    cluster = max(view.photo_map.clusters, key=lambda c: c.size)
    view.canvas.zoom_to(QPointF(cluster.x, cluster.y), 14)
    view.canvas.repaint()
    assert view.canvas.thumbs_drawn > 0
    qtbot.waitUntil(lambda: not view.canvas.cache.loader._pending, timeout=20_000)
    shoot(view, f"map-zoomed-{scheme}", qtbot, 300)


def test_light_screenshots(view: MapView, qtbot) -> None:
    assert not theme.is_dark(view.palette())
    _shoot_both(view, qtbot, "light")


def test_dark_screenshots(library: Library, qtbot, dark) -> None:
    view, cache = _shown(library, qtbot)  # made after the dark palette is set
    assert theme.is_dark(view.palette())
    _shoot_both(view, qtbot, "dark")
    view.shutdown()
    cache.loader.wait()


def test_the_map_tab_in_the_window(make_window, made: tuple[Path, Path], tmp_path: Path, qtbot) -> None:
    home = tmp_path / "home"
    shutil.copytree(made[0], home)
    window = make_window(library=Library(home, "clipfind-tiny", "none"))
    wait_idle(window, qtbot)
    tabs = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert tabs == ["Search", "Duplicates", "Map"]
    assert window.map.photo_map is None, "the map is made when its tab is first shown"
    window.tabs.setCurrentWidget(window.map)
    qtbot.waitUntil(lambda: window.map.photo_map is not None and window.idle, timeout=WAIT)
    assert len(window.map.photo_map) == PHOTOS
    photo = window.map.photo_map.photos[0]

    window.map.find_similar.emit(photo.path)
    assert window.tabs.currentWidget() is window.search and window.search.query_image == photo.path
    wait_idle(window, qtbot)

    window.tabs.setCurrentWidget(window.map)
    chosen = list(window.map.photo_map.photos[:4])
    window.map.selection_made.emit(chosen)  # what a rectangle or lasso on the map emits
    assert window.tabs.currentWidget() is window.search
    shown = [h.photo.path for h in window.search.model.hits]
    assert sorted(shown) == sorted(p.path for p in chosen), "the selection is in the results grid"
    window.search.results_changed.emit([photo.path])
    assert window.map.canvas.highlighted.tolist() == [0], "the search's results are ringed on the map"

    window.tabs.setCurrentWidget(window.search)
    window._collection_changed()  # photos came or went: the map is made again (it is not on screen now)
    assert window.map.stale


def test_a_theme_switch_redraws_the_map_in_the_new_palette(view: MapView, qtbot, dark) -> None:
    """The view was made light; the app turned dark after: background, dots and names follow."""
    image = view.canvas.grab().toImage()
    assert image.pixelColor(3, 3).lightness() < 80, "the dark palette's base"
    x, y = _at(view, 0).toTuple()
    dot = image.pixelColor(round(x), round(y))
    assert dot.lightness() > 90 and dot.saturation() > 60, "a cluster's dot, bright on dark"
