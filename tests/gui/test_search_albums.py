"""The search tab's tags, albums, saved searches, sort and relevance cut-off (issue 13, parts 2 and 3, in
the app), the photos another tab hands over (``show_photos``), and the tab at 640 px.

Random weights say nothing, so the library here holds real photo files with constructed vectors and a
text encoder that knows a few prompts as basis vectors (as tests/test_tags.py does): screenshots,
receipts, dogs and beaches get their tags, the rest get none. Every Library call is checked to run off
the GUI thread. Screenshots, light and dark, go to tests/artifacts/.
"""

from __future__ import annotations

import math
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QGuiApplication

from clipfind.library import Library
from clipfind.tags import load_vocabulary
from gui.results_model import ThumbnailCache
from gui.search_view import SearchView
from gui.tasks import on_gui_thread
from gui.workers import ThumbnailLoader
from tests.gui.conftest import shoot, shoot_light_and_dark
from tests.helpers import copy_photos, needs_shared_data

DIM = 32
TAGGED = {"screenshots": 1, "receipts": 2, "dog": 3, "beach": 4}  # tag -> the basis vector of its prompt
QUERIES = {"dog": 3, "a dog": 3, "beach": 4, "a receipt": 2}  # what a test types -> its basis vector
KINDS = ["screenshot"] * 4 + ["receipt"] * 3 + ["dog"] * 6 + ["dogbeach"] + ["beach"] * 2 + ["other"] * 44
CORE_CALLS = ("search_results", "tag_albums", "tag_album", "saved_searches", "save_search", "run_saved_search",
              "delete_saved_search", "timeline", "folder_tree", "photos", "trash", "vocabulary")

pytestmark = needs_shared_data


