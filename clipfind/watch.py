"""Watched folders: notice new, changed, moved and deleted photos and apply them in batches.

The file system's own events (watchdog: inotify, FSEvents, ReadDirectoryChangesW) say which paths
changed; what that means for the catalog (new, changed, moved, deleted) is left to the indexer, which
diffs just those paths against it, so a batch costs what changed, not the size of the folder (a
folder whose events were lost, added later or back after an unmount is scanned whole). So the
watcher only decides *when* to run it, and on which of its paths:

- debounce: a folder is applied once its events have been quiet for ``quiet`` seconds, or
  ``max_wait`` seconds after its first event during a long burst, so a copy of 5,000 files
  arrives as a few index runs, not 5,000;
- stability: a file whose size or mtime still changes between two looks ``settle`` seconds apart,
  or a JPEG/PNG whose end marker is not written yet (a paused download), holds its folder back until
  it is complete (at most ``incomplete_grace`` seconds; after that it is indexed as it is, and
  indexed again when it changes);
- unreachable folders (an unmounted drive): reported once, never handed to the indexer (whose
  catalog keeps the photos of a root that is not there), looked for every ``check_every`` seconds,
  and watched and caught up again when they are back;
- polling (watchdog's PollingObserver) where events cannot be had: a network file system, a native
  observer that fails to start (no inotify watches left), or when asked for;
- one watcher per home: a lock file held for the watcher's lifetime (:class:`WatchLock`).

Nothing here modifies a photo; the watcher reads file sizes, times and the last bytes of new files.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clipfind.errors import ClipfindError, LockedError
from clipfind.home import WriterLock
from clipfind.records import Control, IndexReport
from clipfind.scan import hidden_below, is_photo_name

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver, ObservedWatch

__all__ = ["WATCH_LOCK_FILE", "WatchLock", "WatchNotice", "Watcher", "network_file_system"]

WATCH_LOCK_FILE = "watcher.lock"
POLLING_ENV = "CLIPFIND_WATCH_POLLING"  # "1": poll every folder (a share whose events never arrive)
# Where inotify and friends see only local changes (or none): these are polled.
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre", "davfs",
    "fuse.sshfs", "fuse.rclone", "fuse.gvfsd-fuse", "fuse.s3fs", "fuse.glusterfs", "fuse.davfs2",
})
_RELEVANT = frozenset({"created", "modified", "deleted", "moved", "closed"})  # not opened/read/attrib: our own reads

# (folders that changed, the Control stop() cancels, the paths that changed under them: None when
# every folder is to be scanned whole; a folder among the paths stands for all of it)
Apply = Callable[[list[str], Control, "list[str] | None"], "IndexReport | None"]
NoticeFn = Callable[["WatchNotice"], None]


@dataclass(frozen=True, slots=True)
class WatchNotice:
    """What the watcher did: a batch applied, a folder gone or back, or a batch that failed.

    kind: "batch" (``report`` says what changed), "unreachable", "back", or "error" (``message``).
    """

    kind: Literal["batch", "unreachable", "back", "error"]
    folders: tuple[str, ...]
    report: IndexReport | None = None
    message: str = ""

    def line(self) -> str:
        """One line for a terminal or a status bar."""
        where = ", ".join(self.folders)
        if self.kind == "unreachable":
            return f"folder unreachable, its photos are kept; watching for its return: {where}"
        if self.kind == "back":
            return f"folder back, watching it again: {where}"
        if self.kind == "error":
            return f"could not apply changes in {where}: {self.message}"
        r = self.report or IndexReport()
        text = (f"{r.added + r.copied} added, {r.updated} changed, {r.removed} removed, {r.moved} moved"
                + (f", {r.failed} unreadable" if r.failed else ""))
        return f"{text} ({where})"


class WatchLock(WriterLock):
    """HOME/watcher.lock, held while a watcher runs: the app and `clipfind index --watch` on the same
    home must not both apply changes (each would index every change twice, racing for the writer lock).

    Like the writer lock, the OS drops it when its holder dies.
    """

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.path = home / WATCH_LOCK_FILE

    def acquire(self) -> None:
        try:
            super().acquire()
        except LockedError:
            try:
                holder = self.path.read_text(errors="replace").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise LockedError(
                f"another clipfind (pid {holder}) is already watching the folders of {self.path.parent}: "
                "only one watcher per library; close the app or stop `clipfind index --watch` there first"
            ) from None


def network_file_system(path: str) -> str | None:
    """The network file system `path` lives on (whose changes made elsewhere raise no local events), or None.

    Linux only (/proc/self/mounts); elsewhere None, and the native observer is tried first.
    """
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) >= 3]
    except OSError:
        return None
    best, kind = "", None
    real = os.path.realpath(path)
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fstype
    return kind if kind in NETWORK_FS else None


@dataclass
class _Dirty:
    """A folder with changes not applied yet."""

    first: float  # monotonic time of its first event since the last batch
    last: float  # and of its latest
    paths: set[str] = field(default_factory=set)  # photo files to check for stability
    # Every path an event named (photos, folders, gone ones): what the indexer looks at. None: all of the
    # folder (events lost, a folder added or back, an index run by hand that held the home).
    changed: set[str] | None = field(default_factory=set)

    def add(self, changed: set[str] | None) -> None:
        """Also these paths (None: the whole folder)."""
        if self.changed is not None:
            self.changed = None if changed is None else self.changed | changed


@dataclass
class _Root:
    path: str
    watch: ObservedWatch | None = None
    observer: BaseObserver | None = None
    identity: tuple[int, int] | None = None  # (dev, inode) when watched: a folder remounted is a new one
    away: bool = False  # reported unreachable, not back yet


class Watcher:
    """Watches folders and hands each settled batch of changes to ``apply`` on its own thread.

    Args:
        home: the clipfind home (for the lock).
        folders: the folders to watch (absolute paths); :meth:`set_folders` changes them later.
        apply: called on the watcher's thread with the folders that changed, a Control that
            :meth:`stop` cancels, and the paths that changed under them (files and folders; a folder
            marked whole is among them as itself; None when every folder is whole); returns the
            IndexReport of the run, or None when it only queued the work elsewhere (the app).
            LockedError (an index run by hand) is retried later.
        on_change: called on the watcher's thread with each :class:`WatchNotice`.
        polling: True: poll every folder; False: never; None (default): poll network file systems
            and folders the native observer cannot watch ($CLIPFIND_WATCH_POLLING=1 forces it).
        paused: start without applying (events are kept) until :meth:`resume`: the CLI's first
            index run goes first.

    Raises LockedError from :meth:`start` when another watcher holds the home.
    """

    def __init__(
        self,
        home: Path,
        folders: Iterable[str],
        apply: Apply,
        on_change: NoticeFn | None = None,
        *,
        polling: bool | None = None,
        paused: bool = False,
        quiet: float = 0.5,
        max_wait: float = 3.0,
        settle: float = 0.5,
        incomplete_grace: float = 60.0,
        check_every: float = 1.0,
        poll_interval: float = 1.0,
    ) -> None:
        if polling is None and os.environ.get(POLLING_ENV, "") not in ("", "0"):
            polling = True
        self.home = Path(home)
        self.polling = polling
        self.quiet, self.max_wait, self.settle = quiet, max_wait, settle
        self.incomplete_grace, self.check_every, self.poll_interval = incomplete_grace, check_every, poll_interval
        self._apply = apply
        self._notify = on_change or (lambda notice: None)
        self._lock = WatchLock(self.home)
        self._wanted = [os.path.abspath(f) for f in folders]
        self._roots: dict[str, _Root] = {}
        self._dirty: dict[str, _Dirty] = {}
        self._incomplete: dict[str, float] = {}  # path -> when it was first seen incomplete
        self._mutex = threading.Lock()
        self._stopping = threading.Event()
        self._running = threading.Event()
        if not paused:
            self._running.set()
        self._control = Control()
        self._native: BaseObserver | None = None
        self._poller: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self.batches = 0  # batches applied, for tests and the bench

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> Watcher:
        """Take the lock and start watching; the folders are scheduled before this returns."""
        if self._started:
            raise RuntimeError("this watcher was started already")
        self._lock.acquire()
        try:
            self._reconcile()
            self._check_roots()
            self._started = True
        except BaseException:
            self._stop_observers()
            self._lock.release()
            raise
        self._thread = threading.Thread(target=self._loop, name="clipfind-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (a batch being applied is cancelled after its step in flight) and release the lock."""
        self._stopping.set()
        self._control.cancel()
        self._running.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._stop_observers()
        self._lock.release()

    def __enter__(self) -> Watcher:
        return self if self._started else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def resume(self) -> None:
        """Apply changes from now on (after ``paused=True``)."""
        self._running.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def folders(self) -> list[str]:
        return list(self._wanted)

    def modes(self) -> dict[str, str]:
        """Each folder and how it is watched: "events", "polling" or "unreachable"."""
        with self._mutex:
            return {p: ("unreachable" if r.watch is None else "polling" if r.observer is self._poller else "events")
                    for p, r in self._roots.items()}

    def set_folders(self, folders: Sequence[str]) -> None:
        """Watch these folders instead (the library's folders changed); applied by the watcher's thread."""
        with self._mutex:
            self._wanted = [os.path.abspath(f) for f in folders]

    def dirty(self) -> list[str]:
        """The folders with changes not applied yet."""
        with self._mutex:
            return sorted(self._dirty)

    # -- events (observer threads) ---------------------------------------------------------------
    def _event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind == "events_lost":  # the kernel's queue overflowed: every folder is looked at again
            with self._mutex:
                for root in self._roots:
                    self._mark(root, None)
            return
        if kind not in _RELEVANT or (event.is_directory and kind in ("modified", "closed")):
            return
        paths = [os.fsdecode(event.src_path)]
        if kind == "moved":
            paths.append(os.fsdecode(event.dest_path))
        with self._mutex:
            for path in paths:
                for root in self._roots:
                    if _inside(path, root) and _counts(path, root, event.is_directory):
                        gone = kind in ("deleted", "moved") and path == paths[0]
                        self._mark(root, path, settle=not (event.is_directory or gone))

    def _mark(self, root: str, path: str | None, *, settle: bool = True) -> None:
        """Note a change at `path` (None: anywhere in the folder); settle: a photo to check for stability."""
        now = time.monotonic()
        dirty = self._dirty.get(root)
        if dirty is None:
            dirty = self._dirty[root] = _Dirty(now, now)
        dirty.last = now
        dirty.add(None if path is None else {path})
        if path is not None and settle:
            dirty.paths.add(path)

    # -- the watcher's thread --------------------------------------------------------------------
    def _loop(self) -> None:
        next_check = time.monotonic() + self.check_every
        while not self._stopping.wait(0.1):
            try:
                now = time.monotonic()
                if now >= next_check:
                    self._reconcile()
                    self._check_roots()
                    next_check = now + self.check_every
                if self._running.is_set():
                    ready = self._ready(now)
                    if ready:
                        self._apply_batch(ready)
            except Exception as exc:  # a bug or an odd file system must not end watching silently
                self._notify(WatchNotice("error", tuple(self._wanted), message=f"{type(exc).__name__}: {exc}"))
                self._stopping.wait(1.0)

    def _ready(self, now: float) -> list[str]:
        with self._mutex:
            return sorted(root for root, d in self._dirty.items()
                          if now - d.last >= self.quiet or now - d.first >= self.max_wait)

    def _apply_batch(self, ready: list[str]) -> None:
        with self._mutex:
            taken = {root: self._dirty.pop(root) for root in ready if root in self._dirty}
        waiting = self._unsettled({p for d in taken.values() for p in d.paths})
        roots: list[str] = []
        for root, dirty in taken.items():
            held = {p for p in waiting if _inside(p, root)}
            if held:
                # A file still being written: the folder's batch waits, but not for ever: after
                # incomplete_grace (a download stalled for minutes) the rest goes in, and that file
                # again once it changes.
                overdue = time.monotonic() - dirty.first >= self.incomplete_grace
                with self._mutex:
                    now = time.monotonic()
                    again = self._dirty.setdefault(root, _Dirty(now if overdue else dirty.first, now))
                    if not overdue:
                        again.first = min(again.first, dirty.first)
                    again.paths |= held
                    again.add(held if overdue else dirty.changed)
                if not overdue:
                    continue
            if not os.path.isdir(root):
                continue  # gone meanwhile: _check_roots says so, and catches up when it is back
            roots.append(root)
        if not roots or self._stopping.is_set():
            return
        try:
            report = self._apply(roots, self._control, _only({root: taken[root].changed for root in roots}))
        except LockedError:
            # An index run by hand holds the home: its scan may have missed these changes, so try again.
            with self._mutex:
                for root in roots:
                    now = time.monotonic()
                    again = self._dirty.setdefault(root, _Dirty(now, now))
                    again.add(taken[root].changed)
                    again.last = now + 1.0
            return
        except ClipfindError as exc:
            self._notify(WatchNotice("error", tuple(roots), message=str(exc)))
            return
        self.batches += 1
        if report is not None and not report.cancelled and _changed(report):
            self._notify(WatchNotice("batch", tuple(roots), report))

    def _unsettled(self, paths: set[str]) -> set[str]:
        """The files still being written: size or mtime changed over ``settle`` seconds, or a JPEG/PNG
        without its end yet (for at most ``incomplete_grace`` seconds)."""
        if not paths:
            return set()
        before = {p: _stat(p) for p in paths}
        self._stopping.wait(self.settle)
        now = time.monotonic()
        waiting = set()
        for path, seen in before.items():
            if seen is None:
                self._incomplete.pop(path, None)
                continue  # gone: a delete, or a temp name renamed away; the indexer sees what is there
            if _stat(path) != seen:
                waiting.add(path)
            elif not _complete(path):
                since = self._incomplete.setdefault(path, now)
                if now - since < self.incomplete_grace:
                    waiting.add(path)
                else:
                    self._incomplete.pop(path, None)
            else:
                self._incomplete.pop(path, None)
        return waiting

    def _reconcile(self) -> None:
        """Schedule the folders asked for and unschedule those no longer asked for."""
        with self._mutex:
            wanted = list(self._wanted)
            gone = [self._roots.pop(r) for r in list(self._roots) if r not in wanted]
            for root in gone:
                self._dirty.pop(root.path, None)
            new = [p for p in wanted if p not in self._roots]
            for path in new:
                self._roots[path] = _Root(path)  # _check_roots schedules it
                if self._started:
                    self._mark(path, None)  # a folder added later: what is in it already
        for root in gone:  # outside the mutex: an observer's lock is taken, and its threads call _event
            self._unschedule(root)

    def _check_roots(self) -> None:
        """Notice folders that went away or came back (an unmounted drive, a share offline)."""
        with self._mutex:
            roots = list(self._roots.values())
        for root in roots:
            identity = _identity(root.path)
            if root.watch is not None and identity == root.identity:
                continue
            if root.watch is not None:  # gone, or another folder there now (remounted): its watch is dead
                self._unschedule(root)
                with self._mutex:
                    self._dirty.pop(root.path, None)
            if identity is None:
                if not root.away:
                    root.away = True
                    self._notify(WatchNotice("unreachable", (root.path,)))
                continue
            self._schedule(root, identity)
            with self._mutex:
                if self._started:  # what changed while it was away (at start, the caller's index run did it)
                    self._mark(root.path, None)
            if root.away:
                root.away = False
                self._notify(WatchNotice("back", (root.path,)))

    # -- observers --------------------------------------------------------------------------------
    def _schedule(self, root: _Root, identity: tuple[int, int]) -> None:
        handler = _Handler(self._event)
        observer: BaseObserver | None = None
        if self.polling is not True and network_file_system(root.path) is None:
            try:
                observer = self._observer(native=True)
                root.watch = observer.schedule(handler, root.path, recursive=True)
            except OSError:  # no inotify instance or watches left, a file system without events
                observer = None
            except Exception:  # watchdog raises its own errors for some platforms' failures
                observer = None
            if observer is None and self.polling is False:
                raise ClipfindError(f"cannot watch {root.path} for changes, and polling is turned off")
        if observer is None:
            observer = self._observer(native=False)
            root.watch = observer.schedule(handler, root.path, recursive=True)
        root.observer, root.identity = observer, identity

    def _unschedule(self, root: _Root) -> None:
        if root.watch is not None and root.observer is not None:
            with contextlib.suppress(Exception):  # its emitter may have ended with the folder
                root.observer.unschedule(root.watch)
        root.watch = root.observer = None

    def _observer(self, *, native: bool) -> BaseObserver:
        if native:
            if self._native is None:
                from watchdog.observers import Observer

                observer = Observer()
                observer.daemon = True
                observer.start()
                self._native = observer
            return self._native
        if self._poller is None:
            from watchdog.observers.polling import PollingObserver

            poller = PollingObserver(timeout=self.poll_interval)
            poller.daemon = True
            poller.start()
            self._poller = poller
        return self._poller

    def _stop_observers(self) -> None:
        for observer in (self._native, self._poller):
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer.stop()
                    observer.join(timeout=5)
        self._native = self._poller = None


