"""Where clipfind keeps its catalog and index, and the lock that keeps one writer per home."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from clipfind.errors import LockedError, StorageError

CATALOG_FILE = "catalog.sqlite3"
INDEX_FILE = "vectors.hnsw"
NEIGHBOURS_FILE = "neighbours.npz"
LOCK_FILE = "indexer.lock"


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


def remove_temp_files(home: Path) -> None:
    """Temp files of a save that a kill or a full disk interrupted; call with the WriterLock held."""
    for pattern in (f"{INDEX_FILE}.tmp", f"{INDEX_FILE}.json.tmp", f"{NEIGHBOURS_FILE}.*"):
        for leftover in home.glob(pattern):
            try:
                leftover.unlink()
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
