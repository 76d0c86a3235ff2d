"""Entry point of `clipfind-gui [FOLDER ...]`, with the CLI's global options."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clipfind.library import PRECISIONS

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .splash import run_behind, splash_screen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipfind-gui", description="The clipfind desktop app.")
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help="photo folders to add and index")
    parser.add_argument("--home", metavar="DIR", help="where the catalog lives (default: $CLIPFIND_HOME, "
                        "else your user data folder)")
    parser.add_argument("--model", metavar="NAME", help="open_clip model name (default: $CLIPFIND_MODEL, "
                        "else the catalog's, else ViT-B-32)")
    parser.add_argument("--pretrained", metavar="TAG|PATH|none", help="weights tag, checkpoint file, or none")
    parser.add_argument("--precision", choices=PRECISIONS, help="how the image encoder runs (default: auto, "
                        "measured once per machine); fp32 forces the plain path")
    return parser


XCB_CURSOR = "libxcb-cursor.so.0"
XCB_CURSOR_MISSING = ("clipfind-gui: Qt needs the system library libxcb-cursor0 to open a window; "
                      "install it with: sudo apt install libxcb-cursor0")


def _loads(library: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def missing_platform_library() -> str | None:
    """Why Qt's X11 platform plugin would fail to load, or None.

    Qt 6.5+ needs libxcb-cursor0 for xcb, which a fresh Debian lacks, and Qt then aborts the process
    with a message about plugins that does not name the package: so look before QApplication exists.
    Only where xcb is what Qt will use: Linux, an X display, no other platform asked for.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY"):
        return None
    if platform.split(":")[0] not in ("", "xcb") or (not platform and os.environ.get("WAYLAND_DISPLAY")):
        return None  # another plugin (a Wayland session uses its own unless told otherwise)
    return None if _loads(XCB_CURSOR) else XCB_CURSOR_MISSING


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = missing_platform_library()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from clipfind.errors import ClipfindError
    from clipfind.library import Library
    from .icons import icon
    from .main_window import MainWindow
    from .splash import run_behind, splash_screen

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("clipfind")
    app.setApplicationName("clipfind")
    app.setWindowIcon(icon("clipfind"))
    settings = QSettings()
    pretrained = args.pretrained if args.pretrained is not None else settings.value("model/pretrained", None)
    try:
        library = Library(args.home, args.model, pretrained, precision=args.precision)
    except ClipfindError as exc:
        QMessageBox.critical(None, "clipfind", str(exc))
        return 1
    splash = splash_screen()
    run_behind(splash, library.prepare)  # a failure comes back, with its reason, when the window loads the model
    window = MainWindow(library, settings, args.folders or None)
    window.show()
    splash.finish(window)
    _startup_probe(window)
    return app.exec()


def _startup_probe(window: MainWindow) -> None:
    """Hook for bench/startup.py and tests/gui/test_startup.py; does nothing unless CLIPFIND_STARTUP_PROBE=<file>.

    Once the shown window is exposed and the running event loop has fired a zero-timer (so the window answers
    input), appends "window <time.time()>" to the file; once the background model load has ended (loaded or
    failed), appends "model <time.time()>" and closes the window, which quits the app the usual way.
    """
    path = os.environ.get("CLIPFIND_STARTUP_PROBE")
    if not path:
        return
    import time

    from PySide6.QtCore import QTimer

    def mark(event: str) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{event} {time.time():.6f}\n")

    def wait_for_window() -> None:
        if not window.windowHandle().isExposed():
            QTimer.singleShot(0, wait_for_window)
            return
        mark("window")
        wait_for_model()

    def wait_for_model() -> None:  # quitting while the loader thread runs would abort ("QThread: Destroyed")
        if window.model_ready or window.banner_box.isVisible():  # loaded, or failed with the banner saying why
            mark("model")
            window.close()
        else:
            QTimer.singleShot(10, wait_for_model)

    QTimer.singleShot(0, wait_for_window)


if __name__ == "__main__":
    sys.exit(main())
