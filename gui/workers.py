"""Background work for the app: indexing and thumbnails, reporting through signals.

Widgets are only touched on the GUI thread. Library calls run through a :class:`gui.tasks.TaskRunner`;
thumbnails decode in a small thread pool of their own (they read files, never the catalog).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage

from clipfind.library import Library, thumbnail
from clipfind.records import Control, IndexReport

from .tasks import Relay, Task, TaskRunner


class IndexWorker(QObject):
    """One indexing pass (Library.index_folders) on an indexing lane; pause/resume/cancel through its Control.

    ``progress`` is emitted on the GUI thread, once per Progress the indexer reports.
    """

    progress = Signal(object)  # clipfind.records.Progress

    def __init__(self, folders: list[str] | None, batch_size: int = 32, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folders = folders
        self.batch_size = batch_size
        self.control = Control()
        self._relay = Relay(self)
        self._relay.value.connect(self.progress)
        self.task: Task | None = None

    def start(self, runner: TaskRunner, library: Library, done: Callable[[IndexReport], None],
              failed: Callable[[BaseException], None]) -> Task:
        folders, batch_size, control, report = self.folders, self.batch_size, self.control, self._relay.emit
        self.task = runner.submit(
            lambda: library.index_folders(folders, progress=report, control=control, batch_size=batch_size),
            done, failed)
        return self.task


class _ThumbnailSignals(QObject):
    ready = Signal(str, QImage)


class _ThumbnailJob(QRunnable):
    def __init__(self, path: str, size: int, signals: _ThumbnailSignals) -> None:
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        try:
            image = thumbnail(self.path, self.size)
            data = image.tobytes("raw", "RGB")
            qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()
        except Exception:
            qimage = QImage()  # unreadable now: the view shows a placeholder
        self.signals.ready.emit(self.path, qimage)


class ThumbnailLoader(QObject):
    """Decodes thumbnails in a thread pool (EXIF-upright, HEIC, CMYK via clipfind's loader)."""

    ready = Signal(str, QImage)

    def __init__(self, size: int = 200, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = QSize(size, size)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _ThumbnailSignals()
        self._signals.ready.connect(self._done)
        self._pending: set[str] = set()

    def request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        self._pool.start(_ThumbnailJob(path, self.size.width(), self._signals))

    def cancel_pending(self) -> None:
        self._pool.clear()
        self._pending.clear()

    def _done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self.ready.emit(path, image)

    def wait(self) -> None:
        self._pool.waitForDone()
