"""Browsing like a photo app (issue 13, part 0): the "All photos" timeline as the start view, newest first
in months; search narrows it and clearing returns; a grid that fills the width with a size slider;
captions elided in the middle; check-mark selection with a bulk-action bar; thumbnails cached on disk;
filters that apply as they change (folder tree with counts, date presets). Screenshots, light and dark,
go to tests/artifacts/."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication

from clipfind.catalog import Catalog, to_db
from clipfind.library import Library
from gui.grid_view import GAP, MARGIN
from gui.results_model import ThumbnailCache
from gui.search_view import SearchView
from gui.workers import ThumbnailLoader
from tests.gui.conftest import Heartbeat, indexed_home, shoot_light_and_dark
from tests.helpers import copy_photos, needs_shared_data


@pytest.fixture
def make_view(qtbot):  # noqa: ANN201
    made = []

    def make(library: Library) -> SearchView:
        view = SearchView(library, ThumbnailCache(ThumbnailLoader(200)))
        qtbot.addWidget(view)
        view.resize(1100, 760)
        view.show()
        made.append(view)
        return view

    yield make
    for view in made:
        view.shutdown()
        view.tasks.shutdown()
        view.cache.loader.wait()


def _idle(view, qtbot, timeout: int = 60_000) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: view.tasks.idle and not view._filters_timer.isActive(), timeout=timeout)


def _big_home(home: Path, count: int) -> Path:
    """A catalog of ``count`` photos (rows only: no files, so every thumbnail is the unreadable placeholder)."""
    home.mkdir(parents=True)
    cat = Catalog(home / "catalog.sqlite3")
    rows = [(to_db(f"/photos/{2005 + i % 20}/trip {i % 7}/IMG_{i:06d}_a_rather_long_file_name.jpg"), 1000,
             1_300_000_000_000_000_000 + i * 10**12, f"h{i}", None if i % 3 == 0 else
             f"{2005 + i % 20}-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00", "ok", 0.0) for i in range(count)]
    with cat.transaction():
        cat._db.executemany("INSERT INTO files (path, size, mtime_ns, content_hash, taken_at, status, indexed_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        cat._db.executemany("INSERT INTO folders VALUES (?, 0)", [(to_db("/photos"),)])
    cat.close()
    return home


def test_timeline_of_100k_photos_scrolls_smoothly_in_months(make_view, tmp_path: Path, qtbot) -> None:
    library = Library(_big_home(tmp_path / "home", 100_000), "clipfind-tiny", "none")
    try:
        view = make_view(library)
        _idle(view, qtbot)
        grid, model = view.timeline, view.timeline_model
        assert view.pages.currentWidget() is grid and model.rowCount() == 100_000
        assert view.count.text() == "100000 photos"
        sections = model.sections()
        assert sections[0][0] == "December 2024" and sum(n for _, _, n in sections) == 100_000
        dates = model.timeline.dates
        assert all(dates[i] >= dates[i + 1] for i in range(0, 99_999, 97))  # newest first
        # the columns fill the width: what is left at the right is less than a gap
        right = grid.visualRect(model.index(grid.columns - 1, 0)).right()
        assert grid.viewport().width() - MARGIN - right <= GAP
        # a paint draws only the rows on screen, and scrolling through 100k photos keeps the loop responsive
        bar = grid.verticalScrollBar()
        with Heartbeat() as beat:
            for step in range(40):
                bar.setValue(bar.maximum() * step // 40)
                grid.viewport().repaint()
                qtbot.wait(5)
        assert 0 < grid.painted_rows <= grid.viewport().height() // 50 + 2
        assert beat.worst_ms < 400, f"a scroll step held the event loop {beat.worst_ms:.0f} ms"
        start = time.perf_counter()
        for _ in range(10):
            grid.viewport().repaint()
        assert (time.perf_counter() - start) / 10 < 0.1
        # the slider: larger cells, fewer columns, still filling the width
        columns = grid.columns
        view.size_slider.setValue(256)
        assert grid.columns < columns
        view.size_slider.setValue(120)
        assert grid.columns > columns
        # the keyboard walks through months: Down from the last row of a month lands in the next one
        bar.setValue(0)
        grid.setFocus()
        grid.setCurrentIndex(model.index(0, 0))
        first_month = sections[0][2]
        for _ in range(first_month // grid.columns + 2):
            qtbot.keyClick(grid, Qt.Key.Key_Down)
        assert grid.currentIndex().row() >= first_month
        qtbot.keyClick(grid, Qt.Key.Key_End)
        assert grid.currentIndex().row() == 99_999
        # filters apply as they change: a year preset narrows the timeline at once
        view.set_date_preset("2010")
        _idle(view, qtbot)
        assert 0 < model.rowCount() < 100_000
        assert all(d.startswith("2010") for d in model.timeline.dates)
        view.date_from.selectAll()
        qtbot.keyClicks(view.date_from, "2011-06")  # typed: June 2011 to the end of 2010's preset range
        view.date_to.selectAll()
        qtbot.keyClicks(view.date_to, "2012")
        _idle(view, qtbot)
        assert model.timeline.dates[0].startswith("2012-12") and model.timeline.dates[-1] >= "2011-06-01"
        view.set_date_preset("Any time")
        _idle(view, qtbot)
        assert model.rowCount() == 100_000
        bar.setValue(0)
        shoot_light_and_dark(view, "timeline-100k", qtbot)
    finally:
        library.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Photos over three months, one a subfolder, each dated by its file time."""
    path = tmp_path / "Photos"
    copy_photos(path, 6, "kodak24")
    copy_photos(path / "Holiday at the seaside with the family", 4, "pexels_interior")
    for i, photo in enumerate(sorted(path.rglob("*.*"))):
        when = time.mktime((2024, 1 + i % 3, 10 + i, 12, 0, 0, 0, 0, -1))
        os.utime(photo, (when, when))
    long_name = path / "Holiday at the seaside with the family" / "a very long file name from a phone camera 0001.jpg"
    next(p for p in long_name.parent.iterdir()).rename(long_name)
    return path


