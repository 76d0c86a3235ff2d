"""Shared by the reliability tests and bench/soak.py: photo sets, CLI runners, consistency checks.

Nothing here uses pytest, so the soak script can import it as well.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
PHOTOS = SHARED_DATA / "photos"
FORMATS = SHARED_DATA / "formats"
TINY_ENV = {"CLIPFIND_MODEL": "clipfind-tiny", "CLIPFIND_PRETRAINED": "none"}
LOCK_NAME = "indexer.lock"


# -- photo sets -----------------------------------------------------------------------------
def source_photos() -> list[Path]:
    return sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def make_small_jpegs(dest: Path, count: int, side: int = 300, seed: int = 0) -> list[Path]:
    """`count` distinct small JPEGs made from the real photos (flips and crops past the first pass)."""
    from PIL import Image, ImageOps

    dest.mkdir(parents=True, exist_ok=True)
    sources = source_photos()
    rng = random.Random(seed)
    out: list[Path] = []
    for i in range(count):
        src = sources[i % len(sources)]
        variant = i // len(sources)
        with Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((side, side))
            if variant % 2 == 1:
                im = ImageOps.mirror(im)
            if variant >= 2:
                w, h = im.size
                dx, dy = rng.randrange(1, w // 5), rng.randrange(1, h // 5)
                im = im.crop((dx, dy, w - 1, h - 1))
            target = dest / f"{i:04d} {src.stem[:24]}.jpg"
            im.save(target, quality=80 + variant % 10)
        out.append(target)
    return out


def copy_tree(src: Path, dest: Path) -> None:
    import shutil

    shutil.copytree(src, dest, symlinks=True)


# -- running the CLI ---------------------------------------------------------------------------
@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stderr lines other than the random-weights warning the tiny model always prints."""
        return [line for line in self.stderr.splitlines() if "random weights" not in line and line.strip()]


