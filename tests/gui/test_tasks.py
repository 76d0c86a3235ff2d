"""gui.tasks: core calls run on a worker thread, their outcome comes back on the GUI thread (issue 10, item 3).

Delivered on the GUI thread, exceptions too; a newer task of a kind drops the older one's result; closing
a window mid-task leaves no thread behind; and a slow Library.duplicates does not stall the event loop.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from clipfind.records import SearchResults
from gui.tasks import TaskRunner, on_gui_thread
from tests.gui.conftest import Heartbeat


@pytest.fixture
def runner(qtbot):
    tasks = TaskRunner()
    yield tasks
    tasks.shutdown()


def test_result_is_delivered_on_the_gui_thread(runner: TaskRunner, qtbot) -> None:
    ran_on: list[threading.Thread] = []
    got: list[tuple[int, bool]] = []

    def work() -> int:
        ran_on.append(threading.current_thread())
        assert not on_gui_thread()
        return 42

    runner.submit(work, lambda value: got.append((value, on_gui_thread())))
    assert runner.busy()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got == [(42, True)]
    assert ran_on and ran_on[0] is not threading.main_thread()
    assert runner.idle and not runner.busy()


def test_exception_is_delivered_not_raised(runner: TaskRunner, qtbot) -> None:
    errors: list[tuple[BaseException, bool]] = []
    results: list[object] = []

    def broken() -> None:
        raise ValueError("the catalog is damaged")

    runner.submit(broken, results.append, lambda exc: errors.append((exc, on_gui_thread())))
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert results == []
    exc, on_gui = errors[0]
    assert isinstance(exc, ValueError) and str(exc) == "the catalog is damaged" and on_gui
    runner.submit(lambda: 1 / 0)  # without a failed callback the exception is dropped, the runner lives on
    runner.submit(lambda: "next", results.append)
    qtbot.waitUntil(lambda: results == ["next"], timeout=5000)


def test_calls_run_one_at_a_time_in_order(runner: TaskRunner, qtbot) -> None:
    inside = []
    overlaps = []
    order: list[int] = []

    def work(i: int) -> int:
        inside.append(i)
        overlaps.append(len(inside) > 1)
        time.sleep(0.01)
        inside.remove(i)
        return i

    for i in range(8):
        runner.submit(lambda i=i: work(i), order.append)
    qtbot.waitUntil(lambda: len(order) == 8, timeout=5000)
    assert order == list(range(8)) and not any(overlaps)


def test_a_newer_task_of_a_kind_supersedes_the_running_and_the_queued_one(runner: TaskRunner, qtbot) -> None:
    release = threading.Event()
    started = threading.Event()
    delivered: list[str] = []
    ran: list[str] = []

    def slow(name: str) -> str:
        ran.append(name)
        started.set()
        release.wait(5)
        return name

    runner.submit(lambda: slow("first"), delivered.append, kind="search")
    assert started.wait(5)
    runner.submit(lambda: slow("second"), delivered.append, kind="search")  # queued behind the first
    runner.submit(lambda: "other kind", delivered.append, kind="counts")
    runner.submit(lambda: slow("third"), delivered.append, kind="search")
    assert runner.busy("search") and runner.busy("counts")
    release.set()
    qtbot.waitUntil(lambda: runner.idle, timeout=5000)
    assert ran == ["first", "third"]  # the queued "second" never ran; "first" ran but is dropped
    assert delivered == ["other kind", "third"]


def test_a_cancelled_task_is_not_delivered(runner: TaskRunner, qtbot) -> None:
    delivered: list[int] = []
    task = runner.submit(lambda: time.sleep(0.05) or 1, delivered.append)
    task.cancel()
    runner.submit(lambda: 2, delivered.append)
    qtbot.waitUntil(lambda: runner.idle, timeout=5000)
    assert delivered == [2]


def test_shutdown_mid_task_waits_for_it_and_delivers_nothing(qtbot) -> None:
    tasks = TaskRunner()
    started = threading.Event()
    finished = threading.Event()
    delivered: list[object] = []

    def slow() -> str:
        started.set()
        time.sleep(0.3)
        finished.set()
        return "late"

    tasks.submit(slow, delivered.append)
    tasks.submit(lambda: "never", delivered.append)
    assert started.wait(5)
    worker = tasks._thread
    tasks.shutdown()
    assert finished.is_set() and worker is not None and not worker.is_alive()
    qtbot.wait(50)
    assert delivered == [] and tasks.idle
    assert tasks.submit(lambda: "after", delivered.append).dropped  # a closed runner takes nothing


def test_an_idle_worker_thread_ends_and_a_new_task_starts_another(qtbot, monkeypatch) -> None:
    import gui.tasks

    monkeypatch.setattr(gui.tasks, "IDLE_SECONDS", 0.05)
    tasks = TaskRunner()
    got: list[int] = []
    tasks.submit(lambda: 1, got.append)
    qtbot.waitUntil(lambda: got == [1], timeout=5000)
    qtbot.waitUntil(lambda: tasks._thread is None, timeout=5000)
    tasks.submit(lambda: 2, got.append)
    qtbot.waitUntil(lambda: got == [1, 2], timeout=5000)
    tasks.shutdown()


def test_closing_the_window_mid_task_is_clean(make_window, qtbot, monkeypatch, capfd) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: window.tasks.idle, timeout=120_000)
    started = threading.Event()
    library = window.library

    def slow_duplicates(threshold: float) -> list:
        started.set()
        time.sleep(0.5)
        return []

    monkeypatch.setattr(library, "duplicates", slow_duplicates)
    window.tabs.setCurrentWidget(window.dupes)  # regroups on the worker
    assert started.wait(5) and window.dupes.busy
    before = {t.name for t in threading.enumerate()}
    assert "clipfind-library" in before
    window.close()  # waits for the call in flight, delivers nothing
    assert "clipfind-library" not in {t.name for t in threading.enumerate()}
    assert window.dupes.groups == []
    QApplication.processEvents()
    assert "QThread: Destroyed" not in capfd.readouterr().err


def test_a_slow_duplicates_call_does_not_stall_the_event_loop(make_window, qtbot, monkeypatch) -> None:
    """The neighbour graph build takes 44 s at 100k photos: stand in for it with a sleep."""
    window = make_window()
    qtbot.waitUntil(lambda: window.tasks.idle, timeout=120_000)
    delivered = threading.Event()

    def slow_duplicates(threshold: float) -> list:
        time.sleep(1.0)
        return []

    monkeypatch.setattr(window.library, "duplicates", slow_duplicates)
    window._show_welcome(False)  # an empty home shows the welcome page: the tabs are what is watched here
    window.dupes.stale = True
    beat = Heartbeat()
    with beat:
        window.tabs.setCurrentWidget(window.dupes)
        assert window.dupes.working.isVisible() and "Finding duplicates" in window.dupes.working_label.text()
        window.dupes.slider.setValue(window.dupes.slider.value() - 10)  # usable while it works
        qtbot.waitUntil(lambda: window.tasks.idle, timeout=10_000)
        delivered.set()
    assert delivered.is_set() and not window.dupes.working.isVisible()
    assert beat.ticks > 50, beat.ticks  # the timer kept firing through both slow calls
    assert beat.worst_ms < 100, f"the event loop stalled for {beat.worst_ms:.0f} ms"


def test_busy_state_is_shown_while_a_search_runs(make_window, qtbot, monkeypatch, tmp_path: Path) -> None:
    from tests.gui.conftest import shoot

    window = make_window()
    qtbot.waitUntil(lambda: window.tasks.idle, timeout=120_000)
    release = threading.Event()
    monkeypatch.setattr(window.library, "search_results",
                        lambda *a, **k: release.wait(5) and SearchResults((), 0, None))
    window._show_welcome(False)
    window.search.text.setText("a dog")
    window.search.run_search()
    qtbot.waitUntil(lambda: window.search.busy.isVisible(), timeout=5000)
    assert window.search.busy_label.isVisible() and window.search.busy_label.text() == "Searching…"
    qtbot.wait(100)  # laid out with its text, as the user sees it a frame later
    shoot(window, "13-search-busy")
    window.tabs.setCurrentWidget(window.dupes)  # queued behind the search: busy too, and the tab answers
    qtbot.waitUntil(lambda: window.dupes.working.isVisible(), timeout=5000)
    assert window.dupes.working_label.text().startswith("Finding duplicates…")
    qtbot.wait(100)
    shoot(window, "14-dupes-busy")
    release.set()
    qtbot.waitUntil(lambda: window.tasks.idle, timeout=10_000)
    assert not window.search.busy.isVisible() and not window.dupes.working.isVisible()


def test_heartbeat_sees_a_blocked_event_loop(qtbot) -> None:
    """The measuring tool itself: a sleep on the GUI thread shows up as a stall."""
    beat = Heartbeat()
    with beat:
        qtbot.wait(50)
        QTimer.singleShot(0, lambda: time.sleep(0.2))
        qtbot.wait(300)
    assert 150 < beat.worst_ms < 1000
