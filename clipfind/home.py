"""Where clipfind keeps its catalog and index, the lock that keeps one writer per home, and the
one way every file in it is written: whole or not at all (atomic_write)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import overload

from clipfind.errors import LockedError, StorageError

CATALOG_FILE = "catalog.sqlite3"
INDEX_FILE = "vectors.hnsw"
NEIGHBOURS_FILE = "neighbours.npz"
SAME_FILE = "samephoto.npz"  # the same-photo search (clipfind.samephoto.SameSearch), a cache
MAP_FILE = "photomap.npz"  # the map's layout (clipfind.photomap.Layout), a cache
LOCK_FILE = "indexer.lock"
ONNX_FOLDER = "onnx"  # exported model towers (clipfind.embedding.runtime.onnx_path)
TEMP_SUFFIX = ".tmp"
# atomic_write's staging folder: ".<first file's name>.<pid>.<random>.tmp", beside the files.
_STAGING = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]+\.tmp$")
# What earlier versions left behind when killed mid-save (a home outlives upgrades): "*.tmp" for
# vectors.hnsw(.json).tmp, runtime.json.<pid>.tmp and onnx/*.onnx.<pid>.tmp; neighbours.npz.<x>
# for the graph cache's temp files; ".export-*" for the ONNX export's staging folders.
_OLD_TEMP_PATTERNS = ("*.tmp", f"{NEIGHBOURS_FILE}.*", ".export-*")
_ORPHAN_AGE_S = 3600  # where a process cannot be asked whether it lives (Windows)


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--home, else CLIPFIND_HOME, else the per-user data dir (platformdirs)."""
    if explicit:
        home = Path(explicit)
    elif os.environ.get("CLIPFIND_HOME"):
        home = Path(os.environ["CLIPFIND_HOME"])
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("clipfind", appauthor=False))
    home = home.expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    return home


@overload
def atomic_write(path: Path, *, durable: bool = ...) -> AbstractContextManager[Path]: ...


@overload
def atomic_write(
    path: Path, second: Path, *more: Path, durable: bool = ...
) -> AbstractContextManager[tuple[Path, ...]]: ...


def atomic_write(path: Path, *more: Path, durable: bool = False) -> AbstractContextManager[Path | tuple[Path, ...]]:
    """Write one file, or several that belong together, whole or not at all.

    Yields a temporary path for each file (with the same name, in a staging folder beside it);
    the caller writes them. When the block ends without an exception they replace the real files,
    in the order given (put the file that names the others last); when it raises, or the process
    is killed, the real files are untouched and the staging folder is removed (or, after a kill,
    by remove_temp_files). Two writers of the same file never share a temp file; the last rename
    wins. `durable` syncs the files and their folder to disk, for data that must survive a power
    cut, not only a crash. Creating the staging folder can raise OSError (read-only or full
    disk); each caller decides whether that matters.

    Args:
        path: the file to write.
        *more: files written with it, all in the same folder as `path`.
        durable: fsync each file before its rename and the folder after.
    """
    return _atomic_write((path, *more), durable=durable, single=not more)


@contextmanager
def _atomic_write(paths: tuple[Path, ...], *, durable: bool, single: bool) -> Iterator[Path | tuple[Path, ...]]:
    folder = paths[0].parent
    if any(p.parent != folder for p in paths):
        raise ValueError("atomic_write: every file must be in the same folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{paths[0].name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=folder))
    try:
        temps = tuple(staging / p.name for p in paths)
        yield temps[0] if single else temps
        for tmp, path in zip(temps, paths):
            if durable:
                _fsync(tmp)
            os.replace(tmp, path)
        if durable and os.name != "nt":
            _fsync(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temp_files(home: Path) -> None:
    """Temp files of a save that a kill or a full disk interrupted; call with the WriterLock held.

    Every temp file clipfind makes is in an atomic_write staging folder (in the home, or in its
    folder of exported models); one whose process still runs is left alone, since it may be
    writing it now (a cache or an export in another process that needs no lock). Also removes
    the temp files of earlier versions.
    """
    for folder in (home, home / ONNX_FOLDER):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue  # no such folder, or not readable: nothing of ours to clean
        old = {p for pattern in _OLD_TEMP_PATTERNS for p in folder.glob(pattern)}
        for entry in entries:
            staging = _STAGING.match(entry.name)
            if staging and _in_use(entry, int(staging.group(1))):
                continue
            if staging or entry in old:
                _remove(entry)


def _in_use(entry: Path, pid: int) -> bool:
    """Whether the process that made a staging folder may still be writing in it."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # pragma: no cover - no signal 0 there: go by age
        try:
            return time.time() - entry.stat().st_mtime < _ORPHAN_AGE_S
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by another user
    return True


def _remove(entry: Path) -> None:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError:
        pass  # a read-only home: nothing to clean, and nothing will be written either


class WriterLock:
    """An advisory lock on HOME/indexer.lock: one indexer (CLI or app) writes a catalog at a time.

    The OS drops the lock when the holder dies, so a killed indexer never leaves a stale lock.
    """

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only or full home: say so instead of a traceback
            raise StorageError(f"cannot write to {self.path.parent}: {exc.strerror or exc}") from None
        try:
            _lock_fd(fd)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(
                f"another clipfind indexer (pid {holder}) is already indexing into {self.path.parent}; "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _lock_fd(fd: int) -> None:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
