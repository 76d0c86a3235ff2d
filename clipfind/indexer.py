"""The background indexer: scan -> diff -> decode (worker threads or processes) -> embed (batches) -> store.

Decoding runs in a pool ahead of the model, bounded so memory stays flat; the model
thread writes each batch to the catalog in one transaction, so a kill loses at most the
batch in flight and a restart skips every file already committed.

The pool is threads where the model runs on the CPU (it shares the cores with them). Where it runs
on a GPU (cuda, mps), decoding and not the model is the bound, and one process's threads share its
GIL for the Python parts of read, hash, decode and fingerprint: there the files are decoded in
worker processes (spawned, so they never import torch), one per CPU but one
(clipfind.embedding.runtime.decode_workers_for), a few files per task. Each worker opens its own
read-only catalog to ask about known content and preprocesses with the model's FastPreprocess (numpy),
so what comes back is what a thread makes, with a numpy tensor. `Indexer(decode=...)` forces either.

When the model cannot be loaded (no weights offline: ModelLoadError), the run goes on without it:
each new or changed photo is still read, hashed, decoded once and fingerprinted, and recorded
without a vector, so the identical and same-photo tiers of the duplicates work before the model
is downloaded. Such a run binds the catalog to no model; the next run with the model embeds those
photos (they count as to do though unchanged on disk).

With a cluster (clipfind.cluster, `clipfind index --cluster ADDRESS`), only where the files are read,
decoded and embedded changes: the plan's files go to the cluster's workers, which run the same
`prepare_file` and the same model loaders, and their records come back here, where the catalog is
asked about known content as the local threads ask it, and each chunk is committed by the same
`_commit_batch`. The scan, the diff, the catalog and the index stay on this machine.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from clipfind.annindex import VectorIndex, open_index
from clipfind.catalog import Catalog, FileStamp, KnownFile, StoredContent, folder_prefix, to_db
from clipfind.embedding.preprocess import FastPreprocess
from clipfind.embedding.runtime import decode_workers_for, usable_cpus
from clipfind.embedding.spec import GPU_KINDS, check_model_name
from clipfind.errors import ClipfindError, ImageLoadError, ModelLoadError, StorageError, one_line
from clipfind.fingerprint import thumbnail
from clipfind.home import INDEX_FILE, WriterLock, remove_temp_files
from clipfind.imageload import MAX_FILE_BYTES, LoadedImage, content_hash, load_image, read_photo
from clipfind.records import Control, IndexReport, Progress
from clipfind.scan import ScannedFile, hidden_below, scan_folders, scan_paths

__all__ = ["ClusterProgress", "Control", "IndexReport", "Indexer", "Progress", "ProgressFn", "prepare_file"]

if TYPE_CHECKING:
    from clipfind.cluster import Cluster
    from clipfind.embedding.encoder import ImageEncoder
    from clipfind.embedding.spec import ModelSpec

RETRY_MTIME_NS = -1  # stored for files that could not be read: never equal to a file's, so retried
INDEX_SAVE_SECONDS = 300.0
FINGERPRINT_BATCH = 256  # photos fingerprinted per commit when an older catalog catches up
FINGERPRINT_SIDE = 224  # the least decode size a fingerprint is taken from (most models' input size)
PROCESS_CHUNK = 8  # files per task sent to a decode process: fewer round trips, still a flat memory

Decode = Literal["auto", "threads", "processes"]


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class ClusterProgress(Progress):
    """Progress of a run whose photos are embedded on a cluster: the same bar, with its workers."""

    workers: int = 0


@dataclass(slots=True)
class _Prepared:
    """One file after the worker thread is done with it."""

    file: ScannedFile
    content_hash: str | None = None
    tensor: Any = None  # (3, H, W) float32, numpy or torch
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    thumb: bytes | None = None  # the pixel fingerprint (clipfind.fingerprint), from the decode already done
    capture: str | None = None
    decoded: bool = False  # the pixels were decoded in this run (the model's batch fills with these)
    vector: Any = None  # (dim,) float32, where a cluster worker embedded it (the tensor stays there)
    error: str | None = None
    transient: bool = False  # the error may go away without the file changing (permissions, I/O)
    known_content: bool = False  # the catalog already has these bytes (with a vector, where the model runs)
    # that content as stored, kept in case its row changes before commit
    stored: StoredContent | None = None


@dataclass(frozen=True)
class _DecodePool:
    """Where the plan's files are read and decoded: threads, or worker processes; chunk: files per task."""

    executor: Executor
    workers: int
    chunk: int
    submit: Callable[[list[ScannedFile]], Future[list[_Prepared]]]


