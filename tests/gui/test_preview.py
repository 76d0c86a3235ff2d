"""The photo preview (gui/preview.py): fitted to its window, ←/→, 100 %, fullscreen, quick look, find
similar and trash as signals, decoding off the GUI thread; light and dark screenshots."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QListWidget

from clipfind.records import PhotoInfo
from gui import preview as preview_module
from gui import theme
from gui.preview import FIT_SIDE, PhotoPreview, install_quick_look
from tests.gui.conftest import shoot


def _photo(path: Path, number: int) -> PhotoInfo:
    with Image.open(path) as image:
        width, height = image.size
    return PhotoInfo(number, str(path), path.stat().st_size, 0, f"h{number}", width, height, "2024-05-01T10:00:00")


@pytest.fixture
def photos(tmp_path: Path) -> list[PhotoInfo]:
    """Three made-up photos of different shapes and colours, one 3000 px wide (more than a fitted preview)."""
    made = []
    for number, (size, colour) in enumerate([((3000, 2000), (200, 60, 40)), ((600, 900), (40, 120, 200)),
                                              ((800, 800), (60, 160, 80))]):
        path = tmp_path / f"photo-{number}.jpg"
        image = Image.new("RGB", size, colour)
        for x in range(0, size[0], 50):  # stripes: a photo with detail, not one flat colour
            image.paste((240, 240, 240), (x, 0, x + 4, size[1]))
        image.save(path, quality=90)
        made.append(_photo(path, number))
    return made


def _open(photos: list[PhotoInfo], qtbot, index: int = 0) -> PhotoPreview:
    view = PhotoPreview(photos, index)
    qtbot.addWidget(view)
    view.resize(900, 640)
    view.show()
    qtbot.waitUntil(lambda: view.loaded, timeout=10_000)
    return view


def test_the_photo_fits_its_window_and_steps_through_the_results(photos, qtbot) -> None:
    view = _open(photos, qtbot)
    canvas = view.image
    assert canvas.pixmap() is not None and max(canvas.pixmap().width(), canvas.pixmap().height()) <= FIT_SIDE
    assert canvas.natural == QSize(3000, 2000)
    fitted = canvas.target()
    assert fitted.width() <= canvas.width() and fitted.height() <= canvas.height()
    assert fitted.width() == canvas.width() or fitted.height() == canvas.height()  # touches two sides
    view.resize(600, 500)
    qtbot.waitUntil(lambda: canvas.width() <= 600)
    assert canvas.target().width() <= canvas.width() < fitted.width()  # scales down with its window
    assert view.position.text() == "1 / 3" and not view.previous_button.isEnabled()
    title = view.title.text()  # the long temporary path, cut in the middle: the file's name stays
    assert "…" in title and title.endswith("photo-0.jpg") and title.startswith("/")
    assert view.title.fontMetrics().horizontalAdvance(title) <= view.title.width()
    shoot(view, "preview-light", qtbot, 200)

    seen: list[PhotoInfo] = []
    view.current_changed.connect(seen.append)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.index == 1 and view.position.text() == "2 / 3" and seen == [photos[1]]
    qtbot.waitUntil(lambda: view.loaded, timeout=10_000)
    assert canvas.natural == QSize(600, 900)
    assert canvas.target().width() <= 600  # a small photo is not enlarged past 100 %
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Right)  # the last one: stays
    assert view.index == 2 and not view.next_button.isEnabled()
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.index == 1 and view.windowTitle() == "photo-1.jpg"


def test_zoom_to_100_percent_and_back(photos, qtbot) -> None:
    view = _open(photos, qtbot)
    canvas = view.image
    fitted = canvas.target().size()
    qtbot.keyClick(view, Qt.Key.Key_Z)
    assert canvas.actual and view.zoom_button.isChecked() and canvas.target().size() == QSize(3000, 2000)
    qtbot.waitUntil(lambda: canvas.pixmap().width() == 3000, timeout=10_000)  # the full-size decode arrived
    centre = canvas.target()
    canvas.pan(200, 0)
    assert canvas.target().left() < centre.left()  # dragging moves the view over the photo
    canvas.pan(100_000, 100_000)
    assert canvas.target().right() >= canvas.width() - 1 and canvas.target().bottom() >= canvas.height() - 1
    view.zoom_button.click()  # the button does the same as the key
    assert not canvas.actual and canvas.target().size() == fitted


def test_fullscreen_and_escape(photos, qtbot) -> None:
    view = _open(photos, qtbot)
    qtbot.keyClick(view, Qt.Key.Key_F)
    qtbot.waitUntil(view.isFullScreen)
    assert not view.bar.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # leaves fullscreen, keeps the preview open
    qtbot.waitUntil(lambda: not view.isFullScreen())
    assert view.isVisible() and view.bar.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_F11)
    qtbot.waitUntil(view.isFullScreen)
    view.fullscreen_button.click()
    qtbot.waitUntil(lambda: not view.isFullScreen())


def test_find_similar_and_trash_are_signals_and_the_preview_follows_what_is_left(photos, qtbot) -> None:
    view = _open(photos, qtbot, index=1)
    similar: list[PhotoInfo] = []
    trashed: list[PhotoInfo] = []
    view.similar_requested.connect(similar.append)
    view.trash_requested.connect(trashed.append)
    view.similar_button.click()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert similar == [photos[1]] and trashed == [photos[1]]
    view.set_photos([photos[0], photos[2]])  # the opener moved it: the next one takes its place
    assert view.current == photos[2] and view.position.text() == "2 / 2"
    view.set_photos([])
    assert not view.isVisible()


def test_decoding_does_not_hold_the_window_and_an_unreadable_file_says_so(photos, tmp_path: Path, qtbot,
                                                                          monkeypatch) -> None:
    real = preview_module.thumbnail

    def slow(path: str, side: int):  # noqa: ANN202
        time.sleep(0.5)
        return real(path, side)

    monkeypatch.setattr(preview_module, "thumbnail", slow)
    started = time.perf_counter()
    view = PhotoPreview(photos, 0)
    qtbot.addWidget(view)
    view.show()
    assert time.perf_counter() - started < 0.4  # the window opened before the decode ended
    assert view.image.text() == "Loading…" and not view.loaded and view.busy.isVisible()
    qtbot.waitUntil(lambda: view.loaded, timeout=10_000)
    assert view.image.text() == "" and not view.busy.isVisible()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    view.set_photos([*photos, PhotoInfo(9, str(broken), 11, 0, "x")])
    view.show_index(3)
    qtbot.waitUntil(lambda: view.loaded, timeout=10_000)
    assert view.image.text() == "This photo cannot be shown." and view.image.pixmap() is None


def test_space_opens_quick_look_from_a_list_and_closes_it(photos, qtbot) -> None:
    grid = QListWidget()
    qtbot.addWidget(grid)
    grid.addItems([p.path for p in photos])
    grid.setCurrentRow(2)
    opened: list[PhotoPreview] = []

    def look() -> None:
        view = PhotoPreview(photos, grid.currentRow(), grid)
        opened.append(view)
        view.show()

    install_quick_look(grid, look)
    grid.show()
    grid.setFocus()
    qtbot.waitUntil(grid.hasFocus)
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    assert len(opened) == 1 and opened[0].index == 2
    qtbot.waitUntil(lambda: opened[0].loaded, timeout=10_000)
    qtbot.keyClick(opened[0], Qt.Key.Key_Space)
    assert not opened[0].isVisible()


def test_dark_screenshot(photos, qtbot, dark) -> None:
    view = _open(photos, qtbot, index=1)
    assert theme.is_dark(view.palette())
    shoot(view, "preview-dark", qtbot, 200)


def test_preview_over_a_large_timeline_takes_its_photos_without_asking_every_row(photos, qtbot) -> None:
    """Opening the preview from All photos used to ask the model for every row's hit on the GUI thread
    (1.1 s at 100k photos): it now takes the model's own sequence, and trash asks for the one photo."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QWidget

    from clipfind.records import Timeline
    from gui.preview import preview_results
    from gui.results_model import ThumbnailCache, TimelineModel

    class Loader(QObject):
        ready = Signal(str, QImage)
        size = QSize(200, 200)

        def request(self, path: str) -> None:
            pass

        def cancel_pending(self) -> None:
            pass

    class Counting(TimelineModel):
        asked = 0

        def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # noqa: ANN001, ANN202
            Counting.asked += 1
            return super().data(index, role)

    class View(QWidget):
        photos_trashed = Signal()

        def __init__(self) -> None:
            super().__init__()
            self.trashed: list = []

        def set_query_image(self, path: str) -> None:
            pass

        def trash(self, hits: list) -> None:
            self.trashed.extend(hits)

    many = [*photos, *(PhotoInfo(10 + i, f"/nowhere/{i}.jpg", 1, 0, f"x{i}") for i in range(100_000))]
    model = Counting(ThumbnailCache(Loader()))
    model.set_timeline(Timeline.of([(p, "2024-05-01T10:00:00") for p in many]))
    view = View()
    qtbot.addWidget(view)
    from clipfind.records import SearchHit

    preview = preview_results(view, model, SearchHit(photos[1], float("nan")))
    qtbot.waitUntil(lambda: preview.loaded, timeout=10_000)
    assert preview.index == 1 and len(preview.photos) == len(many) and preview.current == photos[1]
    assert Counting.asked == 0
    preview.trash_requested.emit(photos[1])
    assert [h.photo for h in view.trashed] == [photos[1]]
    preview.close()
    qtbot.wait(200)  # its deletion handled while the test's model and view are still alive
