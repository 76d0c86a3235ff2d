"""The duplicates tab (issue 9, item 3, app side): one card per photo, a keeper that cannot be ticked,
a selection made only of defaults and clicks, copies that follow their picture, a confirmation that
says what leaves and what stays, and a clean-up that goes through Library.clean_up.

End to end where files matter: real photos, a private XDG trash, and the files left on disk asserted.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from clipfind.records import DupeGroup, DupeMember, KeeperRules, PhotoInfo
from tests.gui.conftest import ARTIFACTS, indexed_home, place_vectors, shoot, wait_idle
from tests.helpers import copy_photos, needs_shared_data


@pytest.fixture
def china(tmp_path: Path) -> Path:
    """The case of issue 9: a keeper with a byte copy, and a smaller version of it with its own byte copy.

    Before the fix the keeper was both KEEP in its identical group and ticked in the near group.
    """
    folder = tmp_path / "Dupes"
    copy_photos(folder, 6, "kodak24")
    shutil.copy2(folder / "kodim01.png", folder / "kodim01 copy.png")
    shutil.copy2(folder / "kodim02.png", folder / "kodim02 copy.png")
    with Image.open(folder / "kodim02.png") as im:
        im.resize((384, 256)).save(folder / "kodim02 small.jpg", quality=85)
    shutil.copy2(folder / "kodim02 small.jpg", folder / "kodim02 small copy.jpg")
    home = indexed_home(tmp_path / "home", folder)
    place_vectors(home, {folder / "kodim02 small.jpg": folder / "kodim02.png"})
    return folder


def _view(make_window, qtbot):
    window = make_window()
    # the catch-up index pass at start regroups the tab when it ends: let it end first
    qtbot.waitUntil(lambda: window.model_ready and window.idle, timeout=120_000)
    view = window.dupes
    window.tabs.setCurrentWidget(view)
    view.slider.setValue(990)
    qtbot.waitUntil(lambda: not view._debounce.isActive() and window.idle and view.threshold == 0.99
                    and bool(view.groups))
    return window, view


def _box(view, name: str):
    """The remove box of the photo called `name`, wherever the view draws it."""
    for group_box in view.boxes:
        for card in group_box.cards:
            for photo in (m.photo for m in group_box.group.members):
                if photo.path.endswith("/" + name) and photo.id in card.boxes:
                    return card.boxes[photo.id]
    raise AssertionError(f"no remove box for {name}")


def _selected_names(view) -> set[str]:
    return {Path(p.path).name for p in view.selected()}


@needs_shared_data
def test_one_card_per_photo_keeper_never_tickable_and_copies_follow(make_window, china: Path, qtbot) -> None:
    window, view = _view(make_window, qtbot)
    members = Counter(m.photo.id for g in view.groups for m in g.members)
    assert members and max(members.values()) == 1  # no photo in two groups
    drawn = Counter(i for b in view.boxes for c in b.cards for i in c.boxes)
    for group_box in view.boxes:
        group = group_box.group
        assert group.keeper.id not in drawn  # KEEP has no box
        keeper_card = next(c for c in group_box.cards if c.photo.id == group.keeper.id)
        assert "KEEP" in _texts(keeper_card)
        assert {m.photo.id for m in group.members[1:]} == {i for c in group_box.cards for i in c.boxes}
    assert max(drawn.values()) == 1  # one box per photo, never two that could disagree
    near = next(b for b in view.boxes if b.group.tier == "same")  # a smaller JPEG: the same photo
    assert near.group.keeper.path == str(china / "kodim02.png")
    assert [Path(c.photo.path).name for c in near.cards] == ["kodim02.png", "kodim02 small.jpg"]  # copies ride along
    shoot(window, "10-dupes-window", qtbot, 1500)
    shoot(near, "10-dupes-same-group-copies-attached", qtbot, 500)

    everything = {"kodim01 copy.png", "kodim02 copy.png", "kodim02 small.jpg", "kodim02 small copy.jpg"}
    assert _selected_names(view) == everything and "4 photos selected" in view.summary.text()
    _box(view, "kodim02 small.jpg").click()  # untick the picture: its byte copy follows
    assert _selected_names(view) == {"kodim01 copy.png", "kodim02 copy.png"}
    assert not _box(view, "kodim02 small copy.jpg").isChecked()
    assert view.choices == {str(china / "kodim02 small.jpg"): False, str(china / "kodim02 small copy.jpg"): False}
    assert "2 photos selected" in view.summary.text()
    _box(view, "kodim02 small copy.jpg").click()  # a copy alone: only itself
    assert _selected_names(view) == {"kodim01 copy.png", "kodim02 copy.png", "kodim02 small copy.jpg"}
    assert "3 photos selected" in view.summary.text()  # distinct photos: no double count
    _box(view, "kodim02 small.jpg").click()
    assert _selected_names(view) == everything and "4 photos selected" in view.summary.text()
    view.slider.setValue(1000)  # regrouping keeps the user's clicks, and only them
    qtbot.waitUntil(lambda: bool(view.groups) and view.threshold == 1.0 and window.idle, timeout=5000)
    assert {g.tier for g in view.groups} == {"identical", "same"}  # the slider moves the similar tier only
    assert len(view.choices) == 2


def _texts(widget) -> str:
    from PySide6.QtWidgets import QCheckBox, QLabel

    return " ".join(w.text() for w in widget.findChildren(QLabel) + widget.findChildren(QCheckBox))


@needs_shared_data
def test_trash_says_what_goes_and_keeps_one_copy_of_every_group(make_window, china: Path, qtbot,
                                                                trash_home: Path, monkeypatch) -> None:
    window, view = _view(make_window, qtbot)
    asked: list[str] = []
    monkeypatch.setattr("gui.dupes_view.confirm_cleanup", lambda parent, text, details="": asked.append(text))
    view.trash_selected()  # declined: nothing moves
    assert len(asked) == 1 and not trash_home.exists()
    text = asked[0]
    (ARTIFACTS / "10-dupes-confirmation.txt").write_text(text)
    assert text.startswith("Move 4 photos")
    assert "kodim02.png (same photo, saved again): 3 photos move" in text and "kodim02.png stays" in text
    assert "kodim01.png (identical files): 1 photo moves" in text and "kodim01.png stays" in text
    # kodim02 small.jpg is the same photo as kodim02.png, which stays: no picture is lost
    assert "Every copy" not in text and "Careful" not in text
    assert "One photo of every group stays on disk: its keeper" in text

    _box(view, "kodim02 small.jpg").click()  # keep the small version: the picture is not wholly gone
    monkeypatch.setattr("gui.dupes_view.confirm_cleanup",
                        lambda parent, text, details="": asked.append(text) or True)
    view.trash_selected()
    wait_idle(window, qtbot)
    assert "Every copy" not in asked[-1] and "Careful" not in asked[-1]
    on_disk = {p.name for p in china.iterdir()}
    assert {"kodim01.png", "kodim02.png", "kodim02 small.jpg", "kodim02 small copy.jpg"} <= on_disk
    assert not {"kodim01 copy.png", "kodim02 copy.png"} & on_disk
    assert sorted(p.name for p in trash_home.iterdir()) == ["kodim01 copy.png", "kodim02 copy.png"]
    assert "moved 2 photos" in window.statusBar().currentMessage()


@needs_shared_data
def test_a_missing_keeper_leaves_its_group_alone_and_says_why(make_window, china: Path, qtbot,
                                                             trash_home: Path, monkeypatch) -> None:
    window, view = _view(make_window, qtbot)
    (china / "kodim01.png").unlink()  # the keeper goes outside clipfind, after grouping
    monkeypatch.setattr("gui.dupes_view.confirm_cleanup", lambda *a, **k: True)
    warned: list[list[str]] = []
    monkeypatch.setattr("gui.dupes_view.show_problems", lambda parent, title, lines: warned.append(list(lines)))
    view.trash_selected()
    wait_idle(window, qtbot)
    assert (china / "kodim01 copy.png").exists()  # the last copy stays
    assert warned and any("kodim01.png" in line and "missing" in line for line in warned[0])
    assert not (china / "kodim02 copy.png").exists()  # the other group, whose keeper is there, was cleaned


@needs_shared_data
def test_not_duplicates_then_undo(make_window, china: Path, qtbot) -> None:
    window, view = _view(make_window, qtbot)
    identical = next(g for g in view.groups if g.tier == "identical")
    view.mark_not_duplicates(identical)
    wait_idle(window, qtbot)
    assert identical.keeper.id not in {g.keeper.id for g in view.groups}
    assert view.undo_row.isVisible()
    shoot(window, "11-dupes-not-duplicates-undo", qtbot, 500)
    view.undo_button.click()
    wait_idle(window, qtbot)
    assert identical.keeper.id in {g.keeper.id for g in view.groups}
    assert not view.undo_row.isVisible()


class _Groups:
    """A Library stand-in that answers what a regroup asks (duplicates(), the saved choices and keeper rules):
    for what the core rarely produces on a test disk."""

    def __init__(self, groups: list[DupeGroup]) -> None:
        self.groups = groups

    def duplicates(self, threshold: float) -> list[DupeGroup]:
        return self.groups

    def choices(self) -> dict[str, bool]:
        return {}

    def keeper_rules(self) -> KeeperRules:
        return KeeperRules()

    def last_trash(self) -> None:
        return None


def _photo(i: int, name: str, size: int = 1000) -> PhotoInfo:
    return PhotoInfo(i, f"/pics/{name}", size, 0, f"hash{i}", 100, 100)


def test_aliases_are_named_and_never_offered(qtbot, tmp_path: Path) -> None:
    from gui.dupes_view import DupesView
    from gui.results_model import ThumbnailCache
    from gui.workers import ThumbnailLoader

    keeper, copy = _photo(1, "a.png"), _photo(2, "a copy.png")
    group = DupeGroup("identical", keeper, (DupeMember(keeper, 1.0),
                                            DupeMember(copy, 1.0, keeper.id, ("/pics/link to a copy.png",))))
    view = DupesView(_Groups([group]), ThumbnailCache(ThumbnailLoader(200)))
    qtbot.addWidget(view)
    view.regroup()
    qtbot.waitUntil(lambda: view.tasks.idle and bool(view.groups) and not view.building, timeout=5000)
    assert "also at /pics/link to a copy.png — same file, removing it frees nothing" in _texts(view)
    assert [p.id for p in view.selected()] == [copy.id]  # the alias is not a photo of its own


def test_cleanup_summary_counts_each_photo_once() -> None:
    from gui.dupes_view import cleanup_summary

    keeper, near, near_copy = _photo(1, "k.png", 3000), _photo(2, "n.jpg"), _photo(3, "n copy.jpg")
    group = DupeGroup("similar", keeper, (DupeMember(keeper, 1.0), DupeMember(near, 0.99),
                                       DupeMember(near_copy, 0.99, near.id)))
    text, details = cleanup_summary([group], [near, near_copy, near])
    assert text.startswith("Move 2 photos (2.0 KB) from 1 group to the system trash?")
    assert "Every copy of n.jpg goes" in text and details == ""
    text, _ = cleanup_summary([group], [near_copy])
    assert "1 photo moves, 1.0 KB freed; k.png stays." in text and "Every copy" not in text


def test_a_big_group_wraps_and_keeps_its_actions_in_sight(qtbot) -> None:
    """Tried with a 60-photo burst: one row 13,000 px wide, "Not duplicates" at its far right."""
    from gui.dupes_view import DupesView
    from gui.results_model import ThumbnailCache
    from gui.workers import ThumbnailLoader

    keeper = _photo(1, "burst 01.jpg", 5000)
    shots = [_photo(i, f"burst {i:02d}.jpg") for i in range(2, 61)]
    group = DupeGroup("similar", keeper, (DupeMember(keeper, 1.0),
                                          *(DupeMember(p, 0.97, reasons=("clip",)) for p in shots)))
    view = DupesView(_Groups([group]), ThumbnailCache(ThumbnailLoader(200)))
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.regroup()
    qtbot.waitUntil(lambda: view.tasks.idle and bool(view.boxes) and not view.building, timeout=10_000)
    [box] = view.boxes
    qtbot.waitUntil(lambda: len(box.cards) == 60, timeout=10_000)
    qtbot.wait(50)
    assert box.width() <= view.scroll.viewport().width()  # wrapped into the window's width
    assert not view.scroll.horizontalScrollBar().isVisible()
    rows = {card.y() for card in box.cards}
    assert len(rows) >= 60 * 220 // 1200  # many rows, each as wide as fits
    assert box.ignore.mapTo(box, box.ignore.rect().topLeft()).x() < 50  # the group's action at its start
    assert view.selected() == []  # a similar shot is never ticked by default
    shoot(view, "12-dupes-big-group-wraps", qtbot, 300)


# -- issue 11, with the real Library: decisions stick, keeper rules, Keep this one, trash in place and undo ----
@needs_shared_data
def test_a_click_survives_a_restart(make_window, china: Path, qtbot) -> None:
    from PySide6.QtCore import Qt

    from gui.dupes_table import NAME, REMOVE

    window, view = _view(make_window, qtbot)
    _box(view, "kodim02 small.jpg").click()  # untick: saved in the catalog as it is made
    wait_idle(window, qtbot)
    window.close()
    window.library.close()
    window, view = _view(make_window, qtbot)  # a new session on the same catalog
    assert view.choices[str(china / "kodim02 small.jpg")] is False
    assert not _box(view, "kodim02 small.jpg").isChecked() and not _box(view, "kodim02 small copy.jpg").isChecked()
    assert _selected_names(view) == {"kodim01 copy.png", "kodim02 copy.png"}
    view.set_mode("table")  # the table draws the same selection
    model = view.table_model
    rows = {model.index(r, NAME).data(): model.index(r, REMOVE) for r in range(model.rowCount())
            if model.member_at(model.index(r, NAME)) is not None}
    assert rows["kodim02 small.jpg"].data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert rows["kodim01 copy.png"].data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    shoot(window, "16-dupes-table-real", qtbot, 300)


@needs_shared_data
def test_protected_folder_and_keep_this_one(make_window, china: Path, qtbot) -> None:
    originals = china / "Originals"
    originals.mkdir()
    shutil.copy2(china / "kodim01.png", originals / "kodim01.png")
    shutil.copy2(china / "kodim01.png", originals / "kodim01 b.png")
    window, view = _view(make_window, qtbot)
    window.start_indexing(None)
    wait_idle(window, qtbot)
    view.edit_keeper_rules()
    qtbot.waitUntil(lambda: view.rules_dialog is not None and view.rules_dialog.isVisible(), timeout=5000)
    view.rules_dialog.protect.add(str(originals))
    view.rules_dialog.accept()
    wait_idle(window, qtbot)
    assert window.library.keeper_rules().protect == (str(originals),)
    group = next(b for b in view.boxes if b.group.tier == "identical" and len(b.group.members) == 4)
    assert group.group.keeper.path.startswith(str(originals))  # a protected folder keeps first
    other = next(c for c in group.cards if c.photo.path.startswith(str(originals)) and c.photo != group.group.keeper)
    assert other.boxes == {} and "protected folder" in _texts(other)
    assert _selected_names(view) >= {"kodim01.png", "kodim01 copy.png"}
    assert not any(p.path.startswith(str(originals)) for p in view.selected())
    shoot(group, "15-dupes-protected-real", qtbot, 500)

    same = next(b for b in view.boxes if b.group.tier == "same")
    small = next(c for c in same.cards if c.photo.path.endswith("kodim02 small.jpg"))
    small.keep_button.click()  # "Keep this one": the next grouping keeps it
    wait_idle(window, qtbot)
    same = next(b for b in view.boxes if b.group.tier == "same")
    assert same.group.keeper.path == str(china / "kodim02 small.jpg")
    assert str(china / "kodim02 small.jpg") in window.library.keeper_rules().keep


@needs_shared_data
def test_a_trash_updates_in_place_and_undo_puts_the_files_back(make_window, china: Path, qtbot, trash_home: Path,
                                                               monkeypatch) -> None:
    window, view = _view(make_window, qtbot)
    monkeypatch.setattr("gui.dupes_view.confirm_cleanup", lambda *a, **k: True)
    problems: list[list[str]] = []
    monkeypatch.setattr("gui.dupes_view.show_problems", lambda parent, title, lines: problems.append(list(lines)))
    _box(view, "kodim02 small.jpg").click()  # keep the small version and its copy
    same_box = next(b for b in view.boxes if b.group.tier == "same")
    before = len(view.groups)
    view.trash_selected()
    wait_idle(window, qtbot)
    assert not (china / "kodim01 copy.png").exists() and not (china / "kodim02 copy.png").exists()
    assert len(view.groups) == before - 1  # the identical pair is gone, the same group shrank in place
    assert same_box in view.boxes and len(same_box.group.members) == 3
    assert view.undo_row.isVisible() and "Moved 2 photos" in view.undo_label.text()
    shoot(window, "19-dupes-real-after-trash", qtbot, 500)
    window.close()  # a restart: the undo is still offered, from the catalog
    window, view = _view(make_window, qtbot)
    assert view.undo_row.isVisible() and "The last clean-up" in view.undo_label.text()
    assert "2 photos" in view.undo_label.text()
    shoot(window, "19-dupes-real-undo-after-restart", qtbot, 500)
    view.undo_button.click()
    wait_idle(window, qtbot)
    assert (china / "kodim01 copy.png").exists() and (china / "kodim02 copy.png").exists()
    assert not view.undo_row.isVisible()
    assert len(view.groups) == before and "put 2 photos back" in window.statusBar().currentMessage()
    shoot(window, "20-dupes-real-after-undo", qtbot, 500)


@needs_shared_data
def test_not_duplicates_is_per_tier_and_the_list_takes_it_back(make_window, china: Path, qtbot) -> None:
    window, view = _view(make_window, qtbot)
    same = next(g for g in view.groups if g.tier == "same")
    view.mark_not_duplicates(same)
    wait_idle(window, qtbot)
    assert same.keeper.id not in {g.keeper.id for g in view.groups if g.tier == "same"}
    [mark] = window.library.not_duplicate_marks()
    assert mark.tier == "same"
    view.show_marks()
    dialog = view.marks_dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=5000)
    assert dialog.tree.topLevelItemCount() == 1 and dialog.tree.topLevelItem(0).text(0) == "Same photo, saved again"
    shoot(dialog, "17-dupes-marks-dialog-real", qtbot, 800)
    dialog.tree.topLevelItem(0).setSelected(True)
    dialog.take_back.click()
    wait_idle(window, qtbot)
    assert window.library.not_duplicate_marks() == []
    assert same.keeper.id in {g.keeper.id for g in view.groups if g.tier == "same"}
