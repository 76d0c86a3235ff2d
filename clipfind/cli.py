"""The `clipfind` command: gathers arguments, calls the Library, prints results (text or JSON)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from types import FrameType
from typing import Any, NoReturn

from clipfind.errors import ClipfindError, one_line
from clipfind.library import (
    PRECISIONS,
    Library,
    WatchNotice,
    __version__,
    build_query,
    check_model_name,
    models_table,
    supported_models,
    tier_view,
)
from clipfind.records import (
    SORT_ORDERS,
    TIER_NAMES,
    TIERS,
    Control,
    DupeGroup,
    DupeMember,
    Filters,
    KeeperRules,
    PhotoInfo,
    Progress,
    SearchHit,
    SearchResults,
    TrashReport,
    human_bytes,
    human_duration,
    photo_format,
)

EPILOG = "Global options (--home, --model, --pretrained, --precision) work before or after the command."


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On subcommands, SUPPRESS keeps a value given before the command from being reset.
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument("--home", default=default, metavar="DIR", type=_path,
                       help="where the catalog lives (default: $CLIPFIND_HOME, else your user data folder)")
    group.add_argument("--model", default=default, metavar="NAME",
                       help="open_clip model name or hf-hub:ORG/REPO (default: $CLIPFIND_MODEL, else the "
                       "catalog's model, else ViT-B-32); see `clipfind models`")
    group.add_argument("--pretrained", default=default, metavar="TAG|PATH|none",
                       help="weights: a pretrained tag, a checkpoint file, or none for random weights "
                       "(tests only) (default: $CLIPFIND_PRETRAINED, else the model's default tag)")
    group.add_argument("--precision", default=default, choices=PRECISIONS,
                       help="how the image encoder runs: auto measures once which is fastest here while "
                       "keeping the vectors within 0.999 cosine of fp32; fp32 forces the plain path; "
                       "fp16 on a GPU only (default: $CLIPFIND_PRECISION, else auto)")


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
    p.add_argument("folders", nargs="*", type=_path, metavar="FOLDER",
                   help="folders to add (default: the folders indexed before)")
    p.add_argument("--reembed", action="store_true",
                   help="re-embed every photo with the chosen model (the catalog's own model too)")
    p.add_argument("--rebuild", action="store_true",
                   help="set a damaged catalog aside and index the folders again from the photos, keeping "
                   "the \"not duplicates\" marks that can still be read")
    p.add_argument("--batch-size", type=_positive_int, default=32, metavar="N")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="decoding threads or processes (with --cluster: worker processes)")
    p.add_argument("--decode", choices=("auto", "threads", "processes"), default="auto",
                   help="decode photos in threads or in worker processes; auto: processes where the model "
                   "runs on a GPU (decoding is the bound there), threads on a CPU")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="read, decode and embed the photos on a Ray cluster: 'local' starts one on this machine, "
                   "'auto' or 'ray://HOST:10001' joins one; the folders must be at the same paths on every worker "
                   "(needs: pip install 'clipfind[cluster]')")
    p.add_argument("--json", action="store_true", help="print a JSON summary (with --watch: one JSON line per batch)")
    p.add_argument("--watch", action="store_true",
                   help="after indexing, keep watching the folders and index what changes in them, in batches, "
                   "until Ctrl+C (one watcher per home: not while the app watches it)")
    p.add_argument("--poll", action="store_true",
                   help="with --watch: look for changes every second instead of waiting for the system's events "
                   "(network drives whose events do not arrive; such drives are polled anyway where recognised)")

    p = command("search", "search by text and/or by photo")
    p.add_argument("text", nargs="*", help="what to look for; add ^WEIGHT to weigh a phrase, e.g. beach^2")
    p.add_argument("--image", action="append", default=[], type=_path, metavar="PHOTO",
                   help="find photos like this one (repeatable)")
    p.add_argument("--minus", action="append", default=[], metavar="TEXT", help="push results away from this (repeatable)")
    p.add_argument("-k", "--top", dest="k", type=_positive_int, default=20, metavar="K", help="how many results (default 20)")
    p.add_argument("--folder", type=_path, metavar="DIR", help="only photos inside this folder")
    p.add_argument("--from", dest="date_from", type=_date_from, metavar="DATE", help="taken on or after (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", type=_date_to, metavar="DATE", help="taken on or before (YYYY-MM-DD)")
    p.add_argument("--min-score", type=_score, metavar="S",
                   help="only results at least this similar (-1..1); default: a cut-off from this query's own scores "
                   "(what stands out from the library as a whole); -1 keeps every result")
    p.add_argument("--tag", metavar="TAG", help="only photos with this automatic tag (see `clipfind tags --albums`)")
    p.add_argument("--sort", choices=SORT_ORDERS, default="score",
                   help="order of the best K: by score (default) or by capture date, newest first")
    p.add_argument("--save", metavar="NAME", help="also save this search (query and --min-score) under NAME")
    p.add_argument("--json", action="store_true")

    p = command("dupes", "list duplicate photos: identical files, the same photo saved again (found without "
                "the model), and similar shots above a similarity")
    p.add_argument("--threshold", type=_unit, default=0.95, metavar="T",
                   help="CLIP similarity 0..1 for similar shots (default 0.95; higher = stricter)")
    p.add_argument("--tier", choices=("all", *TIERS, "near"), default="all",
                   help="which groups to list (default all; near is the old name of similar); with --trash, "
                   "similar shots move only with --tier similar")
    p.add_argument("--trash", action="store_true",
                   help="move the identical files and same photos to the system trash, keeping one of each "
                   "(asks first); with --tier similar, the similar shots too")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true")
    _rule_options(p, "for this run, added to the saved rules (`clipfind rules`)")

    p = command("rules", "show or set the keeper rules: which photo of a duplicate group is kept")
    _rule_options(p, "saved for every later run, added to the rules saved before (start again with --clear)")
    p.add_argument("--no-prefer-dated", dest="prefer_dated", action="store_false",
                   help="stop preferring photos with a capture date")
    p.add_argument("--no-prefer-gps", dest="prefer_gps", action="store_false",
                   help="stop preferring photos with a GPS position")
    p.add_argument("--clear", action="store_true",
                   help="forget the saved rules before applying the options (the photos chosen with \"Keep this one\" "
                   "stay chosen)")
    p.add_argument("--json", action="store_true", help="print the rules as JSON")

    p = command("not-dupes", "remember that these photos are not duplicates of each other; list or take back "
                "such marks")
    p.add_argument("paths", nargs="*", type=_path, metavar="PHOTO", help="two or more photos (one with --undo)")
    p.add_argument("--undo", action="store_true", help="take back the marks that hold these photos")
    p.add_argument("--list", action="store_true", help="list the marks: number, tier, photos")
    p.add_argument("--remove", type=_positive_int, metavar="ID", action="append", default=[],
                   help="take back the mark with this number (from --list; repeatable)")
    p.add_argument("--json", action="store_true", help="with --list: print the marks as JSON")

    p = command("trash", "move photos to the system trash (asks first) and forget them; --undo puts the last "
                "batch back")
    p.add_argument("paths", nargs="*", type=_path, metavar="PHOTO")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--undo", action="store_true",
                   help="put back the photos the last `trash` or `dupes --trash` moved, where they were "
                   "(never over a file that is there again)")

    p = command("forget", "stop indexing a folder and drop its photos from the catalog (files untouched)")
    p.add_argument("folder", type=_path, metavar="FOLDER")

    p = command("status", "show folders, counts, model and unreadable files")
    p.add_argument("--errors", action="store_true", help="list every unreadable file with its reason")
    p.add_argument("--json", action="store_true")

    p = command("map", "place every indexed photo on a 2D map of similar photos, with clusters")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="print one object per indexed photo: path, x, y (0..1), cluster (-1: in none)")
    out.add_argument("--png", type=_path, metavar="FILE", help="draw the map with thumbnails and cluster names")
    p.add_argument("--size", type=_positive_int, default=1600, metavar="PIXELS",
                   help="the picture's width and height, with --png (default: 1600)")

    p = command("tags", "automatic tags from a vocabulary of everyday concepts (built in, plus vocabulary.txt in the "
                "home: one TAG or 'TAG | PROMPT' a line, -TAG drops one); a photo no tag clearly fits gets none")
    p.add_argument("--albums", action="store_true", help="list the tags in use with how many photos carry each")
    p.add_argument("--tag", metavar="TAG", help="list the photos carrying this tag, surest first")
    p.add_argument("--json", action="store_true",
                   help="print JSON: one object per photo with path and tags ([{tag, score}]); with --albums, "
                   "one object per tag")

    p = command("saved", "saved searches: list them, run one by name, or delete one (save with `search ... --save NAME`)")
    p.add_argument("name", nargs="?", metavar="NAME", help="the saved search to run")
    p.add_argument("--delete", action="store_true", help="forget the saved search NAME")
    p.add_argument("-k", "--top", dest="k", type=_positive_int, default=20, metavar="K",
                   help="how many results (default 20)")
    p.add_argument("--sort", choices=SORT_ORDERS, default="score", help="by score (default) or capture date, newest first")
    p.add_argument("--json", action="store_true")

    p = command("models", "list the supported models")
    p.add_argument("--json", action="store_true")
    return parser


def _rule_options(p: argparse.ArgumentParser, when: str) -> None:
    group = p.add_argument_group(f"keeper rules ({when})")
    group.add_argument("--protect", action="append", default=[], type=_path, metavar="DIR",
                       help="never remove a photo from this folder: its photos are kept first (repeatable)")
    group.add_argument("--prefer-folder", dest="prefer_folders", action="append", default=[], type=_path,
                       metavar="DIR", help="keep the photo in this folder over others, the first given first "
                       "(repeatable)")
    group.add_argument("--prefer-format", dest="formats", type=_formats, metavar="LIST",
                       help="keep these formats first, most wanted first, e.g. raw,heic,jpeg")
    group.add_argument("--prefer-dated", action="store_true", default=None,
                       help="keep a photo with a capture date over one without")
    group.add_argument("--prefer-gps", action="store_true", default=None,
                       help="keep a photo with a GPS position over one without")


def _formats(text: str) -> tuple[str, ...]:
    """raw,heic,jpeg -> their format families (jpg and jpeg are one, cr2 is raw)."""
    names = [t.strip().lower().lstrip(".") for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"give formats separated by commas, e.g. raw,heic,jpeg; got {text!r}")
    return tuple(dict.fromkeys(photo_format("x." + n) for n in names))


def _with_options(rules: KeeperRules, args: argparse.Namespace) -> KeeperRules:
    """The rules with the command's rule options added: new folders join (run's first for the preferred
    ones), a format list replaces the order, a --prefer/--no-prefer flag sets its rule."""
    def folders(given: list[str], saved: tuple[str, ...], first: bool) -> tuple[str, ...]:
        new = [os.path.abspath(os.path.expanduser(f)) for f in given]
        return tuple(dict.fromkeys([*new, *saved] if first else [*saved, *new]))

    return dataclasses.replace(
        rules,
        protect=folders(args.protect, rules.protect, first=False),
        prefer_folders=folders(args.prefer_folders, rules.prefer_folders, first=True),
        formats=args.formats if args.formats is not None else rules.formats,
        prefer_dated=rules.prefer_dated if args.prefer_dated is None else args.prefer_dated,
        prefer_gps=rules.prefer_gps if args.prefer_gps is None else args.prefer_gps,
    )


# -- argument types -----------------------------------------------------------------------
def _path(text: str) -> str:
    """An empty path is refused: it is what an unset variable gives ("$DIR"), and it would
    otherwise mean the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("empty path (an unset variable?)")
    return text


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
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if moment.tzinfo is not None:  # capture dates carry no zone: comparing would silently drop it
        raise argparse.ArgumentTypeError(
            f"no time zone, please: {text!r} (capture dates are the camera's local time)"
        )
    return moment


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


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 photo', '2 photos', '1 copy', '3 copies'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _say(message: str) -> None:
    print(f"clipfind: {message}", file=sys.stderr)