@dataclass
class _Plan:
    todo: list[ScannedFile]
    missing: dict[str, KnownFile]
    known: dict[str, KnownFile]
    unchanged: int
    unreachable: list[str] = field(default_factory=list)  # roots that are not there (an unplugged drive)
    unlisted: dict[str, str] = field(default_factory=dict)  # folders that could not be listed, with why
    # Paths in todo only because they were recorded without the model (unchanged on disk), and how
    # many of them this run embedded.
    waiting: set[str] = field(default_factory=set)
    caught_up: int = 0

    def without_waiting(self) -> _Plan:
        """The plan of a run without the model: a photo that waits for it has nothing else to do."""
        todo = [f for f in self.todo if f.path not in self.waiting]
        return _Plan(todo, self.missing, self.known, self.unchanged + len(self.waiting), self.unreachable,
                     self.unlisted)


class Indexer:
    """Indexes folders into the catalog of `home`; one at a time per home (WriterLock)."""

    def __init__(
        self,
        home: Path,
        spec: ModelSpec,
        load_model: Callable[[], ImageEncoder],
        *,
        batch_size: int = 32,
        workers: int | None = None,
        cluster: Cluster | None = None,
        decode: Decode = "auto",
    ) -> None:
        """cluster: where the photos are read, decoded and embedded instead of this machine's threads
        (clipfind.cluster); the scan, the diff and every catalog write stay here.
        decode: where the photos are decoded: "threads" of this process, "processes" (spawned, torch-free;
        for a model on a GPU, which one process's threads cannot keep fed), or "auto": processes where
        the loaded model runs on cuda or mps, threads otherwise. workers: threads, or processes
        (default: clipfind.embedding.runtime.decode_workers_for the model's device)."""
        if decode not in ("auto", "threads", "processes"):
            raise ValueError(f"decode must be auto, threads or processes, not {decode!r}")
        self.home = home
        self.cluster = cluster
        self.spec = spec
        self._load_model = load_model
        self.batch_size = batch_size
        self.decode = decode
        self._workers_asked = workers
        self.workers = workers or decode_workers_for("cpu", usable_cpus())
        self._local = threading.local()
        self._readers: list[Catalog] = []
        self._readers_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------
    def run(
        self,
        folders: Iterable[str] | None = None,
        *,
        progress: ProgressFn | None = None,
        control: Control | None = None,
        reembed: bool = False,
        only: Sequence[str] | None = None,
    ) -> IndexReport:
        """Index `folders` (default: the catalog's). only: the paths a watcher saw change (files, or
        folders walked whole), each under one of the folders: only they are looked at, and only the
        catalog's rows at or under them are diffed, so a batch in a folder of 100k photos stats a few
        files, not all of them. A photo gone elsewhere is left for the next full run."""
        if reembed and only is not None:
            raise ClipfindError("re-embedding covers every photo: it cannot be limited to some paths")
        control = control or Control()
        report = IndexReport()
        start = time.monotonic()
        with WriterLock(self.home):
            remove_temp_files(self.home)
            catalog = Catalog(self.home / "catalog.sqlite3")
            try:
                catalog.check_intact()
                self._run(catalog, folders, progress, control, reembed, report, only)
            except (sqlite3.OperationalError, OSError) as exc:
                # Photos that cannot be read are recorded per file; what reaches here is the home
                # itself failing (full disk, read-only, I/O error). What was committed is kept.
                raise StorageError(f"indexing stopped: cannot write to {self.home}: {one_line(exc, names=False)}; "
                                   "the photos indexed so far are kept") from exc
            finally:
                catalog.close()
                self._close_readers()
        report.seconds = time.monotonic() - start
        return report

    # -- steps ----------------------------------------------------------------------------
    def _run(
        self,
        catalog: Catalog,
        folders: Iterable[str] | None,
        progress: ProgressFn | None,
        control: Control,
        reembed: bool,
        report: IndexReport,
        only: Sequence[str] | None = None,
    ) -> None:
        roots = self._roots(catalog, folders)
        # A name no model config knows is a mistake to refuse, not weights missing offline: the
        # run without the model below is for weights that cannot be obtained now.
        check_model_name(self.spec.name)
        if not reembed:
            catalog.check_model(self.spec.identity)  # before any slow work

        emit = progress or (lambda p: None)
        emit(Progress("scanning", 0, 0, 0, 0.0, None, None))
        plan = self._plan(catalog, roots, report, control, only)
        if control.cancelled:
            report.cancelled = True
            return
        model: ImageEncoder | None = None
        if reembed:
            _refuse_partial_reembed(plan)
            model = self._load_model()  # re-embedding is asked of the model: without it, nothing to do
            self._fill_device(model)
            _bind(catalog, model, reembed=True)
            plan = self._plan(catalog, roots, IndexReport(), control)  # every photo is new now
        unloaded: str | None = None  # why the model could not be loaded, when it could not
        if plan.todo and model is None:
            try:
                model = self._load_model()
            except ModelLoadError as exc:
                # No weights here (offline, before the download): record the photos without
                # vectors, for the duplicates that need no model; a later run embeds them.
                unloaded = str(exc)
                plan = plan.without_waiting()
            else:
                self._fill_device(model)
                _bind(catalog, model)
        report.unchanged = plan.unchanged
        if control.cancelled:  # the model took a while to load: a Ctrl+C meanwhile stops here
            report.cancelled = True
            return
        if folders is not None:
            # Only now: a run refused for a bad model leaves the catalog as it was.
            for root in roots:
                catalog.add_folder(root)
        self._update(catalog, model, plan, emit, control, report)
        if unloaded is not None:
            report.notices.append(_without_model_notice(unloaded, catalog.waiting()))
        elif plan.caught_up:
            report.notices.append(f"{_photos(plan.caught_up)} recorded while the model could not be loaded "
                                  "went through it: search and similar shots find them now")

    def _update(
        self,
        catalog: Catalog,
        model: ImageEncoder | None,
        plan: _Plan,
        emit: ProgressFn,
        control: Control,
        report: IndexReport,
    ) -> None:
        """Record the plan's photos (through the model where there is one) and drop the missing ones."""
        if not plan.todo and not plan.missing:
            self._fingerprint_older(catalog, emit, control, report)
            emit(Progress("done", 0, 0, 0, 0.0, 0.0, None))
            return

        index, notice = open_index(self.home / INDEX_FILE, catalog)
        if notice:
            report.notices.append(notice)
        try:
            if plan.todo:
                self._embed_all(catalog, index, model, plan, emit, control, report)
                if model is not None:
                    report.notices.extend(model.notices)
                    model.notices.clear()
            if not control.cancelled and plan.missing:
                removed = catalog.remove_paths(plan.missing)
                index.remove(removed)
                report.removed = len(removed)
        finally:
            emit(Progress("saving", report.encoded, len(plan.todo), report.failed, 0.0, None, None))
            self._save_index(catalog, index)
        self._fingerprint_older(catalog, emit, control, report)
        emit(Progress("done", len(plan.todo), len(plan.todo), report.failed, report.rate, 0.0, None))

    def _fill_device(self, model: ImageEncoder) -> None:
        """On a GPU, batches large enough to keep it busy (known only once the model is loaded: its free
        memory); on a CPU the batch size stays as asked."""
        sizer = getattr(model, "batch_size_for", None)  # torch models; an ONNX encoder runs on the CPU
        if sizer is not None:
            self.batch_size = max(self.batch_size, int(sizer(self.batch_size)))

    def _roots(self, catalog: Catalog, folders: Iterable[str] | None) -> list[str]:
        if folders is None:
            roots = catalog.folders()
            if not roots:
                raise ClipfindError("no folders to index yet: run `clipfind index FOLDER`")
            return roots
        roots = [os.path.abspath(os.path.expanduser(f)) for f in folders]
        for root in roots:
            if not os.path.isdir(root):
                raise ClipfindError(f"folder not found: {root}")
        return roots

    def _plan(
        self, catalog: Catalog, roots: list[str], report: IndexReport, control: Control,
        only: Sequence[str] | None = None,
    ) -> _Plan:
        known: dict[str, KnownFile] = {}
        unreachable = [r for r in roots if not os.path.isdir(r)]
        for root in roots:
            if root in unreachable:
                # An unplugged drive is not an empty folder: keep its photos until it is back.
                report.notices.append(f"folder not reachable, its photos are kept: {root}")
            elif only is None:
                known.update(catalog.known_files(root))
        reachable = [r for r in roots if r not in unreachable]
        targets = None if only is None else _targets(only, reachable)
        if targets is not None:
            known = _known_at(catalog, targets)
        unlisted: dict[str, str] = {}

        def cannot_list(folder: str, exc: OSError) -> None:
            unlisted[folder] = f"folder cannot be read ({one_line(exc, names=False)}); its photos are kept"

        scanned: list[ScannedFile] = []
        found = (scan_folders(reachable, include_skipped=True, on_folder_error=cannot_list) if targets is None
                 else scan_paths(targets, include_skipped=True, on_folder_error=cannot_list))
        for file in found:
            scanned.append(file)
            if control.cancelled:
                return _Plan([], {}, known, 0, unreachable, unlisted)
        seen = {f.path for f in scanned}
        todo: list[ScannedFile] = []
        waiting: set[str] = set()
        for f in scanned:
            old = known.get(f.path)
            if _changed(old, f):
                todo.append(f)
            elif old is not None and old.waiting:  # recorded without the model: embedded now if it loads
                todo.append(f)
                waiting.add(f.path)
        # A folder that cannot be listed is not an empty one: what is known under it stays.
        hidden = tuple(folder_prefix(f) for f in unlisted)
        missing = {p: k for p, k in known.items() if p not in seen and not to_db(p).startswith(hidden)}
        for folder, why in unlisted.items():
            report.notices.append(f"{why}: {folder}")
        catalog.set_folder_problems(unlisted, reachable if targets is None else targets)
        return _Plan(todo, missing, known, len(scanned) - len(todo), unreachable, unlisted, waiting)

    def _embed_all(
        self,
        catalog: Catalog,
        index: VectorIndex,
        model: ImageEncoder | None,
        plan: _Plan,
        emit: ProgressFn,
        control: Control,
        report: IndexReport,
    ) -> None:
        """Read, decode and record every photo of the plan, in batches; model None: without vectors."""
        if self.cluster is not None and model is not None:
            self._embed_on_cluster(self.cluster, catalog, index, model, plan, emit, control, report)
            return
        total = len(plan.todo)
        started = time.monotonic()
        last_save = started
        done = 0
        pool = self._decode_pool(model, report)
        in_flight: deque[tuple[Future[list[_Prepared]], list[ScannedFile]]] = deque()
        ready: deque[_Prepared] = deque()  # a task's files come back together; the batch takes them one by one
        pending = iter(plan.todo)
        max_in_flight = max(2 * self.batch_size, 4 * pool.workers * pool.chunk)
        queued = 0  # files in in_flight
        batch: list[_Prepared] = []

        def flush() -> None:
            nonlocal done
            if batch:
                self._commit_batch(catalog, index, model, batch, plan, report)
                done += len(batch)
                rate = done / max(time.monotonic() - started, 1e-9)
                eta = (total - done) / rate if rate > 0 else None
                emit(Progress("indexing", done, total, report.failed, rate, eta, batch[-1].file.path))
                batch.clear()

        try:
            while True:
                while queued < max_in_flight and not control.cancelled:
                    files = [f for _, f in zip(range(pool.chunk), pending)]
                    if not files:
                        break
                    in_flight.append((pool.submit(files), files))
                    queued += len(files)
                if not ready:
                    if not in_flight:
                        break
                    try:
                        prepared = in_flight[0][0].result()
                    except BrokenProcessPool:
                        # A decode process died (one that cannot start: a main module without the
                        # `if __name__ == "__main__"` guard; a decoder crash; memory). Nothing it had is
                        # committed: the same files are decoded again, in threads, in the same order.
                        pool = self._in_threads(pool, model, report, in_flight)
                        continue
                    in_flight.popleft()
                    queued -= len(prepared)
                    ready.extend(prepared)
                batch.append(ready.popleft())
                images = sum(1 for p in batch if p.decoded)
                if images >= self.batch_size or len(batch) >= 4 * self.batch_size or not (in_flight or ready):
                    flush()
                    last_save = self._between_batches(catalog, index, control, report, last_save)
                    if report.cancelled:
                        break
        finally:
            for future, _ in in_flight:
                future.cancel()
            pool.executor.shutdown(wait=True, cancel_futures=True)

    def _between_batches(self, catalog: Catalog, index: VectorIndex, control: Control, report: IndexReport,
                         last_save: float) -> float:
        """After a committed batch: wait while paused, note a cancel (report.cancelled), and save the
        vector index every INDEX_SAVE_SECONDS so a kill costs little to catch up. Returns the last save's time."""
        control.wait_if_paused()
        if control.cancelled:
            report.cancelled = True
        elif time.monotonic() - last_save > INDEX_SAVE_SECONDS:
            self._save_index(catalog, index)
            return time.monotonic()
        return last_save

    def _in_threads(
        self, broken: _DecodePool, model: ImageEncoder | None, report: IndexReport,
        in_flight: deque[tuple[Future[list[_Prepared]], list[ScannedFile]]],
    ) -> _DecodePool:
        """Decoding moved from a broken process pool to threads: the files sent and not back are sent again."""
        broken.executor.shutdown(wait=True, cancel_futures=True)
        report.notices.append("the decoding processes stopped: the photos were decoded in threads instead (a script "
                              'that indexes on a GPU needs its work under `if __name__ == "__main__":`)')
        threads = self._decode_threads(model)
        files = [f for _, chunk in in_flight for f in chunk]
        in_flight.clear()
        in_flight.extend((threads.submit([f]), [f]) for f in files)
        return threads

    def _decode_pool(self, model: ImageEncoder | None, report: IndexReport) -> _DecodePool:
        """The pool that reads and decodes the plan's files.

        Processes where asked (or, with "auto", where the model runs on a GPU) and the model's
        preprocessing can run without torch; threads otherwise (a forced "processes" says why not)."""
        device = getattr(getattr(model, "device", None), "type", None)
        use_processes = self.decode == "processes" or (self.decode == "auto" and device in GPU_KINDS)
        light = _light_preprocess(model) if model is not None else None
        if use_processes and model is not None and light is None:
            use_processes = False
            if self.decode == "processes":
                report.notices.append("this model's preprocessing needs torch: photos were decoded in threads, "
                                      "not in processes")
        if not use_processes:
            return self._decode_threads(model)
        workers = self._workers_asked or decode_workers_for(device or "cpu", usable_cpus())
        processes = decode_processes(workers, self.home / "catalog.sqlite3", model, light)
        return _DecodePool(processes, workers, PROCESS_CHUNK, lambda files: processes.submit(_decode_files, files))

    def _decode_threads(self, model: ImageEncoder | None) -> _DecodePool:
        threads = ThreadPoolExecutor(self.workers, thread_name_prefix="clipfind-decode")

        def prepare(files: list[ScannedFile]) -> list[_Prepared]:
            return [self._prepare(f, model) for f in files]

        return _DecodePool(threads, self.workers, 1, lambda files: threads.submit(prepare, files))

    def _embed_on_cluster(
        self,
        cluster: Cluster,
        catalog: Catalog,
        index: VectorIndex,
        model: ImageEncoder,
        plan: _Plan,
        emit: ProgressFn,
        control: Control,
        report: IndexReport,
    ) -> None:
        """The plan's photos read, decoded and embedded by the cluster's workers, and recorded here as
        they come back, a transaction per chunk: what the catalog already has is reused exactly as in
        a local run (the workers cannot ask it, so it is asked here, as each file comes back)."""
        total = len(plan.todo)
        started = last_save = time.monotonic()
        done = 0
        # Hashes of the photos gone from their paths: most are moves, which the workers only hash.
        gone = [k.id for k in plan.missing.values() if k.status == "ok" and k.embedded]
        moved = frozenset(p.content_hash for p in catalog.photos(ids=gone)) if gone else frozenset()
        again: list[ScannedFile] = []  # hashed only, as moves, but no longer known: decoded after all

        def chunks() -> Iterator[list[_Prepared]]:
            yield from cluster.prepare(plan.todo, moved)
            if again:
                yield from cluster.prepare(list(again))

        results = chunks()
        try:
            for chunk in results:
                batch: list[_Prepared] = []
                for p in chunk:
                    if p.content_hash is not None and not self._known_here(catalog, p):
                        again.append(p.file)
                        continue
                    batch.append(p)
                if batch:
                    self._commit_batch(catalog, index, model, batch, plan, report)
                    done += len(batch)
                    rate = done / max(time.monotonic() - started, 1e-9)
                    eta = (total - done) / rate if rate > 0 else None
                    emit(ClusterProgress("indexing", done, total, report.failed, rate, eta, batch[-1].file.path,
                                         cluster.workers))
                last_save = self._between_batches(catalog, index, control, report, last_save)
                if report.cancelled:
                    break
        finally:
            results.close()
            model.notices.extend(n for n in cluster.notices if n not in model.notices)

    @staticmethod
    def _known_here(catalog: Catalog, p: _Prepared) -> bool:
        """Settle a worker's file against the catalog as the local threads do before decoding: content
        the catalog has a vector for is reused. False: the worker skipped the decode of a content the
        catalog no longer has (a move already taken by another copy of it), so it must be decoded."""
        assert p.content_hash is not None
        stored = catalog.vector_by_hash(p.content_hash, embedded=True)
        if stored is not None:
            p.known_content, p.stored, p.vector, p.error, p.transient = True, stored, None, None, False
            return True
        return not p.known_content

    def _prepare(self, file: ScannedFile, model: ImageEncoder | None) -> _Prepared:
        """Runs in a worker thread: read once, hash, and decode only content the catalog lacks (without
        the model: content it lacks entirely; with it: content it has no vector for)."""
        embedded = model is not None
        return prepare_file(file, model, lambda h: self._reader().vector_by_hash(h, embedded=embedded))

    def _fingerprint_older(self, catalog: Catalog, emit: ProgressFn, control: Control, report: IndexReport) -> None:
        """Fingerprint the photos embedded before fingerprints existed (schema 2), or whose capture
        record lacks GPS (schema 3), from their files: a decode each, no model. A file changed since
        is left for the next run to index again."""
        todo = catalog.unfingerprinted()
        if not todo or control.cancelled:
            return

        def fingerprint(row: tuple[int, str, str]) -> tuple[int, bytes, str | None] | None:
            file_id, path, stored_hash = row
            try:
                data = read_photo(path)
                if content_hash(data) != stored_hash:
                    return None
                loaded = load_image(data, min_side=FINGERPRINT_SIDE, name=path)
            except (ImageLoadError, OSError):
                return None
            return (file_id, *_fingerprint(loaded))

        started = time.monotonic()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="clipfind-fingerprint") as pool:
            for start in range(0, len(todo), FINGERPRINT_BATCH):
                rows = [r for r in pool.map(fingerprint, todo[start : start + FINGERPRINT_BATCH]) if r is not None]
                catalog.set_fingerprints(rows)
                report.fingerprinted += len(rows)
                done = min(start + FINGERPRINT_BATCH, len(todo))
                rate = done / max(time.monotonic() - started, 1e-9)
                emit(Progress("fingerprinting", done, len(todo), report.failed, rate, (len(todo) - done) / rate,
                              todo[done - 1][1]))
                control.wait_if_paused()
                if control.cancelled:
                    report.cancelled = True
                    return

    def _commit_batch(
        self,
        catalog: Catalog,
        index: VectorIndex,
        model: ImageEncoder | None,
        batch: list[_Prepared],
        plan: _Plan,
        report: IndexReport,
    ) -> None:
        images = [(p, p.tensor) for p in batch if p.tensor is not None]
        vectors = model.encode_images(np.stack([np.asarray(t) for _, t in images])) if images and model else None
        vector_of = {id(p): vectors[i] for i, (p, _) in enumerate(images)} if vectors is not None else {}
        embedded_elsewhere = [p for p in batch if p.vector is not None and not p.known_content]  # cluster workers
        vector_of.update((id(p), p.vector) for p in embedded_elsewhere)
        report.encoded += len(images) + len(embedded_elsewhere)
        new_ids: list[int] = []
        dropped: list[int] = []
        with catalog.transaction():
            for p in batch:
                f = p.file
                if p.error is not None:
                    # A read error may pass without the file changing (permissions given back, a
                    # flaky drive): its row gets a modification time no file has, so it is retried.
                    mtime_ns = RETRY_MTIME_NS if p.transient else f.mtime_ns
                    catalog.put_failure(f.path, f.size, mtime_ns, p.content_hash, p.error, _stamp(f))
                    report.failed += 1
                elif p.known_content:
                    new_ids.extend(self._reuse(catalog, p, plan, report, dropped, embedded=model is not None))
                else:
                    new_ids.append(
                        catalog.put_photo(f.path, f.size, f.mtime_ns, p.content_hash or "", p.width,
                                          p.height, p.taken_at, vector_of.get(id(p)), _stamp(f),
                                          thumb=p.thumb, capture=p.capture)
                    )
                    _count_written(f.path, plan, report)
        # The catalog is committed first: an index that lags is caught up from it on open.
        if new_ids:
            ids, vecs = catalog.vectors(ids=new_ids)
            index.add(ids, vecs)
            # Recorded without a vector (no model in this run): an old vector of that row leaves.
            index.remove(sorted(set(new_ids) - set(ids.tolist())))
        failed_ids = [plan.known[p.file.path].id for p in batch if p.error is not None and p.file.path in plan.known]
        index.remove(failed_ids + dropped)
        index.generation = catalog.generation

    def _reuse(
        self, catalog: Catalog, p: _Prepared, plan: _Plan, report: IndexReport, dropped: list[int],
        *, embedded: bool = True,
    ) -> list[int]:
        """Same bytes as a file the catalog knows: a move keeps its row, a copy reuses its vector.

        A move onto a path the catalog knew (`mv a.jpg b.jpg` over an existing b.jpg) drops b's
        row; its id goes to `dropped`, to leave the index too. embedded: the model runs, so only a
        row with a vector is reused (one that waits for the model is embedded instead); without
        it, any row, its vector or lack of one included.
        """
        f = p.file
        assert p.content_hash is not None
        for file_id, old_path in catalog.ids_with_hash(p.content_hash, embedded=embedded):
            if old_path in plan.missing:
                replaced = catalog.move(file_id, f.path, f.size, f.mtime_ns, _stamp(f))
                if replaced is not None:
                    dropped.append(replaced)
                del plan.missing[old_path]
                report.moved += 1
                return []
        # The only copy may have changed since the worker looked (a.jpg copied to b.jpg, then a.jpg
        # edited, both in one batch): the vector the worker saw still describes these bytes.
        stored = catalog.vector_by_hash(p.content_hash, embedded=embedded) or p.stored
        if stored is None:
            return []
        if f.path in plan.waiting and stored.vector is not None:
            plan.caught_up += 1  # it waited for the model; a copy of it went through it
        elif f.path in plan.known:
            report.updated += 1  # touched, or changed back to content we have seen
        else:
            report.copied += 1
        return [catalog.put_photo(f.path, f.size, f.mtime_ns, p.content_hash, stored.width, stored.height,
                                  stored.taken_at, stored.vector, _stamp(f),
                                  thumb=stored.thumb, capture=stored.capture)]

    # -- helpers --------------------------------------------------------------------------
    def _reader(self) -> Catalog:
        reader = getattr(self._local, "catalog", None)
        if reader is None:
            reader = Catalog(self.home / "catalog.sqlite3", create=False)
            self._local.catalog = reader
            with self._readers_lock:
                self._readers.append(reader)
        return reader

    def _close_readers(self) -> None:
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()

    def _save_index(self, catalog: Catalog, index: VectorIndex) -> None:
        if catalog.model_identity is not None:
            index.save(self.home / INDEX_FILE, catalog.model_identity)