def run_cli(home: Path, *args: str) -> CliResult:
    """clipfind.cli.main in this process (cheap: torch is imported once); catches nothing extra.

    An exception escaping main() would be a traceback for the user, so it propagates to the test.
    stdout is strict UTF-8, as in a terminal with a UTF-8 locale.
    """
    from clipfind import cli

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _env(TINY_ENV):
        try:
            code = cli.main(["--home", str(home), *args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out.flush()
    return CliResult(code, raw.getvalue().decode("utf-8", "surrogateescape"), err.getvalue())


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cli_subprocess(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600,
                   wrapper: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `python -m clipfind.cli`, as a user runs it."""
    full_env = {**os.environ, **TINY_ENV, **(env or {})}
    command = wrapper or [sys.executable, "-m", "clipfind.cli"]
    return subprocess.run([*command, "--home", str(home), *args], capture_output=True, text=True,
                          errors="surrogateescape", env=full_env, timeout=timeout, cwd=ROOT)


def _child_main(argv: list[str], env: dict[str, str], out_path: str) -> None:
    """Runs in a forked child of the fork server: the CLI with its output sent to a file."""
    os.environ.update(env)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    from clipfind import cli

    code = cli.main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class ForkServer:
    """Starts `clipfind` runs as forks of a process that has already imported torch and clipfind.

    Each run is a separate process that a test can SIGKILL like any other; only the ~5 s of
    imports is shared, so a test can afford dozens of kills.
    """

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["torch", "open_clip", "clipfind.cli", "clipfind.library", "clipfind.indexer",
                                          "clipfind.embedding.torch_model", "tests.reliability.support",
                                          *filter(None, os.environ.get("DBG_PRELOAD", "").split(","))])

    def start(self, argv: list[str], out_path: Path, env: dict[str, str] | None = None) -> multiprocessing.Process:
        proc = self._ctx.Process(target=_child_main, args=(argv, {**TINY_ENV, **(env or {})}, str(out_path)))
        proc.start()
        return proc


# -- looking at a home ---------------------------------------------------------------------------
def committed_rows(home: Path) -> int:
    """Rows in the catalog, read-only, while an indexer may be writing (0 if not there yet)."""
    row = _peek(home, "SELECT count(*) FROM files")
    return int(row[0]) if row else 0


def _peek(home: Path, sql: str) -> tuple | None:
    """One row of `sql` on the catalog, read-only, while an indexer may be writing; None if there
    is no catalog yet or it cannot be read at this moment."""
    path = home / "catalog.sqlite3"
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            return db.execute(sql).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None


def home_digest(home: Path) -> dict[str, str]:
    """Hash of every file in the home except the lock (it holds the last indexer's pid)."""
    out = {}
    for path in sorted(home.iterdir()):
        if path.is_file() and path.name != LOCK_NAME:
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Consistency:
    ok: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    notice: str | None = None


def check_home(home: Path, *, allow_notice: bool = True) -> Consistency:
    """Catalog integrity, one row per path, and an index whose labels and vectors match the catalog."""
    from clipfind.annindex import open_index
    from clipfind.catalog import Catalog

    result = Consistency()
    path = home / "catalog.sqlite3"
    if not path.exists():
        return result
    db = sqlite3.connect(path, timeout=30)
    try:
        check = db.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            result.problems.append(f"integrity_check: {check[:3]}")
        total, distinct = db.execute("SELECT count(*), count(DISTINCT path) FROM files").fetchone()
        if total != distinct:
            result.problems.append(f"{total - distinct} paths appear twice")
        bad = db.execute("SELECT count(*) FROM files WHERE status = 'ok' AND vector IS NULL").fetchone()[0]
        if bad:
            result.problems.append(f"{bad} ok rows without a vector")
    finally:
        db.close()
    catalog = Catalog(path, create=False)
    try:
        result.ok, result.failed = catalog.count("ok"), catalog.count("failed")
        index, notice = open_index(home / "vectors.hnsw", catalog)
        result.notice = notice
        if notice and not allow_notice:
            result.problems.append(f"unexpected notice: {notice}")
        ok_ids = catalog.ok_ids()
        if index.labels != ok_ids:
            result.problems.append(
                f"index labels differ from the catalog: {len(index.labels - ok_ids)} orphans, "
                f"{len(ok_ids - index.labels)} missing"
            )
        elif ok_ids:
            ids, vectors = catalog.vectors()
            if not np.allclose(index.vectors_of(ids), vectors, atol=1e-5):
                result.problems.append("index vectors differ from the catalog's")
    finally:
        catalog.close()
    return result


PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".dib", ".tif",
                  ".tiff", ".heic", ".heif", ".hif", ".avif", ".mpo", ".jp2", ".j2k", ".ppm", ".pgm", ".pbm", ".tga",
                  ".ico"}


def photo_entries(folder: Path) -> set[str]:
    """Every entry named like a photo under `folder` (pipes, links and all), found without clipfind's scanner."""
    out = set()
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.update(os.path.join(parent, f) for f in files
                   if not f.startswith(".") and os.path.splitext(f)[1].lower() in PHOTO_SUFFIXES)
    return out


def readable_photos(folder: Path) -> set[str]:
    """What a converged index must hold: every file in `folder` that the scanner lists and Pillow decodes."""
    from clipfind.errors import ImageLoadError
    from clipfind.imageload import load_image
    from clipfind.scan import scan_folders

    out = set()
    for f in scan_folders([str(folder)]):
        try:
            load_image(f.path, min_side=64)
        except (ImageLoadError, OSError):
            continue
        out.add(f.path)
    return out


def catalog_paths(home: Path, status: str | None = None) -> list[str]:
    from clipfind.catalog import from_db

    db = sqlite3.connect(home / "catalog.sqlite3", timeout=30)
    try:
        sql = "SELECT path FROM files" + (" WHERE status = ?" if status else "")
        return [from_db(r[0]) for r in db.execute(sql, (status,) if status else ())]
    finally:
        db.close()


def catalog_generation(home: Path) -> int:
    """The catalog's write counter (one per committed row change), read-only; 0 if not there yet."""
    row = _peek(home, "SELECT value FROM meta WHERE key = 'generation'")
    return int(row[0]) if row else 0


def kill_when(pid: int, alive: Callable[[], bool], *, until: Callable[[], bool] | None = None,
              delay: float | None = None, deadline: float = 120) -> str:
    """SIGKILL the process once `until()` holds or `delay` seconds passed; "killed" or "finished".

    "killed" only means the signal was sent: the process may have exited just before it came.
    """
    start = time.monotonic()
    while alive():
        elapsed = time.monotonic() - start
        if (until is not None and until()) or (delay is not None and elapsed >= delay) or elapsed > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return "finished"
            return "killed" if elapsed <= deadline else "timeout"
        time.sleep(0.005)
    return "finished"


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