def _confirm(question: str, assume_yes: bool) -> bool:
    """Ask on the terminal. The prompt goes to stderr, so stdout stays the command's output (JSON
    included); end of input (Ctrl+D) is a no."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise ClipfindError("this needs a confirmation: run it in a terminal, or add --yes")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print(file=sys.stderr)  # Ctrl+D leaves the cursor after the prompt
    return answer.strip().lower() in ("y", "yes")


def _declined() -> int:
    """The one answer to a "no" at any confirmation (trash, dupes --trash)."""
    _say("nothing moved")
    return 1


def _photo_json(photo: PhotoInfo) -> dict[str, Any]:
    return {"path": photo.path, "size": photo.size, "width": photo.width, "height": photo.height,
            "taken_at": photo.taken_at}


# -- commands -----------------------------------------------------------------------------
CANCELLED = "cancelled, run again to continue"


def cmd_index(lib: Library, args: argparse.Namespace) -> int:
    if args.poll and not args.watch:
        raise ClipfindError("--poll goes with --watch")
    if args.cluster is not None and args.watch:
        raise ClipfindError("--cluster indexes once: watching a folder stays on this machine; run it without --watch")
    if args.watch:
        return _index_and_watch(lib, args)
    return _index_once(lib, args)


def _index_and_watch(lib: Library, args: argparse.Namespace) -> int:
    """`index --watch`: take the watch lock and start watching first, then index (changes during that
    run wait for it), then apply each batch of changes until SIGINT or SIGTERM; both exit with 0."""
    if args.reembed:
        raise ClipfindError("--reembed is a one-off: run it without --watch first")
    for folder in args.folders:
        path = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(path):
            raise ClipfindError(f"not a folder: {path}" if os.path.exists(path) else f"folder not found: {path}")

    def show(notice: WatchNotice) -> None:
        if args.json:
            r = notice.report
            keys = ("added", "updated", "moved", "copied", "removed", "failed")
            counts = {k: getattr(r, k) for k in keys} if r else {}
            print(json.dumps({"event": notice.kind, "folders": list(notice.folders), **counts,
                              **({"message": notice.message} if notice.message else {})}), flush=True)
        elif notice.kind == "batch":
            print(notice.line(), flush=True)
        else:
            _say(notice.line())

    stop = threading.Event()
    watcher = lib.watch(args.folders or None, show, polling=True if args.poll else None, paused=True)
    try:
        code = _index_once(lib, args)
        if code != 0:
            return code
        previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            modes = watcher.modes()
            how = ", ".join(sorted({m for m in modes.values()}))
            _say(f"watching {_count(len(modes), 'folder')} ({how}); Ctrl+C to stop")
            watcher.resume()
            while not stop.wait(0.5):  # a timed wait: signal handlers run in between
                pass
            watcher.stop()  # a batch in flight stops after its step and saves what it committed
            _say("stopped watching")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0
    finally:
        watcher.stop()


def _index_once(lib: Library, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    for folder in args.folders:
        path = os.path.abspath(os.path.expanduser(folder))
        if os.path.exists(path) and not os.path.isdir(path):
            raise ClipfindError(f"not a folder: {path}")
    control = Control()
    bar = tqdm(total=0, unit="photo", disable=None, file=sys.stderr, dynamic_ncols=True)

    def on_progress(p: Progress) -> None:
        if p.phase in ("indexing", "fingerprinting"):
            if p.phase == "fingerprinting":  # photos indexed by an older clipfind, for the same-photo tier
                bar.set_description_str("fingerprinting")
            bar.total = p.total
            bar.n = p.done
            workers = getattr(p, "workers", 0)  # a --cluster run's ClusterProgress
            if workers:
                bar.set_description_str(f"{_count(workers, 'worker')}")
            bar.set_postfix_str(f"{p.failed} unreadable" if p.failed else "", refresh=False)
            bar.refresh()
        elif p.phase in ("scanning", "saving"):
            bar.set_description_str(p.phase)

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        # First Ctrl+C: the indexer stops after the step in flight (a scan, the model load, a
        # batch) and saves, which can take a while, so say so at once. A second one aborts.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        control.cancel()
        tqdm.write("clipfind: stopping after the current step... (Ctrl+C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        report = lib.index_folders(args.folders or None, progress=on_progress, control=control,
                                   batch_size=args.batch_size, workers=args.workers, reembed=args.reembed,
                                   cluster=args.cluster, decode=args.decode)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    # A model that could not be loaded (offline, before its download) is a notice, not a failure:
    # the photos are recorded for the duplicates, and the notice says what waits for the model.
    # The exit status stays 0, as the run did what it could and the next run finishes it.
    for notice in report.notices:
        _say(notice)
    summary = {k: getattr(report, k) for k in
               ("added", "updated", "moved", "copied", "removed", "failed", "unchanged", "cancelled")}
    summary["waiting_for_model"] = lib.waiting_for_model()
    summary["seconds"] = round(report.seconds, 3)
    summary["images_per_second"] = round(report.rate, 2)
    if args.json:
        _print_json(summary)
    else:
        print(
            f"{report.added} added, {report.updated} updated, {report.moved} moved, "
            f"{_count(report.copied, 'copy', 'copies')}, {report.removed} removed, {report.failed} unreadable, "
            f"{report.unchanged} unchanged in {report.seconds:.1f} s ({report.rate:.1f} photos/s)"
        )
    if report.cancelled or control.cancelled:
        _say(CANCELLED)
        return 130
    return 0


def cmd_search(lib: Library, args: argparse.Namespace) -> int:
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise ClipfindError(
            f"--from {args.date_from.replace('T', ' ')} is after --to {args.date_to.replace('T', ' ')}: "
            "no photo can match"
        )
    folder = _search_folder(lib, args.folder) if args.folder else None
    query = build_query(args.text, args.image, args.minus)
    filters = Filters(folder, args.date_from, args.date_to, args.min_score, tag=args.tag, sort=args.sort,
                      auto_cutoff=args.min_score is None)
    results = lib.search_results(query, args.k, filters)
    hits = list(results.hits)
    _print_hits(hits, args.json)
    if args.save:
        lib.save_search(args.save, query, args.min_score)
    if not hits:
        nothing_yet = lib.counts().photos == 0
        weak = results.cutoff is not None and not args.tag and not folder and not args.date_from and not args.date_to
        _say("nothing indexed yet: run `clipfind index FOLDER`" if nothing_yet else
             f"no photo scores {results.cutoff:.3f} or more; --min-score -1 shows weaker matches" if weak else
             "no matching photos")
    elif not args.json:
        _say_cutoff(results, args.k)
    waiting = lib.waiting_for_model()
    if waiting:  # some photos were indexed without the model (some were not: else search refused)
        _say(f"{_count(waiting, 'photo')} not searched: indexed while the model could not be loaded; run "
             f"`clipfind index` to add {'it' if waiting == 1 else 'them'}")
    return 0


def _search_folder(lib: Library, folder: str) -> str:
    """--folder as an absolute path, if it can hold indexed photos: inside an indexed folder, or
    around one (~/Pictures when ~/Pictures/2023 is indexed)."""
    path = os.path.abspath(os.path.expanduser(folder))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ClipfindError(f"not a folder: {path}")
    indexed = lib.folders()

    def inside(child: str, parent: str) -> bool:
        return child == parent or child.startswith(os.path.join(parent, ""))

    if not any(inside(path, f) or inside(f, path) for f in indexed):
        where = f"the indexed folders are {', '.join(indexed)}" if indexed else "nothing is indexed yet"
        raise ClipfindError(f"--folder {path} is not an indexed folder nor inside one ({where})")
    return path


def cmd_dupes(lib: Library, args: argparse.Namespace) -> int:
    tier = "similar" if args.tier == "near" else args.tier
    saved = lib.keeper_rules()
    rules = _with_options(saved, args)
    groups = tier_view(lib.duplicates(args.threshold, None if rules == saved else rules), tier)
    waiting = lib.waiting_for_model() if tier in ("all", "similar") else 0
    if waiting:  # in identical files and same photos already; similar shots need their vectors
        _say(f"similar shots leave out {_count(waiting, 'photo')} indexed while the model could not be loaded; "
             "run `clipfind index` once it is available")
    listed = [_group_json(g) for g in groups]
    if not args.json:
        _print_groups(groups)
    if not args.trash:
        if args.json:
            _print_json(listed)
        return 0
    # "Similar" is not "duplicate": similar shots move only when that tier is asked for by name.
    include_similar = tier == "similar"
    doomed = [p for g in groups for p in g.suggested(include_similar)]
    staying = sum(len(g.others) - len(g.suggested(include_similar)) for g in groups)
    if staying:
        _say(f"{_count(staying, 'similar shot')} listed above will stay: with --trash, similar shots "
             "move only with --tier similar")
    if not doomed:
        if args.json:
            _print_json({"groups": listed, "trash": _trash_json(None)})
        _say("nothing to move")
        return 0
    size = human_bytes(sum(p.size for p in doomed))
    question = (f"Move {_count(len(doomed), 'photo')} ({size}) to the trash? Each group keeps its keeper, "
                "so at least one copy of every photo stays.")
    if not _confirm(question, args.yes):
        if args.json:
            _print_json({"groups": listed, "trash": None})
        return _declined()
    report = lib.clean_up(groups, include_similar=include_similar)  # refuses the members protected for this run too
    if args.json:
        _print_json({"groups": listed, "trash": _trash_json(report)})
    return _report_trash(report, summary=not args.json)


def _group_json(group: DupeGroup) -> dict[str, Any]:
    suggested = {p.id for p in group.suggested()}
    return {"tier": group.tier, "keeper": group.keeper.path, "reclaimable_bytes": group.reclaimable_bytes,
            "members": [{**_photo_json(m.photo), "similarity": round(m.similarity, 6),
                         "keeper": m.photo.id == group.keeper.id, "reasons": list(m.reasons),
                         "suggested": m.photo.id in suggested,
                         "capture_gap_seconds": group.capture_gap(m.photo),
                         "protected": m.protected, "keeper_lacks": list(m.keeper_lacks)} for m in group.members]}


def _notes(member: DupeMember) -> str:
    """What a member's line says besides its signals: protected, and what removing it would lose."""
    notes = ["protected"] if member.protected else []
    if member.keeper_lacks:
        names = member.keeper_lacks
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        notes.append(f"has {listed} the kept photo lacks")
    return "".join(f"  ({n})" for n in notes)


