"""Indexing on a Ray cluster: the workers compute the vectors, the driver keeps the catalog.

Only where the vectors are computed changes. The driver (clipfind.indexer, run by `clipfind index
--cluster ADDRESS`) scans and diffs the folders against the catalog exactly as a local run does, and
hands this module the plan's files that need reading: a Ray Dataset of paths. Each worker actor
loads the model once (the same loaders as the local indexer: the ONNX export where the worker's
machine runs one, else the torch model, with the runtime choice measured on that machine), reads
the files itself (the paths must be on storage every worker sees at the same path), and prepares
each one with the local indexer's own code (clipfind.indexer.prepare_file: read once, hash,
decode, fingerprint) before embedding them in batches. The results stream back to the driver,
whose single catalog writer commits them in chunks, so a killed driver loses at most the chunk in
flight and the next run resumes; Ray retries the tasks of a lost worker.

Ray is an optional extra (`pip install 'clipfind[cluster]'`) and is imported only here, only when
a cluster is asked for.

ADDRESS: ``local`` starts a Ray instance on this machine (one worker per CPU; a Ray instance this
process already runs is used as it is); ``auto`` joins the cluster this machine is part of;
``ray://HOST:10001`` joins a cluster through its client port.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import socket
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from clipfind.embedding.runtime import usable_cpus
from clipfind.embedding.spec import ModelSpec
from clipfind.errors import ClipfindError, ModelLoadError, one_line
from clipfind.scan import ScannedFile

if TYPE_CHECKING:
    from clipfind.embedding.encoder import ImageEncoder
    from clipfind.indexer import _Prepared
    from clipfind.records import Vectors

__all__ = ["EXTRA", "LOCAL", "Cluster", "RemoteEncoder", "SharedStorageError"]

EXTRA = "clipfind[cluster]"
LOCAL = "local"
GPU_BATCH_SIZE = 128  # photos per model batch on a GPU worker: CPU batches are too small to fill one
GPU_DECODE_THREADS = 4  # decode threads of a GPU worker (as the local indexer's default)
CALLS = 2  # batches a worker runs at once: one decodes while the other is in the model
MAX_BLOCKS = 2000  # the dataset of paths is cut in at most this many blocks (the unit of work and retry)
WORKER_HOME = "worker"  # in the user cache folder of a worker that cannot write the driver's home
SHARED_STORAGE = (
    "the photo folders must be on storage every worker sees at the same path (a network share mounted "
    "alike on each machine): see the README, \"Big archives\""
)


class SharedStorageError(ClipfindError):
    """A worker cannot find a file the driver sees: the folders are not shared with the workers."""


def import_ray() -> Any:
    """Ray, or a ClipfindError that says what to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (the batch-inference part, installed by ray[data])
    except ImportError as exc:
        raise ClipfindError(
            f"--cluster needs Ray, which is not installed here ({one_line(exc)}): pip install '{EXTRA}'"
        ) from exc
    return ray


@dataclass
class RemoteEncoder:
    """What the driver knows of the model the workers run: enough to bind the catalog to it.

    It is an ImageEncoder by shape only: the tensors and vectors stay on the workers.
    """

    spec: ModelSpec
    dim: int
    image_size: int
    notices: list[str] = field(default_factory=list)  # the indexer reports these (the cluster's own go there)

    def preprocess(self, image: Any) -> Any:
        raise NotImplementedError("the workers preprocess the photos")

    def encode_images(self, batch: Any) -> Vectors:
        raise NotImplementedError("the workers embed the photos")


