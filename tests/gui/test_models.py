"""The app's models alone, without a window or a library (issue 10, item 6), as vorta tests its table models:
ResultsModel (the search grid), DupeSelection (what a duplicates clean-up takes), threshold_hint, and the
search tab's count label and date order."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap

from clipfind.records import DupeGroup, DupeMember, PhotoInfo, SearchHit
from gui.dupes_view import DupeSelection, threshold_hint
from gui.grid_view import NameRole, PixmapRole, ScoreRole
from gui.results_model import CACHE_SIZE, HitRole, ResultsModel, ThumbnailCache


class FakeLoader(QObject):
    """Stands in for ThumbnailLoader: records requests, decodes nothing until told to."""

    ready = Signal(str, QImage)

    def __init__(self) -> None:
        super().__init__()
        self.size = QSize(200, 200)
        self.requested: list[str] = []
        self.cancelled = 0

    def request(self, path: str) -> None:
        self.requested.append(path)

    def cancel_pending(self) -> None:
        self.cancelled += 1


def photo(i: int, name: str | None = None, size: int = 1000) -> PhotoInfo:
    return PhotoInfo(i, f"/pics/{name or f'p{i}.jpg'}", size, 0, f"hash{i}", 100, 100)


def hits(*scores: float) -> list[SearchHit]:
    return [SearchHit(photo(i), score) for i, score in enumerate(scores, 1)]


@pytest.fixture
def model(qtbot) -> tuple[ResultsModel, FakeLoader]:
    loader = FakeLoader()
    return ResultsModel(ThumbnailCache(loader)), loader


def test_results_model_passes_qt_model_checks(model, qtmodeltester) -> None:
    results, _ = model
    results.set_hits(hits(0.9, 0.8, 0.7))
    qtmodeltester.check(results)


def test_results_model_rows_roles_and_reset(model, qtbot) -> None:
    results, loader = model
    assert results.rowCount() == 0
    with qtbot.waitSignal(results.modelReset):
        results.set_hits(hits(0.91234, 0.5))
    assert loader.cancelled == 1  # thumbnails of the old results are not decoded any more
    assert results.rowCount() == 2 and results.rowCount(results.index(0)) == 0  # a list: no children
    first = results.index(0)
    assert first.data(Qt.ItemDataRole.DisplayRole) == "0.912  p1.jpg"
    assert first.data(Qt.ItemDataRole.ToolTipRole) == "/pics/p1.jpg\nsimilarity 0.912"
    assert first.data(HitRole) is results.hits[0]
    # the grid draws the name and the score badge from their own roles, the thumbnail uncropped
    assert first.data(NameRole) == "p1.jpg" and first.data(ScoreRole) == 0.91234
    assert isinstance(first.data(PixmapRole), QPixmap)
    assert results.data(QModelIndex()) is None and results.data(results.index(5)) is None


def test_results_model_thumbnails_load_lazily_and_update_one_row(model, qtbot) -> None:
    results, loader = model
    results.set_hits(hits(0.9, 0.8, 0.7))
    icon = results.index(1).data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(icon, QIcon) and loader.requested == ["/pics/p2.jpg"]  # only the row drawn asks
    image = QImage(40, 30, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.red)
    with qtbot.waitSignal(results.dataChanged) as changed:
        loader.ready.emit("/pics/p2.jpg", image)
    top, bottom, roles = changed.args
    assert top.row() == bottom.row() == 1 and roles == [Qt.ItemDataRole.DecorationRole]
    assert results.cache.get("/pics/p2.jpg").size() == QSize(200, 200)  # centred on a square canvas
    assert loader.requested == ["/pics/p2.jpg"]  # now cached: no second request
    with qtbot.assertNotEmitted(results.dataChanged):
        loader.ready.emit("/pics/not-a-result.jpg", image)


def test_timeline_model_updates_the_row_that_asked_without_a_map_of_every_photo(qtbot) -> None:
    from clipfind.records import Timeline
    from gui.results_model import TimelineModel

    loader = FakeLoader()
    timeline = TimelineModel(ThumbnailCache(loader))
    timeline.set_timeline(Timeline.of([(photo(i), f"2024-0{1 + i % 2}-01T00:00:00") for i in range(1, 6)]))
    assert isinstance(timeline.index(3).data(PixmapRole), QPixmap) and loader.requested == ["/pics/p4.jpg"]
    assert timeline._waiting == {"/pics/p4.jpg": 3}  # only the rows drawn, not a map of the library
    image = QImage(40, 30, QImage.Format.Format_RGB888)
    with qtbot.waitSignal(timeline.dataChanged) as changed:
        loader.ready.emit("/pics/p4.jpg", image)
    assert changed.args[0].row() == 3 and changed.args[2] == [PixmapRole] and timeline._waiting == {}
    with qtbot.assertNotEmitted(timeline.dataChanged):
        loader.ready.emit("/pics/p2.jpg", image)  # not asked for by this model


def test_thumbnail_cache_keeps_the_most_recent(qtbot) -> None:
    loader = FakeLoader()
    cache = ThumbnailCache(loader)
    image = QImage(10, 10, QImage.Format.Format_RGB888)
    for i in range(CACHE_SIZE + 1):
        loader.ready.emit(f"/p/{i}", image)
    assert cache.get("/p/0") is None and cache.get(f"/p/{CACHE_SIZE}") is not None
    loader.ready.emit("/p/broken", QImage())  # unreadable: a placeholder that says so, not a crash
    assert cache.get("/p/broken").size() == QSize(200, 200)


def near_group(tier: str = "same") -> tuple[DupeGroup, PhotoInfo, PhotoInfo, PhotoInfo]:
    """A keeper, a re-saved (same tier) or similar photo n.jpg, and a byte copy of n.jpg."""
    keeper, near, near_copy = photo(1, "k.png", 3000), photo(2, "n.jpg"), photo(3, "n copy.jpg")
    reason = ("fingerprint",) if tier == "same" else ("clip",)
    members = (DupeMember(keeper, 1.0), DupeMember(near, 0.99, reasons=reason),
               DupeMember(near_copy, 0.99, near.id, reasons=("identical",)))
    group = DupeGroup(tier, keeper, members)  # type: ignore[arg-type]
    return group, keeper, near, near_copy


def test_a_similar_shot_is_never_ticked_by_default_only_its_copies_follow_a_click() -> None:
    group, _, near, near_copy = near_group("similar")
    selection = DupeSelection()
    selection.set_groups([group])
    assert selection.selected() == [near_copy]  # a copy of a photo that stays may go; the shot is the user's pick
    selection.click(group, near, True)
    assert selection.selected() == [near, near_copy]


def identical_group(first: int) -> tuple[DupeGroup, PhotoInfo, PhotoInfo]:
    keeper, copy = photo(first, f"i{first}.png"), photo(first + 1, f"i{first} copy.png")
    return DupeGroup("identical", keeper, (DupeMember(keeper, 1.0), DupeMember(copy, 1.0, keeper.id))), keeper, copy


def test_selection_starts_from_the_suggestions_and_never_takes_a_keeper() -> None:
    group, keeper, near, near_copy = near_group()
    identical, ikeeper, icopy = identical_group(10)
    selection = DupeSelection()
    selection.set_groups([identical, group])
    assert selection.selected() == [icopy, near, near_copy]
    assert keeper not in selection.selected() and ikeeper not in selection.selected()
    selection.click(group, keeper, True)  # a keeper has no box; even a stray click cannot select it
    assert keeper not in selection.selected()


def test_selection_copies_follow_their_picture_and_a_copy_alone_only_itself() -> None:
    group, _, near, near_copy = near_group()
    selection = DupeSelection()
    selection.set_groups([group])
    selection.click(group, near, False)
    assert selection.selected() == [] and selection.choices == {near.path: False, near_copy.path: False}
    selection.click(group, near_copy, True)
    assert selection.selected() == [near_copy]


def test_selection_keeps_clicks_across_regrouping_and_forgets_trashed_photos() -> None:
    group, _, near, near_copy = near_group()
    identical, _, icopy = identical_group(10)
    selection = DupeSelection()
    selection.set_groups([identical, group])
    selection.click(identical, icopy, False)
    selection.set_groups([identical])  # a stricter slider: the near group is gone
    assert selection.selected() == [] and icopy.path in selection.choices
    selection.set_groups([identical, group])
    assert selection.selected() == [near, near_copy]  # the near group comes back with its suggestion
    selection.forget([icopy])
    assert selection.selected() == [icopy, near, near_copy]


def test_selection_counts_a_photo_in_two_groups_once() -> None:
    group, _, near, near_copy = near_group()
    again = DupeGroup("similar", photo(20), (DupeMember(photo(20), 1.0), DupeMember(near, 0.98)))
    selection = DupeSelection()
    selection.set_groups([group, again])
    assert selection.selected() == [near, near_copy]


@pytest.mark.parametrize(("value", "words"), [
    (1.0, "nearly identical"), (0.98, "nearly identical"), (0.979, "edited versions"), (0.95, "edited versions"),
    (0.949, "near-identical shots"), (0.90, "near-identical shots"), (0.899, "similar shots of the same scene"),
    (0.85, "similar shots"), (0.849, "loosely similar"), (0.80, "loosely similar"),
])
def test_threshold_hint_says_what_a_similarity_means(value: float, words: str) -> None:
    assert words in threshold_hint(value)


def test_photos_without_a_score_show_no_score(model) -> None:
    """An album or the map's photos are hits with a NaN score: the caption, tooltip and badge leave it out."""
    results, _ = model
    results.set_hits([SearchHit(photo(1, "beach.jpg"), float("nan")), *hits(0.31)])
    first, second = results.index(0), results.index(1)
    assert first.data(Qt.ItemDataRole.DisplayRole) == "beach.jpg" and first.data(ScoreRole) is None
    assert first.data(Qt.ItemDataRole.ToolTipRole) == "/pics/beach.jpg"
    assert second.data(ScoreRole) == pytest.approx(0.31) and "0.310" in second.data(Qt.ItemDataRole.DisplayRole)