def _print_groups(groups: Sequence[DupeGroup]) -> None:
    for g in groups:
        print(f"{TIER_NAMES[g.tier]}: {_count(len(g.members), 'photo')}, {human_bytes(g.reclaimable_bytes)} "
              "reclaimable")
        for m in g.members:
            mark = "keep" if m.photo.id == g.keeper.id else f"{m.similarity:.3f}"
            size = f"{m.photo.width}x{m.photo.height}" if m.photo.width else "?"
            gap = g.capture_gap(m.photo) if g.tier == "similar" and m.photo.id != g.keeper.id else None
            why = f"  [{', '.join(m.reasons)}{'' if gap is None else f', taken {human_duration(gap)} apart'}]" \
                if m.reasons else ""
            print(f"  {mark:>6}  {size:>11}  {human_bytes(m.photo.size):>9}  {m.photo.path}{why}{_notes(m)}")
    total = sum(g.reclaimable_bytes for g in groups)
    _say(f"{_count(len(groups), 'group')}, {human_bytes(total)} reclaimable")


def cmd_rules(lib: Library, args: argparse.Namespace) -> int:
    saved = lib.keeper_rules()
    if args.clear:  # the rules, not the photos the user chose one by one ("Keep this one")
        saved = KeeperRules(keep=saved.keep)
    rules = _with_options(saved, args)
    if rules != lib.keeper_rules():
        lib.set_keeper_rules(rules)
    if args.json:
        _print_json(rules.to_json())
        return 0
    if rules == KeeperRules():
        print("no keeper rules: each group keeps its largest photo (pixels, then bytes), then the one with "
              "a capture date, then a name without a copy marker, then the shortest path")
        return 0
    for name, values in (("protect", rules.protect), ("prefer folder", rules.prefer_folders),
                         ("keep", rules.keep)):
        for value in values:
            print(f"{name + ':':15}{value}")
    if rules.formats:
        print(f"{'prefer format:':15}{' > '.join(rules.formats)}")
    if rules.prefer_dated:
        print(f"{'prefer dated:':15}a photo with a capture date over one without")
    if rules.prefer_gps:
        print(f"{'prefer GPS:':15}a photo with a GPS position over one without")
    return 0


