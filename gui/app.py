"""Entry point of `clipfind-gui [FOLDER ...]`, with the CLI's global options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipfind-gui", description="The clipfind desktop app.")
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help="photo folders to add and index")
    parser.add_argument("--home", metavar="DIR", help="where the catalog lives (default: $CLIPFIND_HOME, "
                        "else your user data folder)")
    parser.add_argument("--model", metavar="NAME", help="open_clip model name (default: $CLIPFIND_MODEL, "
                        "else the catalog's, else ViT-B-32)")
    parser.add_argument("--pretrained", metavar="TAG|PATH|none", help="weights tag, checkpoint file, or none")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from clipfind.errors import ClipfindError
    from clipfind.library import Library
    from gui.icons import icon
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("clipfind")
    app.setApplicationName("clipfind")
    app.setWindowIcon(icon("clipfind"))
    settings = QSettings()
    pretrained = args.pretrained if args.pretrained is not None else settings.value("model/pretrained", None)
    try:
        library = Library(args.home, args.model, pretrained)
    except ClipfindError as exc:
        QMessageBox.critical(None, "clipfind", str(exc))
        return 1
    window = MainWindow(library, settings, args.folders or None)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
