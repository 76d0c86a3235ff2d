"""Search tab: a search bar (text, minus, query photo), filters, and the results grid."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, QMimeData, QModelIndex, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QMenu, QMessageBox, QProgressBar,
    QPushButton, QSlider, QStackedWidget, QToolButton, QVBoxLayout, QWidget,
)

from clipfind.errors import ClipfindError
from clipfind.library import PHOTO_EXTENSIONS, Library, build_query
from clipfind.records import Filters

from .dialogs import confirm_trash, photos_text, show_problems
from .icons import icon
from .filters import DateField
from .grid_view import PhotoGrid
from .results_model import HitRole, ResultsModel, ThumbnailCache, TimelineModel
from .tasks import TaskRunner
from .workers import ThumbnailLoader

if TYPE_CHECKING:
    from clipfind.records import FolderNode, PhotoInfo, SearchHit, Timeline, TrashReport

RESULTS = 500  # plenty to scroll through; the grid is virtual, so this costs little
THUMB_SIDE = 256  # pixels: thumbnails decoded (and cached on disk) at this size, the slider's largest cells
SIDES = (96, THUMB_SIDE, 160)  # the thumbnail-size slider: smallest, largest, at start


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
        self._more_images: list[str] = []  # "Find similar" on several selected photos: the rest of them
        self.cache = cache
        cache.loader.ready.connect(self._chip_ready)
        self.setAcceptDrops(True)

        self.text = QLineEdit(placeholderText="Describe a photo: a dog on a beach at sunset")
        self.text.setClearButtonEnabled(True)
        self.text.returnPressed.connect(self.run_search)
        self.text.textChanged.connect(self._text_changed)
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

        self.folder = QComboBox()  # the folder tree, subfolders indented, with counts (set_folder_tree)
        self.folder.setMinimumWidth(160)
        self.folder.setMaximumWidth(320)
        self.dates = QComboBox()  # presets: any time, this year, last year, a year of the library, a range
        self.dates.setToolTip("When the photos were taken (capture date, else the file's date)")
        self.use_dates = QCheckBox("Between")
        self.date_from = DateField(QDate.currentDate().addYears(-1))
        self.date_to = DateField(QDate.currentDate(), end=True)
        self._set_date_presets([])
        self.dates.activated.connect(self._date_preset)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Folder:"))
        filters.addWidget(self.folder, 1)
        filters.addSpacing(12)
        filters.addWidget(self.dates)
        filters.addWidget(self.use_dates)
        filters.addWidget(self.date_from)
        filters.addWidget(QLabel("–"))
        filters.addWidget(self.date_to)
        filters.addStretch(1)
        # Filters apply as they change, a moment after the last change (typing a date changes it per key).
        self._filters_timer = QTimer(self, singleShot=True, interval=250, timeout=self._filters_changed)
        self.folder.currentIndexChanged.connect(self._filters_timer.start)
        self.use_dates.toggled.connect(self._filters_timer.start)
        for widget in (self.date_from, self.date_to):
            widget.dateChanged.connect(self._dates_typed)
        self.busy = QProgressBar(maximumWidth=120, maximumHeight=14, textVisible=False)
        self.busy.setRange(0, 0)  # indeterminate: "working on it"
        self.busy.hide()
        self.busy_label = QLabel("Searching…")
        self.busy_label.setStyleSheet("color: #1971c2;")
        self.busy_label.hide()
        self.count = QLabel()
        self.size_slider = QSlider(Qt.Orientation.Horizontal, minimum=SIDES[0], maximum=SIDES[1], value=SIDES[2])
        self.size_slider.setMaximumWidth(120)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.valueChanged.connect(self._set_side)
        filters.addWidget(self.busy_label)
        filters.addWidget(self.busy)
        filters.addWidget(self.count)
        filters.addSpacing(8)
        filters.addWidget(QLabel("Size"))
        filters.addWidget(self.size_slider)

        # The grids' thumbnails: larger than the duplicates' and kept on disk in the home, so a second
        # start scrolls through cached files instead of decoding every photo again.
        self.grid_cache = ThumbnailCache(ThumbnailLoader(THUMB_SIDE, self, disk=library.thumbnails(THUMB_SIDE)),
                                         square=False)
        self.model = ResultsModel(self.grid_cache)
        self.grid = PhotoGrid(side=SIDES[2])
        self.grid.setModel(self.model)
        self.timeline_model = TimelineModel(self.grid_cache)
        self.timeline = PhotoGrid(side=SIDES[2])
        self.timeline.setModel(self.timeline_model)
        for grid in (self.grid, self.timeline):
            grid.doubleClicked.connect(self.open_photo)
            grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            grid.customContextMenuRequested.connect(lambda pos, g=grid: self._context_menu(pos, g))
            grid.selectionModel().selectionChanged.connect(self._selection_changed)
            for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):  # the grid's own: Enter in the search field searches
                QShortcut(QKeySequence(key), grid, activated=self._open_current,
                          context=Qt.ShortcutContext.WidgetShortcut)
        self.empty = QLabel("Type what you are looking for and press Enter,\n"
                            "or drop a photo here to find similar ones.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(placeholder-text); font-size: 15px;")
        self.pages = QStackedWidget()
        for page in (self.empty, self.timeline, self.grid):
            self.pages.addWidget(page)

        self.selection_bar = self._selection_bar()
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(filters)
        layout.addWidget(self.selection_bar)
        layout.addWidget(self.pages, 1)
        self._timeline_wanted = False
        self.set_folders([])

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt naming)
        if self._own_tasks:
            self.tasks.shutdown()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Let the thumbnail decodes in flight end (the window calls it as it closes)."""
        self.grid_cache.loader.cancel_pending()
        self.grid_cache.loader.wait()

    # -- input ------------------------------------------------------------------------------
    def _selection_bar(self) -> QWidget:
        """Shown while photos are selected: how many, and what can be done with them all at once."""
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(4, 2, 4, 2)
        self.selected_label = QLabel()
        self.selected_label.setStyleSheet("font-weight: bold;")
        row.addWidget(self.selected_label)
        row.addSpacing(8)
        self.bulk_buttons: dict[str, QPushButton] = {}
        for key, icon_name, text, slot in (
                ("similar", "similar", "Find similar", self.find_similar_selected),
                ("folder", "folder", "Open folder", self.open_selected_folders),
                ("copy", "copy", "Copy paths", self.copy_selected_paths),
                ("trash", "trash", "Move to trash…", lambda: self.trash(self.selected_hits()))):
            button = QPushButton(icon(icon_name), text)
            button.clicked.connect(slot)
            row.addWidget(button)
            self.bulk_buttons[key] = button
        row.addStretch(1)
        clear = QPushButton(icon("close"), "Clear selection")
        clear.clicked.connect(lambda: self.current_grid().clearSelection())
        row.addWidget(clear)
        bar.hide()
        return bar

    def current_grid(self) -> PhotoGrid:
        """The grid on screen: the search's results, else the timeline."""
        return self.grid if self.pages.currentWidget() is self.grid else self.timeline

    def _selection_changed(self, *args: object) -> None:
        n = len(self.current_grid().selectionModel().selectedIndexes())
        self.selected_label.setText(f"{photos_text(n)} selected")
        self.selection_bar.setVisible(n > 0)

    def _set_side(self, side: int) -> None:
        for grid in (self.grid, self.timeline):
            grid.set_side(side)

    def set_folders(self, folders: list[str]) -> None:
        """The library's folders changed (the window reads the list off the event loop): the folder tree and
        the timeline are read again, off the event loop too."""
        self._folders = folders
        if not folders:
            self.set_folder_tree([])
        else:
            self.tasks.submit(lambda: self.library.folder_tree(), self.set_folder_tree, kind="folder_tree")
        self.refresh_timeline()

    def set_folder_tree(self, tree: list[FolderNode]) -> None:
        """The folder filter: every folder with photos, subfolders indented under their parent, with counts."""
        current = self.folder.currentData()
        self.folder.blockSignals(True)
        self.folder.clear()
        self.folder.addItem("All folders", None)

        def add(node: FolderNode, depth: int) -> None:
            label = node.path if depth == 0 else node.name
            self.folder.addItem("\u2003" * depth + f"{label}  ({node.photos})", node.path)
            self.folder.setItemData(self.folder.count() - 1, node.path, Qt.ItemDataRole.ToolTipRole)
            for child in node.children:
                add(child, depth + 1)

        for root in tree:
            add(root, 0)
        index = self.folder.findData(current)
        self.folder.setCurrentIndex(max(index, 0))
        self.folder.blockSignals(False)
        if index < 0 and current is not None:  # the chosen folder is gone: the filter changed
            self._filters_timer.start()

    # -- dates: presets and typed ----------------------------------------------------------------
    def _set_date_presets(self, years: list[int]) -> None:
        this = QDate.currentDate().year()
        chosen = self.dates.currentData()
        self.dates.clear()
        self.dates.addItem("Any time", None)
        self.dates.addItem("This year", this)
        self.dates.addItem("Last year", this - 1)
        for year in sorted(set(years) - {this, this - 1}, reverse=True):
            self.dates.addItem(str(year), year)
        self.dates.addItem("Between dates…", "range")
        self.dates.setCurrentIndex(max(0, self.dates.findData(chosen)))

    def _date_preset(self, index: int) -> None:
        choice = self.dates.itemData(index)
        if isinstance(choice, int):
            for widget, date in ((self.date_from, QDate(choice, 1, 1)), (self.date_to, QDate(choice, 12, 31))):
                widget.blockSignals(True)
                widget.setDate(date)
                widget.blockSignals(False)
        self.use_dates.blockSignals(True)
        self.use_dates.setChecked(choice is not None)
        self.use_dates.blockSignals(False)
        if choice == "range":
            self.date_from.setFocus()
        self._filters_timer.start()

    def set_date_preset(self, label: str) -> None:
        """Choose a preset by its label ("This year", "2019"...), as the user would."""
        index = self.dates.findText(label)
        if index >= 0:
            self.dates.setCurrentIndex(index)
            self._date_preset(index)

    def _dates_typed(self) -> None:
        """A date typed or picked: the range applies (a moment after the last key)."""
        self.use_dates.blockSignals(True)
        self.use_dates.setChecked(True)
        self.use_dates.blockSignals(False)
        self.dates.setCurrentIndex(self.dates.findData("range"))
        self._filters_timer.start()

    def _filters_changed(self) -> None:
        """Filters apply as they change: the timeline narrows, and a search on screen runs again."""
        if not self.use_dates.isChecked() and self.dates.currentData() is not None:
            self.dates.setCurrentIndex(0)
        self.refresh_timeline()
        if self.pages.currentWidget() is self.grid and self._has_query():
            self.run_search()

    # -- the timeline ----------------------------------------------------------------------------
    def refresh_timeline(self) -> None:
        """Read every photo newest first, off the event loop (a newer read supersedes this one)."""
        filters = self.filters()
        self.tasks.submit(lambda: self.library.timeline(filters), self._timeline_ready, self._task_failed,
                          kind="timeline")

    def _timeline_ready(self, timeline: Timeline) -> None:
        keep = self.timeline.verticalScrollBar().value()
        self.timeline_model.set_timeline(timeline)
        self.timeline.verticalScrollBar().setValue(keep)
        if not self.use_dates.isChecked():  # the years on offer: those of the whole library
            self._set_date_presets(sorted({int(m.month[:4]) for m in timeline.months if m.month[:4].isdigit()}))
        if self.pages.currentWidget() is not self.grid:
            self._show_results(False)
        self._selection_changed()

    def _task_failed(self, exc: BaseException) -> None:
        self.status.emit(str(exc) if isinstance(exc, ClipfindError) else f"{type(exc).__name__}: {exc}")

    def _text_changed(self, text: str) -> None:
        """Clearing the search (its clear button, or the last character deleted) goes back to the timeline."""
        if not text.strip() and not self.query_image:
            self._show_results(False)

    def _has_query(self) -> bool:
        return bool(self.text.text().strip() or self.query_image)

    def set_query_image(self, path: str, more: list[str] | None = None) -> None:
        self.query_image = path
        self._more_images = list(more or [])
        self._show_chip(path)
        self.run_search()

    def clear_query_image(self) -> None:
        self.query_image = None
        self._more_images: list[str] = []
        self._show_chip(None)
        if not self.text.text().strip():
            self._show_results(False)

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
        images = [self.query_image, *self._more_images] if self.query_image else []
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
        self.refresh_timeline()
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
        """The search's results, else the timeline (the start view once there are photos), else a hint."""
        if visible:
            page: QWidget = self.grid
        else:
            page = self.timeline if self.timeline_model.rowCount() else self.empty
        if page is self.timeline:
            self.count.setText(photos_text(self.timeline_model.rowCount()))
        elif page is self.empty:
            self.count.setText("")
        if self.pages.currentWidget() is not page:
            self.pages.setCurrentWidget(page)
            self._selection_changed()

    # -- actions on results -------------------------------------------------------------------
    def _hit(self, index: QModelIndex) -> SearchHit | None:
        return index.data(HitRole) if index.isValid() else None

    def _open_current(self) -> None:
        self.open_photo(self.current_grid().currentIndex())

    def open_photo(self, index: QModelIndex) -> None:
        hit = self._hit(index)
        if hit:
            QDesktopServices.openUrl(QUrl.fromLocalFile(hit.photo.path))

    def selected_hits(self) -> list[SearchHit]:
        """The photos selected in the grid on screen, in grid order."""
        grid = self.current_grid()
        rows = sorted(i.row() for i in grid.selectionModel().selectedIndexes())
        model = grid.model()
        return [h for h in (self._hit(model.index(r, 0)) for r in rows) if h]

    def find_similar_selected(self) -> None:
        """Photos like the selected ones (all of them: their vectors are summed, as a query of several photos)."""
        paths = [h.photo.path for h in self.selected_hits()]
        if paths:
            self.text.blockSignals(True)
            self.text.clear()
            self.text.blockSignals(False)
            self.set_query_image(paths[0], paths[1:])

    def open_selected_folders(self) -> None:
        for folder in list(dict.fromkeys(os.path.dirname(h.photo.path) for h in self.selected_hits()))[:5]:
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def copy_selected_paths(self) -> None:
        paths = [h.photo.path for h in self.selected_hits()]
        QGuiApplication.clipboard().setText("\n".join(paths))
        self.status.emit(f"copied {len(paths)} path{'s' if len(paths) != 1 else ''}")

    def _context_menu(self, pos, grid: PhotoGrid | None = None) -> None:  # noqa: ANN001
        grid = grid or self.current_grid()
        index = grid.indexAt(pos)
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
        selected = self.selected_hits() if grid.selectionModel().isSelected(index) else [hit]
        menu.addAction(icon("trash"), f"Move {len(selected)} to trash…", lambda: self.trash(selected))
        menu.exec(grid.viewport().mapToGlobal(pos))

    def preview(self, hit: SearchHit) -> None:
        from .preview import preview_results  # ←/→ through the grid on screen; find similar and trash inside

        preview_results(self, self.current_grid().model(), hit)

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
        self.current_grid().clearSelection()
        self.refresh_timeline()
        self.status.emit(f"moved {photos_text(len(report.moved))} to the trash")
        if report.refused:
            show_problems(self, "Some photos were kept", [f"{p.path}: {why}" for p, why in report.refused])
        self.photos_trashed.emit()

    def _trash_failed(self, exc: BaseException) -> None:
        show_problems(self, "Nothing was moved", [str(exc)])
