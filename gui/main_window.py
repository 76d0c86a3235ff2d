"""The main window: search and duplicates tabs, model status banner, indexing in the status bar."""

from __future__ import annotations

import gc

from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, QThread, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton, QTabWidget,
    QToolButton, QVBoxLayout, QWidget,
)

from clipfind.errors import ClipfindError
from clipfind.indexer import IndexReport, Progress
from clipfind.library import Library
from gui.dialogs import ErrorsDialog, FoldersDialog
from gui.dupes_view import DupesView
from gui.icons import icon
from gui.results_model import ThumbnailCache
from gui.search_view import SearchView, holds_photo
from gui.workers import IndexWorker, ModelLoader, ThumbnailLoader, start_in_thread


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class MainWindow(QMainWindow):
    index_batch_size = 32  # photos per model call and per catalog commit; pause acts between batches
    def __init__(self, library: Library, settings: QSettings, folders: list[str] | None = None) -> None:
        super().__init__()
        self.library = library
        self.settings = settings
        self.setWindowTitle("clipfind")
        self.setWindowIcon(icon("clipfind"))
        size = settings.value("window/size")
        self.resize(size if isinstance(size, QSize) else QSize(1200, 800))
        self.model_ready = False
        self.indexer: IndexWorker | None = None
        self._threads: list[QThread] = []
        self._queued: list[str] | None = None

        # Python's cyclic GC may run in whichever thread allocates: in a worker it would destroy
        # Qt objects owned by the GUI thread and crash. Collect here, on the GUI thread, instead;
        # objects alive now (torch, open_clip: ~400k) are frozen so a collection stays short.
        gc.disable()
        gc.freeze()
        self._gc_ticks = 0
        self._gc_timer = QTimer(self, interval=1000, timeout=self._collect_garbage)
        self._gc_timer.start()

        self.cache = ThumbnailCache(ThumbnailLoader(200, self))
        self.search = SearchView(library, self.cache)
        threshold = float(settings.value("dupes/threshold", 0.95))
        self.dupes = DupesView(library, self.cache, threshold)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.search, icon("search"), "Search")
        self.tabs.addTab(self.dupes, icon("duplicates"), "Duplicates")
        self.tabs.currentChanged.connect(self._tab_changed)
        for view in (self.search, self.dupes):
            view.status.connect(self.statusBar().showMessage)
        self.search.photos_trashed.connect(self._collection_changed)
        self.dupes.photos_trashed.connect(self._collection_changed)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fff3bf; padding: 8px; border-radius: 4px;")
        self.banner_button = QPushButton("Choose checkpoint file…")
        self.banner_button.clicked.connect(self.choose_checkpoint)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_button)
        self.banner_box = QWidget()
        self.banner_box.setLayout(banner_row)
        self.banner_box.hide()
        self.download = QProgressBar()
        self.download.setFormat("Downloading model weights… %p%")
        self.download.hide()

        self.welcome = self._welcome_page()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.banner_box)
        layout.addWidget(self.download)
        layout.addWidget(self.welcome, 1)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._build_toolbar()
        self._build_status_bar()

        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.focus_search)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.search.clear)
        # Ctrl+V with a photo on the clipboard searches with it wherever focus is, even in a text field,
        # which would otherwise take the key for itself; a clipboard of text still pastes as text.
        QApplication.instance().installEventFilter(self)

        self._show_welcome(not library.folders() and not folders)
        self.load_model()
        if folders:
            self.add_folders(folders)
        elif library.folders():
            self.start_indexing(None)  # catch up with changes since last time

    # -- layout pieces ----------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        add = QAction(icon("plus"), "Add folder…", self, triggered=self.pick_folders)
        folders = QAction(icon("settings"), "Folders…", self, triggered=self.edit_folders)
        self.errors_action = QAction(icon("warning"), "Unreadable files", self, triggered=self.show_errors)
        for action in (add, folders, self.errors_action):
            bar.addAction(action)

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.progress_text = QLabel()
        self.pause_button = QToolButton(icon=icon("pause"), toolTip="Pause indexing")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.pause_button.hide()
        self.counts = QLabel()
        status = self.statusBar()
        status.addPermanentWidget(self.progress_text)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.pause_button)
        status.addPermanentWidget(self.counts)
        self._update_counts()

    def _welcome_page(self) -> QWidget:
        page = QWidget()
        title = QLabel("<h1>Find your photos by what is in them</h1>")
        text = QLabel("Pick the folders where you keep photos. clipfind looks at each photo once, on this "
                      "computer (nothing is uploaded), and then finds them by description (\u201ca dog on a beach "
                      "at sunset\u201d), by example, and finds duplicates you can clean up safely.")
        text.setWordWrap(True)
        text.setFixedWidth(640)
        text.setFixedHeight(text.heightForWidth(640) + 8)  # wrapped text gets the lines it needs
        text.setStyleSheet("font-size: 14px; color: #495057;")
        button = QPushButton(icon("folder"), "Choose photo folders…")
        button.setMinimumHeight(40)
        button.clicked.connect(self.pick_folders)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        for widget in (title, text, button):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        return page

    def _show_welcome(self, visible: bool) -> None:
        self.welcome.setVisible(visible)
        self.tabs.setVisible(not visible)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        kind = event.type()
        if (kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and isinstance(event, QKeyEvent)
                and event.matches(QKeySequence.StandardKey.Paste) and isinstance(watched, QWidget)
                and watched.window() is self and holds_photo(QGuiApplication.clipboard().mimeData())):
            if kind == QEvent.Type.ShortcutOverride:
                event.accept()  # no widget's own paste: the key press comes back here
            else:
                self.paste_photo()
            return True
        return super().eventFilter(watched, event)

    def paste_photo(self) -> None:
        self.tabs.setCurrentWidget(self.search)
        self.search.paste_photo()

    def focus_search(self) -> None:
        self.tabs.setCurrentWidget(self.search)
        self.search.text.setFocus()
        self.search.text.selectAll()

    # -- model ------------------------------------------------------------------------------
    def load_model(self) -> None:
        loader = ModelLoader(self.library)
        loader.progress.connect(self._download_progress)
        loader.loaded.connect(self._model_loaded)
        loader.failed.connect(self._model_failed)
        self._model_loader = loader
        self._threads.append(start_in_thread(loader, self))
        self.statusBar().showMessage("Loading the model…")

    def _download_progress(self, done: int, total: int) -> None:
        self.download.show()
        self.download.setRange(0, total or 0)
        self.download.setValue(done)

    def _collect_garbage(self) -> None:
        self._gc_ticks += 1
        gc.collect(2 if self._gc_ticks % 30 == 0 else 1)

    def _model_loaded(self) -> None:
        gc.freeze()  # the model's objects live as long as the app: keep them out of collections
        self.model_ready = True
        self.download.hide()
        self.banner_box.hide()
        self.statusBar().showMessage("Ready", 3000)
        if self._queued is not None and self.indexer is None:
            self.start_indexing(self._queued or None)

    def _model_failed(self, message: str) -> None:
        self.download.hide()
        self.banner.setText(
            f"<b>The model could not be loaded.</b> {message}<br>Search needs the model. You can still review "
            "identical-file duplicates. To work offline, choose a downloaded open_clip checkpoint file "
            "(e.g. open_clip_model.safetensors) for this model."
        )
        self.banner_box.show()
        self.statusBar().showMessage("Model not available")
        if self._queued is not None:
            self.progress_text.setText("Indexing needs the model")

    def choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model checkpoint", "",
                                              "Checkpoints (*.safetensors *.bin *.pt *.pth);;All files (*)")
        if path:
            self.use_checkpoint(path)

    def use_checkpoint(self, path: str) -> None:
        """Reopen the library with weights from a local file, and remember the choice."""
        self.settings.setValue("model/pretrained", path)
        home, name = self.library.home, self.library.spec.name
        self.library.close()
        self.library = Library(home, name, path)
        for view in (self.search, self.dupes):
            view.library = self.library
        self.banner_box.hide()
        self.load_model()

    # -- folders and indexing -----------------------------------------------------------------
    def pick_folders(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a photo folder")
        if folder:
            self.add_folders([folder])

    def add_folders(self, folders: list[str]) -> None:
        self._show_welcome(False)
        for folder in folders:
            self.library.catalog.add_folder(folder)
        self.search.refresh_folders()
        self.start_indexing(None)

    def edit_folders(self) -> None:
        dialog = FoldersDialog(self.library.folders(), self)
        if dialog.exec():
            self.apply_folder_changes(dialog.added, dialog.removed)

    def apply_folder_changes(self, added: list[str], removed: list[str]) -> None:
        interrupted = False
        if removed:
            interrupted = self.indexer is not None
            self._wait_for_indexer()  # it holds the writer lock that forgetting a folder needs
            try:
                for folder in removed:
                    self.library.forget_folder(folder)  # keeps the photos another folder still covers
            except ClipfindError as exc:
                QMessageBox.warning(self, "Folders", str(exc))
            self._collection_changed()
        if added:
            self.add_folders(added)
        elif interrupted:
            self.start_indexing(None)  # finish what the removal interrupted in the other folders
        self.search.refresh_folders()

    def start_indexing(self, folders: list[str] | None) -> None:
        if not self.model_ready:
            self._queued = folders or []
            self.progress_text.setText("Indexing starts once the model is loaded")
            return
        if self.indexer is not None:
            self._queued = folders or []
            return
        self._queued = None
        worker = IndexWorker(self.library, folders, self.index_batch_size)
        worker.progress.connect(self._index_progress)
        worker.finished.connect(self._index_finished)
        worker.failed.connect(self._index_failed)
        self.indexer = worker
        self._index_thread = start_in_thread(worker, self)
        self.progress.show()
        self.progress.setRange(0, 0)
        self.pause_button.show()
        self.pause_button.setChecked(False)
        self.progress_text.setText("Looking for photos…")

    def _index_progress(self, p: Progress) -> None:
        if p.phase == "indexing":
            self._update_counts()
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
            failed = f" · {p.failed} unreadable" if p.failed else ""
            paused = " · paused" if self.pause_button.isChecked() else ""
            self.progress_text.setText(
                f"Indexing {p.done} of {p.total} · {p.rate:.1f} photos/s · {_duration(p.eta)} left{failed}{paused}"
            )
        elif p.phase == "scanning":
            self.progress_text.setText("Looking for photos…")
        elif p.phase == "saving":
            self.progress_text.setText("Saving…")

    def _index_finished(self, report: IndexReport) -> None:
        self._indexer_done()
        changed = report.added + report.updated + report.copied + report.removed + report.moved
        self.progress_text.setText(
            f"Up to date · {report.added} new, {report.removed} removed" if changed else "Up to date")
        if report.failed:
            self.progress_text.setText(self.progress_text.text() + f" · {report.failed} unreadable")
        self._collection_changed()

    def _index_failed(self, message: str) -> None:
        self._indexer_done()
        self.progress_text.setText("Indexing stopped")
        QMessageBox.warning(self, "Indexing stopped", message)

    def _indexer_done(self) -> None:
        self.indexer = None
        self.progress.hide()
        self.pause_button.hide()
        if self._queued is not None:
            self.start_indexing(self._queued or None)

    def set_paused(self, paused: bool) -> None:
        if self.indexer is None:
            return
        if paused:
            self.indexer.control.pause()
            self.progress_text.setText(self.progress_text.text() + " · paused")
        else:
            self.indexer.control.resume()
            self.progress_text.setText(self.progress_text.text().replace(" · paused", ""))
        self.pause_button.setIcon(icon("play" if paused else "pause"))
        self.pause_button.setToolTip("Resume indexing" if paused else "Pause indexing")

    def _wait_for_indexer(self) -> None:
        if self.indexer is not None:
            self.indexer.control.cancel()
            self._index_thread.quit()
            self._index_thread.wait()
            self.indexer = None

    def _collection_changed(self) -> None:
        """Photos came or went: counts, results and groups on screen must not show the old state
        (the duplicates tab regroups when it is shown)."""
        self._update_counts()
        self.search.drop_missing()
        if self.tabs.currentWidget() is self.dupes:
            self.dupes.regroup()

    def _update_counts(self) -> None:
        catalog = self.library.catalog
        failed = catalog.count("failed")
        self.counts.setText(f"{catalog.count('ok')} photos")
        self.errors_action.setText(f"Unreadable files ({failed})" if failed else "Unreadable files")

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.dupes:
            self.dupes.regroup()

    def show_errors(self) -> None:
        ErrorsDialog(self.library.catalog.failures(), self).exec()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self.settings.setValue("window/size", self.size())
        self.settings.setValue("dupes/threshold", self.dupes.threshold)
        self._wait_for_indexer()
        self.cache.loader.wait()
        for thread in self._threads:
            thread.quit()
            thread.wait(5000)
        self._gc_timer.stop()
        QApplication.instance().removeEventFilter(self)
        gc.unfreeze()
        gc.collect()
        gc.enable()
        super().closeEvent(event)