def cmd_trash(lib: Library, args: argparse.Namespace) -> int:
    if args.undo:
        if args.paths:
            raise ClipfindError("--undo puts back the last batch moved to the trash: give no photos with it")
        return _undo_trash(lib)
    if not args.paths:
        raise ClipfindError("give the photos to move to the trash (or --undo to put the last batch back)")
    photos = list({p.id: p for p in lib.lookup(args.paths)}.values())  # a path given twice moves once
    size = human_bytes(sum(p.size for p in photos))
    if not _confirm(f"Move {_count(len(photos), 'photo')} ({size}) to the trash?", args.yes):
        return _declined()
    return _report_trash(lib.trash(photos))


def _report_trash(report: TrashReport, *, summary: bool = True) -> int:
    """Everything that stayed, with why, on stderr; non-zero when anything asked for stayed."""
    for _, reason in report.skipped_groups:
        _say(reason)
    for photo, reason in report.refused:
        _say(f"not moved: {photo.path} {reason}")
    for notice in report.notices:
        _say(notice)
    if summary:
        print(f"moved {_count(len(report.moved), 'photo')} ({human_bytes(report.freed_bytes)}) to the trash")
    return 1 if report.refused or report.skipped_groups else 0


def _undo_trash(lib: Library) -> int:
    """Put back the last batch: what came back on stdout, what did not and where it is on stderr."""
    batch = lib.last_trash()
    if batch is None:
        _say("nothing to undo: no photo was moved to the trash since the last undo")
        return 0
    report = lib.undo_trash()
    for photo in report.restored:
        print(f"put back: {photo.path}")
    for path, reason in report.failed:
        _say(f"not put back: {path} {reason}")
    for notice in report.notices:
        _say(notice)
    _say(f"put back {_count(len(report.restored), 'photo')} of {len(batch.photos)}")
    return 1 if report.failed else 0