def _targets(only: Sequence[str], roots: list[str]) -> list[str]:
    """The paths of `only` a walk of `roots` would reach, without those inside another one (walked with it)."""
    inside = {os.path.abspath(p) for p in only}
    kept: list[str] = []
    for path in sorted(inside):
        root = next((r for r in roots if _at_or_under(path, r)), None)
        if root is None or hidden_below(path, root):
            continue  # under no reachable folder (an unplugged drive keeps its photos), or never indexed
        if any(parent in inside for parent in _parents(path, root)):
            continue
        kept.append(path)
    return kept


def _known_at(catalog: Catalog, targets: list[str]) -> dict[str, KnownFile]:
    """The catalog's rows at the targets or under them: what an `only` run may find changed or gone.

    A file is looked up by its path alone, so a new photo in a folder of 100k costs one lookup; a
    folder, or a path gone (it may have been one), by the rows under it.
    """
    folders = sorted(t for t in targets if os.path.isdir(t) or not os.path.lexists(t))
    known = catalog.known_files(paths=[t for t in targets if not os.path.isdir(t)])
    for folder in folders:
        if not any(parent in folders for parent in _parents(folder)):  # else its rows came with a folder above
            known.update(catalog.known_files(folder))
    return known


def _at_or_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(os.path.join(folder, ""))


