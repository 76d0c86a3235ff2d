"""The duplicates review screen of issue 11 (sections 2-5, app side): table mode sharing the cards' selection,
Mark menus, "Keep this one", Compare, notes for protected photos and for metadata the keeper lacks, the
ignore-list manager, keeper rules, decisions saved as they are made, groups updated in place after a
trash, and its undo.

Against a stand-in Library that records every call and the thread it ran on (a Library call on the GUI
thread fails the test), so the screen is tested on groups the core rarely produces on a test disk
(protected members, metadata the keeper lacks, hundreds of groups); the end-to-end tests with real photos
and a real Library are in test_dupes_view.py.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from clipfind.records import (
    DupeGroup, DupeMember, KeeperRules, NotDuplicatesMark, PhotoInfo, RestoreReport, TrashBatch, TrashReport,
)
from gui.tasks import on_gui_thread
from tests.gui.conftest import shoot


def _photo(i: int, path: str, size: int = 1000, **kw) -> PhotoInfo:  # noqa: ANN003
    return PhotoInfo(i, path, size, 0, f"hash{i}", 640, 480, **kw)


class FakeLibrary:
    """Answers the facade calls the duplicates view makes, from clusters of photos; records each call."""

    def __init__(self, clusters: list[tuple[str, list[PhotoInfo]]], protect: Sequence[str] = (),
                 lacks: Mapping[int, tuple[str, ...]] | None = None) -> None:
        self.clusters = clusters
        self.rules = KeeperRules(protect=tuple(protect))
        self.lacks = dict(lacks or {})
        self.saved: dict[str, bool] = {}
        self.calls: list[tuple[str, object]] = []
        self.trashed: set[int] = set()
        self.marks: list[NotDuplicatesMark] = []
        self.wrong_thread: list[str] = []
        self.restore_notices: list[str] = []

    def _called(self, name: str, arg: object = None) -> None:
        if on_gui_thread() or threading.current_thread() is threading.main_thread():
            self.wrong_thread.append(name)
        self.calls.append((name, arg))

    def named(self, name: str) -> list[object]:
        return [arg for called, arg in self.calls if called == name]

    def duplicates(self, threshold: float) -> list[DupeGroup]:
        self._called("duplicates", threshold)
        hidden = {p.id for m in self.marks for p in m.photos}
        groups = []
        for tier, photos in self.clusters:
            alive = [p for p in photos if p.id not in self.trashed and p.id not in hidden]
            if len(alive) < 2:
                continue
            keeper = next((p for p in alive if p.path in self.rules.keep), None) or next(
                (p for p in alive if self.rules.is_protected(p.path)), alive[0])
            others = [p for p in alive if p is not keeper]
            members = (DupeMember(keeper, 1.0), *(
                DupeMember(p, 0.97 if tier == "similar" else 1.0, reasons=("clip",) if tier == "similar" else
                           ("fingerprint",), protected=self.rules.is_protected(p.path),
                           keeper_lacks=self.lacks.get(p.id, ())) for p in others))
            groups.append(DupeGroup(tier, keeper, members))  # type: ignore[arg-type]
        return sorted(groups, key=lambda g: ("identical", "same", "similar").index(g.tier))  # as the core: by tier

    def choices(self) -> dict[str, bool]:
        self._called("choices")
        return dict(self.saved)

    def save_choices(self, changes: Mapping[str, bool]) -> None:
        self._called("save_choices", dict(changes))
        self.saved.update(changes)

    def clear_choices(self) -> None:
        self._called("clear_choices")
        self.saved.clear()

    def keeper_rules(self) -> KeeperRules:
        self._called("keeper_rules")
        return self.rules

    def set_keeper_rules(self, rules: KeeperRules) -> None:
        self._called("set_keeper_rules", rules)
        self.rules = rules

    def keep_this(self, photo: PhotoInfo) -> None:
        self._called("keep_this", photo)
        self.rules = replace(self.rules, keep=(*self.rules.keep, photo.path))

    def unkeep(self, photo: PhotoInfo) -> None:
        self._called("unkeep", photo)
        self.rules = replace(self.rules, keep=tuple(p for p in self.rules.keep if p != photo.path))

    def mark_not_duplicates(self, photos: Sequence[PhotoInfo], tier: str | None = None) -> None:
        self._called("mark_not_duplicates", (tuple(photos), tier))
        self.marks.append(NotDuplicatesMark(len(self.marks) + 1, tier, tuple(photos), len(photos)))  # type: ignore

    def not_duplicate_marks(self) -> list[NotDuplicatesMark]:
        self._called("not_duplicate_marks")
        return list(self.marks)

    def remove_mark(self, mark: int) -> None:
        self._called("remove_mark", mark)
        self.marks = [m for m in self.marks if m.mark != mark]

    def clean_up(self, groups: Sequence[DupeGroup], photos: Sequence[PhotoInfo]) -> TrashReport:
        self._called("clean_up", tuple(photos))
        self.trashed |= {p.id for p in photos}
        self.last = list(photos)
        return TrashReport(moved=list(photos))

    def last_trash(self) -> TrashBatch | None:
        self._called("last_trash")
        return TrashBatch(0.0, tuple(self.last)) if getattr(self, "last", None) else None

    def undo_trash(self) -> RestoreReport:
        self._called("undo_trash")
        back, self.last = self.last, []
        self.trashed -= {p.id for p in back}
        return RestoreReport(restored=back, notices=list(self.restore_notices))


def _view(qtbot, library: FakeLibrary, width: int = 1200, height: int = 800):  # noqa: ANN202
    from gui.dupes_view import DupesView
    from gui.results_model import ThumbnailCache
    from gui.workers import ThumbnailLoader

    view = DupesView(library, ThumbnailCache(ThumbnailLoader(200)))  # type: ignore[arg-type]
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    view.regroup()
    _settle(qtbot, view)
    return view


def _settle(qtbot, view) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: view.tasks.idle and not view.building, timeout=10_000)
    qtbot.wait(20)


def _texts(widget) -> str:  # noqa: ANN001
    from PySide6.QtWidgets import QAbstractButton, QLabel

    return " ".join(w.text() for w in widget.findChildren(QLabel) + widget.findChildren(QAbstractButton))


@pytest.fixture
def notes_library(tmp_path: Path) -> FakeLibrary:
    """A same-photo group kept in a protected folder, with a second protected member (never ticked) and a copy
    that records GPS and a date the keeper lacks."""
    keeper = _photo(1, "/pics/Export/beach.jpg", 3000)
    gps = _photo(2, "/pics/Phone/IMG_0001.jpg", 2000, taken_at="2024-07-01T10:00:00", gps=True)
    original = _photo(3, "/pics/Originals/beach.jpg", 2500)
    extra = _photo(4, "/pics/Export/beach (1).jpg", 3000)
    original_copy = _photo(7, "/pics/Originals/beach copy.jpg", 2500)
    dog, dog2 = _photo(5, "/pics/dog.jpg"), _photo(6, "/pics/dog copy.jpg")
    return FakeLibrary([("same", [keeper, gps, original, original_copy, extra]), ("identical", [dog, dog2])],
                       protect=["/pics/Originals"], lacks={2: ("GPS", "capture date")})


def test_cards_say_protected_and_what_the_keeper_lacks(qtbot, notes_library: FakeLibrary) -> None:
    view = _view(qtbot, notes_library)
    box = next(b for b in view.boxes if b.group.tier == "same")
    cards = {Path(c.photo.path).name + ("/" + Path(c.photo.path).parent.name): c for c in box.cards}
    assert box.group.keeper.path == "/pics/Originals/beach.jpg"
    protected = cards["beach copy.jpg/Originals"]
    assert protected.boxes == {}  # nothing on it can be ticked
    assert "protected folder" in _texts(protected) and "protected" in _texts(protected)
    lacking = cards["IMG_0001.jpg/Phone"]
    note = next(w for w in lacking.findChildren(type(lacking.thumb)) if "lacks" in w.text())
    assert note.text() == "has GPS and capture date the kept photo lacks"
    assert QColor("#d9480f").name() in note.styleSheet()  # a warning colour, not the grey of other notes
    assert {p.path for p in view.selected()} == {"/pics/Phone/IMG_0001.jpg", "/pics/Export/beach (1).jpg",
                                                 "/pics/Export/beach.jpg", "/pics/dog copy.jpg"}
    view.mark_groups(True)  # "Select all but the keeper" cannot take a protected photo either
    assert "/pics/Originals/beach copy.jpg" not in {p.path for p in view.selected()}
    view.selection.choices["/pics/Originals/beach copy.jpg"] = True  # nor a stray saved choice
    assert "/pics/Originals/beach copy.jpg" not in {p.path for p in view.selected()}
    for card in box.cards:
        card.set_thumbnail(view.cache.placeholder)
    shoot(box, "15-dupes-cards-notes", qtbot, 100)
    assert not notes_library.wrong_thread


def test_confirmation_names_metadata_the_keeper_lacks(notes_library: FakeLibrary) -> None:
    from gui.dupes_view import cleanup_summary

    groups = notes_library.duplicates(0.9)
    text, _ = cleanup_summary(groups, [m.photo for g in groups for m in g.members if m.keeper_lacks])
    assert "IMG_0001.jpg has GPS and capture date the kept photo lacks." in text


def _many(count: int) -> FakeLibrary:
    clusters = []
    for g in range(count):
        tier = ("identical", "same", "similar")[g % 3]
        clusters.append((tier, [_photo(g * 10 + i, f"/pics/set{g:03d}/IMG_{i}.jpg", 1000 + i) for i in range(3)]))
    return FakeLibrary(clusters)


def test_table_mode_lists_hundreds_of_groups_and_shares_the_selection(qtbot) -> None:
    from gui.dupes_table import NAME, REMOVE

    library = _many(300)
    view = _view(qtbot, library)
    assert len(view.groups) == 300 and len(view.boxes) <= 12  # the cards build a page at a time
    view.table_button.click()
    assert view.mode == "table" and view.stack.currentWidget() is view.table
    model, table = view.table_model, view.table
    assert model.rowCount() == 300 * 4 and len(model.title_rows()) == 300  # a title row, then each photo
    assert table.columnSpan(0, 0) == table.columnSpan(4, 0) == model.columnCount()  # titles across the row
    assert table.columnSpan(1, 0) == table.columnSpan(5, 0) == 1
    first = model.index(0, 0)
    keeper, member = model.index(1, REMOVE), model.index(2, REMOVE)
    assert keeper.data() == "KEEP" and keeper.data(Qt.ItemDataRole.CheckStateRole) is None
    assert not model.flags(keeper) & Qt.ItemFlag.ItemIsUserCheckable
    assert member.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked  # identical: suggested
    assert model.index(2, NAME).data() == "IMG_1.jpg"
    assert model.data(first).startswith("Identical files · 3 photos")
    suggested = len(view.selected())
    assert suggested == 200 * 2  # identical and same groups; similar shots are never ticked by default

    # a click in the table is a click on the shared selection: the card box follows, and it is saved
    assert model.setData(member, Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    photo = view.groups[0].members[1].photo
    assert photo not in view.selected() and view.choices == {photo.path: False}
    card = next(c for c in view.boxes[0].cards if photo.id in c.boxes)
    assert not card.boxes[photo.id].isChecked()
    _settle(qtbot, view)
    assert library.named("save_choices") == [{photo.path: False}]

    # Mark menu: all but the keeper everywhere (similar shots too), then none; each saved in one call
    view.mark_all_action.trigger()
    assert len(view.selected()) == 300 * 2
    similar = view.groups[2].members[1].photo
    assert model.index_of(similar.id, REMOVE).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    view.mark_none_action.trigger()
    assert view.selected() == [] and "0 photos selected" in view.summary.text()
    _settle(qtbot, view)
    assert [len(c) for c in library.named("save_choices")] == [1, 600, 600]

    # per group, from the context menu of a photo's row
    menu = table.menu_for(model.index_of(view.groups[5].members[2].photo.id))
    actions = {a.text(): a for a in menu.actions()}
    assert {"Keep this one", "Compare…", "Select all but the keeper in this group", "Select none in this group",
            "Not duplicates"} <= set(actions)
    actions["Select all but the keeper in this group"].trigger()
    assert {p.path for p in view.selected()} == {m.photo.path for m in view.groups[5].members[1:]}
    view.reset_selection()  # back to the suggestions, in the catalog too
    assert len(view.selected()) == suggested
    _settle(qtbot, view)
    assert library.named("clear_choices") == [None] and not library.saved
    table.scrollTo(model.index(0, 0))
    shoot(view, "16-dupes-table", qtbot, 100)
    assert not library.wrong_thread


def test_table_space_toggles_the_current_row(qtbot) -> None:
    from gui.dupes_table import NAME

    view = _view(qtbot, _many(3))
    view.set_mode("table")
    model = view.table_model
    view.table.setFocus()
    photo = view.groups[0].members[1].photo
    view.table.setCurrentIndex(model.index_of(photo.id, NAME))
    qtbot.keyClick(view.table, Qt.Key.Key_Space)
    assert photo not in view.selected()
    qtbot.keyClick(view.table, Qt.Key.Key_Space)
    assert photo in view.selected()


def test_saved_choices_are_drawn_and_clicks_are_saved(qtbot) -> None:
    library = _many(3)
    library.saved = {"/pics/set000/IMG_1.jpg": False, "/pics/set002/IMG_2.jpg": True}  # from the last session
    view = _view(qtbot, library)
    assert {p.path for p in view.selected()} == {"/pics/set000/IMG_2.jpg", "/pics/set001/IMG_1.jpg",
                                                 "/pics/set001/IMG_2.jpg", "/pics/set002/IMG_2.jpg"}
    box = view.boxes[0].cards[1].boxes[view.groups[0].members[1].photo.id]
    assert not box.isChecked()
    box.click()
    _settle(qtbot, view)
    assert library.named("save_choices") == [{"/pics/set000/IMG_1.jpg": True}]
    assert not library.wrong_thread


def test_keep_this_one_and_let_clipfind_choose(qtbot) -> None:
    library = _many(2)
    view = _view(qtbot, library)
    card = view.boxes[1].cards[2]
    chosen = card.photo
    assert card.keep_button.text() == "Keep this one"
    card.keep_button.click()
    _settle(qtbot, view)
    assert library.named("keep_this") == [chosen] and view.groups[1].keeper == chosen
    assert library.saved == {chosen.path: False}
    keeper_card = view.boxes[1].cards[0]
    assert keeper_card.photo == chosen and "kept: your choice" in _texts(keeper_card)
    button = next(b for b in keeper_card.findChildren(type(card.keep_button)) if b.text() == "Let clipfind choose")
    button.click()
    _settle(qtbot, view)
    assert library.named("unkeep") == [chosen] and view.groups[1].keeper != chosen
    assert not library.wrong_thread


def test_compare_opens_at_the_member_and_its_decisions_are_clicks(qtbot) -> None:
    from gui.compare_view import CompareDialog

    library = _many(2)
    view = _view(qtbot, library)
    group = view.groups[1]
    view.boxes[1].cards[2].compare_button.click()
    dialog = view.compare_dialog
    assert isinstance(dialog, CompareDialog) and dialog.isVisible()
    target = group.members[2].photo
    assert target in view.selected()
    dialog.decided.emit({target.id: False})
    assert target not in view.selected()
    _settle(qtbot, view)
    assert library.named("save_choices") == [{target.path: False}]
    dialog.close()


def test_not_duplicates_passes_the_tier_and_the_marks_dialog_takes_back(qtbot) -> None:
    library = _many(3)
    view = _view(qtbot, library)
    same = next(g for g in view.groups if g.tier == "same")
    view.boxes[view.groups.index(same)].ignore.click()
    _settle(qtbot, view)
    [(photos, tier)] = library.named("mark_not_duplicates")
    assert tier == "same" and len(photos) == 3
    assert same.keeper not in {g.keeper for g in view.groups}
    view.marks_button.click()
    dialog = view.marks_dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=5000)
    assert dialog.tree.topLevelItemCount() == 1
    item = dialog.tree.topLevelItem(0)
    assert item.text(0) == "Same photo, saved again" and item.text(2) == "3"
    assert item.text(1) == "IMG_0.jpg, IMG_1.jpg, IMG_2.jpg"
    qtbot.wait(300)  # the thumbnails of the strip
    shoot(dialog, "17-dupes-marks-dialog", qtbot, 300)
    assert not dialog.take_back.isEnabled()
    item.setSelected(True)
    dialog.take_back.click()
    _settle(qtbot, view)
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 0, timeout=5000)
    assert library.named("remove_mark") == [1] and "taken back" in dialog.status.text()
    assert same.keeper in {g.keeper for g in view.groups}  # grouped again
    assert not library.wrong_thread


def test_keeper_rules_dialog_reads_edits_and_saves(qtbot, notes_library: FakeLibrary) -> None:
    from gui.keeper_rules_dialog import KeeperRulesDialog

    notes_library.rules = replace(notes_library.rules, keep=("/pics/Export/beach.jpg",), formats=("raw", "heic", "jpeg"))
    view = _view(qtbot, notes_library)
    view.rules_button.click()
    qtbot.waitUntil(lambda: view.rules_dialog is not None and view.rules_dialog.isVisible(), timeout=5000)
    dialog = view.rules_dialog
    assert isinstance(dialog, KeeperRulesDialog)
    assert dialog.protect.folders() == ("/pics/Originals",)
    assert dialog.formats.currentText().startswith("RAW, then HEIC")
    assert "1 photo you chose" in dialog.keep_label.text()
    shoot(dialog, "18-keeper-rules-dialog", qtbot, 100)
    dialog.prefer.add("/pics/Phone")
    dialog.prefer.add("/pics/Export")
    dialog.prefer.list.setCurrentRow(1)
    dialog.prefer.move(-1)
    dialog.formats.setCurrentIndex(0)
    dialog.gps.setChecked(True)
    dialog.protect.list.setCurrentRow(0)
    dialog.protect.list.item(0).setSelected(True)
    dialog.protect.remove_selected()
    dialog.accept()
    _settle(qtbot, view)
    [saved] = notes_library.named("set_keeper_rules")
    assert saved == KeeperRules(keep=("/pics/Export/beach.jpg",), protect=(), prefer_folders=("/pics/Export",
                                "/pics/Phone"), formats=(), prefer_dated=False, prefer_gps=True)
    same = next(g for g in view.groups if g.tier == "same")
    assert not any(m.protected for m in same.members)  # regrouped with the new rules
    assert same.keeper.path == "/pics/Export/beach.jpg"
    assert not notes_library.wrong_thread


def test_keeper_rules_dialog_forgets_chosen_keepers_and_keeps_custom_formats(qtbot) -> None:
    from gui.keeper_rules_dialog import KeeperRulesDialog

    dialog = KeeperRulesDialog(KeeperRules(keep=("/a.jpg", "/b.jpg"), formats=("png", "jpeg"), prefer_dated=True))
    qtbot.addWidget(dialog)
    assert dialog.formats.currentText() == "Custom: PNG > JPEG" and dialog.dated.isChecked()
    assert dialog.rules() == KeeperRules(keep=("/a.jpg", "/b.jpg"), formats=("png", "jpeg"), prefer_dated=True)
    dialog.forget_chosen()
    assert dialog.rules().keep == () and not dialog.forget_button.isEnabled()


def test_main_window_opens_keeper_rules_from_its_toolbar(make_window, qtbot) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: window.tasks.idle, timeout=120_000)
    window.rules_action.trigger()
    assert window.tabs.currentWidget() is window.dupes
    qtbot.waitUntil(lambda: window.dupes.rules_dialog is not None and window.dupes.rules_dialog.isVisible(),
                    timeout=10_000)
    window.dupes.rules_dialog.reject()


def test_a_trash_updates_the_groups_in_place_and_undo_puts_them_back(qtbot, monkeypatch) -> None:
    library = _many(30)
    library.clusters[4] = ("identical", library.clusters[4][1][:2])  # a pair: gone whole when its copy goes
    view = _view(qtbot, library, height=600)
    view.more.click()  # two pages shown
    _settle(qtbot, view)
    assert len(view.boxes) == 24
    view.scroll.verticalScrollBar().setValue(900)
    qtbot.wait(20)
    boxes_before = list(view.boxes)
    view.set_mode("table")  # the table is filled when first shown; then both update in place
    view.set_mode("cards")
    monkeypatch.setattr("gui.dupes_view.confirm_cleanup", lambda *a, **k: True)
    problems: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("gui.dupes_view.show_problems", lambda parent, title, lines: problems.append((title,
                                                                                                    list(lines))))
    pair = next(i for i, g in enumerate(view.groups) if len(g.members) == 2)
    doomed, copy = view.groups[0].members[1].photo, view.groups[pair].members[1].photo
    for photo in view.selected():  # only one photo of the first group, and the pair's copy
        if photo not in (doomed, copy):
            view.selection.choices[photo.path] = False
    view._update_summary()
    assert {p.id for p in view.selected()} == {doomed.id, copy.id}
    view.trash_selected()
    qtbot.waitUntil(lambda: bool(library.named("clean_up")), timeout=5000)
    qtbot.waitUntil(lambda: doomed.id not in {c.photo.id for b in view.boxes for c in b.cards}, timeout=5000)
    # in place: the first group lost a card, the pair's group left, every other box is the one it was
    assert view.boxes[0] is boxes_before[0] and len(view.boxes[0].cards) == 2
    assert boxes_before[pair] not in view.boxes and view.boxes[pair:] == boxes_before[pair + 1:]
    model = view.table_model
    assert len(model.groups) == 29 and model.rowCount() == 29 + sum(len(g.members) for g in view.groups)
    assert model.index(1, 1).data() == "IMG_0.jpg" and model.index(2, 1).data() == "IMG_2.jpg"
    assert model.index(3, 0).data().startswith("Identical files · 3 photos")
    _settle(qtbot, view)  # the quiet regroup found what is shown: nothing rebuilt, the scroll kept
    assert view.boxes[0] is boxes_before[0] and len(view.groups) == 29
    assert view.scroll.verticalScrollBar().value() == 900
    assert view.undo_row.isVisible() and "Moved 2 photos" in view.undo_label.text()
    view.scroll.verticalScrollBar().setValue(0)
    shoot(view, "19-dupes-trash-undo-offered", qtbot, 100)
    view.scroll.verticalScrollBar().setValue(900)

    library.restore_notices = ["2 files were put back from ~/.local/share/Trash"]
    view.undo_button.click()
    _settle(qtbot, view)
    assert library.named("undo_trash") == [None]
    assert problems == [("2 photos put back", ["2 files were put back from ~/.local/share/Trash"])]
    assert len(view.groups) == 30 and len(view.groups[0].members) == 3 and not view.undo_row.isVisible()
    assert view.shown >= 23  # the pages the user had open are shown again
    qtbot.waitUntil(lambda: view.scroll.verticalScrollBar().value() == 900, timeout=2000)
    view.scroll.verticalScrollBar().setValue(0)
    shoot(view, "20-dupes-after-undo", qtbot, 100)
    assert not library.wrong_thread


def test_model_passes_qt_model_checks(qtbot, qtmodeltester, notes_library: FakeLibrary) -> None:
    from gui.dupes_table import DupesTableModel

    model = DupesTableModel()
    groups = notes_library.duplicates(0.9)
    model.set_groups(groups, {2, 4})
    qtmodeltester.check(model)
    model.remove_photos({4, 6})  # a member, and the copy of a pair: that group goes
    assert model.rowCount() == 5 and model.index(0, 0).data().startswith("Same photo, saved again · 4 photos")
    assert [model.index(r, 1).data() for r in range(1, 5)] == ["beach.jpg", "beach.jpg", "IMG_0001.jpg",
                                                               "beach copy.jpg"]
    assert model.index_of(4) == QModelIndex() and model.index_of(7).row() == 4
    qtmodeltester.check(model)