def _trash_json(report: TrashReport | None) -> dict[str, Any]:
    if report is None:  # nothing was selected
        return {"moved": [], "freed_bytes": 0, "refused": [], "skipped_groups": [], "notices": []}
    return {
        "moved": [p.path for p in report.moved],
        "freed_bytes": report.freed_bytes,
        "refused": [{"path": p.path, "reason": reason} for p, reason in report.refused],
        "skipped_groups": [{"keeper": g.keeper.path, "reason": reason} for g, reason in report.skipped_groups],
        "notices": list(report.notices),
    }


def cmd_not_dupes(lib: Library, args: argparse.Namespace) -> int:
    if args.list or args.remove:
        if args.paths or args.undo:
            raise ClipfindError("--list and --remove take mark numbers, not photos")
        for mark in args.remove:
            lib.remove_mark(mark)
            print(f"took back mark {mark}: its photos can be shown as duplicates again")
        if args.list:
            _list_marks(lib, args.json)
        return 0
    if not args.paths:
        raise ClipfindError("give two or more photos (or --list to see the marks)")
    photos = lib.lookup(args.paths)
    if args.undo:
        taken = lib.unmark_not_duplicates(photos)
        if not taken:
            raise ClipfindError("no \"not duplicates\" mark holds all of these photos")
        print(f"took back {_count(taken, 'mark')}: these photos can be shown as duplicates again")
        return 0
    lib.mark_not_duplicates(photos)
    print(f"these {_count(len(photos), 'photo')} will not be shown as duplicates of each other again")
    return 0


