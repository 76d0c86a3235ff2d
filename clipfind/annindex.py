"""The vector index: HNSW (inner product on unit vectors) whose labels are catalog ids.

The catalog is the source of truth; this file is a cache of its vectors (a photo recorded without
the model has none, and stays out until a run with the model embeds it). A sidecar JSON records the
catalog generation the index reflects and a checksum of the index file, so a stale index is
brought up to date from the newer catalog rows, and a missing, truncated or bit-flipped one
is rebuilt from the stored vectors instead of being fed to hnswlib.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import time
from pathlib import Path

import hnswlib
import numpy as np

from clipfind.catalog import Catalog
from clipfind.home import atomic_write
from clipfind.records import Ids, Scores, Vectors

# HNSW parameters: M and ef_construction trade build time for recall; ef is raised per query
# to at least 2k. Chosen for recall@10 >= 0.99 on clustered CLIP-like vectors up to 1M photos
# (bench/ann.py: ef=128 gave 0.988 at 1M, ef=160 0.996 for ~1.4 ms per query).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 160
# Rebuild when this share of the labels are deleted elements still occupying the graph.
COMPACT_DELETED_FRACTION = 0.25
SIDECAR_SUFFIX = ".json"
INDEX_FORMAT = 1


class IndexCorrupt(Exception):
    """The index file does not match its sidecar: rebuild from the catalog."""


class IndexOutdated(Exception):
    """The index holds another model's vectors (after --reembed): rebuild quietly."""


def exact_search(ids: Ids, vectors: Vectors, queries: Vectors, k: int) -> tuple[Ids, Scores]:
    """Brute-force top-k by inner product: exact, for small collections and as a test oracle.

    Returns (labels (m, k'), similarities (m, k')) best first, with k' = min(k, n).
    """
    queries = np.atleast_2d(queries).astype(np.float32, copy=False)
    if min(k, len(ids)) == 0:
        return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
    return top_k(ids, queries @ vectors.T, k)


def top_k(ids: Ids, sims: Scores, k: int) -> tuple[Ids, Scores]:
    """The k best of each row of (m, n) similarities to `ids`, best first: exact_search's selection, for
    callers that have the similarities already."""
    k = min(k, sims.shape[1])
    if k == 0:
        return np.zeros((len(sims), 0), np.int64), np.zeros((len(sims), 0), np.float32)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return ids[top], np.take_along_axis(top_sims, order, axis=1).astype(np.float32)


