"""Search tab: a search bar (text, minus, query photo), filters, and the results grid."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, QMimeData, QModelIndex, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDateEdit, QHBoxLayout, QLabel, QLineEdit, QListView, QMenu, QMessageBox, QProgressBar,
    QPushButton, QToolButton, QVBoxLayout, QWidget,
)

from clipfind.errors import ClipfindError
from clipfind.library import PHOTO_EXTENSIONS, Library, build_query
from clipfind.records import Filters

from .dialogs import confirm_trash, photos_text, show_problems
from .icons import icon
from .results_model import HitRole, ResultsModel, ThumbnailCache
from .tasks import TaskRunner

if TYPE_CHECKING:
    from clipfind.records import PhotoInfo, SearchHit, TrashReport

RESULTS = 500  # plenty to scroll through; the grid is virtual, so this costs little


def _file_in(mime: QMimeData, photos_only: bool) -> str | None:
    for url in mime.urls():
        path = url.toLocalFile() if url.isLocalFile() else ""
        if path and os.path.isfile(path) and (not photos_only or os.path.splitext(path)[1].lower() in PHOTO_EXTENSIONS):
            return path
    return None


def holds_photo(mime: QMimeData) -> bool:
    """Whether a paste would give a query photo; cheap, as it is asked on every Ctrl+V."""
    return mime.hasImage() or _file_in(mime, photos_only=True) is not None


def pasted_photo(mime: QMimeData) -> str | None:
    """A photo file from the clipboard, or its image saved to a temp file; None leaves text paste to text."""
    return _file_in(mime, photos_only=True) or _saved_image(mime)


def local_file(mime: QMimeData) -> str | None:
    """The first local file in dropped data, or a dropped image saved to a temp file."""
    return _file_in(mime, photos_only=False) or _saved_image(mime)


def _saved_image(mime: QMimeData) -> str | None:
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            path = os.path.join(tempfile.gettempdir(), "clipfind-pasted.png")
            image.save(path)
            return path
    return None


class SearchView(QWidget):
    """Everything the user does to search; the Library answers, this only draws."""

    status = Signal(str)
    photos_trashed = Signal()

    def __init__(self, library: Library, cache: ThumbnailCache, tasks: TaskRunner | None = None) -> None:
        super().__init__()
        self.library = library
        self.tasks = tasks or TaskRunner(self, "clipfind-search")
        self._own_tasks = tasks is None
        self.tasks.busy_changed.connect(self._show_busy)
        self.query_image: str | None = None
        self.cache = cache
        cache.loader.ready.connect(self._chip_ready)
        self.setAcceptDrops(True)

        self.text = QLineEdit(placeholderText="Describe a photo: a dog on a beach at sunset")
        self.text.setClearButtonEnabled(True)
        self.text.returnPressed.connect(self.run_search)
        self.minus = QLineEdit(placeholderText="minus (e.g. people)")
        self.minus.setMaximumWidth(200)
        self.minus.returnPressed.connect(self.run_search)
        search_button = QPushButton(icon("search"), "Search")
        search_button.clicked.connect(self.run_search)

        self.chip = QLabel()
        self.chip.setFixedSize(48, 48)
        self.chip.setScaledContents(True)
        self.chip_clear = QToolButton(icon=icon("close"), toolTip="Clear the query photo")
        self.chip_clear.clicked.connect(self.clear_query_image)
        pick_image = QToolButton(icon=icon("image"), toolTip="Search with a photo (or drop / paste one)")
        pick_image.clicked.connect(self._pick_query_image)
        self._show_chip(None)

        bar = QHBoxLayout()
        bar.addWidget(pick_image)
        bar.addWidget(self.chip)
        bar.addWidget(self.chip_clear)
        bar.addWidget(self.text, 1)
        bar.addWidget(QLabel("−"))
        bar.addWidget(self.minus)
        bar.addWidget(search_button)

        self.folder = QComboBox()
        self.folder.setMinimumWidth(220)
        self.use_dates = QCheckBox("Taken between")
        self.date_from = QDateEdit(QDate.currentDate().addYears(-1), calendarPopup=True)
        self.date_to = QDateEdit(QDate.currentDate(), calendarPopup=True)
        for widget in (self.date_from, self.date_to):
            widget.setDisplayFormat("yyyy-MM-dd")
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Folder:"))
        filters.addWidget(self.folder)
        filters.addSpacing(16)
        filters.addWidget(self.use_dates)
        filters.addWidget(self.date_from)
        filters.addWidget(QLabel("and"))
        filters.addWidget(self.date_to)
        filters.addStretch(1)
        self.busy = QProgressBar(maximumWidth=120, maximumHeight=14, textVisible=False)
        self.busy.setRange(0, 0)  # indeterminate: "working on it"
        self.busy.hide()
        self.busy_label = QLabel("Searching…")
        self.busy_label.setStyleSheet("color: #1971c2;")
        self.busy_label.hide()
        self.count = QLabel()
        filters.addWidget(self.busy_label)
        filters.addWidget(self.busy)
        filters.addWidget(self.count)

        self.model = ResultsModel(cache)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setUniformItemSizes(True)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setIconSize(QSize(180, 180))
        self.grid.setGridSize(QSize(200, 222))
        self.grid.setWordWrap(True)
        self.grid.setSpacing(6)
        self.grid.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.grid.setModel(self.model)
        self.grid.doubleClicked.connect(self.open_photo)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.empty = QLabel("Type what you are looking for and press Enter,\n"
                            "or drop a photo here to find similar ones.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: #6c757d; font-size: 15px;")

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(filters)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.grid, 1)
        self.grid.hide()

        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):  # the grid's own: Enter in the search field searches
            QShortcut(QKeySequence(key), self.grid, activated=self._open_current,
                      context=Qt.ShortcutContext.WidgetShortcut)
        self.set_folders([])

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt naming)
        if self._own_tasks:
            self.tasks.shutdown()
        super().closeEvent(event)

    # -- input ------------------------------------------------------------------------------
    def set_folders(self, folders: list[str]) -> None:
        """The folder filter's choices (the window reads the list off the event loop)."""
        current = self.folder.currentData()
        self.folder.clear()
        self.folder.addItem("All folders", None)
        for folder in folders:
            self.folder.addItem(folder, folder)
        index = self.folder.findData(current)
        self.folder.setCurrentIndex(max(index, 0))

    def set_query_image(self, path: str) -> None:
        self.query_image = path
        self._show_chip(path)
        self.run_search()

    def clear_query_image(self) -> None:
        self.query_image = None
        self._show_chip(None)

    def clear(self) -> None:
        self.text.clear()
        self.minus.clear()
        self.clear_query_image()
        self.model.set_hits([])
        self._show_results(False)

    def _show_chip(self, path: str | None) -> None:
        """The query photo as a small chip; decoded in the thumbnail pool, not here (a photo can take 100s of ms)."""
        visible = path is not None
        if visible:
            pixmap = self.cache.get(path)
            self.chip.setPixmap(pixmap if pixmap is not None else self.cache.placeholder)
            self.chip.setToolTip(path)
        self.chip.setVisible(visible)
        self.chip_clear.setVisible(visible)

    def _chip_ready(self, path: str, image: QImage) -> None:
        if path == self.query_image:
            pixmap = self.cache.get(path)
            if pixmap is not None:
                self.chip.setPixmap(pixmap)

    def _pick_query_image(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        patterns = " ".join(f"*{ext}" for ext in sorted(PHOTO_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Find photos like…", "", f"Photos ({patterns})")
        if path:
            self.set_query_image(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if local_file(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = local_file(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.set_query_image(path)

    def paste_photo(self) -> None:
        """Search with the clipboard's photo (the main window sends every Ctrl+V that holds one here)."""
        path = pasted_photo(QGuiApplication.clipboard().mimeData())
        if path:
            self.set_query_image(path)

    def filters(self) -> Filters:
        date_from = date_to = None
        if self.use_dates.isChecked():
            date_from = self.date_from.date().toString("yyyy-MM-dd") + "T00:00:00"
            date_to = self.date_to.date().toString("yyyy-MM-dd") + "T23:59:59"
        return Filters(folder=self.folder.currentData(), date_from=date_from, date_to=date_to)

    # -- searching --------------------------------------------------------------------------
    def run_search(self) -> None:
        """Search off the event loop; a newer search supersedes this one, whose results are then dropped."""
        texts = [self.text.text()] if self.text.text().strip() else []
        minus = [self.minus.text()] if self.minus.text().strip() else []
        images = [self.query_image] if self.query_image else []
        if not texts and not images:
            return
        try:
            query = build_query(texts, images, minus)
        except ClipfindError as exc:
            self._search_failed(exc)
            return
        filters = self.filters()
        self.tasks.submit(lambda: self.library.search(query, RESULTS, filters), self._searched,
                          self._search_failed, kind="search")

    def _searched(self, hits: list[SearchHit]) -> None:
        self._set_hits(hits)
        self._show_results(True)
        if hits:
            self.grid.scrollToTop()

    def _search_failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, ClipfindError) else f"search failed: {exc}"
        self.status.emit(message)
        QMessageBox.warning(self, "Search", message)

    def _show_busy(self) -> None:
        searching = self.tasks.busy("search")
        self.busy.setVisible(searching)
        self.busy_label.setVisible(searching)

    def _set_hits(self, hits: list[SearchHit]) -> None:
        self.model.set_hits(hits)
        self.count.setText(photos_text(len(hits)) if hits else "no matching photos yet")

    def drop_missing(self) -> None:
        """Take the photos that left the catalog (trashed, folder removed) out of the results on screen."""
        hits = self.model.hits
        if not hits:
            return
        ids = [h.photo.id for h in hits]

        def keep(alive: list[PhotoInfo]) -> None:
            still = {p.id for p in alive}
            current = self.model.hits
            if any(h.photo.id not in still for h in current):
                self._set_hits([h for h in current if h.photo.id in still or h.photo.id not in ids_set])

        ids_set = set(ids)
        self.tasks.submit(lambda: self.library.photos(ids), keep, kind="drop_missing")

    def _show_results(self, visible: bool) -> None:
        self.grid.setVisible(visible)
        self.empty.setVisible(not visible)

    # -- actions on results -------------------------------------------------------------------
    def _hit(self, index: QModelIndex) -> SearchHit | None:
        return index.data(HitRole) if index.isValid() else None

    def _open_current(self) -> None:
        self.open_photo(self.grid.currentIndex())

    def open_photo(self, index: QModelIndex) -> None:
        hit = self._hit(index)
        if hit:
            QDesktopServices.openUrl(QUrl.fromLocalFile(hit.photo.path))

    def selected_hits(self) -> list[SearchHit]:
        return [h for h in (self._hit(i) for i in self.grid.selectionModel().selectedIndexes()) if h]

    def _context_menu(self, pos) -> None:  # noqa: ANN001
        index = self.grid.indexAt(pos)
        hit = self._hit(index)
        if hit is None:
            return
        menu = QMenu(self)
        menu.addAction(icon("open"), "Open", lambda: self.open_photo(index))
        menu.addAction(icon("image"), "Preview…", lambda: self.preview(hit))
        menu.addAction(icon("similar"), "Find similar", lambda: self.set_query_image(hit.photo.path))
        menu.addAction(icon("folder"), "Open containing folder",
                       lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(hit.photo.path))))
        menu.addAction(icon("copy"), "Copy path", lambda: QGuiApplication.clipboard().setText(hit.photo.path))
        menu.addSeparator()
        selected = self.selected_hits() if index in self.grid.selectionModel().selectedIndexes() else [hit]
        menu.addAction(icon("trash"), f"Move {len(selected)} to trash…", lambda: self.trash(selected))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    def preview(self, hit: SearchHit) -> None:
        from .dialogs import PreviewDialog

        PreviewDialog(hit.photo, self).exec()

    def trash(self, hits: list[SearchHit]) -> None:
        """Move the chosen results to the trash off the event loop (every file is re-hashed first)."""
        photos = [h.photo for h in hits]
        if not confirm_trash(self, photos):
            return
        self.status.emit(f"moving {photos_text(len(photos))} to the trash…")
        self.tasks.submit(lambda: self.library.trash(photos), self._trashed, self._trash_failed)

    def _trashed(self, report: TrashReport) -> None:
        gone = {p.path for p in report.moved}
        self._set_hits([h for h in self.model.hits if h.photo.path not in gone])
        self.status.emit(f"moved {photos_text(len(report.moved))} to the trash")
        if report.refused:
            show_problems(self, "Some photos were kept", [f"{p.path}: {why}" for p, why in report.refused])
        self.photos_trashed.emit()

    def _trash_failed(self, exc: BaseException) -> None:
        show_problems(self, "Nothing was moved", [str(exc)])
