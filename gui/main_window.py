"""The main window: search, duplicates and map tabs, model status banner, indexing in the status bar."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from clipfind.errors import ClipfindError, LockedError, ModelLoadError, ModelMismatchError
from clipfind.library import Library
from clipfind.records import SearchHit

from .dialogs import ErrorsDialog, FoldersDialog
from .dupes_view import DupesView
from .icons import icon
from .map_view import MapView
from .preview import install_quick_look
from .results_model import ThumbnailCache
from .search_view import SearchView, holds_photo
from .shortcuts import KEYS as SHORTCUT_SHEET_KEYS
from .shortcuts import ShortcutSheet
from .tasks import Relay, TaskRunner
from .theme import css, follow_system
from .welcome import WelcomePage, choose_folders
from .workers import FolderWatch, IndexWorker, ThumbnailLoader

if TYPE_CHECKING:
    from clipfind.records import Counts, Failure, IndexReport, PhotoInfo, Progress


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class MainWindow(QMainWindow):
    """The window: every Library call goes through `tasks` (one worker thread, in order), indexing through
    `indexing` (its own lane, so search and duplicates stay usable while it runs); the GUI thread only draws."""

    index_batch_size = 32  # photos per model call and per catalog commit; pause acts between batches

    def __init__(self, library: Library, settings: QSettings, folders: list[str] | None = None) -> None:
        super().__init__()
        follow_system(QApplication.instance())  # light or dark as the system is, and when it switches
        self.library = library
        self.settings = settings
        self.setWindowTitle("clipfind")
        self.setWindowIcon(icon("clipfind"))
        size = settings.value("window/size")
        self.resize(size if isinstance(size, QSize) else QSize(1200, 800))
        self.model_ready = False
        # The weights cannot be had (offline, no checkpoint): photos are still indexed, without vectors,
        # so duplicates work; a pass once the model loads embeds them (_embed_later).
        self.model_missing = False
        self._embed_later = False
        self._pass_without_model = False
        self.indexer: IndexWorker | None = None
        self.known_folders: list[str] = []
        self._queued: list[str] | None = None  # indexing asked for while it could not start: [] means every folder
        self._queued_only: list[str] | None = None  # with _queued == []: a watcher's paths alone, not every folder
        self._to_forget: list[str] = []  # folders to remove once the indexer has let go of the writer lock
        self._resume_indexing = False
        self._watch_pass = False  # the pass running was started by the folder watcher
        self.tasks = TaskRunner(self, "clipfind-library")
        self.indexing = TaskRunner(self, "clipfind-indexing")
        # The library's folders are watched while the window is open: each settled batch of changes
        # queues an index pass here (one writer, on the indexing lane).
        self.watch = FolderWatch(self)
        self._watch_refused = False
        self.watch.changed.connect(self._watched_changed)
        self.watch.notice.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.watch.watching.connect(self._watching)
        self.watch.refused.connect(self._watch_refused_by)

        # Python's cyclic GC may run in whichever thread allocates: in a worker it would destroy
        # Qt objects owned by the GUI thread and crash. Collect here, on the GUI thread, instead;
        # objects alive now (torch, open_clip: ~400k) are frozen so a collection stays short.
        gc.disable()
        gc.freeze()
        self._gc_ticks = 0
        self._gc_timer = QTimer(self, interval=1000, timeout=self._collect_garbage)
        self._gc_timer.start()

        self.cache = ThumbnailCache(ThumbnailLoader(200, self))
        self.search = SearchView(library, self.cache, self.tasks)
        threshold = float(settings.value("dupes/threshold", 0.95))
        self.dupes = DupesView(library, self.cache, threshold, self.tasks, settings=settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.search, icon("search"), "Search")
        self.tabs.addTab(self.dupes, icon("duplicates"), "Duplicates")
        self.map = MapView(library, self.cache, self.tasks)
        self.tabs.addTab(self.map, icon("map"), "Map")
        self._wire_map()
        self.tabs.currentChanged.connect(self._tab_changed)
        for view in (self.search, self.dupes, self.map):
            view.status.connect(self.statusBar().showMessage)
        self.search.photos_trashed.connect(self._collection_changed)
        # the duplicates tab updates its own groups in place after a clean-up or its undo (and regroups quietly)
        self.dupes.photos_trashed.connect(lambda: self._collection_changed(regroup_dupes=False))
        self.dupes.photos_restored.connect(lambda: self._collection_changed(regroup_dupes=False))

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(f"background: {css('banner')}; padding: 8px; border-radius: 4px;")
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

        self.welcome = WelcomePage()
        self.welcome.folders_chosen.connect(self.add_folders)
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
        # Ctrl+V with a photo on the clipboard searches with it wherever focus is. Most widgets leave the
        # key to this window shortcut; text fields take it for themselves, so they are watched one by one
        # (not the whole application: a filter there runs Python for every event of every widget, which
        # made building a page of duplicate groups several times slower). Text still pastes as text.
        QShortcut(QKeySequence.StandardKey.Paste, self, activated=self._paste_if_photo)
        for key in SHORTCUT_SHEET_KEYS:  # "?" typed in a text field stays text: fields take printable keys first
            QShortcut(key, self, activated=self.show_shortcuts)
        for grid in (self.search.grid, getattr(self.search, "timeline", None)):
            if grid is not None:  # Space: quick look at the current photo, Space in the preview closes it
                install_quick_look(grid, lambda g=grid: self._quick_look(g))
        for kind in (QLineEdit, QAbstractSpinBox):
            for field in self.findChildren(kind):
                field.installEventFilter(self)

        self._show_welcome(False)  # until the folder list, read off the event loop, says otherwise
        self._asked = list(folders or [])
        self.refresh_folders(self._folders_known)
        self.load_model()
        self._update_counts()
        if folders:
            self.add_folders(folders)

    # -- layout pieces ----------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        add = QAction(icon("plus"), "Add folder…", self, triggered=self.pick_folders)
        folders = QAction(icon("settings"), "Folders…", self, triggered=self.edit_folders)
        self.rules_action = QAction(icon("duplicates"), "Keeper rules…", self, triggered=self.edit_keeper_rules)
        self.rules_action.setToolTip("Which photo of a duplicate group stays: protected and preferred folders, "
                                     "formats, capture date, GPS")
        self.errors_action = QAction(icon("warning"), "Unreadable files", self, triggered=self.show_errors)
        for action in (add, folders, self.rules_action, self.errors_action):
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
        self.watch_state = QLabel()
        status = self.statusBar()
        status.addPermanentWidget(self.progress_text)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.pause_button)
        status.addPermanentWidget(self.watch_state)
        status.addPermanentWidget(self.counts)

    def _wire_map(self) -> None:
        """The map hands its selections and "find similar" to the search tab, and rings the search's results."""
        self.map.selection_made.connect(self._map_selection)
        self.map.find_similar.connect(self._map_similar)
        self.map.trash_requested.connect(self._map_trash)
        self.search.results_changed.connect(self.map.highlight)

    def _map_selection(self, photos: list[PhotoInfo]) -> None:
        """A rectangle or lasso on the map: its photos in the results grid, where every grid action works."""
        self.search.show_photos(photos, "Selected on the map")
        self.tabs.setCurrentWidget(self.search)

    def _map_similar(self, path: str) -> None:
        self.search.set_query_image(path)  # which runs the search
        self.tabs.setCurrentWidget(self.search)

    def _map_trash(self, photos: list[PhotoInfo]) -> None:
        """Trash asked for in the map's preview: the search view's one confirmation and undo."""
        self.search.trash([SearchHit(p, float("nan")) for p in photos])

    def show_shortcuts(self) -> None:
        """The keyboard shortcut sheet (F1 or ?)."""
        ShortcutSheet(self).exec()

    def _quick_look(self, grid: QWidget) -> None:
        hit = self.search._hit(grid.currentIndex())
        if hit is not None:
            self.search.preview(hit)

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

    def _paste_if_photo(self) -> None:
        if holds_photo(QGuiApplication.clipboard().mimeData()):
            self.paste_photo()

    def paste_photo(self) -> None:
        self.tabs.setCurrentWidget(self.search)
        self.search.paste_photo()

    def focus_search(self) -> None:
        self.tabs.setCurrentWidget(self.search)
        self.search.text.setFocus()
        self.search.text.selectAll()

    @property
    def idle(self) -> bool:
        """No Library call queued or running, and no indexing: what tests and the benchmark wait for."""
        return self.tasks.idle and self.indexing.idle and self.indexer is None and not self.dupes.building

    # -- model ------------------------------------------------------------------------------
    def load_model(self) -> None:
        """Model and vector index open on the worker (seconds: imports, weights, maybe a download)."""
        relay = Relay(self)
        relay.value.connect(lambda done_total: self._download_progress(*done_total))
        library = self.library

        def load() -> None:
            library.set_download_progress(lambda done, total: relay.emit((done, total or 0)))
            library.load()

        self.tasks.submit(load, lambda _: self._model_loaded(), self._model_failed, kind="model")
        self.statusBar().showMessage("Loading the model…")

    def _download_progress(self, done: int, total: int) -> None:
        self.download.show()
        self.download.setRange(0, total or 0)
        self.download.setValue(done)

    def _collect_garbage(self) -> None:
        """Young objects every second, older ones every 10 s, everything every minute: a collection holds the
        event loop for as long as it walks, so the frequent ones walk only what is new. None while the model
        loads: its import makes ~400k objects that live as long as the app (frozen once it is loaded)."""
        if self.tasks.busy("model"):
            return
        self._gc_ticks += 1
        gc.collect(2 if self._gc_ticks % 60 == 0 else 1 if self._gc_ticks % 10 == 0 else 0)

    def _model_loaded(self) -> None:
        gc.freeze()  # the model's objects live as long as the app: keep them out of collections
        self.model_ready, self.model_missing = True, False
        self.download.hide()
        self.banner_box.hide()
        self.statusBar().showMessage("Ready", 3000)
        if self._embed_later and (self._queued is None or self._queued_only is not None):
            self._queued, self._queued_only = [], None  # photos indexed without the model: this pass embeds them
        self._embed_later = False
        if self._queued is not None and self.indexer is None:
            self._start_queued()

    def _model_failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, ClipfindError) else f"could not load the model: {exc}"
        self.download.hide()
        self.model_missing = isinstance(exc, ModelLoadError)
        self.banner.setText(
            f"<b>The model could not be loaded.</b> {message}<br>Search and similar shots need the model. "
            "Duplicates work without it: identical files and the same photo saved again, and new photos are "
            "indexed for them now. To work offline, choose a downloaded open_clip checkpoint file "
            "(e.g. open_clip_model.safetensors) for this model."
        )
        self.banner_box.show()
        self.statusBar().showMessage("Model not available")
        if self._queued is not None and self.model_missing and self.indexer is None:
            self._start_queued()
        elif self._queued is not None:
            self.progress_text.setText("Indexing needs the model")

    def choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model checkpoint", "",
                                              "Checkpoints (*.safetensors *.bin *.pt *.pth);;All files (*)")
        if path:
            self.use_checkpoint(path)

    def use_checkpoint(self, path: str) -> None:
        """Reopen the library with weights from a local file (every other option kept), and remember the choice."""
        self.settings.setValue("model/pretrained", path)
        self.banner_box.hide()
        old = self.library

        def reopen() -> Library:
            new = old.reopen(pretrained=path)
            old.close()
            self._set_library(new)  # before the next queued call runs: it must find the new one
            return new

        self.tasks.submit(reopen, lambda _: self.load_model(), self._model_failed, kind="model")

    def _set_library(self, library: Library) -> None:
        self.library = library
        for view in (self.search, self.dupes, self.map):
            view.library = library

    # -- folders and indexing -----------------------------------------------------------------
    def refresh_folders(self, then=None) -> None:  # noqa: ANN001
        """Read the folder list off the event loop; the search view's folder filter follows it."""
        def known(folders: list[str]) -> None:
            self.known_folders = folders
            self.search.set_folders(folders)
            self._watch_folders(folders)
            if then is not None:
                then(folders)

        self.tasks.submit(lambda: self.library.folders(), known, self._task_failed,
                          kind="folders" if then is None else None)

    def _folders_known(self, folders: list[str]) -> None:
        self._show_welcome(not folders and not self._asked)
        if folders and not self._asked:
            self.start_indexing(None)  # catch up with changes since last time

    def pick_folders(self) -> None:
        folders = choose_folders(self)  # several at once
        if folders:
            self.add_folders(folders)

    def add_folders(self, folders: list[str]) -> None:
        """Index new folders; the indexer adds each to the catalog once the model is known to fit."""
        self._show_welcome(False)
        self.start_indexing(folders)

    def edit_folders(self) -> None:
        def ask(folders: list[str]) -> None:
            dialog = FoldersDialog(folders, self)
            if dialog.exec():
                self.apply_folder_changes(dialog.added, dialog.removed)

        self.tasks.submit(lambda: self.library.folders(), ask, self._task_failed)

    def edit_keeper_rules(self) -> None:
        """Settings: the keeper rules, edited in the duplicates tab (which regroups once they are saved)."""
        self.tabs.setCurrentWidget(self.dupes)
        self.dupes.edit_keeper_rules()

    def apply_folder_changes(self, added: list[str], removed: list[str]) -> None:
        """Removal first (it needs the writer lock: a running index pass is stopped, and picked up again after)."""
        if added:
            self._queue_indexing(added)
        if removed:
            self._to_forget.extend(removed)
            if self.indexer is not None:
                self._resume_indexing = True
                self.indexer.control.cancel()  # _indexer_done forgets the folders once it has stopped
            else:
                self._forget_folders()
        elif added:
            self._start_queued()

    def _forget_folders(self) -> None:
        folders, self._to_forget = self._to_forget, []
        library = self.library

        def forget() -> list[str]:
            for folder in folders:
                library.forget_folder(folder)  # keeps the photos another folder still covers
            return library.folders()

        def done(remaining: list[str]) -> None:
            self.known_folders = remaining
            self.search.set_folders(remaining)
            self._collection_changed()
            resume, self._resume_indexing = self._resume_indexing, False
            if self._queued is not None or (resume and remaining):
                self._start_queued()  # finish what the removal interrupted

        def failed(exc: BaseException) -> None:
            QMessageBox.warning(self, "Folders", str(exc))
            self._resume_indexing = False
            self._collection_changed()
            self.refresh_folders()

        self.statusBar().showMessage("Removing folders…", 3000)
        self.tasks.submit(forget, done, failed)

    def _queue_indexing(self, folders: list[str] | None, only: list[str] | None = None) -> None:
        """Remember what to index next: [] (every folder) absorbs the rest; a watcher's paths (``only``)
        make a pass of their own while nothing wider waits, and join one that does."""
        if only is not None:
            if self._queued is None:
                self._queued, self._queued_only = [], list(only)
            elif self._queued_only is not None:
                self._queued_only = list(dict.fromkeys(self._queued_only + only))
            return
        self._queued_only = None
        if not folders or self._queued == []:
            self._queued = []
        else:
            self._queued = list(dict.fromkeys((self._queued or []) + folders))

    def _start_queued(self) -> None:
        self.start_indexing(self._queued or None, only=self._queued_only)

    def start_indexing(self, folders: list[str] | None, only: list[str] | None = None) -> None:
        """An index pass of the library's folders (and ``folders`` new to it), or of a watcher's
        changed paths alone (``only``), queued behind one that runs."""
        if not (self.model_ready or self.model_missing) or self.indexer is not None or self._to_forget:
            self._queue_indexing(folders, only)
            if not (self.model_ready or self.model_missing):
                self.progress_text.setText("Indexing starts once the model is loaded")
            return
        self._queued = self._queued_only = None
        self._pass_without_model = not self.model_ready
        if folders:  # new folders, and a catch-up of the known ones in the same pass
            folders = list(dict.fromkeys(self.known_folders + folders))
        worker = IndexWorker(folders, self.index_batch_size, self, only=None if folders else only)
        worker.progress.connect(self._index_progress)
        self.indexer = worker
        worker.start(self.indexing, self.library, self._index_finished, self._index_failed)
        self.progress.show()
        self.progress.setRange(0, 0)
        self.pause_button.show()
        self.pause_button.setChecked(False)
        self.progress_text.setText("Looking for photos…")

    # -- watched folders -----------------------------------------------------------------------
    def _watch_folders(self, folders: list[str]) -> None:
        """Watch the library's folders (started once, on the library lane; later lists go to the watcher)."""
        if self.watch.active:
            self.watch.set_folders(folders)
        elif folders and not self._watch_refused and self.watch.task is None:
            self.watch.start(self.tasks, self.library, folders)

    def _watching(self, folders: list[str]) -> None:
        self.watch_state.setText(f"Watching {len(folders)} folder{'s' if len(folders) != 1 else ''}")
        self.watch_state.setToolTip("New, changed, moved and deleted photos are indexed as they appear:\n"
                                    + "\n".join(folders))
        self.watch.set_folders(self.known_folders or folders)  # folders added while it started

    def _watch_refused_by(self, why: str) -> None:
        self._watch_refused = True
        self.watch_state.setText("Not watching folders")
        self.watch_state.setToolTip(why)
        self.statusBar().showMessage("Not watching folders: another clipfind watches this library "
                                     "(the app or `clipfind index --watch`)", 30_000)

    def _watched_changed(self, batch: tuple[list[str], list[str] | None]) -> None:
        """Photos settled in a watched folder: an index pass of the paths that changed (of the library
        where the watcher lost track), queued behind one that runs."""
        self.statusBar().showMessage("Photos changed in a watched folder: updating…", 5000)
        idle = self.indexer is None
        self.start_indexing(None, only=batch[1])
        if idle and self.indexer is not None:
            self._watch_pass = True

    def _index_progress(self, p: Progress) -> None:
        if p.phase == "indexing":
            if self.progress.maximum() == 0:  # first batch: the new folders are in the catalog now
                self.refresh_folders()
            self._update_counts()
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
            failed = f" · {p.failed} unreadable" if p.failed else ""
            paused = " · paused" if self.pause_button.isChecked() else ""
            self.progress_text.setText(
                f"Indexing {p.done} of {p.total} · {p.rate:.1f} photos/s · {_duration(p.eta)} left{failed}{paused}"
            )
        elif p.phase == "fingerprinting":  # photos indexed by an older clipfind, for the "same photo" tier
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
            self.progress_text.setText(f"Preparing duplicate detection: {p.done} of {p.total} photos")
        elif p.phase == "scanning":
            self.progress_text.setText("Looking for photos…")
        elif p.phase == "saving":
            self.progress_text.setText("Saving…")

    def _index_finished(self, report: IndexReport) -> None:
        changed = report.added + report.updated + report.copied + report.removed + report.moved
        watch_pass, self._watch_pass = self._watch_pass, False
        if watch_pass and not changed and not report.failed and not report.cancelled:
            # nothing new after all (the app's own trash or undo moved files): nothing on screen is stale
            self.progress_text.setText("Up to date")
            self._indexer_done()
            return
        self.progress_text.setText(
            f"Up to date · {report.added} new, {report.removed} removed" if changed else "Up to date")
        if watch_pass and changed:
            self.statusBar().showMessage(f"Watched folders: {report.added + report.copied} new, "
                                         f"{report.updated} changed, {report.removed} removed, "
                                         f"{report.moved} moved", 10_000)
        if getattr(report, "cancelled", False):
            self.progress_text.setText("Indexing stopped")
        if report.failed:
            self.progress_text.setText(self.progress_text.text() + f" · {report.failed} unreadable")
        if self._pass_without_model and (report.added or report.updated):
            self.progress_text.setText(self.progress_text.text() + " · search waits for the model")
            if self.model_ready:  # it loaded meanwhile: embed what this pass recorded without it
                self._queue_indexing(None)
            else:
                self._embed_later = True
        self.refresh_folders()
        self._collection_changed()
        self._indexer_done()

    def _index_failed(self, exc: BaseException) -> None:
        watch_pass, self._watch_pass = self._watch_pass, False
        if watch_pass and isinstance(exc, LockedError):  # `clipfind index` runs now: it sees the same changes
            self.progress_text.setText("Another indexer is running")
            self._indexer_done()
            return
        if isinstance(exc, ModelMismatchError) and not self.model_ready:
            # a catalog made with other weights: without them nothing can be added; the banner says why
            self.progress_text.setText("Indexing needs the model")
            self._indexer_done()
            return
        self.progress_text.setText("Indexing stopped")
        message = str(exc) if isinstance(exc, ClipfindError) else f"indexing stopped: {exc}"
        self.refresh_folders()
        self._indexer_done()
        if not self._to_forget:
            QMessageBox.warning(self, "Indexing stopped", message)

    def _indexer_done(self) -> None:
        if self.indexer is not None:
            self.indexer.deleteLater()
        self.indexer = None
        self.progress.hide()
        self.pause_button.hide()
        if self._to_forget:
            self._forget_folders()
        elif self._queued is not None:
            self._start_queued()

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

    def _collection_changed(self, regroup_dupes: bool = True) -> None:
        """Photos came or went: counts, results and groups on screen must not show the old state
        (the duplicates tab regroups when it is shown; not when it made the change itself, as it
        updates its groups in place)."""
        self._update_counts()
        self.search.drop_missing()
        self.map.refresh()
        if not regroup_dupes:
            return
        self.dupes.stale = True
        if self.tabs.currentWidget() is self.dupes:
            self.dupes.regroup()

    def _update_counts(self) -> None:
        self.tasks.submit(lambda: self.library.counts(), self._show_counts, self._task_failed, kind="counts")

    def _show_counts(self, counts: Counts) -> None:
        self.counts.setText(f"{counts.photos} photos")
        self.errors_action.setText(f"Unreadable files ({counts.failed})" if counts.failed else "Unreadable files")

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.dupes and (self.dupes.stale or not self.dupes.busy):
            self.dupes.regroup(keep_place=True)  # back on the tab: where the user was, unless groups changed

    def show_errors(self) -> None:
        def show(failures: list[Failure]) -> None:
            ErrorsDialog(failures, self).exec()

        self.tasks.submit(lambda: self.library.failures(), show, self._task_failed)

    def _task_failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage(str(exc) if isinstance(exc, ClipfindError) else f"{type(exc).__name__}: {exc}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self.settings.setValue("window/size", self.size())
        self.settings.setValue("dupes/threshold", self.dupes.threshold)
        self.hide()  # gone for the user at once; the call in flight may still take a moment to end
        self.watch.stop()  # no new passes; the home's watch lock is free for the CLI
        if self.indexer is not None:
            self.indexer.control.cancel()
        self.indexing.shutdown()
        self.tasks.shutdown()
        self.indexer = None
        self.cache.loader.wait()
        self.search.shutdown()  # the grids' thumbnail decodes
        self.map.shutdown()
        self._gc_timer.stop()
        gc.unfreeze()
        gc.collect()
        gc.enable()
        super().closeEvent(event)
