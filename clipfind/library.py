"""One photo library (a clipfind home): the single entry point the CLI and the GUI call.

It owns the catalog connection of the calling thread, loads the model and the vector index
only when a capability needs them, and keeps every decision (what a query means, what a
duplicate is, who is the keeper) in the core modules it wires together.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clipfind.annindex import VectorIndex, exact_search, open_index
from clipfind.catalog import Catalog, Failure
from clipfind.dupes import Contents, DupeGroup, NeighbourGraph, build_graph, contents_of, find_duplicates
from clipfind.errors import ClipfindError, LockedError
from clipfind.home import CATALOG_FILE, INDEX_FILE, NEIGHBOURS_FILE, WriterLock, resolve_home
from clipfind.rebuild import rebuild_catalog
from clipfind.modelspec import PRECISIONS, ModelSpec
from clipfind.records import PhotoInfo
from clipfind.search import EXACT_LIMIT, Filters, Query, Searcher, SearchHit
from clipfind.trash import TrashReport, clean_up, finish_interrupted, move_to_trash

if TYPE_CHECKING:
    from clipfind.encoders import ImageEncoder
    from clipfind.indexer import Indexer
    from clipfind.model import ClipModel, ProgressFn
    from clipfind.onnx_encoder import OnnxImageEncoder, OnnxTextEncoder

NEIGHBOURS_K = 24  # per photo; a burst of more near-identical shots than this is split


@dataclass(frozen=True, slots=True)
class FolderStatus:
    path: str
    files: int
    reachable: bool


@dataclass(frozen=True, slots=True)
class Status:
    home: str
    model: str | None
    pretrained: str | None
    dim: int | None
    files_indexed: int
    files_failed: int
    folders: tuple[FolderStatus, ...]
    failures: tuple[Failure, ...]


def resolve_spec(catalog: Catalog, name: str | None, pretrained: str | None) -> ModelSpec:
    """Explicit choice (option or environment), else the catalog's own model, else the default."""
    name = name or os.environ.get("CLIPFIND_MODEL") or None
    pretrained = pretrained if pretrained is not None else os.environ.get("CLIPFIND_PRETRAINED")
    if name is None and pretrained is None and catalog.model_name:
        return ModelSpec(catalog.model_name, catalog.model_pretrained)
    # Weights given alone are weights for the catalog's model, not for the default one.
    return ModelSpec.parse(name or catalog.model_name, pretrained)