class _Handler:
    """A watchdog event handler that forwards every event (the filtering is the watcher's)."""

    def __init__(self, forward: Callable[[FileSystemEvent], None]) -> None:
        self._forward = forward

    def dispatch(self, event: FileSystemEvent) -> None:
        self._forward(event)


def _only(changed: dict[str, set[str] | None]) -> list[str] | None:
    """The paths a batch indexes: those its events named, a folder marked whole standing for itself;
    None when every folder is whole (the indexer scans them as a run by hand does)."""
    if all(paths is None for paths in changed.values()):
        return None
    return sorted(p for root, paths in changed.items() for p in ([root] if paths is None else paths))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(os.path.join(root, ""))


def _counts(path: str, root: str, is_directory: bool) -> bool:
    """Whether a change at `path` can change the catalog: a photo file, or a folder, not hidden."""
    if hidden_below(path, root):
        return False
    return is_directory or (path != root and is_photo_name(os.path.basename(path)))


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat

    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


_JPEG = (".jpg", ".jpeg", ".jpe", ".jfif")


def _complete(path: str) -> bool:
    """Whether a JPEG ends with its end-of-image marker and a PNG with its IEND chunk: a download that
    paused half-way has stable size and time, but not its end. Other formats: by size and time alone."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in _JPEG and ext != ".png":
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size == 0:
                return False
            fh.seek(max(0, size - 64))
            tail = fh.read()
    except OSError:
        return True  # cannot look: the indexer records why it cannot read it
    if ext == ".png":
        return b"IEND" in tail[-12:]
    # Cameras and editors may pad after the marker; a partial file ends inside entropy-coded data.
    return b"\xff\xd9" in tail


def _changed(report: IndexReport) -> bool:
    return bool(report.added or report.updated or report.moved or report.copied or report.removed or report.failed)