def _list_marks(lib: Library, as_json: bool) -> None:
    marks = lib.not_duplicate_marks()
    if as_json:
        _print_json([{"id": m.mark, "tier": m.tier, "contents": m.contents, "paths": [p.path for p in m.photos]}
                     for m in marks])
        return
    for m in marks:
        where = f"{m.tier} tier" if m.tier else "every tier"
        gone = m.contents - len({p.content_hash for p in m.photos})
        print(f"mark {m.mark} ({where}): {_count(len(m.photos), 'photo')}"
              + (f", {gone} no longer in the catalog" if gone > 0 else ""))
        for photo in m.photos:
            print(f"  {photo.path}")
    if not marks:
        _say("no \"not duplicates\" marks")


def cmd_forget(lib: Library, args: argparse.Namespace) -> int:
    folder = os.path.abspath(os.path.expanduser(args.folder))
    dropped = lib.forget_folder(folder)
    print(f"forgot {folder}: {_count(dropped, 'photo')} left the catalog (the files themselves are untouched)")
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
    print(f"indexed:  {_count(status.files_indexed, 'photo')}, {status.files_failed} unreadable")
    if status.files_waiting:
        print(f"waiting:  {_count(status.files_waiting, 'photo')} for the model (indexed while it could not be loaded): in "
              "duplicates now, in search and similar shots once `clipfind index` runs with the model")
    for folder in status.folders:
        state = "" if folder.reachable else "  (not reachable)"
        print(f"folder:   {folder.path}  {_count(folder.files, 'file')}{state}")
    shown = status.failures if args.errors else status.failures[:10]
    for failure in shown:
        print(f"error:    {failure.path}: {failure.error}")
    if len(status.failures) > len(shown):
        print(f"          ... {len(status.failures) - len(shown)} more; see `clipfind status --errors`")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    if args.json:
        _print_json(supported_models())
    else:
        print(models_table())
    return 0