class Library:
    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        model: str | None = None,
        pretrained: str | None = None,
        *,
        device: str | None = None,
        precision: str | None = None,
        download_progress: ProgressFn | None = None,
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
        # How the image encoder runs (clipfind.runtime): "auto" measures once per machine.
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
        self._contents: tuple[int, Contents] | None = None  # (generation, the files grouped by content)

    def close(self) -> None:
        self.catalog.close()

    def set_download_progress(self, callback: ProgressFn | None) -> None:
        """Where weight-download progress goes when the model is first loaded (the app's bar)."""
        self._download_progress = callback

    # -- model and index, loaded on first need ----------------------------------------------
    def model(self) -> ClipModel:
        with self._model_lock:
            if self._model is None:
                from clipfind.model import load_model

                self._model = load_model(
                    self.spec, self._device, self._download_progress, precision=self.precision, home=self.home
                )
            return self._model

    def index(self) -> VectorIndex:
        if self._index is None:
            self._index, notice = open_index(self.home / INDEX_FILE, self.catalog)
            if notice:
                self.notices.append(notice)
                self._save_repaired_index(self._index)
        return self._index

    def _save_repaired_index(self, index: VectorIndex) -> None:
        """Keep a rebuilt index, so the repair (and its notice) happens once, not on every start.

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
            if self._onnx_image is None:  # opening a session takes ~0.4 s: once per Library
                from clipfind.onnx_encoder import open_exported

                self._onnx_image = open_exported(self.spec, self.home, self._device, self.precision)
            if self._onnx_image is not None:
                return self._onnx_image
        return self.model()

    def indexer(self, **options: int) -> Indexer:
        from clipfind.indexer import Indexer

        return Indexer(self.home, self.spec, self.image_encoder, **options)

    def search(self, query: Query, k: int = 20, filters: Filters = Filters()) -> list[SearchHit]:
        self.catalog.check_model(self.spec.identity)
        if not self.catalog.has_vectors():
            return []
        if self._searcher is None:
            self._searcher = Searcher(self.catalog, self.index(), self._encode_texts, self._encode_image)
        return self._searcher.search(query, k, filters)

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        if self._model is None and self._text_encoder is None:
            from clipfind.onnx_encoder import open_exported_text

            # Without torch where the export exists: a cold `clipfind search` then skips seconds of imports.
            self._text_encoder = open_exported_text(self.spec, self.home, self._device, self.precision) or False
        if self._model is None and self._text_encoder:
            return self._text_encoder.encode_texts(texts)
        return self.model().encode_texts(texts)

    def _encode_image(self, path: str) -> np.ndarray:
        from clipfind.imageload import load_image

        encoder = self.image_encoder()
        loaded = load_image(path, min_side=encoder.image_size)
        return encoder.encode_images(np.asarray(encoder.preprocess(loaded.image))[None])[0]

    def neighbour_graph(self) -> NeighbourGraph | None:
        """Each photo's nearest neighbours, cached on disk per catalog generation."""
        generation = self.catalog.generation
        if self._graph is not None and self._graph_generation == generation:
            return self._graph
        if not self.catalog.has_vectors():
            return None
        path = self.home / NEIGHBOURS_FILE
        graph = _load_graph(path, generation, self.catalog.model_identity or "")
        if graph is None:
            generation, ids, vectors = self._one_vector_per_content()
            if len(ids) <= EXACT_LIMIT:
                graph = build_graph(ids, vectors, lambda q, k: exact_search(ids, vectors, q, k), NEIGHBOURS_K)
            else:
                index = self.index()
                graph = build_graph(ids, vectors, index.search, NEIGHBOURS_K)
            _save_graph(path, graph, generation, self.catalog.model_identity or "")
        self._graph, self._graph_generation = graph, generation
        return graph

    def _one_vector_per_content(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(generation, ids, vectors): byte-identical copies share one graph row, so they cannot
        crowd out real neighbours."""
        with self.catalog.snapshot():  # one state of the catalog while an indexer commits
            generation = self.catalog.generation
            ids, vectors = self.catalog.vectors()
            hashes = [p.content_hash for p in self.catalog.photos()]  # same rows, same id order
        _, first = np.unique(np.asarray(hashes), return_index=True)
        keep = np.sort(first)
        return generation, ids[keep], vectors[keep]

    def duplicates(self, threshold: float) -> list[DupeGroup]:
        """Duplicate groups at ``threshold`` (0..1); a photo is in at most one group.

        Args:
            threshold: the least CLIP cosine similarity for the near tier.

        Photos under a folder that is not reachable now (an unplugged drive, a folder moved away)
        are left out: they cannot be shown, and a keeper that is not on disk keeps nothing.
        """
        graph = self.neighbour_graph()
        generation = self.catalog.generation
        if self._contents is None or self._contents[0] != generation:
            # Read and grouped by content once per catalog state, not on every move of the app's
            # slider: at 100k photos reading the files alone took 0.5-1 s.
            with self.catalog.snapshot():
                generation = self.catalog.generation
                self._contents = generation, contents_of(self._reachable(self.catalog.all_files()))
        return find_duplicates(self._contents[1], graph, threshold, self.catalog.ignored_pairs())

    def _reachable(self, photos: list[PhotoInfo]) -> list[PhotoInfo]:
        away = [f for f in self.catalog.folders() if not os.path.isdir(f)]
        if not away:
            return photos
        prefixes = tuple(os.path.join(f, "") for f in away)
        return [p for p in photos if not p.path.startswith(prefixes)]

    def clean_up(
        self, groups: Sequence[DupeGroup], selected: Iterable[PhotoInfo] | None = None, *, include_near: bool = True
    ) -> TrashReport:
        """Move duplicates to the system trash so that every group keeps its photo on disk.

        Args:
            groups: the groups the user reviewed (from :meth:`duplicates`).
            selected: the photos to move; default: each group's ``suggested(include_near)``.
            include_near: whether the default selection takes near members too, not only
                byte-identical copies.

        Each group's keeper is checked on disk (there, readable, same bytes) before any of its
        members moves; a group whose keeper fails is skipped whole, with the reason.
        """
        self._check_intact()
        report = clean_up(self.catalog, groups, selected, include_near=include_near)
        self._forget_in_index(report)
        return report

    def trash(self, photos: Sequence[PhotoInfo]) -> TrashReport:
        """Move exactly these photos to the system trash (each must still be the file indexed)."""
        self._check_intact()
        report = move_to_trash(self.catalog, photos)
        self._forget_in_index(report)
        return report

    def _forget_in_index(self, report: TrashReport) -> None:
        if self._index is not None:
            self._index.remove([p.id for p in report.moved])

    def lookup(self, paths: Sequence[str]) -> list[PhotoInfo]:
        """The indexed photos at these paths, or a clear error naming the first that is not one."""
        photos = []
        for path in paths:
            if not path:
                raise ClipfindError("an empty path was given (an unset variable?)")
            found = self.catalog.photo_by_path(path)
            if found is not None:
                photos.append(found[0])
                continue
            failure = self.catalog.failure_by_path(path)
            if failure is not None:
                raise ClipfindError(f"{failure.path} could not be read when it was indexed ({failure.error}), "
                                    "so it is in neither search nor duplicates")
            raise ClipfindError(f"not in the catalog: {os.path.abspath(path)}")
        return photos

    def mark_not_duplicates(self, photos: Sequence[PhotoInfo]) -> None:
        """Remember, by content, that these photos are not duplicates of one another.

        Args:
            photos: two or more distinct photos. Byte-identical copies among them are not
                shown as an identical group any more either.
        """
        files: dict[str, set[str]] = {}
        for photo in photos:
            files.setdefault(photo.content_hash, set()).add(photo.path)
        if sum(map(len, files.values())) < 2:
            raise ClipfindError("give at least two different photos to mark as not duplicates")
        self._check_intact()
        self.catalog.add_mark({h: len(paths) for h, paths in files.items()})

    def unmark_not_duplicates(self, photos: Sequence[PhotoInfo]) -> int:
        """Take back every "not duplicates" mark that holds all of these photos; returns how many."""
        if not photos:
            raise ClipfindError("give the photos whose mark to take back")
        self._check_intact()
        return self.catalog.remove_marks(p.content_hash for p in photos)

    def folders(self) -> list[str]:
        """The indexed folders."""
        return self.catalog.folders()

    def forget_folder(self, folder: str) -> int:
        """Stop indexing a folder and drop its photos from the catalog; the files stay on disk.

        Args:
            folder: an indexed folder. Photos that another indexed folder still covers (a
                parent, or an indexed subfolder) are kept.

        Returns how many photos left the catalog.
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

    def status(self) -> Status:
        """Folders with their counts and reachability, the model, and what could not be read."""
        folders = tuple(
            FolderStatus(f, len(self.catalog.known_files(f)), os.path.isdir(f)) for f in self.catalog.folders()
        )
        return Status(
            home=str(self.home),
            model=self.catalog.model_name,
            pretrained=self.catalog.model_pretrained,
            dim=self.catalog.dim,
            files_indexed=self.catalog.count("ok"),
            files_failed=self.catalog.count("failed"),
            folders=folders,
            failures=tuple(self.catalog.folder_problems() + self.catalog.failures()),
        )


def _load_graph(path: Path, generation: int, model: str) -> NeighbourGraph | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["generation"]) != generation or str(data["model"]) != model:
                return None
            return NeighbourGraph(data["ids"], data["neighbours"], data["similarities"])
    except Exception:  # missing, or damaged in any way (BadZipFile, EOFError, ...): it is a cache, rebuild
        return None


def _save_graph(path: Path, graph: NeighbourGraph, generation: int, model: str) -> None:
    """A cache: a temp file of its own (other threads and processes may save at the same time), and
    a failure to write it (full disk, read-only home) costs only the time to rebuild it next time."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                ids=graph.ids,
                neighbours=graph.neighbours,
                similarities=graph.similarities,
                generation=np.int64(generation),
                model=np.str_(model),
            )
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