class VectorIndex:
    """An HNSW graph plus the bookkeeping hnswlib does not expose (which labels are deleted)."""

    def __init__(self, dim: int, generation: int = 0, *, _hnsw: hnswlib.Index | None = None) -> None:
        self.dim = dim
        self.generation = generation
        if _hnsw is None:
            _hnsw = hnswlib.Index(space="ip", dim=dim)
            _hnsw.init_index(max_elements=1024, M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
        _hnsw.set_ef(HNSW_EF_SEARCH)
        self._hnsw = _hnsw
        self._live: set[int] = set()
        self._deleted: set[int] = set()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, label: int) -> bool:
        return label in self._live

    @property
    def labels(self) -> set[int]:
        return set(self._live)

    @property
    def deleted_fraction(self) -> float:
        total = len(self._live) + len(self._deleted)
        return len(self._deleted) / total if total else 0.0

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add or replace vectors; a label seen before (even deleted) is updated in place."""
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        for label in ids.tolist():
            if label in self._deleted:
                self._hnsw.unmark_deleted(label)
                self._deleted.discard(label)
        needed = len(self._live) + len(self._deleted) + len(ids)
        capacity = self._hnsw.get_max_elements()
        if needed > capacity:
            self._hnsw.resize_index(max(needed, capacity * 2))
        self._hnsw.add_items(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._live.update(ids.tolist())

    def remove(self, ids: Ids | list[int]) -> None:
        for label in np.asarray(ids, dtype=np.int64).tolist():
            if label in self._live:
                self._hnsw.mark_deleted(label)
                self._live.discard(label)
                self._deleted.add(label)

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Scores]:
        """Approximate top-k; returns (labels, similarities), each (m, k') with k' = min(k, len)."""
        queries = np.atleast_2d(queries).astype(np.float32, copy=False)
        k = min(k, len(self._live))
        if k == 0:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        self._hnsw.set_ef(max(HNSW_EF_SEARCH, 2 * k))
        labels, distances = self._hnsw.knn_query(queries, k=k)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def vectors_of(self, ids: Ids) -> Vectors:
        return np.asarray(self._hnsw.get_items(np.asarray(ids, dtype=np.int64)), dtype=np.float32)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: Path, model: str) -> None:
        """Write index and sidecar through atomic_write: checked and synced to disk, then renamed
        (index first, the sidecar that describes it last).

        A full disk or a read-only home leaves the old pair untouched (and no temp files); a
        kill between the two renames leaves a pair whose checksums disagree, rebuilt on load.
        """
        with atomic_write(path, path.with_name(path.name + SIDECAR_SUFFIX), durable=True) as (tmp, sidecar_tmp):
            open(tmp, "wb").close()  # hnswlib reports no error of its own: surface EROFS/EACCES here
            self._hnsw.save_index(str(tmp))
            _check_hnsw_file(tmp)
            sidecar = {
                "format": INDEX_FORMAT,
                "dim": self.dim,
                "model": model,
                "generation": self.generation,
                "count": len(self._live),
                "deleted": sorted(self._deleted),
                "checksum": _checksum(tmp),
            }
            _write_synced(sidecar_tmp, json.dumps(sidecar).encode())

    @classmethod
    def load(cls, path: Path, dim: int, model: str) -> VectorIndex:
        """Load a saved index, or raise IndexCorrupt / FileNotFoundError; never hands hnswlib a bad file."""
        try:
            sidecar = json.loads(path.with_name(path.name + SIDECAR_SUFFIX).read_bytes())
            expected = (sidecar["format"], sidecar["dim"], sidecar["model"])
            checksum = sidecar["checksum"]
            generation = int(sidecar["generation"])
            deleted = {int(x) for x in sidecar["deleted"]}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(f"unreadable index sidecar: {exc}") from None
        if expected != (INDEX_FORMAT, dim, model):
            raise IndexOutdated()
        if _checksum(path) != checksum:
            raise IndexCorrupt("index file checksum mismatch")
        hnsw = hnswlib.Index(space="ip", dim=dim)
        try:
            hnsw.load_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"hnswlib could not load the index: {exc}") from None
        index = cls(dim, generation, _hnsw=hnsw)
        all_labels = set(index._hnsw.get_ids_list())
        index._deleted = deleted & all_labels
        index._live = all_labels - index._deleted
        if len(index._live) != sidecar.get("count"):
            raise IndexCorrupt("index element count does not match its sidecar")
        return index


def build_index(catalog: Catalog, dim: int) -> VectorIndex:
    with catalog.snapshot():  # the vectors of exactly that generation, while an indexer commits
        generation = catalog.generation
        ids, vectors = catalog.vectors()
    index = VectorIndex(dim, generation=generation)
    index.add(ids, vectors)
    return index


def sync_index(index: VectorIndex, catalog: Catalog) -> int:
    """Bring an index saved at an older generation up to the catalog's; returns rows changed."""
    with catalog.snapshot():
        generation = catalog.generation
        if generation == index.generation:
            return 0
        ids, vectors = catalog.vectors(since_generation=index.generation)
        # The ids with a vector: a photo recorded again without the model (its file changed while
        # the model could not be loaded) has no vector now, so its old one leaves the index.
        current = catalog.embedded_ids()
    index.add(ids, vectors)
    dead = index.labels - current
    index.remove(list(dead))
    index.generation = generation
    return len(ids) + len(dead)


def load_saved(path: Path, catalog: Catalog) -> VectorIndex:
    """The saved index, caught up with the catalog: what a start wants, without the rebuild that
    open_index falls back to. Raises FileNotFoundError, IndexOutdated or IndexCorrupt."""
    dim, model = catalog.dim, catalog.model_identity
    if dim is None or model is None:
        raise IndexOutdated()
    try:
        index = VectorIndex.load(path, dim, model)
    except (IndexCorrupt, FileNotFoundError):
        if not _ever_saved(path):
            raise
        # An indexer in another process may have renamed its new index but not yet its
        # sidecar: a moment later the pair matches again.
        time.sleep(0.2)
        index = VectorIndex.load(path, dim, model)
    if index.generation > catalog.generation:
        # The catalog went back (restored from a backup, or lost its last commits): the
        # index may hold vectors the catalog no longer has, and sync cannot tell which.
        raise IndexCorrupt("it is newer than the catalog")
    sync_index(index, catalog)
    return index


def open_index(path: Path, catalog: Catalog) -> tuple[VectorIndex, str | None]:
    """The catalog's index, loaded and synced, or rebuilt; returns (index, notice for the user)."""
    dim = catalog.dim
    if dim is None or catalog.model_identity is None:
        return VectorIndex(dim or 1), None
    notice = None
    try:
        index = load_saved(path, catalog)
        if index.deleted_fraction > COMPACT_DELETED_FRACTION:
            index = build_index(catalog, dim)
    except IndexOutdated:
        index = build_index(catalog, dim)
    except FileNotFoundError:
        index = build_index(catalog, dim)
        if len(index) and _ever_saved(path):
            notice = f"vector index was missing; rebuilt it from {len(index)} stored vectors"
    except IndexCorrupt as exc:
        index = build_index(catalog, dim)
        notice = f"vector index was damaged ({exc}); rebuilt it from {len(index)} stored vectors"
    return index, notice


def _ever_saved(path: Path) -> bool:
    """Half of the pair (index, sidecar) on disk means one was lost; neither means none was saved
    yet (a first indexing run still going, or killed before its first save): nothing to repair,
    and nothing to tell the user."""
    return path.exists() or path.with_name(path.name + SIDECAR_SUFFIX).exists()


def _checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# hnswlib's saveIndex header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
# label_offset, offsetData, maxlevel, enterpoint_node, maxM, maxM0, M, mult, ef_construction.
_HNSW_HEADER = struct.Struct("<6QiI3QdQ")
_LINKS_SIZE = struct.Struct("<I")


def _check_hnsw_file(path: Path) -> None:
    """Walk hnswlib's file layout: it must end exactly at the end of the file.

    hnswlib writes through an unchecked std::ofstream, so on a full disk it leaves a short file
    and reports success; checked here before that file may replace a good index.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header = fh.read(_HNSW_HEADER.size)
        if len(header) < _HNSW_HEADER.size:
            raise OSError(errno.EIO, f"the vector index was not written completely (is the disk full?): {path}")
        count, per_element = _HNSW_HEADER.unpack(header)[2:4]
        pos = _HNSW_HEADER.size + count * per_element
        if pos <= size:
            fh.seek(pos)
            links = fh.read()  # one length word per element, then its upper-level links (small)
            offset = 0
            for _ in range(count):
                if offset + _LINKS_SIZE.size > len(links):
                    offset = len(links) + 1
                    break
                offset += _LINKS_SIZE.size + _LINKS_SIZE.unpack_from(links, offset)[0]
            pos += offset
    if pos != size:
        raise OSError(errno.EIO, f"the vector index was not written completely (is the disk full?): {path}")