def test_the_count_label_says_how_many_passed_and_which_cut_off() -> None:
    from clipfind.library import newest_first
    from clipfind.records import SearchResults
    from gui.search_view import results_text

    shown = tuple(hits(0.3, 0.29))
    assert results_text(SearchResults(shown, 2, 0.241, automatic=True), 2) == "2 photos match · weaker than 0.24 hidden"
    assert results_text(SearchResults(shown, 131, 0.2, automatic=True), 2) == (
        "2 of 131 photos match · weaker than 0.20 hidden")
    assert results_text(SearchResults(shown, 1200, None, estimated=True), 2) == "2 of about 1,200 photos match"
    assert results_text(SearchResults(shown, 5, 0.25), 2) == "2 of 5 photos match · score 0.25 or more"
    assert results_text(SearchResults(shown[:1], 1, -1.0), 1) == "1 photo matches"  # a saved "every match"
    assert results_text(SearchResults(shown, 3, None), 1, gone=2) == "1 photo matches"  # two were trashed
    assert results_text(SearchResults((), 0, 0.3, automatic=True), 0).startswith("no matching photos")
    dated = [PhotoInfo(1, "/a.jpg", 1, 0, "h1", taken_at="2019-05-01T10:00:00"),
             PhotoInfo(2, "/b.jpg", 1, 0, "h2", taken_at="2021-01-01T10:00:00"),
             PhotoInfo(3, "/c.jpg", 1, 0, "h3", taken_at="2020-01-01T10:00:00")]
    assert [p.path for p in newest_first(dated)] == ["/b.jpg", "/c.jpg", "/a.jpg"]
