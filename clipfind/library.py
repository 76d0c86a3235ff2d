"""One photo library (a clipfind home): the single entry point the CLI and the GUI call.

It owns the catalog connection of the calling thread, loads the model and the vector index
only when a capability needs them, and keeps every decision (what a query means, what a
duplicate is, who is the keeper) in the core modules it wires together.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clipfind.annindex import VectorIndex, exact_search, open_index
from clipfind.catalog import Catalog, Failure
from clipfind.dupes import Contents, DupeGroup, NeighbourGraph, build_graph, contents_of, find_duplicates, pair_key
from clipfind.errors import ClipfindError, LockedError
from clipfind.home import CATALOG_FILE, INDEX_FILE, NEIGHBOURS_FILE, WriterLock, resolve_home
from clipfind.modelspec import PRECISIONS, ModelSpec
from clipfind.records import PhotoInfo
from clipfind.search import EXACT_LIMIT, Filters, Query, Searcher, SearchHit
from clipfind.trash import TrashReport, finish_interrupted, move_to_trash

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
    return ModelSpec.parse(name, pretrained)


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
        graph = self.neighbour_graph()
        generation = self.catalog.generation
        if self._contents is None or self._contents[0] != generation:
            # Read and grouped by content once per catalog state, not on every move of the app's
            # slider: at 100k photos reading the files alone took 0.5-1 s.
            with self.catalog.snapshot():
                generation = self.catalog.generation
                self._contents = generation, contents_of(self.catalog.all_files())
        return find_duplicates(self._contents[1], graph, threshold, self.catalog.ignored_pairs())

    def mark_not_duplicates(self, photos: Sequence[PhotoInfo]) -> None:
        """Remember that these photos are not duplicates of one another, by content."""
        hashes = sorted({p.content_hash for p in photos})
        if len(hashes) == 1:  # byte-identical copies: hide the identical group itself
            self.catalog.ignore_pairs([pair_key(hashes[0], hashes[0])])
        else:
            self.catalog.ignore_pairs([pair_key(a, b) for a, b in itertools.combinations(hashes, 2)])

    def trash(self, photos: Sequence[PhotoInfo]) -> TrashReport:
        report = move_to_trash(self.catalog, photos)
        if self._index is not None:
            self._index.remove([p.id for p in report.moved])
        return report

    def status(self) -> Status:
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
            failures=tuple(self.catalog.failures()),
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