@needs_shared_data
def test_timeline_search_selection_and_disk_thumbnails(make_view, folder: Path, tmp_path: Path, qtbot,
                                                       trash_home: Path, monkeypatch) -> None:
    home = indexed_home(tmp_path / "home", folder)
    library = Library(home, "clipfind-tiny", "none")
    try:
        view = make_view(library)
        view.set_folders(library.folders())
        _idle(view, qtbot)
        grid, model = view.timeline, view.timeline_model
        assert view.pages.currentWidget() is grid  # the start view once a library exists
        assert [m.label for m in model.timeline.months] == ["March 2024", "February 2024", "January 2024"]
        # the folder filter is a tree with counts
        labels = [view.folder.itemText(i) for i in range(view.folder.count())]
        assert labels[1] == f"{folder}  (10)" and labels[2].strip() == "Holiday at the seaside with the family  (4)"
        view.folder.setCurrentIndex(2)  # applies as it changes, no button
        _idle(view, qtbot)
        assert model.rowCount() == 4
        view.folder.setCurrentIndex(0)
        _idle(view, qtbot)
        assert model.rowCount() == 10

        # thumbnails are decoded once and kept in the home
        qtbot.waitUntil(lambda: len(list((home / "thumbs").rglob("*.jpg"))) == 10, timeout=60_000)
        shoot_light_and_dark(view, "timeline", qtbot)
        again = make_view(library)  # a second start: thumbnails come from the disk cache
        _idle(again, qtbot)
        again.timeline.viewport().repaint()
        qtbot.waitUntil(lambda: again.grid_cache.loader.disk.hits >= 10, timeout=30_000)
        assert again.grid_cache.loader.disk.misses == 0
        again.close()

        # the caption is elided in the middle: the start and the end of a long name show
        row = next(i for i, p in enumerate(model.photos) if "very long" in p.path)
        grid.scrollTo(model.index(row, 0))
        rect = grid.visualRect(model.index(row, 0))
        elided = grid.fontMetrics().elidedText(model.index(row, 0).data(Qt.ItemDataRole.DisplayRole),
                                               Qt.TextElideMode.ElideMiddle, rect.width() - 4)
        assert elided.startswith("a very") and elided.endswith("0001.jpg") and "…" in elided

        # search narrows to results, with the score as a badge; clearing returns to the timeline
        qtbot.keyClicks(view.text, "a red barn")
        qtbot.keyClick(view.text, Qt.Key.Key_Return)
        _idle(view, qtbot)
        assert view.pages.currentWidget() is view.grid and view.model.rowCount() == 10
        shoot_light_and_dark(view, "timeline-search-results", qtbot)
        view.text.clear()
        assert view.pages.currentWidget() is grid and view.count.text() == "10 photos"

        # selection: a click on the round mark adds one photo, the bar counts them and acts on them all
        assert not view.selection_bar.isVisible()
        for r in (0, 2):
            mark = grid.visualRect(model.index(r, 0)).topLeft() + QPoint(12, 12)
            grid.viewport().update()
            qtbot.mouseMove(grid.viewport(), mark)
            qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=mark)
        assert view.selection_bar.isVisible() and view.selected_label.text() == "2 photos selected"
        shoot_light_and_dark(view, "timeline-selection", qtbot)
        view.bulk_buttons["copy"].click()
        chosen = [model.photos[0].path, model.photos[2].path]
        assert QGuiApplication.clipboard().text().splitlines() == chosen

        monkeypatch.setattr("gui.search_view.confirm_trash", lambda parent, photos: len(photos) == 2)
        view.bulk_buttons["trash"].click()
        qtbot.waitUntil(lambda: view.tasks.idle and model.rowCount() == 8 and not view._filters_timer.isActive(),
                        timeout=30_000)
        assert not any(Path(p).exists() for p in chosen) and len(list(trash_home.rglob("*.*"))) >= 2
        assert library.photo_by_path(chosen[0]) is None

        grid.selectionModel().select(model.index(1, 0), grid.selectionModel().SelectionFlag.Select)
        view.bulk_buttons["similar"].click()  # find similar: the selected photo's neighbours, in the results
        _idle(view, qtbot)
        assert view.pages.currentWidget() is view.grid and view.query_image == model.photos[1].path
        assert view.model.rowCount() == 7  # itself left out
    finally:
        library.close()


