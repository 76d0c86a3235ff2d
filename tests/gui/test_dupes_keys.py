"""The duplicates cards at any width, and from the keyboard (issue 11, session 3).

Cards follow the window's width (bigger on a wide screen, rows filled to the edge) or the size the user picks
(slider, Ctrl+plus/minus, Ctrl+wheel; remembered); a resize rescales the cards it has, never rebuilds them. One
card has a focus ring: arrows, Home/End and PageUp/PageDown move it, Space ticks (never a keeper or a protected
photo), Enter compares, K keeps, and it stays on a sensible card through a regroup and a trash.

Against the stand-in Library of test_dupes_review.py (every call recorded, and the thread it ran on); the
screenshots use real photos so that the thumbnails are real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QColor, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import shoot
from tests.gui.test_dupes_review import FakeLibrary, _many, _photo, _settle, _view, notes_library  # noqa: F401
from tests.helpers import copy_photos, needs_shared_data


def _burst_library(paths: list[str] | None = None) -> FakeLibrary:
    """Three identical files, a pair saved again, a 14-shot burst (it wraps) and a 5-shot burst, in that order
    (the stand-in sorts the groups by tier, as the core)."""
    names = paths or [f"/pics/IMG_{i:02d}.jpg" for i in range(24)]
    photos = [_photo(i + 1, path, 1000 + i) for i, path in enumerate(names)]
    return FakeLibrary([("identical", photos[0:3]), ("similar", photos[3:17]), ("same", photos[17:19]),
                        ("similar", photos[19:24])])


def _active(qtbot, view) -> None:  # noqa: ANN001
    """Keys go where the focus is only in the active window."""
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=5000)


def _press(qtbot, view, key: Qt.Key,  # noqa: ANN001
           modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A key to whichever widget has the focus: the current card, if the focus is where it should be."""
    target = QApplication.focusWidget()
    assert target is view.current, f"the focus is on {target!r}, not on the current card"
    qtbot.keyClick(target, key, modifiers)


def _place(view, card) -> QPoint:  # noqa: ANN001
    return card.mapTo(view.body, QPoint(0, 0))


def _centre(view, card) -> int:  # noqa: ANN001
    return _place(view, card).x() + card.width() // 2


def _nearest(view, cards, centre: int):  # noqa: ANN001, ANN202
    return min(cards, key=lambda c: abs(_centre(view, c) - centre))


def test_arrows_home_end_and_pages_move_the_focus_ring(qtbot) -> None:
    view = _view(qtbot, _burst_library(), 1200, 700)
    _active(qtbot, view)
    first, pair, burst, last = view.boxes
    assert len({_place(view, c).y() for c in burst.cards}) >= 3  # the burst wraps: rows inside a group

    qtbot.mouseClick(first.cards[1].thumb, Qt.MouseButton.LeftButton)  # a click moves the focus there
    assert view.current is first.cards[1] and first.cards[1].hasFocus() and first.cards[1].current
    _press(qtbot, view, Qt.Key.Key_Right)
    assert view.current is first.cards[2] and not first.cards[1].current
    _press(qtbot, view, Qt.Key.Key_Right)  # on into the next group
    assert view.current is pair.cards[0]
    _press(qtbot, view, Qt.Key.Key_Left)
    assert view.current is first.cards[2]
    _press(qtbot, view, Qt.Key.Key_Down)  # the next group: the nearest column of its only row
    assert view.current is pair.cards[1]

    column = _centre(view, pair.cards[1])
    rows = sorted({_place(view, c).y() for c in burst.cards})
    _press(qtbot, view, Qt.Key.Key_Down)  # the next group's first row, the nearest column
    assert view.current is _nearest(view, [c for c in burst.cards if _place(view, c).y() == rows[0]], column)
    assert view.current is burst.cards[1]
    _press(qtbot, view, Qt.Key.Key_Down)  # a wrapped group: its next row first
    assert view.current in burst.cards and _place(view, view.current).y() == rows[1]
    assert view.current is _nearest(view, [c for c in burst.cards if _place(view, c).y() == rows[1]], column)
    for _ in rows[2:]:
        _press(qtbot, view, Qt.Key.Key_Down)
    _press(qtbot, view, Qt.Key.Key_Down)  # past the burst's last row: the next group
    assert view.current in last.cards
    _press(qtbot, view, Qt.Key.Key_Up)  # back into the burst's last row
    assert view.current in burst.cards and _place(view, view.current).y() == rows[-1]

    _press(qtbot, view, Qt.Key.Key_End)
    assert view.current is last.cards[-1]
    qtbot.wait(20)
    top = view.scroll.verticalScrollBar().value()
    assert top > 0  # scrolled to it
    y = _place(view, view.current).y()
    assert top <= y and y + view.current.height() <= top + view.scroll.viewport().height()  # in view
    _press(qtbot, view, Qt.Key.Key_Home)
    assert view.current is first.cards[0]
    qtbot.wait(20)
    assert view.scroll.verticalScrollBar().value() == 0
    _press(qtbot, view, Qt.Key.Key_PageDown)  # a screen down: further than one row, not past a screen
    moved = _place(view, view.current).y() - _place(view, first.cards[0]).y()
    assert view.scroll.viewport().height() // 2 < moved <= view.scroll.viewport().height()
    _press(qtbot, view, Qt.Key.Key_PageUp)
    assert view.current is first.cards[0]
    assert sum(c.current for b in view.boxes for c in b.cards) == 1  # one ring, never two
    assert not view.library.wrong_thread