class Cluster:
    """A Ray cluster, joined on first use (a run with nothing to embed never starts Ray).

    Args:
        address: ``local``, ``auto`` or ``ray://HOST:PORT``.
        spec: the model the workers load.
        home: the driver's home; a worker that can write it (the same machine, or a shared home)
            keeps its measured runtime choice and ONNX export there, else in its own user cache
            folder (~/.cache/clipfind/worker on Linux).
        device: where each worker runs the model (default: a GPU where the cluster has GPUs, else the
            CPU).
        precision: how the image encoder runs (clipfind.embedding; "auto" measures per worker machine).
        batch_size: photos per model batch on a CPU worker (a GPU worker takes GPU_BATCH_SIZE or more).
        workers: worker actors (default: one per GPU where the cluster has GPUs, else one per CPU).
    """

    def __init__(
        self,
        address: str,
        spec: ModelSpec,
        *,
        home: Path,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        workers: int | None = None,
    ) -> None:
        if not address:
            raise ClipfindError("--cluster needs an address: local, auto or ray://HOST:10001")
        if importlib.util.find_spec("ray") is None:  # said at once, not after the scan
            import_ray()
        self.address = address
        self.spec = spec
        self.home = home
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.workers = workers or 0  # settled on connect
        self.gpus = 0.0
        self.notices: list[str] = []  # the workers' one-line news (a runtime measured), once each
        self._ray: Any = None
        self._started = False  # this object started Ray, so it shuts it down

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        if self._ray is not None:
            return
        ray = import_ray()
        # Ray's own notes (a local instance's token, Ray Data's plans and stats) are not the user's
        # business: the indexer draws the bar and reports; errors still show.
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.ERROR}
            if self.address == LOCAL:
                options["num_cpus"] = usable_cpus()
            try:
                ray.init(address=self.address, **options)
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError: Ray's own wording
                raise ClipfindError(f"cannot join the Ray cluster at {self.address}: {one_line(exc)}") from exc
            self._started = True
        self._ray = ray
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the indexer draws the bar
        context.print_on_execution_start = False
        context.enable_auto_log_stats = False
        resources = ray.cluster_resources()
        self.gpus = float(resources.get("GPU", 0.0))
        if not self.workers:
            self.workers = int(self.gpus) if self.gpus >= 1 else max(1, int(resources.get("CPU", 1)))

    def close(self) -> None:
        if self._ray is not None and self._started:
            self._ray.shutdown()
        self._ray = None
        self._started = False

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work ------------------------------------------------------------------------------------
    def load_encoder(self) -> RemoteEncoder:
        """Join the cluster and load the model once on a worker: its dimension binds the catalog, and
        weights the workers cannot load stop the run before any photo is read."""
        self.connect()
        ray = self._ray
        describe = ray.remote(num_cpus=1, num_gpus=1 if self._on_gpu else 0, max_retries=1)(_describe)
        try:
            dim, image_size, failure = ray.get(describe.remote(self.spec.name, self.spec.pretrained,
                                                               str(self.home), self._device, self.precision))
        except ray.exceptions.RayError as exc:  # the worker itself died, or clipfind is not installed there
            failure = one_line(exc)
        if failure is not None:
            raise ClipfindError(f"the cluster's workers cannot load the model: {failure}")
        return RemoteEncoder(self.spec, int(dim), int(image_size))

    def prepare(self, files: Sequence[ScannedFile], known: frozenset[str] = frozenset()) -> Iterator[list[_Prepared]]:
        """The files read, prepared and embedded by the workers, a batch at a time as they finish
        (in no set order). `known`: content hashes the catalog has vectors for (the photos gone from
        their paths, likely moved), which the workers hash but do not decode.

        Raises SharedStorageError when a worker cannot find a file this machine sees.
        """
        from clipfind.indexer import _Prepared

        if not files:
            return
        self.connect()
        ray = self._ray
        # Paths as bytes: a name that is not UTF-8 (os.fsdecode's surrogates) cannot cross Arrow as text.
        rows = [{"i": i, "path": os.fsencode(f.path), "size": f.size, "skip": _bytes(f.skip or "")}
                for i, f in enumerate(files)]
        batch_size = max(self.batch_size, GPU_BATCH_SIZE) if self._on_gpu else self.batch_size
        blocks = max(1, min(MAX_BLOCKS, -(-len(rows) // batch_size)))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        # A CPU worker's share of the CPUs runs its decode threads and its model; a GPU worker asks
        # one CPU and decodes with a few threads, so the GPU is not kept waiting.
        cpus = 1 if self._on_gpu else max(1, int(ray.cluster_resources().get("CPU", 1)) // self.workers)
        threads = GPU_DECODE_THREADS if self._on_gpu else cpus
        settings = _Settings(self.spec.name, self.spec.pretrained, str(self.home), self._device, self.precision,
                             known, threads)
        dataset = dataset.map_batches(
            _Embedder,
            fn_constructor_args=(settings,),
            batch_size=batch_size,
            batch_format="numpy",
            # As the local indexer's decode threads run ahead of its model.
            compute=ray.data.ActorPoolStrategy(size=min(self.workers, blocks), max_concurrent_calls_per_actor=CALLS,
                                               enable_true_multi_threading=CALLS > 1),
            num_cpus=cpus,
            num_gpus=1 if self._on_gpu else 0,
        )
        for out in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            chunk: list[_Prepared] = []
            for i, record, vector in zip(out["i"], out["record"], out["vector"], strict=True):
                r: _Record = pickle.loads(record)
                self.notices.extend(n for n in r.notices.split("\n") if n and n not in self.notices)
                chunk.append(_prepared(r, vector, files[int(i)], _Prepared))
            yield chunk

    @property
    def _on_gpu(self) -> bool:
        if self.device is None:
            return self.gpus >= 1
        return self.device.startswith("cuda")

    @property
    def _device(self) -> str | None:
        return "cuda" if self._on_gpu and self.device is None else self.device


# -- on the workers ------------------------------------------------------------------------------
def _load_encoder(name: str, pretrained: str | None, home: str, device: str | None, precision: str) -> ImageEncoder:
    """The image encoder a worker runs: as the local indexer's (Library.image_encoder), the ONNX
    export where this machine runs one, else the torch model, which measures and exports."""
    from clipfind.embedding.onnx import open_exported
    from clipfind.embedding.torch_model import load_model

    spec = ModelSpec(name, pretrained)
    folder = _worker_home(Path(home))
    return open_exported(spec, folder, device, precision) or load_model(spec, device, precision=precision,
                                                                        home=folder)


def _worker_home(home: Path) -> Path:
    """The driver's home where this worker can write it (it keeps the choice per machine), else a
    folder of this machine's own."""
    if home.is_dir() and os.access(home, os.W_OK):
        return home
    import platformdirs

    own = Path(platformdirs.user_cache_dir("clipfind", appauthor=False)) / WORKER_HOME
    try:
        own.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home on the worker: measured again by each new worker
        own = Path(tempfile.gettempdir()) / "clipfind" / WORKER_HOME
        own.mkdir(parents=True, exist_ok=True)
    return own


def _describe(
    name: str, pretrained: str | None, home: str, device: str | None, precision: str,
) -> tuple[int, int, str | None]:
    """The model's dimension and input size, or why this worker cannot load it (one line)."""
    try:
        model = _load_encoder(name, pretrained, home, device, precision)
    except ModelLoadError as exc:
        return 0, 0, str(exc)
    return model.dim, model.image_size, None


class _Settings(NamedTuple):
    name: str
    pretrained: str | None
    home: str
    device: str | None
    precision: str
    known: frozenset[str]  # content hashes to hash only (moves): the driver reuses their vectors
    threads: int  # this actor's share of its machine's CPUs


class _Embedder:
    """A worker actor: one model, loaded once; a batch of paths in, per file its record out."""

    def __init__(self, s: _Settings) -> None:
        os.environ["OMP_NUM_THREADS"] = str(s.threads)  # the model's threads: this actor's share of the CPUs
        self.model = _load_encoder(s.name, s.pretrained, s.home, s.device, s.precision)
        self.known = s.known
        self.pool = ThreadPoolExecutor(max(1, s.threads), thread_name_prefix="clipfind-decode")
        self.host = socket.gethostname()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from clipfind.indexer import prepare_file

        files = [ScannedFile(os.fsdecode(bytes(p)), int(s), 0, _text(k) or None) for p, s, k in
                 zip(batch["path"], batch["size"], batch["skip"], strict=True)]
        items = list(self.pool.map(lambda f: prepare_file(f, self.model, lambda h: h in self.known), files))
        images = [i for i, p in enumerate(items) if p.tensor is not None]
        embedded = set(images)
        vectors = np.zeros((len(items), self.model.dim), dtype=np.float32)
        if images:
            vectors[images] = self.model.encode_images(np.stack([np.asarray(items[i].tensor) for i in images]))
        notices = "\n".join(self.model.notices)
        self.model.notices.clear()
        records = [
            pickle.dumps(_Record(p.content_hash, p.error, p.transient,
                                 p.error is not None and p.transient and not os.path.lexists(p.file.path),
                                 p.known_content, p.decoded, i in embedded, p.width, p.height, p.taken_at,
                                 p.thumb, p.capture, self.host, notices if i == 0 else ""))
            for i, p in enumerate(items)
        ]
        return {"i": batch["i"], "record": _objects(records), "vector": vectors}


class _Record(NamedTuple):
    """What a worker found of one file (pickled: Arrow would turn a column of Nones into NaNs)."""

    content_hash: str | None
    error: str | None
    transient: bool
    absent: bool  # the worker cannot find the file (a path not shared with it, or a file just deleted)
    known: bool
    decoded: bool
    embedded: bool
    width: int | None
    height: int | None
    taken_at: str | None
    thumb: bytes | None
    capture: str | None
    host: str
    notices: str


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(data: Any) -> str:
    return bytes(data).decode("utf-8", "surrogateescape")


def _objects(values: Any) -> np.ndarray:
    out = list(values)
    array = np.empty(len(out), dtype=object)
    array[:] = out
    return array


def _prepared(r: _Record, vector: np.ndarray, file: ScannedFile, prepared: type[_Prepared]) -> _Prepared:
    """One worker's record of a file as the local indexer's own (`_Prepared`), its vector attached."""
    if r.absent and os.path.exists(file.path):
        raise SharedStorageError(f"a worker on {r.host} cannot find {file.path}: {SHARED_STORAGE}")
    item = prepared(file)
    item.content_hash, item.error, item.transient = r.content_hash, r.error, r.transient
    item.known_content, item.decoded = r.known, r.decoded
    item.width, item.height, item.taken_at = r.width, r.height, r.taken_at
    item.thumb, item.capture = r.thumb, r.capture
    if r.embedded:
        item.vector = np.array(vector, dtype=np.float32)
    return item
