"""One photo library (a clipfind home): the single entry point the CLI and the GUI call.

It owns one catalog connection, loads the model and the vector index only when a capability
needs them, and keeps every decision (what a query means, what a duplicate is, who is the
keeper, when a folder joins the catalog, how writers are locked) in the core modules it wires
together. Front ends import this module, :mod:`clipfind.records` and :mod:`clipfind.errors`
only (tests/test_layering.py).

Threads: a Library may be called from one thread at a time (the app serialises its calls
through one worker), with one exception: :meth:`Library.index_folders` may run on a thread of
its own beside them, since the indexer opens its own catalog connection and takes the home's
writer lock (search stays usable while photos are indexed). Nothing here touches Qt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from clipfind import __version__
from clipfind.annindex import (
    COMPACT_DELETED_FRACTION,
    IndexCorrupt,
    IndexOutdated,
    VectorIndex,
    exact_search,
    load_saved,
    open_index,
)
from clipfind.catalog import Catalog, FileStamp
from clipfind.dupes import (
    Contents,
    KnnFn,
    NeighbourGraph,
    SameSet,
    build_graph,
    contents_of,
    find_duplicates,
    same_sets,
    tier_view,
)
from clipfind.embedding.spec import PRECISIONS, ModelSpec, check_model_name
from clipfind.errors import ClipfindError, LockedError
from clipfind.home import CATALOG_FILE, INDEX_FILE, NEIGHBOURS_FILE, SAME_FILE, WriterLock, atomic_write, resolve_home
from clipfind.imageload import PHOTO_EXTENSIONS
from clipfind.photomap import Layout, MapCluster, MapPoint, MapWork, PhotoMap
from clipfind.phototable import RowsGone
from clipfind.processwide import gc_paused
from clipfind.rebuild import rebuild_catalog
from clipfind.records import (
    Control,
    Counts,
    DupeGroup,
    Failure,
    Filters,
    FolderNode,
    FolderStatus,
    Ids,
    IndexReport,
    KeeperRules,
    NotDuplicatesMark,
    PhotoInfo,
    PhotoTags,
    Progress,
    Query,
    RestoreReport,
    SavedSearch,
    SearchHit,
    SearchResults,
    Status,
    TagAlbum,
    TagScore,
    Tier,
    Timeline,
    TrashBatch,
    TrashReport,
    Vectors,
)
from clipfind.relevance import newest_first
from clipfind.restore import restore_files
from clipfind.search import EXACT_LIMIT, Searcher, build_query
from clipfind.thumbcache import ThumbCache
from clipfind.trash import clean_up, finish_interrupted, move_to_trash
from clipfind.watch import Watcher, WatchNotice

if TYPE_CHECKING:
    import PIL.Image

    from clipfind.embedding.download import DownloadProgressFn
    from clipfind.embedding.encoder import ImageEncoder
    from clipfind.embedding.onnx import OnnxImageEncoder, OnnxTextEncoder
    from clipfind.embedding.torch_model import ClipModel
    from clipfind.indexer import Indexer
    from clipfind.samephoto import SameSearch

__all__ = [
    "PHOTO_EXTENSIONS",
    "PRECISIONS",
    "Library",
    "MapCluster",
    "MapPoint",
    "MapWork",
    "PhotoMap",
    "newest_first",
    "WatchNotice",
    "Watcher",
    "__version__",
    "build_query",
    "check_model_name",
    "models_table",
    "supported_models",
    "thumbnail",
    "tier_view",
]

NEIGHBOURS_K = 24  # per photo; a burst of more near-identical shots than this is split
GRAPH_UPDATE_MAX_SHARE = 0.05  # a change that asks the index more than this share of a rebuild: rebuild
GRAPH_REVERSE_K = 256  # above EXACT_LIMIT, where a fresh photo's own neighbours are looked for the rows it enters


def resolve_spec(catalog: Catalog, name: str | None, pretrained: str | None) -> ModelSpec:
    """Explicit choice (option or environment), else the catalog's own model, else the default."""
    name = name or os.environ.get("CLIPFIND_MODEL") or None
    pretrained = pretrained if pretrained is not None else os.environ.get("CLIPFIND_PRETRAINED")
    if name is None and pretrained is None and catalog.model_name:
        return ModelSpec(catalog.model_name, catalog.model_pretrained)
    # Weights given alone are weights for the catalog's model, not for the default one.
    return ModelSpec.parse(name or catalog.model_name, pretrained)


def supported_models() -> list[dict[str, Any]]:
    """The models clipfind is tested with, one dict per row, for `clipfind models --json`."""
    from dataclasses import asdict

    from clipfind.embedding.table import MODELS

    return [asdict(m) for m in MODELS]


def models_table() -> str:
    """The supported models as the Markdown table the README shows."""
    from clipfind.embedding.table import table_markdown

    return table_markdown()


def thumbnail(path: str, side: int) -> PIL.Image.Image:
    """A photo upright (EXIF orientation applied) in RGB, fitting in ``side`` x ``side`` pixels.

    Decoded by the same loader as indexing (HEIC, CMYK, huge images, hostile files), so what the
    app shows is what was embedded.

    Args:
        path: the photo file.
        side: the largest width and height wanted, in pixels.

    Raises ImageLoadError, with a one-line reason, for a file that cannot be shown.
    """
    from clipfind.imageload import load_image

    image = load_image(path, min_side=side).image
    image.thumbnail((side, side))
    return image


