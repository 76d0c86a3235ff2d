"""Compare before deleting (issue 11, item 4): two members side by side with synced zoom and pan, a flip,
a metadata table whose differences stand out, and keys that decide without the mouse.

Real photos from ../shared/data, re-saved and resized here; the dialog gets a DupeGroup and reports
decisions through its signal only, so no catalog is needed.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication, QDialog

from clipfind.records import DupeGroup, DupeMember, PhotoInfo
from tests.gui.conftest import shoot
from tests.helpers import PHOTOS, needs_shared_data

pytestmark = needs_shared_data


def _info(pid: int, path: Path, taken_at: str | None = "2021-06-01T10:00:00", camera: str | None = "Kodak DCS",
          gps: bool = False) -> PhotoInfo:
    with Image.open(path) as im:
        width, height = im.size
    return PhotoInfo(pid, str(path), path.stat().st_size, 0, f"hash{pid}", width, height, taken_at,
                     camera=camera, gps=gps)


@pytest.fixture
def group(tmp_path: Path) -> DupeGroup:
    """kodim01 kept; a JPEG re-save (same size, same metadata), a half-size copy that has GPS and no camera,
    and a byte copy in a protected folder."""
    folder = tmp_path / "Photos"
    (folder / "Originals").mkdir(parents=True)
    original = folder / "kodim01.png"
    shutil.copy2(PHOTOS / "kodak24" / "kodim01.png", original)
    with Image.open(original) as im:
        im.save(folder / "kodim01.jpg", quality=60)
        im.resize((384, 256)).save(folder / "kodim01 small.jpg", quality=85)
    shutil.copy2(original, folder / "Originals" / "kodim01.png")
    keeper = _info(1, original)
    resaved = _info(2, folder / "kodim01.jpg")
    small = _info(3, folder / "kodim01 small.jpg", camera=None, gps=True)
    protected = _info(4, folder / "Originals" / "kodim01.png")
    return DupeGroup("same", keeper, (
        DupeMember(keeper, 1.0),
        DupeMember(resaved, 0.991, copy_of=1, reasons=("fingerprint",)),
        DupeMember(small, 0.987, copy_of=1, reasons=("fingerprint",), keeper_lacks=("GPS",)),
        DupeMember(protected, 1.0, copy_of=1, reasons=("identical",), protected=True),
    ))


def _dialog(qtbot, group: DupeGroup, selected: set[int] | None = None, start: int = 0):
    from gui.compare_view import CompareDialog

    dialog = CompareDialog(group, set(selected or ()), start)
    qtbot.addWidget(dialog)
    dialog.resize(1200, 860)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.loaded, timeout=20_000)
    return dialog


def _highlighted_rows(dialog) -> set[str]:
    from gui.compare_view import ROWS

    rows = set()
    for row, name in enumerate(ROWS):
        marked = [dialog.table.item(row, c).background().style() != Qt.BrushStyle.NoBrush for c in (0, 1)]
        assert marked[0] == marked[1], f"{name}: both cells of a row are marked or neither"
        if marked[0]:
            rows.add(name)
    return rows


def test_differences_are_highlighted_exactly_where_the_two_differ(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group)
    assert dialog.right_member.photo.id == 2
    # the re-save: same pixels, date, camera and no GPS; another file, format, size
    assert _highlighted_rows(dialog) == {"File size", "Format", "Path", "Similarity", "Reasons"}
    assert dialog.table.item(0, 0).text() == dialog.table.item(0, 1).text() == "768 × 512"
    assert dialog.table.item(2, 0).text() == "PNG" and dialog.table.item(2, 1).text() == "JPEG"
    assert dialog.table.horizontalHeaderItem(0).text() == "★ Keeper: kept"
    dialog.go(1)  # the small copy: fewer pixels, GPS, no camera; the date is the same
    assert _highlighted_rows(dialog) == {"Pixels", "File size", "Format", "Camera", "GPS", "Path", "Similarity",
                                         "Reasons"}
    qtbot.keyClick(dialog, Qt.Key.Key_Space)  # ticked: it records GPS the keeper lacks, and says so
    qtbot.waitUntil(lambda: dialog.loaded, timeout=20_000)
    shoot(dialog, "compare-differences")
    assert dialog.table.item(5, 1).text() == "yes" and dialog.table.item(4, 1).text() == "not recorded"
    dialog.go(1)  # the byte copy: only where it is, and why it is here, differ
    assert _highlighted_rows(dialog) == {"Path", "Similarity", "Reasons"}
    assert dialog.table.horizontalHeaderItem(1).text() == "Protected folder: kept"


def test_the_highlight_comes_from_the_palette_and_follows_a_dark_theme(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group)
    dark = QPalette(dialog.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#e0e0e0"))
    dark.setColor(QPalette.ColorRole.Highlight, QColor("#3daee9"))
    dialog.setPalette(dark)
    colour = dialog.table.item(1, 0).background().color()
    assert (colour.red(), colour.green(), colour.blue()) == (0x3d, 0xae, 0xe9) and 0 < colour.alpha() < 255
    assert dialog.table.item(1, 0).font().bold() and not dialog.table.item(0, 0).font().bold()
    assert dialog.table.item(1, 0).foreground().style() == Qt.BrushStyle.NoBrush  # text keeps the palette's colour


def test_arrows_cycle_the_right_side_through_the_members_but_the_keeper(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group)
    seen = [dialog.right_member.photo.id]
    for _ in range(3):
        qtbot.keyClick(dialog, Qt.Key.Key_Right)
        seen.append(dialog.right_member.photo.id)
    assert seen == [2, 3, 4, 2]
    qtbot.keyClick(dialog, Qt.Key.Key_Left)
    assert dialog.right_member.photo.id == 4
    assert dialog.left_member.photo.id == 1  # the keeper stays on the left
    qtbot.waitUntil(lambda: dialog.loaded, timeout=20_000)
    assert dialog.right.shown == group.members[3].photo.path
    assert _dialog(qtbot, group, start=2).right_member.photo.id == 3


def test_space_toggles_and_enter_hands_over_only_what_changed(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group, selected={2})
    decisions: list[dict] = []
    dialog.decided.connect(decisions.append)
    assert dialog.remove_box.isChecked() and dialog.right_state.text() == "Marked for removal"
    qtbot.keyClick(dialog, Qt.Key.Key_Space)  # untick the re-save
    assert not dialog.remove_box.isChecked() and dialog.right_state.text() == "Kept"
    qtbot.keyClick(dialog, Qt.Key.Key_Right)
    qtbot.keyClick(dialog, Qt.Key.Key_Space)  # tick the small copy: it has GPS the keeper lacks, and says so
    assert dialog.lacks.isVisibleTo(dialog) and "GPS" in dialog.lacks.text()
    qtbot.keyClick(dialog, Qt.Key.Key_Space)
    qtbot.keyClick(dialog, Qt.Key.Key_Space)  # twice more: ticked again
    assert decisions == []
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert decisions == [{2: False, 3: True}]
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.isVisible()


def test_escape_and_an_unchanged_enter_emit_nothing(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group, selected={2})
    decisions: list[dict] = []
    dialog.decided.connect(decisions.append)
    qtbot.keyClick(dialog, Qt.Key.Key_Space)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert decisions == [] and dialog.result() == QDialog.DialogCode.Rejected and not dialog.isVisible()
    again = _dialog(qtbot, group, selected={2})
    again.decided.connect(decisions.append)
    qtbot.keyClick(again, Qt.Key.Key_Space)
    qtbot.keyClick(again, Qt.Key.Key_Space)
    qtbot.keyClick(again, Qt.Key.Key_Enter)
    assert decisions == [] and again.result() == QDialog.DialogCode.Accepted


def test_neither_the_keeper_nor_a_protected_member_can_be_ticked(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group, start=3)
    assert dialog.right_member.protected
    assert not dialog.remove_box.isEnabled() and "Protected" in dialog.remove_box.toolTip()
    qtbot.keyClick(dialog, Qt.Key.Key_Space)
    dialog.remove_box.click()  # a disabled box ignores clicks, and toggle_remove refuses too
    dialog.toggle_remove()
    assert dialog.ticked == set() and dialog.changes() == {}
    assert not dialog.can_tick(group.members[0])  # the keeper
    # a group of one: the keeper is on both sides, and Space leaves it kept
    alone = _dialog(qtbot, DupeGroup("identical", group.keeper, group.members[:1]))
    assert alone.right_member.photo.id == group.keeper.id
    qtbot.keyClick(alone, Qt.Key.Key_Space)
    qtbot.keyClick(alone, Qt.Key.Key_Right)
    assert alone.ticked == set() and alone.changes() == {}


def _same_view(dialog) -> None:
    left, right = dialog.left, dialog.right
    assert left.viewport().size() == right.viewport().size()  # whatever the names and notes beside them
    assert left.transform() == right.transform()
    assert left.horizontalScrollBar().value() == right.horizontalScrollBar().value()
    assert left.verticalScrollBar().value() == right.verticalScrollBar().value()
    assert left.mapToScene(left.viewport().rect().center()) == right.mapToScene(right.viewport().rect().center())


def test_zoom_and_pan_stay_in_sync(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group, start=2)  # the small copy beside the keeper: one scene for both
    assert dialog.fitting and dialog.left.sceneRect() == dialog.right.sceneRect()
    fitted = dialog.zoom
    whole = dialog.left.sceneRect()
    assert dialog.left.mapToScene(dialog.left.viewport().rect()).boundingRect().contains(whole)
    # the wheel over the right photo zooms both, around the pointer
    at = QPoint(200, 150)
    spot = dialog.right.mapToScene(at)
    wheel = QWheelEvent(QPointF(at), QPointF(dialog.right.viewport().mapToGlobal(at)), QPoint(0, 0), QPoint(0, 360),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(dialog.right.viewport(), wheel)
    assert dialog.zoom == pytest.approx(fitted * 1.25 ** 3) and not dialog.fitting
    assert (dialog.right.mapToScene(at) - spot).manhattanLength() < 2
    _same_view(dialog)
    qtbot.keyClick(dialog, Qt.Key.Key_Plus)
    assert dialog.zoom == pytest.approx(fitted * 1.25 ** 4)
    qtbot.keyClick(dialog, Qt.Key.Key_Minus)
    assert dialog.zoom == pytest.approx(fitted * 1.25 ** 3)
    _same_view(dialog)
    # dragging pans: a drag moves the scroll bars of the view under the mouse; the other follows
    before = dialog.left.horizontalScrollBar().value()
    qtbot.mousePress(dialog.left.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    qtbot.mouseMove(dialog.left.viewport(), QPoint(300, 250))
    qtbot.mouseRelease(dialog.left.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(300, 250))
    assert dialog.left.horizontalScrollBar().value() == before + 100
    _same_view(dialog)
    dialog.right.verticalScrollBar().setValue(dialog.right.verticalScrollBar().value() - 40)
    _same_view(dialog)
    # the next member keeps the zoom and the spot
    centre = dialog.left.mapToScene(dialog.left.viewport().rect().center())
    qtbot.keyClick(dialog, Qt.Key.Key_Left)
    assert dialog.zoom == pytest.approx(fitted * 1.25 ** 3)
    assert (dialog.left.mapToScene(dialog.left.viewport().rect().center()) - centre).manhattanLength() < 2
    _same_view(dialog)
    qtbot.keyClick(dialog, Qt.Key.Key_0)
    assert dialog.fitting and dialog.zoom == pytest.approx(fitted)
    _same_view(dialog)


def test_flip_shows_the_left_photo_on_the_right_at_the_same_spot(qtbot, group: DupeGroup) -> None:
    dialog = _dialog(qtbot, group, start=2)
    dialog.zoom_by(3)
    dialog.right.horizontalScrollBar().setValue(dialog.right.horizontalScrollBar().value() + 60)
    left_pixels = dialog.left.viewport().grab().toImage()
    qtbot.keyClick(dialog, Qt.Key.Key_F)
    assert dialog.flipped and dialog.flip_button.isChecked()
    assert dialog.right.shown == group.keeper.path and "flipped" in dialog.right_title.text()
    _same_view(dialog)
    assert dialog.right.viewport().grab().toImage() == left_pixels
    assert dialog.right_member.photo.id == 3  # the table and Space still concern the small copy
    dialog.flip_button.click()
    assert not dialog.flipped and dialog.right.shown == group.members[2].photo.path


def test_actual_pixels_decodes_full_size_off_the_gui_thread(qtbot, tmp_path: Path, monkeypatch) -> None:
    from gui import workers
    from gui.compare_view import PREVIEW_SIDE

    calls: list[tuple[int, int]] = []  # (thread, side) of every decode
    decode = workers.thumbnail
    monkeypatch.setattr(workers, "thumbnail", lambda path, side: (calls.append((threading.get_ident(), side)),
                                                                  decode(path, side))[1])
    source = PHOTOS / "pexels_interior" / "pexels-1317558.jpg"  # 1920 x 2880: more than a preview holds
    original = tmp_path / "pexels-1317558.jpg"
    shutil.copy2(source, original)
    copy = tmp_path / "pexels-1317558 (1).jpg"
    with Image.open(source) as im:
        im.save(copy, quality=40)
    keeper, other = _info(1, original, camera=None), _info(2, copy, camera=None)
    group = DupeGroup("same", keeper, (DupeMember(keeper, 1.0), DupeMember(other, 0.99, 1, reasons=("fingerprint",))))

    from gui.compare_view import CompareDialog

    dialog = CompareDialog(group, {2})
    qtbot.addWidget(dialog)
    dialog.resize(1200, 860)
    dialog.show()
    assert dialog.left.shown is None and dialog.left.note.text() == "Loading…"  # the pool has it, not this thread
    qtbot.waitUntil(lambda: dialog.loaded, timeout=20_000)
    assert not dialog.left.full and dialog.left.item.pixmap().height() == PREVIEW_SIDE
    shoot(dialog, "compare-fit")
    qtbot.keyClick(dialog, Qt.Key.Key_1)
    assert dialog.zoom == 1.0 and dialog.left.transform().m11() == 1.0
    qtbot.waitUntil(lambda: dialog.left.full and dialog.right.full, timeout=20_000)
    for view in (dialog.left, dialog.right):
        assert (view.item.pixmap().width(), view.item.pixmap().height()) == (1920, 2880)
        assert view.item.scale() == 1.0 and view.transform().isIdentity()
    # one screen pixel per photo pixel: what the viewport shows is the file's pixels at that spot
    with Image.open(original) as im:
        pixels = im.convert("RGB")
    shown = dialog.left.viewport().grab().toImage()
    for x, y in ((40, 40), (300, 200), (500, 380)):
        scene = dialog.left.mapToScene(QPoint(x, y))
        expected = pixels.getpixel((int(scene.x()), int(scene.y())))
        got = shown.pixelColor(x, y)
        assert max(abs(a - b) for a, b in zip((got.red(), got.green(), got.blue()), expected)) <= 4
    # 100 % shows a small region; a wheel then stays sharp and synced
    visible = dialog.left.mapToScene(dialog.left.viewport().rect()).boundingRect()
    assert visible.width() < 1920 and visible.width() == pytest.approx(dialog.left.viewport().width(), abs=2)
    _same_view(dialog)
    shoot(dialog, "compare-100")
    gui_thread = threading.get_ident()
    assert calls and all(thread != gui_thread for thread, _ in calls)
    assert {side for _, side in calls} == {PREVIEW_SIDE, 1 << 15}  # a preview, then the full size
