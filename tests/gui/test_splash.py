"""The splash the app shows while the library prepares: drawn at once, the work off the GUI thread."""

from __future__ import annotations

import threading

from gui.splash import run_behind, splash_screen
from tests.gui.conftest import shoot


def test_work_runs_off_the_gui_thread_while_the_splash_is_up(qtbot) -> None:
    splash = splash_screen()
    qtbot.addWidget(splash)
    assert splash.isVisible()
    shoot(splash, "00-splash")
    seen: list[threading.Thread] = []
    assert run_behind(splash, lambda: seen.append(threading.current_thread())) is None
    assert seen and seen[0] is not threading.main_thread()


def test_a_failure_comes_back_to_the_caller(qtbot) -> None:
    splash = splash_screen()
    qtbot.addWidget(splash)

    def fail() -> None:
        raise OSError("disk gone")

    problem = run_behind(splash, fail)
    assert isinstance(problem, OSError) and "disk gone" in str(problem)