def test_past_the_last_card_shown_the_next_page_comes(qtbot) -> None:
    library = _many(30)
    view = _view(qtbot, library)
    _active(qtbot, view)
    assert view.shown == 12 < len(view.groups) and view.more.isVisible()
    view.set_current(view.boxes[0].cards[0])
    _press(qtbot, view, Qt.Key.Key_End)
    assert view.current is view.boxes[11].cards[-1]
    _press(qtbot, view, Qt.Key.Key_Right)  # as "Show more groups", then on to the next card
    _settle(qtbot, view)
    assert view.shown == 24 and view.current is view.boxes[12].cards[0] and view.current.hasFocus()
    assert not library.wrong_thread


def test_space_ticks_a_member_and_never_the_keeper_or_a_protected_photo(
        qtbot, notes_library: FakeLibrary) -> None:  # noqa: F811 (the fixture of test_dupes_review)
    view = _view(qtbot, notes_library)
    _active(qtbot, view)
    said: list[str] = []
    view.status.connect(said.append)
    box = next(b for b in view.boxes if b.group.tier == "same")
    keeper = next(c for c in box.cards if c.photo.id == box.group.keeper.id)
    view.set_current(keeper)
    before = {p.id for p in view.selected()}
    _press(qtbot, view, Qt.Key.Key_Space)
    assert {p.id for p in view.selected()} == before and "keeper" in said[-1]
    protected = next(c for c in box.cards if c.photo.path == "/pics/Originals/beach copy.jpg")
    view.set_current(protected)
    _press(qtbot, view, Qt.Key.Key_Space)
    assert protected.photo not in view.selected() and "protected" in said[-1]

    member = next(c for c in box.cards if c.photo.path == "/pics/Phone/IMG_0001.jpg")
    assert member.photo in view.selected() and member.boxes[member.photo.id].isChecked()
    view.set_current(member)
    _press(qtbot, view, Qt.Key.Key_Space)  # untick
    assert member.photo not in view.selected() and not member.boxes[member.photo.id].isChecked()
    _press(qtbot, view, Qt.Key.Key_Space)  # tick again
    assert member.photo in view.selected() and member.boxes[member.photo.id].isChecked()
    _settle(qtbot, view)
    assert notes_library.named("save_choices") == [{member.photo.path: False}, {member.photo.path: True}]
    assert not notes_library.wrong_thread


