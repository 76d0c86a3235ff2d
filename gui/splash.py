"""The splash screen the app shows while the library prepares, before its main window exists.

Some opens hold Python's lock (the GIL) for a second or more: importing torch, loading the saved
vector index. While one runs no thread can run Python, so a window shown meanwhile would stop
answering. They run on a worker while only this splash is up (it has nothing to click); the window
opens after them and never waits on them. Everything that lets other threads run (weights, ONNX
sessions, an index rebuild, the catch-up indexing) happens behind the open window, with its busy state.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtGui import QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QSplashScreen

from .icons import icon
from .theme import follow_system

SIZE = (360, 200)
POLL_MS = 15


def splash_screen(message: str = "Opening your photo library…") -> QSplashScreen:
    """A plain card with the app's icon and a line of text, shown at once."""
    app = QApplication.instance()
    follow_system(app)  # light or dark like the system, from the first thing shown
    palette = app.palette()
    pixmap = QPixmap(*SIZE)
    pixmap.fill(palette.color(QPalette.ColorRole.Window))
    painter = QPainter(pixmap)
    icon("clipfind").paint(painter, (SIZE[0] - 72) // 2, 36, 72, 72)
    painter.setPen(palette.color(QPalette.ColorRole.WindowText))
    font = painter.font()
    font.setPointSize(15)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(0, 124, SIZE[0], 30, Qt.AlignmentFlag.AlignHCenter, "clipfind")
    painter.end()
    splash = QSplashScreen(pixmap)
    splash.showMessage(message, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                       palette.color(QPalette.ColorRole.PlaceholderText))
    splash.show()
    QApplication.processEvents()
    return splash


def run_behind(splash: QSplashScreen, work: Callable[[], None]) -> BaseException | None:
    """Run ``work`` on a worker thread while the event loop keeps the splash drawn; its exception, if any.

    The caller decides what a failure means: the app opens its window anyway and says why there.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller, on the GUI thread)
            outcome.append(exc)
        else:
            outcome.append(None)

    collecting = gc.isenabled()
    gc.disable()  # a collection during torch's import walks its ~400k new objects again and again
    thread = threading.Thread(target=run, name="clipfind-prepare", daemon=True)
    thread.start()
    loop = QEventLoop()
    timer = QTimer(interval=POLL_MS, timeout=lambda: None if thread.is_alive() else loop.quit())
    timer.start()
    if thread.is_alive():
        loop.exec()
    timer.stop()
    thread.join()
    if collecting:
        gc.enable()
    splash.repaint()
    return outcome[0] if outcome else None