def basis(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def _vector(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Tagged kinds lean on their tag's prompt well above "a photo" (basis 0); the others lie on axes no
    prompt uses, with a little of "dog" each, so a query's scores have a bulk and a tail."""
    noise = np.zeros(DIM, np.float32)
    noise[25:31] = rng.standard_normal(6).astype(np.float32)
    noise *= 0.4 / np.linalg.norm(noise)
    weights = {"screenshot": {1: 0.9, 0: 0.3}, "receipt": {2: 0.9, 0: 0.25}, "dog": {3: 0.8, 0: 0.3},
               "dogbeach": {3: 0.6, 4: 0.5, 0: 0.2}, "beach": {4: 0.85, 0: 0.3}}.get(kind, {})
    v = noise + sum((w * basis(i) for i, w in weights.items()), np.zeros(DIM, np.float32))
    if not weights:
        noise *= 2.2
        v = noise
        v[3] = rng.normal(0.05, 0.04)
        v[0] = 0.3
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def tagged_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Library]:
    """60 photo files (copies of 12 real ones) with constructed vectors, dated over 15 years."""
    sources = copy_photos(tmp_path / "sources", 12, "kodak24")
    folder = tmp_path / "Photos"
    folder.mkdir()
    library = Library(tmp_path / "home", "clipfind-tiny", "none")
    vocab = load_vocabulary(library.home)
    fixed = {vocab.find(tag).prompt: basis(i) for tag, i in TAGGED.items()}
    fixed["a photo"] = basis(0)
    fixed.update({q: basis(i) for q, i in QUERIES.items()})
    others = {p.prompt: basis(5 + n % 20) for n, p in enumerate(vocab.phrases) if p.prompt not in fixed}

    def encode(texts: list[str]) -> np.ndarray:
        return np.stack([fixed.get(t, others.get(t, basis(31))) for t in texts]).astype(np.float32)

    monkeypatch.setattr(library, "_encode_texts", encode)
    library.catalog.bind_model(library.spec.identity, DIM, library.spec.name, None)
    library.catalog.add_folder(str(folder))
    rng = np.random.default_rng(7)
    for i, kind in enumerate(KINDS):
        source = sources[i % len(sources)]
        path = folder / f"{kind}_{i:02d}{source.suffix}"
        shutil.copy2(source, path)
        taken = f"{2010 + (i * 7) % 15}-{1 + i % 12:02d}-15T12:00:00"
        library.catalog.put_photo(str(path), path.stat().st_size, path.stat().st_mtime_ns, f"h{i}", 768, 512,
                                  taken, _vector(kind, rng))
    yield library
    library.close()


@pytest.fixture
def off_gui_thread(tagged_library: Library, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Library calls made on the GUI thread (the test asserts there are none)."""
    wrong: list[str] = []
    for name in CORE_CALLS:
        real = getattr(tagged_library, name)

        def watched(*args: object, _real: Callable = real, _name: str = name, **kwargs: object) -> object:
            if on_gui_thread() or threading.current_thread() is threading.main_thread():
                wrong.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(tagged_library, name, watched)
    return wrong


@pytest.fixture
def view(qtbot, tagged_library: Library, off_gui_thread: list[str]) -> Iterator[SearchView]:
    made = SearchView(tagged_library, ThumbnailCache(ThumbnailLoader(200)))
    qtbot.addWidget(made)
    made.resize(1100, 760)
    made.show()
    made.set_folders(tagged_library.folders())
    _idle(made, qtbot)
    yield made
    made.shutdown()
    made.tasks.shutdown()
    made.cache.loader.wait()
    assert off_gui_thread == [], f"Library calls on the GUI thread: {off_gui_thread}"


def _idle(view: SearchView, qtbot, timeout: int = 60_000) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: view.tasks.idle and not view._filters_timer.isActive(), timeout=timeout)


def _search(view: SearchView, qtbot, text: str) -> None:  # noqa: ANN001
    view.text.setText(text)
    qtbot.keyClick(view.text, Qt.Key.Key_Return)
    _idle(view, qtbot)


def _click_album(view: SearchView, qtbot, kind: str, key: str = "") -> None:  # noqa: ANN001
    panel = view.albums
    row = next(r for r in range(panel.list.count())
               if panel.list.item(r).data(Qt.ItemDataRole.UserRole + 1) == (kind, key))
    rect = panel.list.visualItemRect(panel.list.item(row))
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    _idle(view, qtbot)


def _names(view: SearchView) -> list[str]:
    return [Path(h.photo.path).stem.rsplit("_", 1)[0] for h in view.model.hits]


def test_tag_albums_list_clean_up_first_and_show_their_photos(view: SearchView, qtbot) -> None:
    entries = view.albums.items()
    assert entries[0][:2] == ("all", "")
    tags = [(key, text) for kind, key, text in entries if kind == "tag"]
    assert tags == [("screenshots", "Screenshots (4)"), ("receipts", "Receipts (3)"),
                    ("dog", "Dog (7)"), ("beach", "Beach (3)")]
    changed: list[list[str]] = []
    view.results_changed.connect(changed.append)
    _click_album(view, qtbot, "tag", "screenshots")
    assert view.pages.currentWidget() is view.grid and _names(view) == ["screenshot"] * 4
    assert view.count.text() == "Screenshots · 4 photos"
    assert view.tag_chip.isVisible() and view.tag_chip.text() == "Screenshots"
    assert changed[-1] == [h.photo.path for h in view.model.hits]
    assert all(math.isnan(h.score) for h in view.model.hits)  # an album has no score: no badge
    view.grid.setFocus()
    shoot_light_and_dark(view, "tag-albums", qtbot)
    # the album narrows with the dates, as a search does, and widens back
    view.date_from.setDate(QDate(2100, 1, 1))
    view.date_to.setDate(QDate(2100, 12, 31))
    view.use_dates.setChecked(True)
    qtbot.waitUntil(lambda: view.model.rowCount() == 0, timeout=10_000)
    view.use_dates.setChecked(False)
    qtbot.waitUntil(lambda: view.model.rowCount() == 4, timeout=10_000)
    assert view.showing == ("tag", "screenshots") and _names(view) == ["screenshot"] * 4

    # a query within the album: only screenshots, however well other photos match
    _search(view, qtbot, "dog")
    assert view.model.hits and set(_names(view)) == {"screenshot"}
    # the chip removes the tag: the same query over every photo, dogs first
    view.tag_chip.click()
    _idle(view, qtbot)
    assert view.tag is None and not view.tag_chip.isVisible()
    assert set(_names(view)[:7]) == {"dog", "dogbeach"}
    # the tag menu beside the search bar narrows again, to the tag picked
    action = next(a for a in view.tag_menu.actions() if a.text().startswith("Beach"))
    action.trigger()
    _idle(view, qtbot)
    assert view.tag == "beach" and set(_names(view)) <= {"beach", "dogbeach"} and "dogbeach" in _names(view)
    # "All photos": no tag, no query, the timeline
    _click_album(view, qtbot, "all")
    assert view.pages.currentWidget() is view.timeline and view.tag is None and not view.text.text()
    assert changed[-1] == []


def test_the_cut_off_hides_weak_matches_and_sort_orders_by_date(view: SearchView, qtbot) -> None:
    _search(view, qtbot, "dog")
    results = view._results
    assert results is not None and results.automatic and results.cutoff is not None
    assert results.passed == 7 and set(_names(view)) == {"dog", "dogbeach"}
    assert view.count.text() == f"7 photos match · weaker than {results.cutoff:.2f} hidden"
    shoot_light_and_dark(view, "search-results", qtbot)

    view.weaker.setChecked(True)  # every match, best first: the search runs again at once
    _idle(view, qtbot)
    assert view._results.cutoff is None and view._results.passed == 60 and view.model.rowCount() == 60
    assert view.count.text() == "60 photos match"
    assert set(_names(view)[:7]) == {"dog", "dogbeach"}
    view.weaker.setChecked(False)
    _idle(view, qtbot)
    assert view.model.rowCount() == 7

    view.sort.setCurrentIndex(view.sort.findData("date"))  # applies at once
    _idle(view, qtbot)
    dates = [h.photo.taken_at for h in view.model.hits]
    assert len(dates) == 7 and dates == sorted(dates, reverse=True)
    view.sort.setCurrentIndex(view.sort.findData("score"))
    _idle(view, qtbot)
    scores = [h.score for h in view.model.hits]
    assert scores == sorted(scores, reverse=True)


def test_saved_searches_are_saved_listed_run_and_deleted(view: SearchView, qtbot, monkeypatch) -> None:
    assert not view.albums.save_button.isEnabled()  # nothing to save yet
    _search(view, qtbot, "dog")
    assert view.albums.save_button.isEnabled()
    monkeypatch.setattr("gui.search_view.QInputDialog.getText", lambda *a, **k: ("Good dogs", True))
    view.albums.save_button.click()
    _idle(view, qtbot)
    assert ("saved", "Good dogs", "Good dogs") in view.albums.items()
    saved = view.albums.saved  # as the Library answered (the test's own calls would be on the GUI thread)
    assert [(s.name, s.min_score) for s in saved] == [("Good dogs", None)]  # the automatic cut-off
    view.weaker.setChecked(True)  # saved again with every match: a least score of -1
    _idle(view, qtbot)
    view.albums.save_button.click()
    _idle(view, qtbot)
    assert [(s.name, s.min_score) for s in view.albums.saved] == [("Good dogs", -1.0)]
    view.weaker.setChecked(False)
    _idle(view, qtbot)

    _click_album(view, qtbot, "all")
    assert view.pages.currentWidget() is view.timeline and not view.text.text()
    _click_album(view, qtbot, "saved", "Good dogs")  # its query back in the bar, its photos in the grid
    assert view.text.text() == "dog" and view.pages.currentWidget() is view.grid
    assert view.model.rowCount() == 60 and view.weaker.isChecked()
    assert view.count.text() == "Good dogs: 60 photos match"
    assert view.albums.current() == ("saved", "Good dogs")
    shoot_light_and_dark(view, "saved-search", qtbot)

    view.albums.delete_requested.emit("Good dogs")  # the list's context menu
    _idle(view, qtbot)
    assert view.albums.saved == []
    assert not [e for e in view.albums.items() if e[0] == "saved"]
    assert view.albums.current() == ("all", "") and view.count.text() == "60 photos match"


def test_show_photos_for_the_map_tab_and_the_grid_actions_on_them(view: SearchView, qtbot) -> None:
    changed: list[list[str]] = []
    view.results_changed.connect(changed.append)
    photos = [p for p in view.timeline_model.photos if "receipt" in p.path]
    view.show_photos(photos, "Around Paris")
    assert view.pages.currentWidget() is view.grid and view.count.text() == "Around Paris · 3 photos"
    assert changed == [[p.path for p in photos]]
    assert view.model.index(0, 0).data(Qt.ItemDataRole.DisplayRole) == Path(photos[0].path).name
    view.grid.selectAll()
    view.bulk_buttons["copy"].click()
    assert QGuiApplication.clipboard().text().splitlines() == [p.path for p in photos]
    view.sort.setCurrentIndex(view.sort.findData("date"))  # photos handed over sort too
    dates = [h.photo.taken_at for h in view.model.hits]
    assert dates == sorted(dates, reverse=True)
    view.grid.clearSelection()
    view.grid.selectionModel().select(view.model.index(0, 0), view.grid.selectionModel().SelectionFlag.Select)
    first = view.model.hits[0].photo.path
    view.bulk_buttons["similar"].click()  # find similar works on them as on any result
    _idle(view, qtbot)
    assert view.query_image == first and view.model.rowCount() > 0
    assert first not in [h.photo.path for h in view.model.hits]
    view.clear()
    assert view.pages.currentWidget() is view.timeline and changed[-1] == []


def test_the_search_tab_lays_out_at_640_px(view: SearchView, qtbot) -> None:
    _search(view, qtbot, "dog")
    view.set_tag("dog")  # the chip in the bar as well
    _idle(view, qtbot)
    view.resize(640, 700)
    qtbot.wait(50)
    assert view.minimumSizeHint().width() <= 640
    assert not view.albums.isVisible()  # folded away in a narrow window; the Albums button opens it
    assert view.filters_row.height() > view.sort.height() * 1.5  # the filters wrapped into two rows
    shoot(view, "search-640-light", qtbot, 800)
    view.albums_button.click()
    qtbot.wait(50)
    assert view.albums.isVisible() and view.minimumSizeHint().width() <= 640
    for widget in (view.text, view.tag_chip, view.weaker, view.count, view.grid):
        assert widget.visibleRegion().boundingRect().width() >= min(widget.sizeHint().width(), 80)
    shoot(view, "search-640-albums-light", qtbot, 300)


def test_finding_tags_shows_while_the_core_tags_the_library(view: SearchView, qtbot, monkeypatch,
                                                            tagged_library: Library) -> None:
    release = threading.Event()
    real = tagged_library.tag_albums
    monkeypatch.setattr(tagged_library, "tag_albums", lambda: release.wait(10) and real())
    view.refresh_albums()  # what the window calls after indexing
    qtbot.waitUntil(lambda: view.albums.note.isVisible(), timeout=5000)
    assert view.albums.note.text() == "Finding tags…"
    view.text.setText("dog")  # the GUI answers meanwhile
    assert view.albums.save_button.isEnabled()
    release.set()
    _idle(view, qtbot)
    assert not view.albums.note.isVisible() and len([e for e in view.albums.items() if e[0] == "tag"]) == 4


def test_the_selection_bar_wraps_at_640_px(view: SearchView, qtbot) -> None:
    view.resize(640, 700)
    qtbot.wait(50)
    grid, model = view.timeline, view.timeline_model
    for row in (0, 1):
        grid.selectionModel().select(model.index(row, 0), grid.selectionModel().SelectionFlag.Select)
    qtbot.wait(50)
    assert view.selection_bar.isVisible() and view.selected_label.text() == "2 photos selected"
    clear = view.selection_bar.findChildren(type(view.bulk_buttons["copy"]))[-1]
    assert clear.geometry().right() <= view.selection_bar.width()  # wrapped, not cut off
    assert view.minimumSizeHint().width() <= 640
    shoot(view, "search-640-selection-light", qtbot, 500)