def test_enter_compares_at_the_member_and_k_keeps_it(qtbot) -> None:
    from gui.compare_view import CompareDialog

    library = _burst_library()
    view = _view(qtbot, library)
    _active(qtbot, view)
    burst = view.boxes[2]
    card = burst.cards[4]
    photo = card.photo
    qtbot.mouseClick(card.thumb, Qt.MouseButton.LeftButton)
    _press(qtbot, view, Qt.Key.Key_Return)
    dialog = view.compare_dialog
    assert isinstance(dialog, CompareDialog) and dialog.isVisible()
    assert dialog.group is burst.group and dialog.group.members[dialog.right_index].photo == photo
    dialog.close()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=2000)
    _active(qtbot, view)
    view.set_current(card)

    _press(qtbot, view, Qt.Key.Key_K)  # "Keep this one", as its button
    _settle(qtbot, view)
    assert library.named("keep_this") == [photo]
    assert view.groups[2].keeper == photo
    assert view.current is not card and view.current.photo == photo  # rebuilt: the focus found it again
    assert view.current is view.boxes[2].cards[0] and view.current.hasFocus()  # now the keeper card
    said: list[str] = []
    view.status.connect(said.append)
    _press(qtbot, view, Qt.Key.Key_K)  # already kept: nothing asked of the library
    assert library.named("keep_this") == [photo] and "already" in said[-1]
    assert not library.wrong_thread


def test_the_focus_survives_a_regroup_and_a_trash(qtbot, monkeypatch) -> None:
    library = _burst_library()
    view = _view(qtbot, library)
    _active(qtbot, view)
    card = view.boxes[2].cards[6]
    view.set_current(card)
    view.slider.setValue(view.slider.value() - 20)  # a regroup: every card is built again
    qtbot.waitUntil(lambda: bool(library.named("duplicates")[1:]), timeout=5000)
    _settle(qtbot, view)
    assert card not in view.boxes[2].cards
    assert view.current.photo == card.photo and view.current.current and view.current.hasFocus()

    pair = view.boxes[1]
    doomed = pair.cards[1]  # the pair's copy: the group leaves with it, the focus goes to the next card
    following = view.boxes[2].cards[0]
    view.set_current(doomed)
    for photo in view.selected():
        if photo != doomed.photo:
            view.selection.choices[photo.path] = False
    view._update_summary()
    monkeypatch.setattr("gui.dupes_view.confirm_cleanup", lambda *a, **k: True)
    view.trash_selected()
    qtbot.waitUntil(lambda: bool(library.named("clean_up")), timeout=5000)
    _settle(qtbot, view)
    assert pair not in view.boxes
    assert view.current is following and following.current and following.hasFocus()
    _press(qtbot, view, Qt.Key.Key_Left)  # the keys go on from there
    assert view.current is view.boxes[0].cards[-1]
    assert not library.wrong_thread


def _photos_library(tmp_path: Path) -> FakeLibrary:
    paths = [str(p) for p in copy_photos(tmp_path / "pics", 24, "kodak24")]
    if len(paths) < 24:
        pytest.skip("fewer than 24 kodak photos")
    return _burst_library(paths)


def _row_gutter(view, box) -> int:  # noqa: ANN001
    """The empty width right of a group's first (full) row of cards."""
    first_row = [c for c in box.cards if c.y() == box.cards[0].y()]
    rightmost = max(c.geometry().right() for c in first_row)
    return box.row.geometry().right() - rightmost


def test_cards_follow_the_width_and_fill_their_rows(qtbot) -> None:
    view = _view(qtbot, _burst_library(), 1280, 800)
    burst = view.boxes[2]
    cards = list(burst.cards)
    narrow = cards[0].width()
    assert _row_gutter(view, burst) <= 2  # a full row reaches the right edge
    view.resize(2560, 1300)
    assert cards[0].width() == narrow  # while a resize goes on the cards keep their size, the rows stretch
    _rested(qtbot, view)
    assert burst.cards == cards  # rescaled in place, none rebuilt
    wide = cards[0].width()
    assert wide > narrow * 1.3 and cards[0].thumb.width() == view.side
    assert _row_gutter(view, burst) <= 2
    assert len({c.width() for b in view.boxes for c in b.cards}) == 1  # one size: the rows line up in columns
    assert {c.x() for c in burst.cards if c.y() != burst.cards[0].y()} <= {c.x() for c in burst.cards
                                                                             if c.y() == burst.cards[0].y()}
    assert not view.scroll.horizontalScrollBar().isVisible()


