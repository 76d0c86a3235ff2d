"""Background work for the app: indexing and thumbnails, reporting through signals.

Widgets are only touched on the GUI thread. Library calls run through a :class:`gui.tasks.TaskRunner`;
thumbnails decode in a small thread pool of their own (they read files, never the catalog).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage

from clipfind.errors import LockedError
from clipfind.library import Library, ThumbCache, Watcher, WatchNotice, thumbnail
from clipfind.records import Control, IndexReport

from .tasks import Relay, Task, TaskRunner


class IndexWorker(QObject):
    """One indexing pass (Library.index_folders) on an indexing lane; pause/resume/cancel through its Control.

    ``progress`` is emitted on the GUI thread, once per Progress the indexer reports.
    """

    progress = Signal(object)  # clipfind.records.Progress

    def __init__(self, folders: list[str] | None, batch_size: int = 32, parent: QObject | None = None,
                 only: list[str] | None = None) -> None:
        super().__init__(parent)
        self.folders = folders
        self.only = only  # a watcher's changed paths: the pass looks at them alone
        self.batch_size = batch_size
        self.control = Control()
        self._relay = Relay(self)
        self._relay.value.connect(self.progress)
        self.task: Task | None = None

    def start(self, runner: TaskRunner, library: Library, done: Callable[[IndexReport], None],
              failed: Callable[[BaseException], None]) -> Task:
        folders, batch_size, control, report, only = self.folders, self.batch_size, self.control, self._relay.emit, self.only
        self.task = runner.submit(
            lambda: library.index_folders(folders, progress=report, control=control, batch_size=batch_size, only=only),
            done, failed)
        return self.task


class FolderWatch(QObject):
    """Watches the library's folders while the window is open (Library.watch).

    The watcher's thread decides when a batch of changes has settled; it does not index. It tells the
    GUI thread which folders and paths changed (``changed``), and the window queues an index pass on its indexing
    lane, the same pass the user starts, so the catalog has one writer and the GUI thread only draws.
    ``notice`` carries a status-bar line (a folder unreachable or back); ``refused`` says why the app
    does not watch (another process watches this home).
    """

    changed = Signal(object)  # (folders, paths or None for the folders whole): changes that settled
    notice = Signal(object)  # str: a line for the status bar
    watching = Signal(object)  # list[str]: the folders watched, once the watcher runs
    refused = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._changed = Relay(self)
        self._changed.value.connect(self.changed)
        self._notice = Relay(self)
        self._notice.value.connect(self.notice)
        self._guard = threading.Lock()
        self._watcher: Watcher | None = None
        self._closed = False
        self.task: Task | None = None

    @property
    def active(self) -> bool:
        return self._watcher is not None

    def start(self, runner: TaskRunner, library: Library, folders: list[str]) -> None:
        """Start watching on the runner's lane: scheduling a large tree walks its folders (one inotify watch
        each), which is no work for the GUI thread."""
        changed, notice = self._changed.emit, self._notice.emit

        def apply(roots: list[str], control: Control, only: list[str] | None) -> None:
            changed((roots, only))  # indexed by the window's next pass, on its indexing lane

        def begin() -> list[str]:
            watcher = library.watch(folders, lambda n: notice(_notice_text(n)), apply=apply)
            with self._guard:
                if self._closed:  # the window closed while it started
                    watcher.stop()
                    return []
                self._watcher = watcher
            return watcher.folders

        def failed(exc: BaseException) -> None:
            self.task = None
            if isinstance(exc, LockedError):
                self.refused.emit(str(exc))
            else:
                self.refused.emit(f"cannot watch the folders: {exc}")

        def started(watched: list[str]) -> None:
            self.task = None
            if watched:
                self.watching.emit(watched)

        self.task = runner.submit(begin, started, failed)

    def set_folders(self, folders: list[str]) -> None:
        """The library's folders changed: watch these (the watcher's thread schedules them)."""
        with self._guard:
            if self._watcher is not None:
                self._watcher.set_folders(folders)

    def stop(self) -> None:
        """Stop watching and let go of the home's watch lock (on close)."""
        with self._guard:
            self._closed = True
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()


def _notice_text(notice: WatchNotice) -> str:
    line = notice.line()
    return line[:1].upper() + line[1:]


class _ThumbnailSignals(QObject):
    ready = Signal(str, QImage)


class _ThumbnailJob(QRunnable):
    def __init__(self, path: str, size: int, signals: _ThumbnailSignals, disk: ThumbCache | None = None) -> None:
        super().__init__()
        self.path, self.size, self.signals, self.disk = path, size, signals, disk

    def run(self) -> None:
        try:
            image = self.disk.thumbnail(self.path) if self.disk is not None else thumbnail(self.path, self.size)
            data = image.tobytes("raw", "RGB")
            qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()
        except Exception:
            qimage = QImage()  # unreadable now: the view shows a placeholder
        self.signals.ready.emit(self.path, qimage)


class ThumbnailLoader(QObject):
    """Decodes thumbnails in a thread pool (EXIF-upright, HEIC, CMYK via clipfind's loader); with ``disk``
    (Library.thumbnails) through the home's thumbnail cache, so a second start reads small files. The
    photo asked for last is decoded first: after a fast scroll, what is on screen comes before what
    was scrolled past."""

    ready = Signal(str, QImage)

    def __init__(self, size: int = 200, parent: QObject | None = None, disk: ThumbCache | None = None) -> None:
        super().__init__(parent)
        self.size = QSize(size, size)
        self.disk = disk
        self._asked = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _ThumbnailSignals()
        self._signals.ready.connect(self._done)
        self._pending: set[str] = set()

    def request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        self._asked += 1
        self._pool.start(_ThumbnailJob(path, self.size.width(), self._signals, self.disk), self._asked % 2**30)

    def cancel_pending(self) -> None:
        self._pool.clear()
        self._pending.clear()

    def _done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self.ready.emit(path, image)

    def wait(self) -> None:
        self._pool.waitForDone()