def _parents(path: str, stop: str | None = None) -> Iterator[str]:
    """The folders above `path`, nearest first, up to `stop` (included) or the file system's root."""
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return
        yield parent
        if parent == stop:
            return
        path = parent


def _bind(catalog: Catalog, model: ImageEncoder, *, reembed: bool = False) -> None:
    catalog.bind_model(model.spec.identity, model.dim, model.spec.name, model.spec.pretrained, reembed=reembed)


def _changed(known: KnownFile | None, f: ScannedFile) -> bool:
    """Size and mtime can be set back (`touch -r`) over other bytes; the inode and its ctime
    cannot, so a change there (or a row from before they were kept) means hashing again."""
    if known is None or known.size != f.size or known.mtime_ns != f.mtime_ns:
        return True
    return f.ino is not None and (known.ino != f.ino or known.ctime_ns != f.ctime_ns)


class Preprocessor(Protocol):
    """What prepare_file needs of a model: its input side and its preprocessing (an ImageEncoder has both)."""

    @property
    def image_size(self) -> int: ...

    def preprocess(self, image: Any) -> Any: ...


def prepare_file(
    file: ScannedFile, model: Preprocessor | None, known: Callable[[str], StoredContent | bool | None],
) -> _Prepared:
    """One file of a plan, read once: hashed, and decoded and preprocessed (for `model`, or for the
    fingerprint alone without one) unless `known(hash)` says the catalog has its content already: a
    StoredContent, or True where the caller cannot look it up (a cluster worker, told the hashes of the
    photos gone from their paths). A file that cannot be read costs itself only: the reason is kept
    in `error`. Shared by the local indexer's threads and the cluster's workers (clipfind.cluster)."""
    item = _Prepared(file)
    try:
        if file.skip is not None:
            raise ImageLoadError(file.skip)
        if file.size > MAX_FILE_BYTES:
            raise ImageLoadError(f"file too large ({file.size // 2**20} MiB)")
        data = read_photo(file.path)
        item.content_hash = content_hash(data)
        found = known(item.content_hash)
        if found:
            item.stored = found if isinstance(found, StoredContent) else None
            item.known_content = True
            return item
        # Never decoded smaller than the fingerprint wants: its confirmation is tuned on that size.
        side = FINGERPRINT_SIDE if model is None else max(model.image_size, FINGERPRINT_SIDE)
        loaded = load_image(data, min_side=side, name=file.path)
        if model is not None:
            item.tensor = model.preprocess(loaded.image)
        item.decoded = True
        item.width, item.height, item.taken_at = loaded.width, loaded.height, loaded.taken_at
        item.thumb, item.capture = _fingerprint(loaded)
    except ImageLoadError as exc:
        item.error = str(exc)
    except OSError as exc:
        item.error = f"cannot read file: {exc.strerror or exc}"
        item.transient = True
    except Exception as exc:  # a decoder bug must cost one photo, not the whole run
        item.error = f"unexpected error: {type(exc).__name__}: {exc}"
    return item