def cmd_map(lib: Library, args: argparse.Namespace) -> int:
    if args.png and args.size < 64:
        raise ClipfindError(f"--size must be at least 64 pixels, got {args.size}")
    photo_map = lib.photo_map(named=not args.json)  # names come from the text tower: not loaded for JSON
    if args.json:
        _print_json([{"path": point.photo.path, "x": point.x, "y": point.y, "cluster": point.cluster}
                     for point in photo_map.points()])
        return 0
    if args.png:
        shown = lib.render_map(args.png, args.size, photo_map=photo_map)
        print(f"map of {_count(len(photo_map), 'photo')} written to {args.png} ({_count(shown, 'thumbnail')})")
        return 0
    if not len(photo_map):
        print("no photos on the map yet: run `clipfind index FOLDER`")
        return 0
    noise = int((photo_map.cluster < 0).sum())
    print(f"{_count(len(photo_map), 'photo')} in {_count(len(photo_map.clusters), 'cluster')}, {noise} in none")
    for cluster in photo_map.clusters:
        print(f"cluster {cluster.cluster}: {_count(cluster.size, 'photo')}"
              + (f"  ({', '.join(cluster.names)})" if cluster.names else ""))
    if photo_map.clusters and not any(c.names for c in photo_map.clusters):
        _say("clusters unnamed: the model could not be loaded to name them")
    return 0


def cmd_tags(lib: Library, args: argparse.Namespace) -> int:
    if args.albums and args.tag:
        raise ClipfindError("give --albums or --tag, not both")
    if args.albums:
        albums = lib.tag_albums()
        if args.json:
            _print_json([{"tag": a.tag, "title": a.title, "count": a.count, "cleanup": a.cleanup} for a in albums])
        else:
            for album in albums:
                print(f"{album.count:6d}  {album.title}{'  (clean-up)' if album.cleanup else ''}")
        if not albums:
            _say("no photo has a tag yet" if lib.counts().photos else "nothing indexed yet: run `clipfind index FOLDER`")
        return 0
    if args.tag:
        photos = lib.tag_album(args.tag)
        if args.json:
            _print_json([_photo_json(p) for p in photos])
        else:
            for photo in photos:
                print(photo.path)
        if not photos:
            _say(f"no photo has the tag {args.tag!r}")
        return 0
    tagged = lib.photo_tags()
    if args.json:
        _print_json([{"path": t.photo.path, "tags": [{"tag": s.tag, "score": s.score} for s in t.tags]}
                     for t in tagged])
    else:
        for item in tagged:
            print(f"{item.photo.path}: {', '.join(s.tag for s in item.tags) or '-'}")
    if not tagged:
        _say("nothing indexed yet: run `clipfind index FOLDER`")
    return 0


