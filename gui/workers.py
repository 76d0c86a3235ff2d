"""Background work for the app: model loading, indexing and thumbnails, reporting through signals.

Widgets are only touched on the GUI thread; these objects live in worker threads and speak
through queued signals.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QSize, QThread, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from clipfind.errors import ClipfindError
from clipfind.indexer import Control, IndexReport, Progress
from clipfind.library import Library


class ModelLoader(QObject):
    """Loads the model off the GUI thread; download progress arrives as (done, total) bytes."""

    progress = Signal(int, int)
    loaded = Signal()
    failed = Signal(str)

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library

    @Slot()
    def run(self) -> None:
        self.library.set_download_progress(lambda done, total: self.progress.emit(done, total or 0))
        try:
            self.library.model()
        except ClipfindError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # never let a model problem take the app down
            self.failed.emit(f"could not load the model: {exc}")
        else:
            self.loaded.emit()


class IndexWorker(QObject):
    """Runs one indexing pass in its own thread; pause/resume/cancel through its Control."""

    progress = Signal(object)  # clipfind.indexer.Progress
    finished = Signal(object)  # IndexReport
    failed = Signal(str)

    def __init__(self, library: Library, folders: list[str] | None, batch_size: int = 32) -> None:
        super().__init__()
        self.library = library
        self.folders = folders
        self.batch_size = batch_size
        self.control = Control()

    @Slot()
    def run(self) -> None:
        try:
            report: IndexReport = self.library.indexer(batch_size=self.batch_size).run(
                self.folders, progress=self._report, control=self.control
            )
        except ClipfindError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            self.failed.emit(f"indexing stopped: {exc}")
        else:
            self.finished.emit(report)

    def _report(self, progress: Progress) -> None:
        self.progress.emit(progress)


def start_in_thread(worker: QObject, parent: QObject) -> QThread:
    """Move `worker` to a new thread that runs worker.run() and cleans up after itself."""
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    for signal_name in ("finished", "failed", "loaded"):
        signal = getattr(worker, signal_name, None)
        if signal is not None:
            signal.connect(thread.quit)
    thread.start()
    return thread


class _ThumbnailSignals(QObject):
    ready = Signal(str, QImage)


class _ThumbnailJob(QRunnable):
    def __init__(self, path: str, size: int, signals: _ThumbnailSignals) -> None:
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        from clipfind.imageload import load_image

        try:
            loaded = load_image(self.path, min_side=self.size)
            image = loaded.image
            image.thumbnail((self.size, self.size))
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