# -- decode processes ----------------------------------------------------------------------
# Spawned, so a worker starts from a fresh interpreter: it imports this module (and what it imports:
# numpy, Pillow, sqlite3, never torch) and is handed, once, what it needs to prepare files as a thread
# does. The main process turns nothing back: the numpy tensors stack into the model's batch as they are.


def _light_preprocess(model: ImageEncoder) -> FastPreprocess | None:
    """The model's preprocessing as a torch-free FastPreprocess, or None if it is another transform."""
    # ClipModel keeps it as _transform (open_clip's own transform where no fast equivalent exists);
    # OnnxImageEncoder as _preprocess.
    for name in ("light_preprocess", "_transform", "_preprocess"):
        found = getattr(model, name, None)
        if isinstance(found, FastPreprocess):
            return found
    return None


def decode_processes(
    workers: int, catalog_path: Path, model: ImageEncoder | None, light: FastPreprocess | None,
) -> ProcessPoolExecutor:
    """A pool of `workers` spawned decode processes for _decode_files; model None: fingerprint only."""
    setup = None if model is None or light is None else (model.image_size, light.to_dict())
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_decoder, initargs=(str(catalog_path), setup))


@dataclass(frozen=True)
class _LightModel:
    """A decode process's stand-in for the model: its input side and its numpy preprocessing."""

    image_size: int
    preprocess: FastPreprocess


