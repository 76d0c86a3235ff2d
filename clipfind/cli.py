"""The `clipfind` command: gathers arguments, calls the Library, prints results (text or JSON)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from clipfind import __version__
from clipfind.errors import ClipfindError
from clipfind.modelspec import PRECISIONS
from clipfind.records import PhotoInfo, human_bytes

if TYPE_CHECKING:
    from clipfind.library import Library
    from clipfind.trash import TrashReport

EPILOG = "Global options (--home, --model, --pretrained, --precision) work before or after the command."


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On subcommands, SUPPRESS keeps a value given before the command from being reset.
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument("--home", default=default, metavar="DIR",
                       help="where the catalog lives (default: $CLIPFIND_HOME, else your user data folder)")
    group.add_argument("--model", default=default, metavar="NAME",
                       help="open_clip model name or hf-hub:ORG/REPO (default: $CLIPFIND_MODEL, else the "
                       "catalog's model, else ViT-B-32); see `clipfind models`")
    group.add_argument("--pretrained", default=default, metavar="TAG|PATH|none",
                       help="weights: a pretrained tag, a checkpoint file, or none for random weights "
                       "(tests only) (default: $CLIPFIND_PRETRAINED, else the model's default tag)")
    group.add_argument("--precision", default=default, choices=PRECISIONS,
                       help="how the image encoder runs: auto measures once which is fastest here while "
                       "keeping the vectors within 0.999 cosine of fp32; fp32 forces the plain path "
                       "(default: $CLIPFIND_PRECISION, else auto)")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other clipfind error (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"clipfind: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clipfind", description="Search your photos by meaning and find duplicates, all on your machine.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"clipfind {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        _global_options(p, top=False)
        return p

    p = command("index", "index photo folders (new, changed, moved and deleted files; resumable)")
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="folders to add (default: the folders indexed before)")
    p.add_argument("--reembed", action="store_true", help="re-embed every photo with the chosen model")
    p.add_argument("--batch-size", type=_positive_int, default=32, metavar="N")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N", help="decoding threads")
    p.add_argument("--json", action="store_true", help="print a JSON summary")

    p = command("search", "search by text and/or by photo")
    p.add_argument("text", nargs="*", help="what to look for; add ^WEIGHT to weigh a phrase, e.g. beach^2")
    p.add_argument("--image", action="append", default=[], metavar="PHOTO", help="find photos like this one (repeatable)")
    p.add_argument("--minus", action="append", default=[], metavar="TEXT", help="push results away from this (repeatable)")
    p.add_argument("-k", "--top", dest="k", type=_positive_int, default=20, metavar="K", help="how many results (default 20)")
    p.add_argument("--folder", metavar="DIR", help="only photos inside this folder")
    p.add_argument("--from", dest="date_from", type=_date_from, metavar="DATE", help="taken on or after (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", type=_date_to, metavar="DATE", help="taken on or before (YYYY-MM-DD)")
    p.add_argument("--min-score", type=_score, metavar="S", help="only results at least this similar (-1..1)")
    p.add_argument("--json", action="store_true")

    p = command("dupes", "list duplicate photos: identical files, and near-duplicates above a similarity")
    p.add_argument("--threshold", type=_unit, default=0.95, metavar="T",
                   help="similarity 0..1 for near-duplicates (default 0.95; higher = stricter)")
    p.add_argument("--tier", choices=("all", "identical", "near"), default="all")
    p.add_argument("--trash", action="store_true", help="move every non-keeper to the system trash (asks first)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true")

    p = command("not-dupes", "remember that these photos are not duplicates of each other")
    p.add_argument("paths", nargs="+", metavar="PHOTO")

    p = command("trash", "move photos to the system trash (asks first) and forget them")
    p.add_argument("paths", nargs="+", metavar="PHOTO")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = command("forget", "stop indexing a folder and drop its photos from the catalog (files untouched)")
    p.add_argument("folder", metavar="FOLDER")

    p = command("status", "show folders, counts, model and unreadable files")
    p.add_argument("--errors", action="store_true", help="list every unreadable file with its reason")
    p.add_argument("--json", action="store_true")

    p = command("models", "list the supported models")
    p.add_argument("--json", action="store_true")
    return parser


# -- argument types -----------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _float_in(text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
    return value


def _unit(text: str) -> float:
    return _float_in(text, 0.0, 1.0)


def _score(text: str) -> float:
    return _float_in(text, -1.0, 1.0)


def _parse_date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _date_from(text: str) -> str:
    return _parse_date(text).strftime("%Y-%m-%dT%H:%M:%S")


def _date_to(text: str) -> str:
    moment = _parse_date(text)
    if len(text) <= 10:  # a whole day: include all of it
        moment = moment.replace(hour=23, minute=59, second=59)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# -- output helpers -----------------------------------------------------------------------
def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=True)
    sys.stdout.write("\n")


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise ClipfindError(f"{question} needs confirmation: run in a terminal or add --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _photo_json(photo: PhotoInfo) -> dict[str, Any]:
    return {"path": photo.path, "size": photo.size, "width": photo.width, "height": photo.height,
            "taken_at": photo.taken_at}


# -- commands -----------------------------------------------------------------------------
def cmd_index(lib: Library, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from clipfind.indexer import Control, Progress

    control = Control()
    bar = tqdm(total=0, unit="photo", disable=None, file=sys.stderr, dynamic_ncols=True)

    def on_progress(p: Progress) -> None:
        if p.phase == "indexing":
            bar.total = p.total
            bar.n = p.done
            bar.set_postfix_str(f"{p.failed} unreadable" if p.failed else "", refresh=False)
            bar.refresh()
        elif p.phase in ("scanning", "saving"):
            bar.set_description_str(p.phase)

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        # First Ctrl+C finishes the batch in flight and saves; a second one aborts.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        control.cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        options = {"batch_size": args.batch_size}
        if args.workers:
            options["workers"] = args.workers
        report = lib.indexer(**options).run(args.folders or None, progress=on_progress, control=control,
                                            reembed=args.reembed)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    for notice in report.notices:
        print(f"clipfind: {notice}", file=sys.stderr)
    summary = {k: getattr(report, k) for k in
               ("added", "updated", "moved", "copied", "removed", "failed", "unchanged", "cancelled")}
    summary["seconds"] = round(report.seconds, 3)
    summary["images_per_second"] = round(report.rate, 2)
    if args.json:
        _print_json(summary)
    else:
        print(
            f"{report.added} added, {report.updated} updated, {report.moved} moved, {report.copied} copies, "
            f"{report.removed} removed, {report.failed} unreadable, {report.unchanged} unchanged "
            f"in {report.seconds:.1f} s ({report.rate:.1f} photos/s)"
            + (" - cancelled, run again to continue" if report.cancelled else "")
        )
    return 130 if report.cancelled else 0


def cmd_search(lib: Library, args: argparse.Namespace) -> int:
    from clipfind.search import Filters, build_query

    query = build_query(args.text, args.image, args.minus)
    filters = Filters(args.folder, args.date_from, args.date_to, args.min_score)
    hits = lib.search(query, args.k, filters)
    if args.json:
        _print_json([{**_photo_json(h.photo), "score": round(h.score, 6)} for h in hits])
    else:
        for hit in hits:
            print(f"{hit.score:6.3f}  {hit.photo.path}")
        if not hits:
            print("no matching photos", file=sys.stderr)
    return 0


def cmd_dupes(lib: Library, args: argparse.Namespace) -> int:
    groups = [g for g in lib.duplicates(args.threshold) if args.tier in ("all", g.tier)]
    if args.json:
        _print_json([
            {"tier": g.tier, "keeper": g.keeper.path, "reclaimable_bytes": g.reclaimable_bytes,
             "members": [{**_photo_json(m.photo), "similarity": round(m.similarity, 6),
                          "keeper": m.photo.id == g.keeper.id} for m in g.members]}
            for g in groups
        ])
    else:
        for g in groups:
            print(f"{g.tier}: {len(g.members)} photos, {human_bytes(g.reclaimable_bytes)} reclaimable")
            for m in g.members:
                mark = "keep" if m.photo.id == g.keeper.id else f"{m.similarity:.3f}"
                size = f"{m.photo.width}x{m.photo.height}" if m.photo.width else "?"
                print(f"  {mark:>6}  {size:>11}  {human_bytes(m.photo.size):>9}  {m.photo.path}")
        total = sum(g.reclaimable_bytes for g in groups)
        print(f"{len(groups)} groups, {human_bytes(total)} reclaimable", file=sys.stderr)
    if args.trash and groups:
        doomed = [p for g in groups for p in g.others]
        size = human_bytes(sum(p.size for p in doomed))
        if _confirm(f"Move {len(doomed)} photos ({size}) to the trash, keeping one per group?", args.yes):
            return _report_trash(lib.trash(doomed))
    return 0


def _catalog_photos(lib: Library, paths: Sequence[str]) -> list[PhotoInfo]:
    photos = []
    for path in paths:
        found = lib.catalog.photo_by_path(path)
        if found is None:
            raise ClipfindError(f"not in the catalog: {path}")
        photos.append(found[0])
    return photos


def cmd_trash(lib: Library, args: argparse.Namespace) -> int:
    photos = _catalog_photos(lib, args.paths)
    size = human_bytes(sum(p.size for p in photos))
    if _confirm(f"Move {len(photos)} photos ({size}) to the trash?", args.yes):
        return _report_trash(lib.trash(photos))
    return 1


def _report_trash(report: TrashReport) -> int:
    for photo, reason in report.refused:
        print(f"clipfind: kept {photo.path}: {reason}", file=sys.stderr)
    print(f"moved {len(report.moved)} photos ({human_bytes(report.freed_bytes)}) to the trash")
    return 0 if not report.refused else 1


def cmd_not_dupes(lib: Library, args: argparse.Namespace) -> int:
    photos = _catalog_photos(lib, args.paths)
    lib.mark_not_duplicates(photos)
    print(f"these {len(photos)} photos will not be shown as duplicates of each other again")
    return 0


def cmd_forget(lib: Library, args: argparse.Namespace) -> int:
    import os

    from clipfind.home import WriterLock

    folder = os.path.abspath(os.path.expanduser(args.folder))
    if folder not in lib.catalog.folders():
        raise ClipfindError(f"not an indexed folder: {folder}")
    with WriterLock(lib.home):
        dropped = lib.catalog.remove_folder(folder)
    print(f"forgot {folder} and its {dropped} photos (the files themselves are untouched)")
    return 0


def cmd_status(lib: Library, args: argparse.Namespace) -> int:
    status = lib.status()
    if args.json:
        data = asdict(status)
        data["failures"] = data["failures"] if args.errors else data["failures"][:20]
        _print_json(data)
        return 0
    print(f"home:     {status.home}")
    print(f"model:    {status.model or '(none yet)'} / {status.pretrained or 'random weights' if status.model else ''}")
    print(f"indexed:  {status.files_indexed} photos, {status.files_failed} unreadable")
    for folder in status.folders:
        state = "" if folder.reachable else "  (not reachable)"
        print(f"folder:   {folder.path}  {folder.files} files{state}")
    shown = status.failures if args.errors else status.failures[:10]
    for failure in shown:
        print(f"error:    {failure.path}: {failure.error}")
    if len(status.failures) > len(shown):
        print(f"          ... {len(status.failures) - len(shown)} more; see `clipfind status --errors`")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from clipfind.model_table import MODELS, table_markdown

    if args.json:
        _print_json([asdict(m) for m in MODELS])
    else:
        print(table_markdown())
    return 0


COMMANDS = {
    "index": cmd_index, "search": cmd_search, "dupes": cmd_dupes, "not-dupes": cmd_not_dupes,
    "trash": cmd_trash, "forget": cmd_forget, "status": cmd_status,
}


def _warn(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"clipfind: warning: {message}", file=sys.stderr)


def _quiet_open_clip(record: logging.LogRecord) -> bool:
    """open_clip logs its own random-weights notice; ours (a warning) already says it once."""
    return not record.getMessage().startswith("No pretrained weights loaded")


def _paths_as_bytes() -> None:
    """Print file names that are not valid UTF-8 as the bytes they are, instead of failing on them."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and sys.stdout.errors == "strict":
        reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _paths_as_bytes()
    warnings.showwarning = _warn
    logging.getLogger().addFilter(_quiet_open_clip)
    try:
        if args.command == "models":
            return cmd_models(args)
        from clipfind.library import Library

        lib = Library(args.home, args.model, args.pretrained, precision=args.precision)
        try:
            code = COMMANDS[args.command](lib, args)
            for notice in lib.notices:
                print(f"clipfind: {notice}", file=sys.stderr)
            return code
        finally:
            lib.close()
    except ClipfindError as exc:
        print(f"clipfind: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # a disk that filled up, or a catalog damaged on disk
        print(f"clipfind: error: the catalog cannot be used: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clipfind: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the home or a photo on a disk that is full, read-only or failing
        print(f"clipfind: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
              file=sys.stderr)
        return 1


def run() -> NoReturn:
    """The `clipfind` command. Once torch is loaded, tearing the interpreter down takes about a
    second (hundreds of thousands of objects); everything is saved and closed by now, so the
    process ends at once instead."""
    code = main()
    if "torch" not in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
