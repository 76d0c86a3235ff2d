"""Search tab: a search bar (text, minus, query photo, tag), filters, albums, and the results grid.

The grid shows one thing at a time: the "All photos" timeline, a search's results (cut at the relevance
cut-off the core draws from the query's scores, unless the user asks for weaker matches), a tag album, a
saved search, or photos handed over by another tab (``show_photos``). The albums side list chooses among
them; the tag chip narrows a search to a tag. Every Library call runs on the task lane, never here.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, QEvent, QMimeData, QModelIndex, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from clipfind.errors import ClipfindError, ModelLoadError
from clipfind.library import PHOTO_EXTENSIONS, Library, build_query, newest_first
from clipfind.records import Filters, Query, SearchHit

from .albums_panel import ALL, AlbumsPanel
from .dialogs import confirm_trash, photos_text, show_problems
from .filters import DateField
from .flow_layout import FlowLayout
from .grid_view import PhotoGrid
from .icons import icon
from .results_model import HitRole, ResultsModel, ThumbnailCache, TimelineModel
from .tasks import TaskRunner
from .workers import ThumbnailLoader

if TYPE_CHECKING:
    from clipfind.records import FolderNode, PhotoInfo, SavedSearch, SearchResults, TagAlbum, Timeline, TrashReport

RESULTS = 500  # plenty to scroll through; the grid is virtual, so this costs little
THUMB_SIDE = 256  # pixels: thumbnails decoded (and cached on disk) at this size, the slider's largest cells
SIDES = (96, THUMB_SIDE, 160)  # the thumbnail-size slider: smallest, largest, at start
ALBUMS_WIDTH = 820  # narrower than this, the albums list folds away unless the user opens it
NO_CUTOFF = -1.0  # a saved search's least score when the user saw every match (cosines are >= -1)
SORTS = (("Best match", "score"), ("Newest first", "date"))


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


def _group(*widgets: QWidget) -> QWidget:
    """Widgets kept side by side when the filters row wraps (a label stays with its field)."""
    box = QWidget()
    box.setMinimumHeight(QComboBox().sizeHint().height())  # one height for every group: the row lines up
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(4)
    for widget in widgets:
        row.addWidget(widget)
    return box


def results_text(results: SearchResults, shown: int, gone: int = 0) -> str:
    """The count label of a search: how many passed the cut-off, how many the grid shows, which cut-off.

    Args:
        results: the search's answer.
        shown: the hits in the grid now.
        gone: hits trashed since (they passed, and are no more).
    """
    passed = max(results.passed - gone, shown)
    number = f"about {passed:,}" if results.estimated else f"{passed:,}"
    photos = f"photo{'s' if passed != 1 else ''} match{'es' if passed == 1 else ''}"
    if not shown:
        text = "no matching photos yet"
    elif shown < passed:
        text = f"{shown:,} of {number} {photos}"  # "500 of about 1,200 photos match"
    else:
        text = f"{number} {photos}"  # "24 photos match"
    if results.cutoff is None:
        return text
    if results.automatic:
        return f"{text} · weaker than {results.cutoff:.2f} hidden"
    if results.cutoff <= NO_CUTOFF:
        return text
    return f"{text} · score {results.cutoff:.2f} or more"


class SearchView(QWidget):
    """Everything the user does to search; the Library answers, this only draws."""

    status = Signal(str)
    photos_trashed = Signal()
    results_changed = Signal(list)  # the paths in the results grid whenever they change; [] back on the timeline

    def __init__(self, library: Library, cache: ThumbnailCache, tasks: TaskRunner | None = None) -> None:
        super().__init__()
        self.library = library
        self.tasks = tasks or TaskRunner(self, "clipfind-search")
        self._own_tasks = tasks is None
        self.tasks.busy_changed.connect(self._show_busy)
        self.query_image: str | None = None
        self._more_images: list[str] = []  # "Find similar" on several selected photos: the rest of them
        self.tag: str | None = None  # the tag filter (Filters.tag): the chip beside the search bar
        self._titles: dict[str, str] = {}  # tag -> album title, from the last tag_albums()
        # What the results grid shows: ("search", ""), ("saved", name), ("tag", tag), ("photos", title);
        # with its SearchResults (searches) or the photos as handed over (albums, other tabs).
        self.showing: tuple[str, str] = ("search", "")
        self._results: SearchResults | None = None
        self._gone = 0  # results trashed since the search: the count label counts them out
        self._photos: list[PhotoInfo] = []
        self._albums_auto = True  # the albums list follows the width until the user opens or closes it
        self._no_model = False  # the last tag albums failed for want of the model: not retried on every change
        self.cache = cache
        cache.loader.ready.connect(self._chip_ready)
        self.setAcceptDrops(True)
        self.albums = AlbumsPanel()
        self.albums.chosen.connect(self._album_chosen)
        self.albums.save_requested.connect(self.save_search)
        self.albums.delete_requested.connect(self.delete_saved_search)

        self.text = QLineEdit(placeholderText="Describe a photo: a dog on a beach at sunset")
        self.text.setClearButtonEnabled(True)
        self.text.setMinimumWidth(120)
        self.text.returnPressed.connect(self.run_search)
        self.text.textChanged.connect(self._text_changed)
        self.minus = QLineEdit(placeholderText="minus (e.g. people)")
        self.minus.setMaximumWidth(200)
        self.minus.setMinimumWidth(60)
        self.minus.returnPressed.connect(self.run_search)
        search_button = QPushButton(icon("search"), "Search")
        search_button.clicked.connect(self.run_search)

        self.albums_button = QToolButton(text="Albums", checkable=True, toolTip="Show or hide the albums list")
        self.albums_button.setIcon(icon("image"))
        self.albums_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.albums_button.clicked.connect(self._albums_toggled)
        self.chip = QLabel()
        self.chip.setFixedSize(48, 48)
        self.chip.setScaledContents(True)
        self.chip_clear = QToolButton(icon=icon("close"), toolTip="Clear the query photo")
        self.chip_clear.clicked.connect(self.clear_query_image)
        pick_image = QToolButton(icon=icon("image"), toolTip="Search with a photo (or drop / paste one)")
        pick_image.clicked.connect(self._pick_query_image)
        self._show_chip(None)
        # The tag filter: a menu of the tags photos carry, and the chosen one as a chip that removes itself.
        self.tag_menu = QMenu(self)
        self.tag_button = QToolButton(text="Tag", toolTip="Only photos with an automatic tag")
        self.tag_button.setMenu(self.tag_menu)
        self.tag_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.tag_chip = QToolButton(icon=icon("close"), toolTip="Remove the tag filter")
        self.tag_chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.tag_chip.setLayoutDirection(Qt.LayoutDirection.RightToLeft)  # the × after the name
        self.tag_chip.setStyleSheet("QToolButton { border: 1px solid palette(highlight); border-radius: 11px;"
                                    " padding: 1px 6px; background: palette(alternate-base); }")
        self.tag_chip.clicked.connect(self.clear_tag)
        self.tag_chip.hide()
        self._set_tag_menu(None)

        bar = QHBoxLayout()
        bar.addWidget(self.albums_button)
        bar.addWidget(pick_image)
        bar.addWidget(self.chip)
        bar.addWidget(self.chip_clear)
        bar.addWidget(self.text, 1)
        bar.addWidget(QLabel("−"))
        bar.addWidget(self.minus)
        bar.addWidget(self.tag_chip)
        bar.addWidget(self.tag_button)
        bar.addWidget(search_button)

        self.folder = QComboBox()  # the folder tree, subfolders indented, with counts (set_folder_tree)
        self.folder.setMinimumWidth(120)
        self.folder.setMaximumWidth(300)
        self.folder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folder.setMinimumContentsLength(18)
        self.dates = QComboBox()  # presets: any time, this year, last year, a year of the library, a range
        self.dates.setToolTip("When the photos were taken (capture date, else the file's date)")
        self.use_dates = QCheckBox("Between")
        self.date_from = DateField(QDate.currentDate().addYears(-1))
        self.date_to = DateField(QDate.currentDate(), end=True)
        for field in (self.date_from, self.date_to):
            field.setFixedWidth(118)
        self._set_date_presets([])
        self.dates.activated.connect(self._date_preset)
        self.sort = QComboBox(toolTip="Order of the results: how well they match, or when they were taken")
        for label, value in SORTS:
            self.sort.addItem(label, value)
        self.sort.currentIndexChanged.connect(self._sort_changed)
        self.weaker = QCheckBox("Show weaker matches")
        self.weaker.setToolTip("Weak matches are hidden below a cut-off drawn from each query's scores;\n"
                               "tick to see every match, best first")
        self.weaker.toggled.connect(self._cutoff_changed)
        self.size_slider = QSlider(Qt.Orientation.Horizontal, minimum=SIDES[0], maximum=SIDES[1], value=SIDES[2])
        self.size_slider.setFixedWidth(110)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.valueChanged.connect(self._set_side)
        # The filters wrap into a second row in a narrow window (each group stays together).
        self.filters_row = QWidget()
        flow = FlowLayout(self.filters_row, spacing=6)
        for group in ((QLabel("Folder:"), self.folder), (self.dates,),
                      (self.use_dates, self.date_from, QLabel("–"), self.date_to),
                      (self.sort,), (self.weaker,)):
            flow.addWidget(_group(*group))
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
        self.busy_label.setStyleSheet("color: palette(link);")
        self.busy_label.hide()
        self.count = QLabel()  # what the grid shows: "24 photos match · weaker than 0.24 hidden"
        self.count.setWordWrap(True)
        self.count.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QHBoxLayout()
        header.setContentsMargins(2, 0, 2, 0)
        header.addWidget(self.count, 1)
        header.addWidget(self.busy_label)
        header.addWidget(self.busy)
        header.addSpacing(8)
        header.addWidget(QLabel("Size"))
        header.addWidget(self.size_slider)

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
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: palette(placeholder-text); font-size: 15px;")
        self.pages = QStackedWidget()
        for page in (self.empty, self.timeline, self.grid):
            self.pages.addWidget(page)

        self.selection_bar = self._selection_bar()
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(header)
        column.addWidget(self.selection_bar)
        column.addWidget(self.pages, 1)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.albums)
        body.addLayout(column, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.filters_row)
        layout.addLayout(body, 1)
        self._timeline_wanted = False
        self.set_folders([])

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt naming)
        """A theme switch: style sheets that name palette roles are read again (Qt keeps them as first resolved)."""
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for widget in (self.tag_chip, self.busy_label, self.empty, self.albums.note):
                sheet = widget.styleSheet()
                widget.setStyleSheet("")
                widget.setStyleSheet(sheet)
        super().changeEvent(event)

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
        """Shown while photos are selected: how many, and what can be done with them all at once (the buttons
        wrap into a second row in a narrow window)."""
        bar = QWidget()
        row = FlowLayout(bar, spacing=6)
        row.setContentsMargins(4, 2, 4, 2)
        self.selected_label = QLabel()
        self.selected_label.setStyleSheet("font-weight: bold;")
        self.selected_label.setMinimumHeight(QPushButton("x").sizeHint().height())
        row.addWidget(self.selected_label)
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
        self.refresh_albums(retry=False)

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
        if self.pages.currentWidget() is self.grid and self._has_query() and self.showing[0] in ("search", "saved"):
            self.run_search()
        elif self.pages.currentWidget() is self.grid and self.showing[0] == "tag":
            self.show_tag_album(self.showing[1])  # an album narrows with the folder and dates too

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
        """Clearing the search (its clear button, or the last character deleted) goes back to the timeline,
        or to the tag's album while a tag is chosen."""
        self._update_save()
        if not text.strip() and not self.query_image:
            self._back()

    def _back(self) -> None:
        """No query left: the chosen tag's album, else the timeline."""
        if self.tag is not None:
            if self.showing != ("tag", self.tag) or self.pages.currentWidget() is not self.grid:
                self.show_tag_album(self.tag)
        else:
            self.albums.select(*ALL)
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
            self._back()

    def clear(self) -> None:
        """Back to the start: no query, no tag, the timeline (Escape)."""
        self._set_tag(None)
        self._set_query_quietly("", "", [])
        self.albums.select(*ALL)
        self._show_results(False)  # says so once (results_changed: []) before the grid is emptied
        self._set_hits([])

    def _set_query_quietly(self, text: str, minus: str, images: list[str]) -> None:
        """Put a query in the bar without what typing does (a search, or the timeline on clearing)."""
        self.text.blockSignals(True)
        self.text.setText(text)
        self.text.blockSignals(False)
        self.minus.setText(minus)
        self.query_image = images[0] if images else None  # the chip (below) updates "Save search…" too
        self._more_images = list(images[1:])
        self._show_chip(self.query_image)

    def _show_chip(self, path: str | None) -> None:
        """The query photo as a small chip; decoded in the thumbnail pool, not here (a photo can take 100s of ms)."""
        visible = path is not None
        if visible:
            pixmap = self.cache.get(path)
            self.chip.setPixmap(pixmap if pixmap is not None else self.cache.placeholder)
            self.chip.setToolTip(path)
        self.chip.setVisible(visible)
        self.chip_clear.setVisible(visible)
        self._update_save()

    def _update_save(self) -> None:
        """"Save search…" is offered while the bar holds a query."""
        self.albums.save_button.setEnabled(self._has_query())

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
        """What the bars ask for: folder, dates, tag, sort, and the automatic cut-off unless weaker matches show."""
        date_from = date_to = None
        if self.use_dates.isChecked():
            date_from = self.date_from.date().toString("yyyy-MM-dd") + "T00:00:00"
            date_to = self.date_to.date().toString("yyyy-MM-dd") + "T23:59:59"
        return Filters(folder=self.folder.currentData(), date_from=date_from, date_to=date_to, tag=self.tag,
                       sort=self.sort.currentData(), auto_cutoff=not self.weaker.isChecked())

    # -- searching --------------------------------------------------------------------------
    def _query(self) -> Query | None:
        """The query in the bar; None when there is none, or it is wrong (said in a message)."""
        texts = [self.text.text()] if self.text.text().strip() else []
        minus = [self.minus.text()] if self.minus.text().strip() else []
        images = [self.query_image, *self._more_images] if self.query_image else []
        if not texts and not images:
            return None
        try:
            return build_query(texts, images, minus)
        except ClipfindError as exc:
            self._search_failed(exc)
            return None

    def run_search(self) -> None:
        """Search off the event loop; a newer search supersedes this one, whose results are then dropped."""
        query = self._query()
        if query is None:
            return
        filters = self.filters()
        self.albums.select(*(("tag", self.tag) if self.tag else ALL))
        self.tasks.submit(lambda: self.library.search_results(query, RESULTS, filters),
                          lambda results: self._searched(results, ("search", "")), self._search_failed,
                          kind="search")

    def _searched(self, results: SearchResults, showing: tuple[str, str]) -> None:
        self.showing = showing
        self._results, self._gone, self._photos = results, 0, []
        self._set_hits(list(results.hits))
        self._show_results(True)
        if results.hits:
            self.grid.scrollToTop()

    def _search_failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, ClipfindError) else f"search failed: {exc}"
        self.status.emit(message)
        QMessageBox.warning(self, "Search", message)

    def _show_busy(self) -> None:
        searching = self.tasks.busy("search")
        self.busy.setVisible(searching)
        self.busy_label.setVisible(searching)
        if self.tasks.busy("tag_albums"):
            self.albums.set_note("Finding tags…")
        elif self.albums.note.text() == "Finding tags…":
            self.albums.set_note("")

    def _set_hits(self, hits: list[SearchHit]) -> None:
        self.model.set_hits(hits)
        self._count_text()
        if self.pages.currentWidget() is self.grid:
            self.results_changed.emit([h.photo.path for h in hits])

    def _count_text(self) -> None:
        """The count label for what the grid shows (the timeline's is set as it is shown)."""
        shown = len(self.model.hits)
        kind, key = self.showing
        if kind in ("search", "saved") and self._results is not None:
            text = results_text(self._results, shown, self._gone)
            self.count.setText(f"{key}: {text}" if kind == "saved" else text)
        elif kind == "tag":
            self.count.setText(f"{self._titles.get(key, key)} · {photos_text(shown)}")
        elif kind == "photos":
            self.count.setText(f"{key} · {photos_text(shown)}")
        else:
            self.count.setText(photos_text(shown) if shown else "no matching photos yet")

    def drop_missing(self) -> None:
        """Take the photos that left the catalog (trashed, folder removed) out of the results on screen; the
        timeline and the albums' counts are read again."""
        self.refresh_timeline()
        self.refresh_albums(retry=False)
        hits = self.model.hits
        if not hits:
            return
        ids = [h.photo.id for h in hits]

        def keep(alive: list[PhotoInfo]) -> None:
            still = {p.id for p in alive}
            current = self.model.hits
            if any(h.photo.id not in still for h in current):
                self._drop({h.photo.path for h in current if h.photo.id not in still and h.photo.id in ids_set})

        ids_set = set(ids)
        self.tasks.submit(lambda: self.library.photos(ids), keep, kind="drop_missing")

    def _drop(self, gone: set[str]) -> None:
        """Take these paths out of the results on screen (trashed, or gone from the catalog)."""
        before = len(self.model.hits)
        self._photos = [p for p in self._photos if p.path not in gone]
        hits = [h for h in self.model.hits if h.photo.path not in gone]
        self._gone += before - len(hits)
        self._set_hits(hits)

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
            left_results = self.pages.currentWidget() is self.grid
            self.pages.setCurrentWidget(page)
            self._selection_changed()
            if left_results:
                self.results_changed.emit([])
            elif page is self.grid:
                self.results_changed.emit([h.photo.path for h in self.model.hits])

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
        self._drop({p.path for p in report.moved})
        self.current_grid().clearSelection()
        self.refresh_timeline()
        self.refresh_albums(retry=False)
        self.status.emit(f"moved {photos_text(len(report.moved))} to the trash")
        if report.refused:
            show_problems(self, "Some photos were kept", [f"{p.path}: {why}" for p, why in report.refused])
        self.photos_trashed.emit()

    def _trash_failed(self, exc: BaseException) -> None:
        show_problems(self, "Nothing was moved", [str(exc)])

    # -- photos handed over: another tab's, a tag album ---------------------------------------------
    def show_photos(self, photos: list[PhotoInfo], title: str) -> None:
        """Show these photos in the results grid, with no score (the map's selection, an album): every grid
        action works on them; ``title`` heads the count label. The query and the tag are cleared: the grid
        no longer answers them."""
        self._set_tag(None)
        self._set_query_quietly("", "", [])
        self.albums.select("photos", title)
        self._show_photos(list(photos), ("photos", title))

    def _show_photos(self, photos: list[PhotoInfo], showing: tuple[str, str]) -> None:
        self.showing = showing
        self._results, self._gone, self._photos = None, 0, photos
        ordered = newest_first(photos) if self.sort.currentData() == "date" else photos
        self._set_hits([SearchHit(p, math.nan) for p in ordered])
        self._show_results(True)
        self.grid.scrollToTop()

    def show_tag_album(self, tag: str) -> None:
        """The photos carrying a tag, the surest first (read off the event loop)."""
        self.albums.select("tag", tag)
        filters = self.filters()  # its folder and dates narrow the album too
        self.tasks.submit(lambda: self.library.tag_album(tag, filters),
                          lambda photos: self._show_photos(photos, ("tag", tag)), self._task_failed, kind="search")

    # -- the tag filter ------------------------------------------------------------------------------
    def set_tag(self, tag: str | None) -> None:
        """Narrow to a tag (None: every photo), as the chip and the albums list do: a search on screen runs
        again within it; with no query, the tag's album shows."""
        self._set_tag(tag)
        if self._has_query():
            self.run_search()
        else:
            self._back()

    def clear_tag(self) -> None:
        self.set_tag(None)

    def _set_tag(self, tag: str | None) -> None:
        self.tag = tag
        self.tag_chip.setText(self._titles.get(tag, tag or ""))
        self.tag_chip.setToolTip(f"Only photos tagged “{tag}”: click to remove" if tag else "")
        self.tag_chip.setVisible(tag is not None)

    def _set_tag_menu(self, albums: list[TagAlbum] | None) -> None:
        """The tags on offer: those some photo carries, clean-up categories first (None: not read yet)."""
        self.tag_menu.clear()
        if not albums:
            action = self.tag_menu.addAction("Finding tags…" if albums is None else "No tags yet")
            action.setEnabled(False)
            return
        for album in albums:
            self.tag_menu.addAction(f"{album.title} ({album.count:,})", lambda t=album.tag: self.set_tag(t))

    # -- albums --------------------------------------------------------------------------------------
    def refresh_albums(self, retry: bool = True) -> None:
        """Read the saved searches and the tag albums again, off the event loop (after indexing, a trash).
        The first tag albums of a library embed the vocabulary and tag every photo: seconds, never here.

        Args:
            retry: ask for the tags even when the model could not be loaded last time (the view's own
                refreshes do not: each would try to load the model again on the shared lane).
        """
        self.tasks.submit(lambda: self.library.saved_searches(), self.albums.set_saved, self._task_failed,
                          kind="saved_searches")
        if not getattr(self, "_folders", None):
            self._tags_ready([])
            return
        if self._no_model and not retry:
            return
        self.tasks.submit(lambda: self.library.tag_albums(), self._tags_ready, self._tags_failed, kind="tag_albums")
        self._show_busy()

    def _tags_ready(self, albums: list[TagAlbum]) -> None:
        self._no_model = False
        self._titles = {a.tag: a.title for a in albums}
        self.albums.set_tags(albums)
        self.albums.set_note("")
        self._set_tag_menu(albums)
        if self.tag is not None:
            self._set_tag(self.tag)  # its title, now known
        if self.showing[0] == "tag":
            self._count_text()

    def _tags_failed(self, exc: BaseException) -> None:
        """No tags (the model could not be loaded, say): the albums list says so, nothing pops up."""
        self._no_model = isinstance(exc, ModelLoadError)
        self.albums.set_note(f"No tags: {exc}" if isinstance(exc, ClipfindError) else "No tags for now")
        self._set_tag_menu([])

    def _album_chosen(self, kind: str, key: str) -> None:
        if kind == "all":
            self.clear()
        elif kind == "tag":
            self._set_query_quietly("", "", [])
            self.set_tag(key)
        elif kind == "saved":
            self.run_saved_search(key)

    def run_saved_search(self, name: str) -> None:
        """Run a saved search (its own cut-off, the sort chosen here) and put its query back in the bar."""
        saved = next((s for s in self.albums.saved if s.name == name), None)
        if saved is not None:
            texts = [t for t in saved.query.terms if t.kind == "text"]
            self._set_query_quietly(" ".join(t.value for t in texts if t.weight > 0),
                                    " ".join(t.value for t in texts if t.weight < 0),
                                    [t.value for t in saved.query.terms if t.kind == "image" and t.weight > 0])
            self.weaker.blockSignals(True)
            self.weaker.setChecked(saved.min_score is not None and saved.min_score <= NO_CUTOFF)
            self.weaker.blockSignals(False)
        self._set_tag(None)
        self.albums.select("saved", name)
        sort = self.sort.currentData()
        self.tasks.submit(lambda: self.library.run_saved_search(name, RESULTS, sort),
                          lambda results: self._searched(results, ("saved", name)), self._search_failed,
                          kind="search")

    def save_search(self) -> None:
        """Save the query in the bar with its cut-off (automatic, or none when weaker matches show) by name."""
        query = self._query()
        if query is None:
            self.status.emit("type a search first, then save it")
            return
        name, ok = QInputDialog.getText(self, "Save search", "Name of the album:", text=self.text.text().strip())
        name = name.strip()
        if not ok or not name:
            return
        min_score = NO_CUTOFF if self.weaker.isChecked() else None

        def saved(_: SavedSearch) -> None:
            self.albums.select("saved", name)
            self.showing = ("saved", name) if self.showing[0] in ("search", "saved") else self.showing
            self._count_text()
            self.status.emit(f"saved “{name}”")
            self.tasks.submit(lambda: self.library.saved_searches(), self.albums.set_saved, self._task_failed,
                              kind="saved_searches")

        self.tasks.submit(lambda: self.library.save_search(name, query, min_score), saved, self._task_failed)

    def delete_saved_search(self, name: str) -> None:
        def deleted(_: None) -> None:
            if self.showing == ("saved", name):
                self.showing = ("search", "")
                self._count_text()
            if self.albums.current() == ("saved", name):
                self.albums.select(*(("tag", self.tag) if self.tag else ALL))
            self.status.emit(f"deleted the saved search “{name}”")
            self.tasks.submit(lambda: self.library.saved_searches(), self.albums.set_saved, self._task_failed,
                              kind="saved_searches")

        self.tasks.submit(lambda: self.library.delete_saved_search(name), deleted, self._task_failed)

    # -- sort and cut-off -----------------------------------------------------------------------------
    def _sort_changed(self) -> None:
        """The order applies at once to what the grid shows."""
        if self.pages.currentWidget() is not self.grid:
            return
        kind, key = self.showing
        if kind == "saved":
            self.run_saved_search(key)
        elif kind == "search":
            self.run_search()
        elif kind in ("tag", "photos") and self._photos:
            self._show_photos(self._photos, self.showing)

    def _cutoff_changed(self) -> None:
        """Weaker matches shown or hidden: the search on screen runs again (a saved one as a plain search)."""
        if self.pages.currentWidget() is self.grid and self.showing[0] in ("search", "saved"):
            self.run_search()

    # -- width ------------------------------------------------------------------------------------------
    def _albums_toggled(self, shown: bool) -> None:
        self._albums_auto = False
        self.albums.setVisible(shown)

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt naming)
        """In a narrow window the albums list folds away (the Albums button brings it back)."""
        super().resizeEvent(event)
        if self._albums_auto:
            wide = self.width() >= ALBUMS_WIDTH
            self.albums.setVisible(wide)
            self.albums_button.setChecked(wide)