def test_dates_accept_typing(qtbot) -> None:
    from PySide6.QtCore import QDate

    from gui.filters import DateField, parse_date

    assert parse_date("2019-03-04") == QDate(2019, 3, 4) == parse_date("20190304") == parse_date("4.3.2019")
    assert parse_date("2019/3/4") == QDate(2019, 3, 4)
    assert parse_date("2019") == QDate(2019, 1, 1) and parse_date("2019", end=True) == QDate(2019, 12, 31)
    assert parse_date("2020-02", end=True) == QDate(2020, 2, 29)
    assert parse_date("2019-13-01") is None and parse_date("yesterday") is None and parse_date("2019-02-30") is None
    field = DateField(QDate(2025, 12, 6), end=True)
    qtbot.addWidget(field)
    field.show()
    changed: list[QDate] = []
    field.dateChanged.connect(changed.append)
    field.selectAll()
    qtbot.keyClicks(field, "2019-03-04")  # what QDateEdit turned into 2025-03-04
    assert field.date() == QDate(2019, 3, 4) and changed[-1] == QDate(2019, 3, 4)
    field.selectAll()
    qtbot.keyClicks(field, "2018")
    field.editingFinished.emit()
    assert field.date() == QDate(2018, 12, 31) and field.text() == "2018-12-31"