_decoder: tuple[Catalog, _LightModel | None] | None = None  # in a decode process: its catalog and model


def _start_decoder(catalog_path: str, setup: tuple[int, dict[str, Any]] | None) -> None:
    """A decode process's initializer: its own read-only catalog, and the model's preprocessing."""
    global _decoder
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the main process decides
    light = None if setup is None else _LightModel(setup[0], FastPreprocess.from_dict(setup[1]))
    catalog = Catalog(Path(catalog_path), create=False)
    atexit.register(catalog.close)
    _decoder = (catalog, light)


def _decode_files(files: list[ScannedFile]) -> list[_Prepared]:
    """Runs in a decode process: prepare_file for each file, as a thread does (Indexer._prepare)."""
    assert _decoder is not None, "decode process not started by decode_processes"
    catalog, model = _decoder
    embedded = model is not None
    return [prepare_file(f, model, lambda h: catalog.vector_by_hash(h, embedded=embedded)) for f in files]


def _fingerprint(loaded: LoadedImage) -> tuple[bytes, str | None]:
    """What the catalog stores for the same-photo tier: the thumbnail's bytes and the capture record."""
    return thumbnail(loaded.image).tobytes(), loaded.capture.to_text()


def _stamp(f: ScannedFile) -> FileStamp:
    return FileStamp(f.dev, f.ino, f.ctime_ns)


def _count_written(path: str, plan: _Plan, report: IndexReport) -> None:
    """A photo decoded and written: new, changed, or one that waited for the model and now has a vector."""
    if path in plan.waiting:
        plan.caught_up += 1
    elif path in plan.known:
        report.updated += 1
    else:
        report.added += 1


def _photos(n: int) -> str:
    return f"{n} photo" if n == 1 else f"{n} photos"


def _without_model_notice(why: str, waiting: int) -> str:
    """What a run without the model tells the user, once: what works now, what waits, what to do."""
    waits = "is recorded without it and waits" if waiting == 1 else "are recorded without it and wait"
    return (f"the model could not be loaded: {why.rstrip('.')}. {_photos(waiting)} {waits} for the model. "
            "Duplicates work now "
            "(identical files, and the same photo saved again); search and similar shots need the model: "
            "run `clipfind index` again once it is available.")


def _refuse_partial_reembed(plan: _Plan) -> None:
    """Re-embedding replaces every vector: photos of a folder that cannot be read now would be lost."""
    away = plan.unreachable + sorted(plan.unlisted)
    if away:
        raise ClipfindError(
            f"cannot re-embed while {away[0]} is not reachable: its photos would be dropped; "
            "reconnect it, or `clipfind forget` it first"
        )