@needs_shared_data
def test_screenshots_wide_narrow_and_the_focus_ring(qtbot, tmp_path: Path) -> None:
    library = _photos_library(tmp_path)
    view = _view(qtbot, library, 2560, 1300)
    qtbot.waitUntil(lambda: all(not c.thumb.pixmap().isNull() for b in view.boxes for c in b.cards), timeout=20_000)
    wide = view.boxes[2].cards[0].width()
    assert view.side > view.cache.placeholder.width()  # bigger than the shared thumbnails: decoded again, sharper
    qtbot.waitUntil(lambda: view.boxes[2].cards[0].thumb.pixmap().width() == 400, timeout=20_000)
    assert _row_gutter(view, view.boxes[2]) <= 2
    shoot(view, "30-dupes-cards-2560x1300", qtbot, 300)
    _scroll_to(view, view.boxes[2])
    shoot(view, "30-dupes-cards-2560x1300-burst", qtbot, 100)
    view.resize(1280, 800)
    _rested(qtbot, view)
    assert view.boxes[2].cards[0].width() < wide
    assert _row_gutter(view, view.boxes[2]) <= 2
    view.scroll.verticalScrollBar().setValue(0)
    shoot(view, "30-dupes-cards-1280x800", qtbot, 300)
    _scroll_to(view, view.boxes[2])
    shoot(view, "30-dupes-cards-1280x800-burst", qtbot, 100)

    card = view.boxes[2].cards[2]
    view.set_current(card)
    qtbot.wait(20)
    light = QColor(view.palette().color(QPalette.ColorRole.Highlight))
    assert card.grab().toImage().pixelColor(2, card.height() // 2) == light  # the ring, in the highlight colour
    assert view.boxes[2].cards[3].grab().toImage().pixelColor(2, card.height() // 2) != light
    shoot(view, "31-dupes-focus-ring-light", qtbot, 100)
    app = QApplication.instance()
    light_palette = QPalette(app.palette())
    dark = _dark(light_palette)
    app.setPalette(dark)  # a dark theme is the application's palette (a platform theme sets it the same way)
    try:
        qtbot.wait(20)
        ring = card.grab().toImage().pixelColor(2, card.height() // 2)
        assert ring == dark.color(QPalette.ColorRole.Highlight)
        shoot(view, "31-dupes-focus-ring-dark", qtbot, 100)
    finally:
        app.setPalette(light_palette)


def _rested(qtbot, view) -> None:  # noqa: ANN001
    """Until a window resize has rested and the cards are rescaled."""
    qtbot.waitUntil(lambda: not view._refit.isActive(), timeout=2000)
    qtbot.wait(20)


def _scroll_to(view, box) -> None:  # noqa: ANN001
    view.scroll.verticalScrollBar().setValue(box.mapTo(view.body, QPoint(0, 0)).y() - 8)


def _dark(palette: QPalette) -> QPalette:
    dark = QPalette(palette)
    for role, colour in ((QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.WindowText, "#e0e0e0"),
                         (QPalette.ColorRole.Base, "#1e1e1e"), (QPalette.ColorRole.AlternateBase, "#2f2f2f"),
                         (QPalette.ColorRole.Text, "#e0e0e0"), (QPalette.ColorRole.Button, "#353535"),
                         (QPalette.ColorRole.ButtonText, "#e0e0e0"), (QPalette.ColorRole.Midlight, "#3a3a3a"),
                         (QPalette.ColorRole.Mid, "#555555"), (QPalette.ColorRole.Highlight, "#3daee9"),
                         (QPalette.ColorRole.HighlightedText, "#000000"),
                         (QPalette.ColorRole.PlaceholderText, "#9a9a9a")):
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            dark.setColor(group, role, QColor(colour))
    return dark


def test_the_size_slider_keys_and_wheel_size_the_cards_and_are_remembered(qtbot, tmp_path: Path) -> None:
    from gui.dupes_view import SIZE_KEY, DupesView
    from gui.results_model import ThumbnailCache
    from gui.workers import ThumbnailLoader

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    view = DupesView(_burst_library(), ThumbnailCache(ThumbnailLoader(200)), settings=settings)  # type: ignore
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    view.regroup()
    _settle(qtbot, view)
    _active(qtbot, view)
    card = view.boxes[2].cards[0]
    auto = card.width()
    assert view.chosen_side is None and settings.value(SIZE_KEY) is None
    view.size_slider.setValue(300)
    _rested(qtbot, view)
    assert card.width() >= 300 + 70 > auto and view.boxes[2].cards[0] is card
    assert int(settings.value(SIZE_KEY)) == 300
    view.size_slider.setValue(100)
    _rested(qtbot, view)
    small = card.width()
    assert small < auto

    view.set_current(card)
    _press(qtbot, view, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert view.size_slider.value() == 125 and int(settings.value(SIZE_KEY)) == 125
    _press(qtbot, view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert view.size_slider.value() == 100
    _press(qtbot, view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)  # Ctrl+= too: no Shift needed
    assert view.size_slider.value() == 125
    viewport = view.scroll.viewport()
    at = QPointF(card.mapTo(viewport, QPoint(10, 10)))
    wheel = QWheelEvent(at, QPointF(viewport.mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    scrolled = view.scroll.verticalScrollBar().value()
    QApplication.sendEvent(viewport, wheel)  # two notches up over the cards: bigger, no scrolling
    assert view.size_slider.value() == 175 and view.scroll.verticalScrollBar().value() == scrolled
    _rested(qtbot, view)
    assert card.width() > small

    again = DupesView(_burst_library(), view.cache, settings=settings)  # type: ignore[arg-type]
    qtbot.addWidget(again)
    assert again.chosen_side == 175 and again.size_slider.value() == 175  # remembered
    _press(qtbot, view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # fit the window again
    _rested(qtbot, view)
    assert view.chosen_side is None and settings.value(SIZE_KEY) is None and card.width() == auto


def test_the_undo_row_takes_its_colour_from_the_palette(qtbot) -> None:
    import gui.dupes_view

    view = _view(qtbot, _burst_library())
    assert "#e7f5ff" not in Path(gui.dupes_view.__file__).read_text()
    view.setPalette(_dark(view.palette()))
    assert "rgba(61, 174, 233" in view.undo_row.styleSheet()  # #3daee9, faded
    light = QPalette(view.palette())
    light.setColor(QPalette.ColorRole.Highlight, QColor("#1971c2"))
    view.setPalette(light)
    assert "rgba(25, 113, 194" in view.undo_row.styleSheet()


def test_a_card_photo_keeps_its_shape(qtbot) -> None:
    """A pixmap that is not square (a cache could send one) is centred, not stretched, on the square thumbnail."""
    from PySide6.QtGui import QPixmap

    from gui.dupes_view import _square

    wide = QPixmap(200, 100)
    wide.fill(QColor("red"))
    square = _square(wide)
    assert square.width() == square.height() == 200
    image = square.toImage()
    assert image.pixelColor(100, 100) == QColor("red") and image.pixelColor(100, 10).alpha() == 0


def test_a_justified_flow_fills_its_full_rows_and_keeps_columns(qtbot) -> None:
    """Cards of a size that does not divide the width: the gaps take the rest, the last row keeps the columns."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QWidget

    from gui.flow_layout import FlowLayout

    for justify in (True, False):
        host = QWidget()
        qtbot.addWidget(host)
        flow = FlowLayout(host, spacing=8, justify=justify)
        items = []
        for _ in range(11):
            item = QWidget()
            item.setFixedSize(130, 60)
            flow.addWidget(item)
            items.append(item)
        height = flow.heightForWidth(1000)
        flow.setGeometry(QRect(0, 0, 1000, height))
        rows = sorted({w.geometry().y() for w in items})
        assert len(rows) == 2 and height == 2 * 60 + 8  # 7 fit in 1,000 px, then 4
        first = [w for w in items if w.geometry().y() == rows[0]]
        last = [w for w in items if w.geometry().y() == rows[1]]
        assert len(first) == 7 and first[0].x() == 0
        if justify:
            assert first[-1].geometry().right() == 999  # no dead gutter
            assert [w.x() for w in last] == [w.x() for w in first[:4]]  # the same columns
        else:
            assert first[-1].geometry().right() < 999 - 40