class Library:
    """A clipfind home opened for one front end: search, duplicates, clean-up, indexing, status.

    Args:
        home: the home folder (default: $CLIPFIND_HOME, else the per-user data folder). It is
            created when missing.
        model: open_clip architecture name or ``hf-hub:ORG/REPO`` (default: $CLIPFIND_MODEL,
            else the catalog's own model, else ViT-B-32).
        pretrained: weights: a pretrained tag, a checkpoint file, or "none" for random weights
            (default: $CLIPFIND_PRETRAINED, else the catalog's weights or the model's usual ones).
        device: where the model runs ("cpu", "cuda", ...; default: the best one here).
        precision: how the image encoder runs, one of :data:`PRECISIONS` (default:
            $CLIPFIND_PRECISION, else "auto", which measures once per machine and model).
        download_progress: called with (bytes so far, total bytes or None) while weights
            download on the first load.

    Opening is cheap (the catalog only); a move to the trash that a kill interrupted is settled
    here. A refused open (unknown precision, a newer or damaged catalog) leaves no SQLite side
    files behind.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        model: str | None = None,
        pretrained: str | None = None,
        *,
        device: str | None = None,
        precision: str | None = None,
        download_progress: DownloadProgressFn | None = None,
    ) -> None:
        self.home: Path = resolve_home(home)
        self.catalog = Catalog(self.home / CATALOG_FILE)
        try:
            if self.catalog.trash_pending():
                with contextlib.suppress(sqlite3.OperationalError):  # read-only: settled by a later run
                    finish_interrupted(self.catalog)
            self.spec = resolve_spec(self.catalog, model, pretrained)
        except BaseException:
            self.catalog.close()  # a refused start leaves no -wal/-shm files behind
            raise
        self.notices: list[str] = []
        self._device = device
        # How the image encoder runs (clipfind.embedding): "auto" measures once per machine.
        self.precision = precision or os.environ.get("CLIPFIND_PRECISION") or "auto"
        if self.precision not in PRECISIONS:
            self.catalog.close()
            raise ClipfindError(f"unknown precision '{self.precision}'; use one of {', '.join(PRECISIONS)}")
        self._download_progress = download_progress
        self._model: ClipModel | None = None
        self._text_encoder: OnnxTextEncoder | Literal[False] | None = None  # False: none exported
        self._onnx_image: OnnxImageEncoder | None = None
        self._model_lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._searcher: Searcher | None = None
        self._graph: NeighbourGraph | None = None
        self._graph_generation: int | None = None
        self._same: SameSearch | None = None  # the same-photo search as last brought up to date
        # (catalog state and keeper rules, the files grouped by content, the same tier's sets): read
        # once per state and rules (the rules choose each content's keeper)
        self._contents: tuple[tuple[int, int, KeeperRules], Contents, list[SameSet]] | None = None
        self._tag_state: tuple[Any, Any] | None = None  # (PhraseVectors, TagTable) as last brought up to date

    def close(self) -> None:
        """Release the catalog connection; a Library is not used after this."""
        self.catalog.close()

    def reopen(self, model: str | None = None, pretrained: str | None = None) -> Library:
        """The same home with other weights (a fine-tuned checkpoint, another model), keeping every
        other option: device, precision and where download progress goes.

        Args:
            model: the model to use (default: this library's model).
            pretrained: its weights (default: this library's weights when ``model`` is not given,
                else that model's usual weights); a checkpoint path, a tag, or "none".

        Returns a new Library; this one stays open, for the caller to close once nothing uses it.
        """
        if model is None and pretrained is None:
            model, pretrained = self.spec.name, self.spec.pretrained or "none"
        elif model is None:
            model = self.spec.name
        return Library(
            self.home, model, pretrained,
            device=self._device, precision=self.precision, download_progress=self._download_progress,
        )

    def set_download_progress(self, callback: DownloadProgressFn | None) -> None:
        """Send weight-download progress somewhere else (the app's bar) for the first model load.

        Args:
            callback: called with (bytes so far, total bytes or None); None stops reporting.
        """
        self._download_progress = callback

    # -- model and index, loaded on first need ----------------------------------------------
    def load(self) -> None:
        """Do the slow opens now, off the caller's clock (the app calls it on a worker at start):
        the encoders search and indexing use, downloading weights the first time, and the vector
        index. Without torch where this machine runs the model through exported ONNX files.

        Raises ModelLoadError (unknown model, weights that cannot be fetched) and the catalog's
        errors; everything opened stays open for the calls that follow.
        """
        self.image_encoder()
        self._text_tower()
        if self.catalog.has_vectors():
            self.index()

    def prepare(self) -> None:
        """Do the opens that hold Python's lock (the GIL) for long stretches, during which no other
        thread runs Python and a window cannot draw: importing torch and open_clip where the model
        needs them (~2 s), and loading the saved vector index (~0.3-1 s at 100k photos). The app
        calls it behind its splash screen, before its window exists; load() does the rest (weights,
        ONNX sessions, a rebuild of a missing or damaged index), which lets other threads run.
        Safe to skip: each of these happens on first need otherwise.
        """
        if self._model is None and self._exported_image() is None:
            import clipfind.embedding.torch_model  # noqa: F401  (the import is the point)
        if self._index is None and self.catalog.has_vectors():
            with contextlib.suppress(FileNotFoundError, IndexOutdated, IndexCorrupt):  # load() rebuilds it
                index = load_saved(self.home / INDEX_FILE, self.catalog)
                if index.deleted_fraction <= COMPACT_DELETED_FRACTION:  # else load() compacts it
                    self._index = index

    def model(self) -> ClipModel:
        """The full open_clip model (torch), loaded once: the path for a machine without ONNX
        exports, and for the first run that measures and exports them."""
        with self._model_lock:
            if self._model is None:
                from clipfind.embedding.torch_model import load_model

                self._model = load_model(
                    self.spec, self._device, self._download_progress, precision=self.precision, home=self.home
                )
            return self._model

    def index(self) -> VectorIndex:
        """The vector index, opened once and caught up with the catalog; a missing or damaged one
        is rebuilt from the catalog and saved, so the repair happens once."""
        if self._index is None:
            self._index, notice = open_index(self.home / INDEX_FILE, self.catalog)
            if notice:
                self.notices.append(notice)
            if notice or not (self.home / INDEX_FILE).exists():
                self._save_rebuilt_index(self._index)
        return self._index

    def _save_rebuilt_index(self, index: VectorIndex) -> None:
        """Keep a rebuilt index, so the rebuild (and its notice) happens once, not on every start.

        Only when no indexer holds the home: it saves its own index when it finishes. A read-only
        or full disk just means the next start rebuilds again.
        """
        model = self.catalog.model_identity
        if model is None:
            return
        try:
            with WriterLock(self.home):
                index.save(self.home / INDEX_FILE, model)
        except (LockedError, OSError):
            pass

    # -- capabilities ---------------------------------------------------------------------
    def image_encoder(self) -> ImageEncoder:
        """The image tower for indexing: without torch when this machine runs it through ONNX Runtime
        and the export exists (seconds less start-up, ~1 GB less memory), else the full model."""
        if self._model is None:
            exported = self._exported_image()
            if exported is not None:
                return exported
        return self.model()

    def _exported_image(self) -> OnnxImageEncoder | None:
        """The ONNX image tower where this machine runs one and its export exists; opening a
        session takes ~0.4 s, so once per Library (tried again while there is none)."""
        if self._onnx_image is None:
            from clipfind.embedding.onnx import open_exported

            self._onnx_image = open_exported(self.spec, self.home, self._device, self.precision)
        return self._onnx_image

    def indexer(self, **options: Any) -> Indexer:
        """An indexer for this home and model, for callers that drive it themselves (benchmarks);
        front ends call :meth:`index_folders`.

        Args:
            options: ``batch_size``, ``workers`` and ``decode`` ("auto", "threads", "processes") of
                :class:`Indexer`.
        """
        from clipfind.indexer import Indexer

        return Indexer(self.home, self.spec, self._indexing_encoder, **options)

    def _indexing_encoder(self) -> ImageEncoder:
        """The image encoder for indexing: image_encoder(), except on the first run on this machine,
        where the modes are measured in child processes so that this one never holds torch meanwhile
        (clipfind.embedding.first_run)."""
        if self._model is None and self._exported_image() is None:
            from clipfind.embedding.first_run import first_run_encoder

            encoder = first_run_encoder(self.spec, self.home, self._device, self.precision, self.model,
                                        self._download_progress)
            if encoder is not None:
                return encoder
        return self.image_encoder()

    def index_folders(
        self,
        folders: Sequence[str] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        control: Control | None = None,
        batch_size: int = 32,
        workers: int | None = None,
        reembed: bool = False,
        only: Sequence[str] | None = None,
        cluster: str | None = None,
        decode: Literal["auto", "threads", "processes"] = "auto",
    ) -> IndexReport:
        """Bring the catalog in step with the photo folders: new, changed, moved and deleted files.

        A folder joins the catalog only once the model is known to fit it, so a run refused for a
        wrong model (or cancelled while it loads) leaves the folders as they were: a front end
        never adds a folder itself. Resumable: a run that stops keeps every batch committed.

        Args:
            folders: folders to add and index (default: the folders indexed before).
            progress: called from this thread with each :class:`Progress`.
            control: pauses or cancels the run from another thread (a button, Ctrl+C).
            batch_size: photos per model batch.
            workers: decoding threads (default: up to 4, by the CPUs usable here).
            reembed: embed every photo again with this library's model, replacing the vectors
                of the catalog's model.
            only: the paths that changed (files, or folders walked whole), each under one of the
                folders: only these are looked at and diffed against the catalog, so a watcher's batch
                costs what changed, not the size of the folder. A photo deleted elsewhere waits for
                the next run without it.
            cluster: a Ray cluster's address (``local``, ``auto``, ``ray://HOST:10001``): the photos to
                read are read, decoded and embedded by its workers (clipfind.cluster), which must see
                the folders at the same paths; the scan and the catalog stay here. ``workers`` is then
                the number of worker processes (default: one per CPU, or per GPU where it has GPUs).
                Needs the ``cluster`` extra (Ray); a model the workers cannot load stops the run.
            decode: where photos are decoded: "threads", "processes" (torch-free worker processes: for
                a model on a GPU, which one process's threads cannot keep fed), or "auto" (processes
                where the model runs on a GPU, threads otherwise).

        When the model cannot be loaded (no weights offline: ModelLoadError) the run goes on
        without it: the photos are recorded with their fingerprints but no vectors, so the identical
        and same-photo duplicates work; a notice in the report says so, and :meth:`waiting_for_model`
        counts them until a run with the model embeds them. ``reembed`` still needs the model.

        Raises LockedError when another indexer holds the home, ModelMismatchError when the
        catalog holds another model's vectors (and not ``reembed``), StorageError when the home
        cannot be written.
        """
        folder_list = list(folders) if folders is not None else None
        if cluster is not None:
            from clipfind.cluster import Cluster
            from clipfind.indexer import Indexer

            with Cluster(cluster, self.spec, home=self.home, device=self._device, precision=self.precision,
                         batch_size=batch_size, workers=workers) as on:
                return Indexer(self.home, self.spec, on.load_encoder, batch_size=batch_size, cluster=on).run(
                    folder_list, progress=progress, control=control, reembed=reembed, only=only)
        options: dict[str, Any] = {"batch_size": batch_size, "decode": decode}
        if workers:
            options["workers"] = workers
        return self.indexer(**options).run(folder_list, progress=progress, control=control, reembed=reembed, only=only)

    def watch(
        self,
        folders: Sequence[str] | None = None,
        on_change: Callable[[WatchNotice], None] | None = None,
        *,
        apply: Callable[[list[str], Control, list[str] | None], IndexReport | None] | None = None,
        polling: bool | None = None,
        paused: bool = False,
    ) -> Watcher:
        """Watch photo folders and apply what changes in them (new, changed, moved, deleted photos) in
        batches, through the same indexer as :meth:`index_folders`, on a thread of the watcher's own.

        Changes made while nobody watched are not looked for: run :meth:`index_folders` first (the
        CLI starts paused, indexes, then resumes, so nothing falls between the two).

        Args:
            folders: the folders to watch (default: the indexed folders).
            on_change: called on the watcher's thread with each :class:`WatchNotice` (a batch
                applied, a folder unreachable or back, a batch that failed).
            apply: what to do with the folders that changed, given the changed paths under them
                (None: the whole folders) (default: index those here); the app queues an index pass
                on its own indexing lane instead, and returns None.
            polling: True: poll every folder (a network share); None: where events cannot be had.
            paused: take the lock and watch, but apply nothing until ``Watcher.resume()``.

        Returns the started :class:`Watcher`; ``stop()`` it. Raises LockedError when another
        process (the app, `clipfind index --watch`) watches this home, ClipfindError when there is
        no folder to watch.
        """
        roots = ([os.path.abspath(os.path.expanduser(f)) for f in folders] if folders is not None
                 else self.catalog.folders())
        if not roots:
            raise ClipfindError("no folders to watch yet: run `clipfind index FOLDER`")

        def index(changed: list[str], control: Control, only: list[str] | None) -> IndexReport:
            return self.index_folders(changed, control=control, only=only)

        return Watcher(self.home, roots, apply or index, on_change, polling=polling, paused=paused).start()

    def search(self, query: Query, k: int = 20, filters: Filters = Filters()) -> list[SearchHit]:
        """The photos closest to a query, best first; the first text search opens the text tower.

        Args:
            query: what to look for, from :func:`build_query`.
            k: how many hits at most.
            filters: which photos may be returned (folder, dates, least score).

        Returns nothing when nothing is indexed yet; photos that wait for the model are not searched.
        Raises ClipfindError for a query photo that cannot be read, or when every indexed photo waits
        for the model; ModelMismatchError when this library's model is not the catalog's.
        """
        searcher = self._ready_searcher()
        return [] if searcher is None else searcher.search(query, k, filters)

    def _text_tower(self) -> OnnxTextEncoder | ClipModel:
        """The ONNX text encoder where it was exported (a cold search then skips seconds of torch
        imports), else the full model."""
        if self._model is None and self._text_encoder is None:
            from clipfind.embedding.onnx import open_exported_text

            self._text_encoder = open_exported_text(self.spec, self.home, self._device, self.precision) or False
        if self._model is None and self._text_encoder:
            return self._text_encoder
        return self.model()

    def _encode_texts(self, texts: list[str]) -> Vectors:
        return self._text_tower().encode_texts(texts)

    def _encode_image(self, path: str) -> Vectors:
        from clipfind.imageload import load_image

        encoder = self.image_encoder()
        loaded = load_image(path, min_side=encoder.image_size)
        return encoder.encode_images(np.asarray(encoder.preprocess(loaded.image))[None])[0]

    def neighbour_graph(self) -> NeighbourGraph | None:
        """Each photo's nearest neighbours, so that regrouping at another threshold is cheap.

        Cached on disk with the catalog generation it matches. After a change the saved graph is
        brought up to date (clipfind.neighbours: only the rows that can have changed are asked
        again, a second or two at 100k photos) where the change is small; otherwise, or when in
        doubt (another model, a generation that went back, a damaged file), it is built again
        (tens of seconds at 100k photos). None when nothing is embedded.
        """
        generation = self.catalog.generation
        if self._graph is not None and self._graph_generation == generation:
            return self._graph
        if not self.catalog.has_vectors():
            return None
        path, model = self.home / NEIGHBOURS_FILE, self.catalog.model_identity or ""
        saved = ((self._graph, self._graph_generation) if self._graph is not None
                 and self._graph_generation is not None else _load_graph(path, model))
        if saved is not None and saved[1] == generation:
            self._graph, self._graph_generation = saved
            return saved[0]
        with self.catalog.snapshot():  # one state of the catalog while an indexer commits
            generation, ids = self.catalog.generation, self.catalog.one_per_content()
            # The rows whose vector was written since the saved graph: vec_gen is the change log.
            changed = (self.catalog.vectors(since_generation=saved[1])[0]
                       if saved is not None and saved[1] < generation else None)
            update = saved is not None and changed is not None and _worth_updating(saved[0], ids, changed)
            large = len(ids) > EXACT_LIMIT
            # A large library's update asks the index for the few vectors it needs (reading every
            # vector took 3.5 s at 100k photos); exact search and a rebuild need them all.
            vectors = None if update and large else self._vectors_of_rows(ids)
        knn = self._graph_knn(ids, vectors)
        if update:
            from clipfind.neighbours import update_graph

            assert saved is not None and changed is not None
            graph = update_graph(saved[0], ids, self.index().vectors_of if vectors is None else vectors, changed, knn,
                                 reverse_k=GRAPH_REVERSE_K if large else None)
        else:
            graph = build_graph(ids, vectors, knn, NEIGHBOURS_K)
        _save_graph(path, graph, generation, model)
        self._graph, self._graph_generation = graph, generation
        return graph

    def _graph_knn(self, ids: Ids, vectors: Vectors | None) -> KnnFn:
        """Exact search over the graph's rows for a small library; else the index, kept to those rows
        (it also holds byte-identical copies, and photos written since the rows were read)."""
        if len(ids) <= EXACT_LIMIT:
            return lambda q, k: exact_search(ids, vectors, q, k)
        from clipfind.annindex import sync_index
        from clipfind.neighbours import rows_only

        index = self.index()
        sync_index(index, self.catalog)  # a watcher's or another process's index run may have written since
        return rows_only(index.search, ids)

    def _vectors_of_rows(self, ids: Ids) -> Vectors:
        """The stored vectors of these ids (ascending, every one with a vector): read whole, which is
        quicker than by id for the graph's rows (all but the byte-identical copies)."""
        every_id, vectors = self.catalog.vectors()
        return vectors[np.searchsorted(every_id, ids)]

    def duplicates(self, threshold: float, rules: KeeperRules | None = None) -> list[DupeGroup]:
        """Duplicate groups at ``threshold``, for review before a clean-up; a photo is in at most
        one group.

        Args:
            threshold: the least CLIP cosine similarity (0..1) for the similar tier; the identical
                and same tiers do not depend on it (nor on the model).
            rules: which photo of a group to keep (default: the saved rules, :meth:`keeper_rules`).
                The photos the user chose with :meth:`keep_this` are kept whatever rules are given.

        Photos under a folder that is not reachable now (an unplugged drive, a folder moved away)
        are left out: they cannot be shown, and a keeper that is not on disk keeps nothing.
        Members under a protected folder come back with ``protected`` set and are never suggested.
        """
        saved = self.keeper_rules()
        if rules is None:
            rules = saved
        elif saved.keep:
            rules = dataclasses.replace(rules, keep=rules.keep + tuple(p for p in saved.keep if p not in rules.keep))
        graph = self.neighbour_graph()
        new_checks: list[tuple[tuple[str, str], str]] = []
        # One read transaction: the contents read the rows of the photos the groups hold when they
        # need them (clipfind.phototable), so those rows must be of the state the contents were made in.
        # The groups are millions of new objects without cycles at a million photos: see processwide.
        with gc_paused(), self.catalog.snapshot():
            state = (self.catalog.generation, self.catalog.fingerprinted, rules)
            for attempt in range(2):
                if attempt or self._contents is None or self._contents[0] != state:
                    # Grouped by content and searched for re-saved pictures once per catalog state, not
                    # on every move of the app's slider: the same-photo search takes seconds at 100k.
                    contents = contents_of(self.catalog.photo_table(leave_out=self._unreachable()), rules=rules)
                    checks = self.catalog.crop_checks()
                    known = len(checks)
                    search = self._same_search()
                    same = [] if search is None else same_sets(
                        contents, search, self.catalog.thumbs, vectors=lambda ids: self.catalog.vectors(ids=ids),
                        rules=rules, graph=graph, crop_cache=checks)
                    new_checks = list(itertools.islice(checks.items(), known, None))  # new checks come last
                    self._contents = state, contents, same
                _, contents, same = self._contents
                try:
                    groups = find_duplicates(contents, graph, threshold, self.catalog.ignored_pairs(), same,
                                             rules=rules)
                    break
                except RowsGone:  # a row went without the generation moving on: read this state afresh
                    if attempt:
                        raise
        if new_checks:  # kept for the next state
            self.catalog.add_crop_checks(new_checks)
        return groups

    def _same_search(self) -> SameSearch | None:
        """The same-photo search over the catalog's fingerprints, kept in the home and brought up to
        date: after a few photos changed only those are asked about (about a second at 100k photos,
        against tens of seconds from scratch). None below two fingerprints."""
        from clipfind.samephoto import SameSearch

        ids, hashes, captures = self.catalog.fingerprint_rows()
        if len(ids) < 2:
            return None
        path = self.home / SAME_FILE
        old = self._same if self._same is not None else _load_same(path)
        search = (SameSearch.build(ids, hashes, captures, self.catalog.thumbs) if old is None
                  else old.update(ids, hashes, captures, self.catalog.thumbs))
        if search is not old:
            _save_same(path, search)
        self._same = search
        return search

    # -- the user's decisions: keeper rules, "Keep this one", ticks -------------------------------
    def keeper_rules(self) -> KeeperRules:
        """The keeper rules saved in this home (the default order when none were set), with the
        photos chosen by "Keep this one" in ``keep``."""
        return self.catalog.keeper_rules()

    def set_keeper_rules(self, rules: KeeperRules) -> None:
        """Save the keeper rules for this home; the next :meth:`duplicates` applies them.

        Args:
            rules: the whole rules, ``keep`` included (start from :meth:`keeper_rules` to change one).
        """
        self._check_intact()
        self.catalog.set_keeper_rules(rules)

    def keep_this(self, photo: PhotoInfo) -> None:
        """"Keep this one": the next :meth:`duplicates` keeps this photo in its group, over any rule;
        the latest choice first, so choosing another photo of the same group moves the keeper there.

        Args:
            photo: a member of a duplicate group.
        """
        rules = self.keeper_rules()
        self.set_keeper_rules(dataclasses.replace(
            rules, keep=(photo.path, *(p for p in rules.keep if p != photo.path))))

    def unkeep(self, photo: PhotoInfo) -> None:
        """Take back :meth:`keep_this` for this photo: its group's keeper follows the rules again."""
        rules = self.keeper_rules()
        if photo.path in rules.keep:
            self.set_keeper_rules(dataclasses.replace(rules, keep=tuple(p for p in rules.keep if p != photo.path)))

    def choices(self) -> dict[str, bool]:
        """The ticks the user set in the duplicate review (path -> ticked for removal), saved so a
        restart, a crash or a failed trash does not lose them; only the photos the user clicked."""
        return self.catalog.choices()

    def save_choices(self, changes: Mapping[str, bool]) -> None:
        """Remember these ticks (path -> ticked); cheap, for after every click. A photo trashed or
        dropped from the catalog loses its tick."""
        self.catalog.save_choices(changes)

    def clear_choices(self) -> None:
        """Forget every saved tick (the review starts again from the suggested selection)."""
        self.catalog.clear_choices()

    def _unreachable(self) -> list[str]:
        """The library's folders that cannot be reached now (an unplugged drive, a folder moved away)."""
        return [f for f in self.catalog.folders() if not os.path.isdir(f)]

    def clean_up(
        self, groups: Sequence[DupeGroup], selected: Iterable[PhotoInfo] | None = None, *, include_similar: bool = False
    ) -> TrashReport:
        """Move duplicates to the system trash so that every group keeps its photo on disk.

        Args:
            groups: the groups the user reviewed (from :meth:`duplicates`).
            selected: the photos to move; default: each group's ``suggested(include_similar)``.
            include_similar: whether the default selection takes the members of the similar
                tier too (the user's choice), not only identical files and same photos.

        Each group's keeper is checked on disk (there, readable, same bytes) before any of its
        members moves; a group whose keeper fails is skipped whole, with the reason. A member in
        a protected folder (the saved rules' or the group's ``protected``) is refused, with why.
        The rows of the photos moved are kept for :meth:`undo_trash`.
        """
        self._check_intact()
        report = clean_up(self.catalog, groups, selected, include_similar=include_similar,
                          protect=self.keeper_rules().protect)
        self._forget_in_index(report)
        return report

    def trash(self, photos: Sequence[PhotoInfo]) -> TrashReport:
        """Move exactly these photos to the system trash; one changed on disk since the user saw it
        stays, with the reason.

        Args:
            photos: the photos to move, as the catalog gave them (each must still be that file).
                One in a folder the keeper rules protect stays, with the reason.
        """
        self._check_intact()
        report = move_to_trash(self.catalog, photos, protect=self.keeper_rules().protect)
        self._forget_in_index(report)
        return report

    def _forget_in_index(self, report: TrashReport) -> None:
        if self._index is not None:
            self._index.remove([p.id for p in report.moved])

    def last_trash(self) -> TrashBatch | None:
        """The photos the last clean-up or trash moved that are not back yet, or None: what
        :meth:`undo_trash` would put back."""
        found = self.catalog.trashed()
        return TrashBatch(found[0], tuple(found[1])) if found else None

    def undo_trash(self) -> RestoreReport:
        """Put the files of the last clean-up or trash back from the system trash, and their photos
        back in search and duplicates, without the model (their vectors and fingerprints were kept).

        A file goes back only to a free path (never over a file that is there again); one whose
        size or time changed meanwhile comes back as a file only, for the next index run to read.
        Where the platform has no way to restore (macOS, Windows), ``notices`` say where the files
        are. Raises LockedError while an indexer runs.
        """
        batch = self.last_trash()
        if batch is None:
            return RestoreReport(notices=["nothing to undo: no photo was moved to the trash since the last undo"])
        self._check_intact()
        with WriterLock(self.home):
            report = restore_files([(p.path, p.size) for p in batch.photos])
            by_path = {p.path: p for p in batch.photos}
            back: list[tuple[str, FileStamp]] = []
            changed: list[str] = []
            for path in report.restored:
                photo = by_path[path]
                try:
                    st = os.stat(path)
                except OSError:
                    changed.append(path)
                    continue
                if st.st_size == photo.size and st.st_mtime_ns == photo.mtime_ns:
                    back.append((path, FileStamp(st.st_dev, st.st_ino, st.st_ctime_ns)))
                else:
                    changed.append(path)
            ids = self.catalog.put_back_trashed(back)
            self.catalog.drop_trashed(changed)
        if self._index is not None and ids:
            self._index.add(*self.catalog.vectors(ids=ids))
        out = RestoreReport(restored=[by_path[p] for p in report.restored], failed=report.failed,
                            notices=report.notices)
        out.notices += [f"{p} is back, but it changed meanwhile: the next index run reads it again" for p in changed]
        return out

    def lookup(self, paths: Sequence[str]) -> list[PhotoInfo]:
        """The indexed photos at these paths, for commands that take photo paths; a clear error
        names the first that is not one.

        Args:
            paths: photo files, relative or absolute.

        Raises ClipfindError for an empty path, a path the catalog does not know, or a file that
        could not be read when it was indexed (with that reason).
        """
        photos = []
        for path in paths:
            if not path:
                raise ClipfindError("an empty path was given (an unset variable?)")
            found = self.catalog.photo_at(path)
            if found is not None:
                photos.append(found)
                continue
            failure = self.catalog.failure_by_path(path)
            if failure is not None:
                raise ClipfindError(f"{failure.path} could not be read when it was indexed ({failure.error}), "
                                    "so it is in neither search nor duplicates")
            raise ClipfindError(f"not in the catalog: {os.path.abspath(path)}")
        return photos

    def photo_by_path(self, path: str) -> PhotoInfo | None:
        """The indexed photo at a path, or None, for a front end that asks without failing (a
        dropped file, a search by a photo that may or may not be indexed).

        Args:
            path: a photo file, relative or absolute.
        """
        return self.catalog.photo_at(path) if path else None

    def photos(self, ids: Sequence[int]) -> list[PhotoInfo]:
        """Those of these photos still in the catalog, in the given order: results shown a while
        ago, minus what was trashed or forgotten meanwhile.

        Args:
            ids: catalog ids (``PhotoInfo.id``).
        """
        found = {p.id: p for p in self.catalog.photos(ids)}
        return [found[i] for i in ids if i in found]

    def mark_not_duplicates(self, photos: Sequence[PhotoInfo], tier: Tier | None = None) -> None:
        """Remember, by content, that these photos are not duplicates of one another.

        Args:
            photos: two or more distinct photos. Byte-identical copies among them are not
                shown as an identical group any more either.
            tier: the tier the group was shown in: the mark hides them there only (photos that are
                not the same photo may still be similar shots); None: in every tier.
        """
        files: dict[str, set[str]] = {}
        for photo in photos:
            files.setdefault(photo.content_hash, set()).add(photo.path)
        if sum(map(len, files.values())) < 2:
            raise ClipfindError("give at least two different photos to mark as not duplicates")
        self._check_intact()
        self.catalog.add_mark({h: len(paths) for h, paths in files.items()}, tier)

    def not_duplicate_marks(self) -> list[NotDuplicatesMark]:
        """Every "not duplicates" decision, oldest first, with the photos of the catalog it holds
        now: for the ignore-list manager (take one back with :meth:`remove_mark`)."""
        rows = self.catalog.mark_rows()
        photos: dict[str, list[PhotoInfo]] = {}
        for photo in self.catalog.photos_with_hashes(h for _, _, h, _ in rows):
            photos.setdefault(photo.content_hash, []).append(photo)
        marks: dict[int, tuple[Tier | None, list[str]]] = {}
        for mark, tier, content_hash, _ in rows:
            marks.setdefault(mark, (tier, []))[1].append(content_hash)
        return [NotDuplicatesMark(mark, tier, tuple(p for h in hashes for p in photos.get(h, ())), len(hashes))
                for mark, (tier, hashes) in marks.items()]

    def remove_mark(self, mark: int) -> None:
        """Take back one "not duplicates" decision (``NotDuplicatesMark.mark``): its photos can be
        grouped again. Raises ClipfindError for a mark that does not exist."""
        self._check_intact()
        if not self.catalog.remove_mark(mark):
            raise ClipfindError(f"there is no \"not duplicates\" mark {mark}; see `clipfind not-dupes --list`")

    def unmark_not_duplicates(self, photos: Sequence[PhotoInfo]) -> int:
        """Take back a "not duplicates" decision, so these photos can be grouped again.

        Args:
            photos: photos of a mark; every mark that holds all of them is taken back.

        Returns how many marks were taken back.
        """
        if not photos:
            raise ClipfindError("give the photos whose mark to take back")
        self._check_intact()
        return self.catalog.remove_marks(p.content_hash for p in photos)

    def folders(self) -> list[str]:
        """The indexed folders, as absolute paths: what a plain re-index scans."""
        return self.catalog.folders()

    def forget_folder(self, folder: str) -> int:
        """Stop indexing a folder and drop its photos from the catalog; the files stay on disk.

        Args:
            folder: an indexed folder. Photos that another indexed folder still covers (a
                parent, or an indexed subfolder) are kept.

        Returns how many photos left the catalog. Raises LockedError while an indexer runs.
        """
        if not folder:
            raise ClipfindError("an empty folder name was given (an unset variable?)")
        path = os.path.abspath(os.path.expanduser(folder))
        if path not in self.catalog.folders():
            raise ClipfindError(f"not an indexed folder: {path}")
        self._check_intact()
        with WriterLock(self.home):
            return self.catalog.remove_folder(path)

    @staticmethod
    def rebuild(home: str | os.PathLike[str] | None = None) -> list[str]:
        """Set a damaged catalog aside and start a new one, keeping what can be read of it (the
        folders, the model, the "not duplicates" marks); the next index pass embeds the photos.

        Args:
            home: the home folder (default: $CLIPFIND_HOME, else the per-user data folder).

        Returns one-line notices for the user.
        """
        return rebuild_catalog(resolve_home(home))

    def _check_intact(self) -> None:
        self.catalog.check_intact()

    def failures(self) -> list[Failure]:
        """What indexing could not read, so the user can fix or remove it: folders that could not
        be listed first, then unreadable files, each with its reason."""
        return self.catalog.folder_problems() + self.catalog.failures()

    def waiting_for_model(self) -> int:
        """How many photos were indexed while the model could not be loaded: they are in the duplicates
        (identical files, the same photo) but not in search nor similar shots until an index run
        with the model embeds them."""
        return self.catalog.waiting()

    def counts(self) -> Counts:
        """Photos, unreadable files and folders: cheap enough for a status bar after every change
        (:meth:`status` also counts per folder)."""
        return Counts(self.catalog.count("ok"), self.catalog.count("failed"), len(self.catalog.folders()))

    # -- browsing: the timeline, the folder tree, the thumbnails on disk -------------------------
    def timeline(self, filters: Filters | None = None) -> Timeline:
        """Every indexed photo newest first by when it was taken (EXIF capture date, else the file's
        time), grouped by month: the app's "All photos" view. Photos waiting for the model are in it.

        Args:
            filters: folder and dates narrow it, as they narrow a search (the score is ignored).
        """
        f = filters or Filters()
        return Timeline.of(self.catalog.timeline(f.folder, f.date_from, f.date_to))

    def folder_tree(self) -> list[FolderNode]:
        """The library's folders, each with its subfolders that hold photos and how many photos each
        holds (subfolders included): the folder filter's tree. A folder inside another indexed one is
        shown inside it."""
        return FolderNode.tree(self.catalog.folders(), self.catalog.photo_folders())

    def thumbnails(self, side: int = 256) -> ThumbCache:
        """Thumbnails of ``side`` pixels cached on disk in this home (clipfind.thumbcache): what the app's
        grid shows, decoded once per photo and version; its ``thumbnail(path)`` may run on any thread."""
        from clipfind.thumbcache import THUMBS_FOLDER

        return ThumbCache(self.home / THUMBS_FOLDER, side)

    # -- the map ---------------------------------------------------------------------------------
    def photo_map(self, vocabulary: tuple[Sequence[str], Vectors] | None = None, *, named: bool = True) -> PhotoMap:
        """Every embedded photo placed in 2D, with clusters (clipfind.photomap says how and why).

        Laid out once per catalog generation and kept in the home: after a change the stored map
        is extended (new photos placed from their nearest laid-out neighbours, removed ones dropped,
        the others do not move) unless the library doubled or halved since its layout, or the file
        is missing, damaged or of another model. A first layout takes seconds to a minute (UMAP;
        ``python -m bench.map``), an extension about a second: call it off the GUI thread.

        Args:
            vocabulary: (phrases, their vectors in this catalog's model) to name the clusters by.
            named: without a vocabulary, name the clusters by the library's tag vocabulary
                (:meth:`tag_phrases`) where the model's text tower can be had; unnamed otherwise.
        """
        return self.map_work(vocabulary, named=named).run()

    def map_work(self, vocabulary: tuple[Sequence[str], Vectors] | None = None, *,
                 named: bool = True) -> MapWork:
        """:meth:`photo_map` in two steps: this one reads the catalog (and the vocabulary's vectors,
        which may open the text tower) and must run where Library calls run; the returned
        :class:`MapWork`'s ``run()`` does the rest (UMAP where a layout is due) and touches neither
        catalog nor model, so the app runs it on a thread of its own. Arguments as for :meth:`photo_map`.
        """
        from clipfind.home import MAP_FILE
        from clipfind.photomap import CLUSTER_MIN, extend_layout, load_layout, needs_refit

        model = self.catalog.model_identity or ""
        path = self.home / MAP_FILE
        saved = load_layout(path, model)
        with self.catalog.snapshot():  # one state of the catalog while an indexer commits
            generation = self.catalog.generation
            ids = self.catalog.one_per_content()
            photos = self.catalog.photos()
            changed = (self.catalog.vectors(since_generation=saved.generation)[0]
                       if saved is not None and saved.generation < generation else None)
            layout: Layout | None = None
            vectors = None
            if saved is not None and saved.generation == generation:
                layout = saved
            elif saved is not None and changed is not None and not needs_refit(saved, ids.size):
                layout = extend_layout(saved, ids, self._vectors_in_order, self._map_knn(saved, ids, changed),
                                       changed)
            else:  # read here, laid out by MapWork.run: UMAP's seconds need no read transaction held open
                vectors = (self._vectors_of_rows(ids) if ids.size
                           else np.zeros((0, self.catalog.dim or 0), np.float32))
        if vocabulary is None and named and ids.size >= 2 * CLUSTER_MIN:  # fewer: no cluster to name
            vocabulary = self._map_vocabulary()
        row_set = set(ids.tolist())
        row_of = {p.content_hash: p.id for p in photos if p.id in row_set}
        return MapWork(ids, layout, vectors, generation, model, path, tuple(photos), row_of, vocabulary)

    def _map_vocabulary(self) -> tuple[Sequence[str], Vectors] | None:
        """The tag vocabulary to name clusters by; None where the text tower cannot be had (offline
        without weights, a model that will not load): the map is still worth having unnamed."""
        try:
            return self.tag_phrases()
        except ClipfindError:
            return None

    def _vectors_in_order(self, ids: Ids) -> Vectors:
        """The stored vectors of these ids, in their order (each must have one)."""
        found, vectors = self.catalog.vectors(ids=[int(i) for i in ids])
        order = np.argsort(found)
        return vectors[order[np.searchsorted(found, ids, sorter=order)]] if len(ids) else vectors

    def _map_knn(self, saved: Layout, ids: Ids, changed: Ids) -> KnnFn:
        """Nearest neighbours among the map's points that stay: exact for a small library, else the
        vector index kept to those rows (reading every vector of 100k photos takes seconds)."""
        from clipfind.photomap import exact_knn

        kept = saved.ids[np.isin(saved.ids, ids) & ~np.isin(saved.ids, changed)]
        if len(ids) <= EXACT_LIMIT:
            vectors = self._vectors_in_order(kept)
            return lambda q, k: exact_knn(kept, vectors, q, k)
        from clipfind.annindex import sync_index
        from clipfind.neighbours import rows_only

        index = self.index()
        sync_index(index, self.catalog)
        return rows_only(index.search, kept)

    def render_map(self, path: str | os.PathLike[str], size: int = 1600,
                   vocabulary: tuple[Sequence[str], Vectors] | None = None, photo_map: PhotoMap | None = None) -> int:
        """Draw the map into a PNG file: thumbnails at their places, dots where dense, cluster names.

        Args:
            path: the PNG file to write (whole or not at all).
            size: its width and height in pixels.
            vocabulary: as for :meth:`photo_map`.
            photo_map: a map already made (default: :meth:`photo_map`).

        Returns how many thumbnails it shows.
        """
        from clipfind.maprender import render_map

        return render_map(photo_map if photo_map is not None else self.photo_map(vocabulary), path, thumbnail, size)

    # -- search results, tags, albums, saved searches --------------------------------------------
    def _ready_searcher(self) -> Searcher | None:
        """The Searcher, once the catalog's model is checked; None when nothing is embedded yet
        (ClipfindError when every indexed photo waits for the model)."""
        self.catalog.check_model(self.spec.identity)
        if not self.catalog.has_vectors():
            waiting = self.catalog.waiting()
            if waiting:
                raise ClipfindError(_no_vectors_yet(waiting))
            return None
        if self._searcher is None:
            self._searcher = Searcher(self.catalog, self.index(), self._encode_texts, self._encode_image,
                                      tag_ids=self._tag_ids)
        return self._searcher

    def search_results(self, query: Query, k: int = 20, filters: Filters = Filters()) -> SearchResults:
        """Like :meth:`search`, with how many photos passed the cut-off (what the grid shows).

        Args:
            query: what to look for, from :func:`build_query`.
            k: how many hits at most.
            filters: folder, dates, tag, sort order, and the cut-off: ``min_score``, else with
                ``auto_cutoff`` one drawn from this query's scores (clipfind.relevance).
        """
        searcher = self._ready_searcher()
        if searcher is None:
            return SearchResults((), 0, filters.min_score)
        return searcher.search_results(query, k, filters)

    def vocabulary(self) -> list[str]:
        """The tags in use: the built-in vocabulary with the user's ``vocabulary.txt`` in the home applied."""
        from clipfind.tags import load_vocabulary

        return load_vocabulary(self.home).tags

    def tag_phrases(self) -> tuple[list[str], Vectors]:
        """The vocabulary's tags and their unit vectors for this library's model ((n, dim)), embedded
        once and cached in the home: for naming clusters of the map, for instance. Opens the text tower."""
        phrases = self._phrases()
        return phrases.vocabulary.tags, phrases.vectors

    def photo_tags(self) -> list[PhotoTags]:
        """Every indexed photo with its automatic tags, best first (none for a photo no tag fits,
        or one that waits for the model), in catalog order. The first call embeds the vocabulary
        and tags every photo; later ones tag only photos whose vector changed."""
        table, phrases = self._tag_table()
        if table is None:
            return [PhotoTags(p, ()) for p in self.catalog.photos()]
        tags = phrases.vocabulary.tags
        rows = {int(i): r for r, i in enumerate(table.ids.tolist())}
        out = []
        for photo in self.catalog.photos():
            r = rows.get(photo.id)
            found = () if r is None else tuple(
                TagScore(tags[t], round(float(s), 6)) for t, s in zip(table.tags[r], table.scores[r]) if t >= 0)
            out.append(PhotoTags(photo, found))
        return out

    def tag_albums(self) -> list[TagAlbum]:
        """The tags that some photo carries, as albums for a side list: clean-up categories first
        ("Screenshots", "Documents", "Receipts"...), then by how many photos, then by name."""
        from clipfind.tags import album_title

        table, phrases = self._tag_table()
        if table is None:
            return []
        counts = table.counts(len(phrases.vocabulary.phrases))
        albums = [TagAlbum(p.tag, album_title(p.tag), int(c), p.cleanup)
                  for p, c in zip(phrases.vocabulary.phrases, counts) if c > 0]
        return sorted(albums, key=lambda a: (not a.cleanup, -a.count, a.title.casefold()))

    def tag_album(self, tag: str, filters: Filters | None = None) -> list[PhotoInfo]:
        """The photos carrying a tag, the surest first.

        Args:
            tag: a vocabulary tag or its album title, ignoring case ("receipts", "Receipts").
            filters: its folder and dates narrow the album, as they narrow a search (the rest is ignored).

        Raises ClipfindError for a tag the vocabulary does not have.
        """
        table, phrases = self._tag_table()
        row = self._tag_row(tag, phrases)
        if table is None:
            return []
        hit = table.tags == row
        where = hit.any(axis=1)
        f = filters or Filters()
        if f.folder is not None or f.date_from is not None or f.date_to is not None:
            where &= np.isin(table.ids, self.catalog.ids_matching(f.folder, f.date_from, f.date_to))
        scores = np.where(hit, table.scores, -np.inf).max(axis=1)[where]
        ids = table.ids[where][np.argsort(-scores, kind="stable")]
        return self.photos(ids.tolist())

    def _tag_ids(self, tag: str) -> Ids:
        """The ids of the photos carrying a tag (Filters.tag); ClipfindError for an unknown tag."""
        table, phrases = self._tag_table()
        row = self._tag_row(tag, phrases)
        return table.ids_with(row) if table is not None else np.zeros(0, np.int64)

    def _tag_row(self, tag: str, phrases: Any) -> int:
        """The tag's row in the vocabulary the table was made with (phrases; None: nothing embedded yet,
        the vocabulary as it is, which is not embedded for this)."""
        import difflib

        from clipfind.tags import load_vocabulary

        vocabulary = phrases.vocabulary if phrases is not None else load_vocabulary(self.home)
        found = vocabulary.find(tag)
        if found is None:
            close = difflib.get_close_matches(tag.lower(), vocabulary.tags, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `clipfind tags --albums` lists the tags in use"
            raise ClipfindError(f"unknown tag {tag!r}{hint}")
        return vocabulary.phrases.index(found)

    def _phrases(self) -> Any:
        """The vocabulary's PhraseVectors for this model (clipfind.tags), read from the home's cache
        or embedded once; the vocabulary file is read again on each call, so an edit shows at once."""
        from clipfind.tags import load_vocabulary, phrase_vectors

        vocabulary = load_vocabulary(self.home)
        if self._tag_state is not None and self._tag_state[0].vocabulary == vocabulary:
            return self._tag_state[0]
        model = self.catalog.model_identity or self.spec.identity
        phrases = phrase_vectors(vocabulary, self._encode_texts, model, self.home)
        self._tag_state = (phrases, None)
        return phrases

    def _tag_table(self) -> tuple[Any, Any]:
        """Every embedded photo's tags (a clipfind.tags.TagTable) for the catalog as it is now, kept in
        the home and brought up to date from the catalog's change log, with the PhraseVectors it was made
        with; (None, None) when nothing is embedded (the vocabulary is then not embedded either)."""
        from clipfind.tags import TAGS_FILE, TagTable, table_key

        self.catalog.check_model(self.spec.identity)
        if not self.catalog.has_vectors():
            return None, None
        phrases = self._phrases()
        key, path = table_key(phrases), self.home / TAGS_FILE
        generation = self.catalog.generation
        table = self._tag_state[1] if self._tag_state is not None else None
        if table is not None and table.key == key and table.generation == generation:
            return table, phrases
        if table is None or table.key != key:
            table = TagTable.load(path, key)
        with self.catalog.snapshot():  # one state of the catalog while an indexer commits
            generation = self.catalog.generation
            if table is not None and table.generation == generation:
                pass
            elif table is not None and table.generation < generation:
                ids_now = np.fromiter(sorted(self.catalog.embedded_ids()), np.int64)
                table = table.updated(ids_now, self.catalog.vectors(since_generation=table.generation),
                                      lambda ids: self.catalog.vectors(ids=ids.tolist()), phrases, generation)
                table.save(path)
            else:
                table = TagTable.build(*self.catalog.vectors(), phrases, generation, key)
                table.save(path)
        self._tag_state = (phrases, table)
        return table, phrases

    def saved_searches(self) -> list[SavedSearch]:
        """The user's saved searches, oldest first: albums the user made."""
        from clipfind.albums import SavedSearches

        return SavedSearches(self.home).all()

    def save_search(self, name: str, query: Query, min_score: float | None = None) -> SavedSearch:
        """Save a query with its least score under a name (a name saved before is replaced).

        Args:
            name: what the album list shows; unique ignoring case.
            query: from :func:`build_query`.
            min_score: the least score of its photos; None: the automatic cut-off.
        """
        from clipfind.albums import SavedSearches

        return SavedSearches(self.home).save(name, query, min_score)

    def run_saved_search(self, name: str, k: int = 200, sort: Literal["score", "date"] = "score") -> SearchResults:
        """The photos of a saved search now: its query, cut at its least score (else automatically).

        Raises ClipfindError for a name that is not saved.
        """
        from clipfind.albums import SavedSearches

        saved = SavedSearches(self.home).get(name)
        return self.search_results(saved.query, k, Filters(min_score=saved.min_score, sort=sort,
                                                          auto_cutoff=saved.min_score is None))

    def delete_saved_search(self, name: str) -> None:
        """Forget a saved search. Raises ClipfindError for a name that is not saved."""
        from clipfind.albums import SavedSearches

        SavedSearches(self.home).delete(name)


    def status(self) -> Status:
        """Everything `clipfind status` shows: folders with their counts and reachability, the
        model, and what could not be read."""
        folders = tuple(
            FolderStatus(f, self.catalog.files_in(f), os.path.isdir(f)) for f in self.catalog.folders()
        )
        counts = self.counts()
        return Status(
            home=str(self.home),
            model=self.catalog.model_name,
            pretrained=self.catalog.model_pretrained,
            dim=self.catalog.dim,
            files_indexed=counts.photos,
            files_failed=counts.failed,
            folders=folders,
            failures=tuple(self.failures()),
            files_waiting=self.waiting_for_model(),
        )


def _no_vectors_yet(waiting: int) -> str:
    """Why a search finds nothing to search in: every photo was indexed without the model."""
    photos = "the photo indexed so far waits" if waiting == 1 else f"all {waiting} photos indexed so far wait"
    return (f"search needs the model, and {photos} for it (it could not be loaded when "
            "they were indexed): run `clipfind index` once the model is available; duplicates (identical files, "
            "the same photo saved again) work already")


def _load_graph(path: Path, model: str) -> tuple[NeighbourGraph, int] | None:
    """The saved graph and the catalog generation it matches, whatever that is (an older one is
    brought up to date); None for another model's or a file missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != model:
                return None
            return NeighbourGraph(data["ids"], data["neighbours"], data["similarities"]), int(data["generation"])
    except Exception:  # missing, or damaged in any way (BadZipFile, EOFError, ...): it is a cache, rebuild
        return None


def _worth_updating(old: NeighbourGraph, ids: Ids, changed: Ids) -> bool:
    """Whether updating costs less than a share of a rebuild: fresh rows are asked once each, and each
    row that goes away takes about k lists with it that may need asking again."""
    if old.neighbours.shape[1] != NEIGHBOURS_K or (old.ids.size > 1 and not np.all(np.diff(old.ids) > 0)):
        return False
    from clipfind.neighbours import member  # sorted ids: binary searches, not np.setdiff1d's sorts (0.2 s at 100k)

    changed = np.asarray(changed, np.int64)
    fresh = int((~member(ids, old.ids, assume_sorted=True)).sum())
    fresh += int((member(changed, ids, assume_sorted=True) & member(changed, old.ids, assume_sorted=True)).sum())
    gone = int((~member(old.ids, ids, assume_sorted=True)).sum())
    return fresh + NEIGHBOURS_K * gone <= GRAPH_UPDATE_MAX_SHARE * max(ids.size, 1)


_SAME_FIELDS = ("ids", "hashes", "captures", "descs", "keys", "orientation", "distance")


def _load_same(path: Path) -> SameSearch | None:
    """The saved same-photo search; None for a file missing or damaged (it is a cache: search again).
    It is keyed by id and content hash, so whatever catalog state it was saved for, an update
    asks again about every row that differs."""
    from clipfind.samephoto import SameSearch

    try:
        with np.load(path, allow_pickle=False) as data:
            graph = NeighbourGraph(data["graph_ids"], data["neighbours"], data["similarities"])
            search = SameSearch(**{f: data[f] for f in _SAME_FIELDS}, graph=graph)
    except Exception:  # missing, or damaged in any way (BadZipFile, EOFError, KeyError, ...)
        return None
    n, m = len(search.ids), len(search.keys)
    if (search.hashes.shape, search.captures.shape, search.descs.shape[0]) != ((n,), (n,), n) or \
            not np.array_equal(search.graph.ids, search.ids) or search.orientation.shape != (m,) or \
            search.distance.shape != (m,):
        return None
    return search


def _save_same(path: Path, search: SameSearch) -> None:
    """Written whole or not at all; a failure to write costs only the search next time."""
    with contextlib.suppress(OSError), atomic_write(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, graph_ids=search.graph.ids, neighbours=search.graph.neighbours,
                 similarities=search.graph.similarities, **{f: getattr(search, f) for f in _SAME_FIELDS})


def _save_graph(path: Path, graph: NeighbourGraph, generation: int, model: str) -> None:
    """A cache: written whole or not at all (other threads and processes may save at the same time),
    and a failure to write it (full disk, read-only home) costs only the time to rebuild it next time."""
    with contextlib.suppress(OSError), atomic_write(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            ids=graph.ids,
            neighbours=graph.neighbours,
            similarities=graph.similarities,
            generation=np.int64(generation),
            model=np.str_(model),
        )