def cmd_saved(lib: Library, args: argparse.Namespace) -> int:
    if args.delete:
        if not args.name:
            raise ClipfindError("--delete needs the NAME of a saved search")
        lib.delete_saved_search(args.name)
        _say(f"forgot the saved search {args.name!r}")
        return 0
    if args.name:
        results = lib.run_saved_search(args.name, args.k, args.sort)
        _print_hits(list(results.hits), args.json)
        _say_cutoff(results, args.k)
        return 0
    saved = lib.saved_searches()
    if args.json:
        _print_json([{"name": s.name, "min_score": s.min_score,
                      "terms": [{"kind": t.kind, "value": t.value, "weight": t.weight} for t in s.query.terms]}
                     for s in saved])
    else:
        for search in saved:
            terms = " ".join(("-" if t.weight < 0 else "") + (t.value if t.kind == "text" else f"[{t.value}]")
                             + (f"^{abs(t.weight):g}" if abs(t.weight) != 1 else "") for t in search.query.terms)
            least = "auto" if search.min_score is None else f"{search.min_score:g}"
            print(f"{search.name}: {terms}  (least score {least})")
    if not saved:
        _say("no saved searches yet: `clipfind search ... --save NAME` saves one")
    return 0


def _print_hits(hits: list[SearchHit], as_json: bool) -> None:
    if as_json:
        _print_json([{**_photo_json(h.photo), "score": round(h.score, 6)} for h in hits])
    else:
        for hit in hits:
            print(f"{hit.score:6.3f}  {hit.photo.path}")


def _say_cutoff(results: SearchResults, k: int) -> None:
    """How many passed the cut-off, where one was in effect: stderr, so stdout stays the results."""
    if results.cutoff is None:
        return
    how = "from this query's scores" if results.automatic else "--min-score"
    about = "about " if results.estimated else ""
    if results.passed > len(results.hits):
        _say(f"showing {len(results.hits)} of {about}{results.passed} matches at or above {results.cutoff:.3f} "
             f"({how}); -k shows more")
    elif results.hits and len(results.hits) < k and results.automatic:
        _say(f"{_count(results.passed, 'match', 'matches')} at or above {results.cutoff:.3f} ({how}); "
             "--min-score -1 shows weaker ones")


COMMANDS = {
    "index": cmd_index, "search": cmd_search, "dupes": cmd_dupes, "rules": cmd_rules, "not-dupes": cmd_not_dupes,
    "trash": cmd_trash, "forget": cmd_forget, "status": cmd_status,
    "map": cmd_map,
    "tags": cmd_tags, "saved": cmd_saved,
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
        return _run(args)
    except ClipfindError as exc:
        _say(f"error: {exc}")
        return 1
    except sqlite3.DatabaseError as exc:  # a disk that filled up, or a catalog damaged on disk
        _say(f"error: the catalog cannot be used: {exc}")
        return 1
    except KeyboardInterrupt:  # a second Ctrl+C while indexing, or the first one elsewhere
        _say(CANCELLED if args.command == "index" else "interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the home or a photo on a disk that is full, read-only or failing
        _say(f"error: {one_line(exc)}")
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "models":
        return cmd_models(args)
    name = (args.model or os.environ.get("CLIPFIND_MODEL") or "").strip()
    if name:  # before a catalog of another model answers an unknown name with "re-embed with it"
        check_model_name(name)
    with _home_must_be_a_folder(args):
        if args.command == "index" and args.rebuild:
            for notice in Library.rebuild(args.home):
                _say(notice)
        lib = Library(args.home, args.model, args.pretrained, precision=args.precision)
    try:
        code = COMMANDS[args.command](lib, args)
        for notice in lib.notices:
            _say(notice)
        return code
    finally:
        lib.close()


@contextlib.contextmanager
def _home_must_be_a_folder(args: argparse.Namespace) -> Iterator[None]:
    """Creating the home where a file is gives "File exists": say what is wrong instead."""
    try:
        yield
    except (FileExistsError, NotADirectoryError) as exc:
        option = "--home" if args.home else "CLIPFIND_HOME" if os.environ.get("CLIPFIND_HOME") else "the home"
        raise ClipfindError(f"{option} is not a folder: {os.fsdecode(exc.filename or args.home)}") from None


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
