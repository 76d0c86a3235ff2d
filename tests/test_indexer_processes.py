"""Decoding in worker processes (Indexer decode="processes", what "auto" picks on a GPU), forced on this CPU:
the same catalog as threads, torch-free workers, cancel and pause, and threads where processes cannot run."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import clipfind.indexer
from clipfind.embedding.runtime import decode_workers_for
from clipfind.imageload import load_image, read_photo
from clipfind.indexer import Control, Indexer, IndexReport, Progress, _light_preprocess, decode_processes
from clipfind.library import Library
from clipfind.scan import scan_folders
from tests.helpers import FORMATS, catalog_rows, catalog_vectors, copy_photos, needs_shared_data

pytestmark = needs_shared_data

PRECISION = "fp32"  # one runtime mode for both homes: "auto" could measure different ones
ROW = "path, size, mtime_ns, content_hash, width, height, taken_at, status, error, thumb, capture, vec_gen IS NULL"
BROKEN = ["derived/not_an_image.jpg", "derived/zero_bytes.jpg", "derived/truncated_50pct_4.webp",
          "pillow_tests/truncated_image.png"]


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Real photos (PNG, JPEG, EXIF-rotated), a byte-identical copy, and files that cannot be read."""
    folder = tmp_path / "Mixed"
    copy_photos(folder, 4, "kodak24")
    copy_photos(folder / "trip", 3, "skimage_data")
    shutil.copy2(folder / "kodim01.png", folder / "trip" / "copy of kodim01.png")
    (folder / "odd").mkdir()
    for name in [*BROKEN, "exif-samples/jpg/orientation/landscape_6.jpg"]:
        source = FORMATS / name
        if not source.is_file():
            pytest.skip(f"{source} not found")
        shutil.copy2(source, folder / "odd" / source.name)
    return folder


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker counts of the decode process pools the indexer starts (none: it decoded in threads)."""
    started: list[int] = []
    real = clipfind.indexer.decode_processes

    def spy(workers: int, *args: Any) -> ProcessPoolExecutor:
        started.append(workers)
        return real(workers, *args)

    monkeypatch.setattr(clipfind.indexer, "decode_processes", spy)
    return started


def _library(home: Path) -> Library:
    home.mkdir(exist_ok=True)
    return Library(home, "clipfind-tiny", "none", precision=PRECISION)


def _index(home: Path, folder: Path | None, decode: str, **options: Any) -> IndexReport:
    lib = _library(home)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # random weights
            indexer = Indexer(lib.home, lib.spec, lib.image_encoder, batch_size=4, decode=decode)  # type: ignore[arg-type]
            return indexer.run(None if folder is None else [str(folder)], **options)
    finally:
        lib.close()


def test_processes_make_the_catalog_threads_make(tmp_path: Path, mixed_folder: Path, pools: list[int]) -> None:
    threads = _index(tmp_path / "threads", mixed_folder, "threads")
    assert pools == []
    processes = _index(tmp_path / "processes", mixed_folder, "processes")
    assert pools == [decode_workers_for("cpu", len(os.sched_getaffinity(0)))]
    assert (processes.failed, processes.added + processes.copied) == (threads.failed, threads.added + threads.copied)
    assert processes.failed == len(BROKEN) and not processes.notices
    rows, expected = catalog_rows(tmp_path / "processes", ROW), catalog_rows(tmp_path / "threads", ROW)
    assert rows == expected  # paths, stat, hashes, sizes, dates, statuses, error reasons, fingerprints
    assert sorted(r[8] for r in rows.values() if r[7] == "failed") == sorted(
        r[8] for r in expected.values() if r[7] == "failed")
    vectors, reference = catalog_vectors(tmp_path / "processes"), catalog_vectors(tmp_path / "threads")
    assert vectors.keys() == reference.keys() and len(vectors) == len(rows) - len(BROKEN)
    for path, v in vectors.items():
        assert float(v @ reference[path]) / float(np.linalg.norm(v) * np.linalg.norm(reference[path])) > 0.9999

    # Content the catalog has is found by the workers' own catalog readers: a copy reuses its vector.
    shutil.copy2(mixed_folder / "trip" / next(iter(sorted(os.listdir(mixed_folder / "trip")))),
                 mixed_folder / "another copy.png")
    again = _index(tmp_path / "processes", None, "processes")
    assert (again.copied, again.encoded, again.failed, again.added) == (1, 0, 0, 0)


def _torch_in_worker() -> list[str]:
    """Runs in a decode process: the heavy modules it has imported, and proof it decoded there."""
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "open_clip", "torchvision"))
    return [*heavy, *(["decoded here"] if clipfind.indexer._decoder is not None else [])]


def test_decode_processes_never_import_torch_and_prepare_what_a_thread_does(tmp_path: Path) -> None:
    folder = tmp_path / "few"
    copy_photos(folder, 2)
    lib = _library(tmp_path / "home")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # random weights
            model = lib.image_encoder()
        light = _light_preprocess(model)
        assert light is not None  # ClipModel's preprocessing is the numpy one
        files = sorted(scan_folders([str(folder)]), key=lambda f: f.path)
        with decode_processes(1, lib.home / "catalog.sqlite3", model, light) as pool:
            prepared = pool.submit(clipfind.indexer._decode_files, files).result()
            assert pool.submit(_torch_in_worker).result() == ["decoded here"]
    finally:
        lib.close()
    assert [p.file.path for p in prepared] == [f.path for f in files]
    for p in prepared:
        assert p.error is None and p.decoded and type(p.tensor) is np.ndarray
        loaded = load_image(read_photo(p.file.path), min_side=max(model.image_size, 224))
        np.testing.assert_allclose(p.tensor, np.asarray(model.preprocess(loaded.image)), atol=1e-6)


def test_cancel_and_pause_in_processes_then_a_rerun_completes(tmp_path: Path, pools: list[int]) -> None:
    folder = tmp_path / "many"
    copy_photos(folder, 24)
    control = Control()
    paused_once = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.phase == "indexing":
            if p.done >= 4 and not paused_once.is_set():
                paused_once.set()
                control.pause()
                threading.Timer(0.3, control.resume).start()
            if p.done >= 8:
                control.cancel()

    home = tmp_path / "home"
    report = _index(home, folder, "processes", progress=on_progress, control=control)
    assert paused_once.is_set() and report.cancelled
    stopped = sum(1 for r in catalog_rows(home, ROW).values() if r[7] == "ok")
    assert 8 <= stopped < 24
    again = _index(home, None, "processes")
    assert not again.cancelled and again.unchanged == stopped and again.added == 24 - stopped
    assert sum(1 for r in catalog_rows(home, ROW).values() if r[7] == "ok") == 24
    assert len(pools) == 2


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Library, Any]]:
    lib = _library(tmp_path / "home")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield lib, lib.image_encoder()
    lib.close()


def _pool_kind(lib: Library, model: Any, decode: str) -> tuple[type, int, list[str]]:
    report = IndexReport()
    pool = Indexer(lib.home, lib.spec, lambda: model, decode=decode)._decode_pool(model, report)  # type: ignore[arg-type]
    pool.executor.shutdown()  # nothing was sent: no process started
    return type(pool.executor), pool.workers, report.notices


def test_auto_picks_processes_for_a_gpu_model_and_threads_on_a_cpu(
    loaded: tuple[Library, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    lib, model = loaded
    assert model.device.type == "cpu"
    assert _pool_kind(lib, model, "auto")[0] is ThreadPoolExecutor
    assert _pool_kind(lib, None, "auto")[0] is ThreadPoolExecutor  # no model: a run without it
    assert _pool_kind(lib, model, "processes")[0] is ProcessPoolExecutor
    assert _pool_kind(lib, model, "threads")[0] is ThreadPoolExecutor
    monkeypatch.setattr(model, "device", SimpleNamespace(type="cuda"))
    kind, workers, notices = _pool_kind(lib, model, "auto")
    cpus = len(os.sched_getaffinity(0))
    assert (kind, workers, notices) == (ProcessPoolExecutor, decode_workers_for("cuda", cpus), [])
    assert _pool_kind(lib, model, "threads")[0] is ThreadPoolExecutor
    # A preprocessing that needs torch (open_clip's own transform): threads, and a forced choice says so.
    monkeypatch.setattr(model, "_transform", lambda image: image)
    assert _pool_kind(lib, model, "auto") == (ThreadPoolExecutor, min(4, len(os.sched_getaffinity(0))), [])
    kind, _, notices = _pool_kind(lib, model, "processes")
    assert kind is ThreadPoolExecutor and "threads" in notices[0]
    with pytest.raises(ValueError):
        Indexer(lib.home, lib.spec, lambda: model, decode="fork")  # type: ignore[arg-type]


def test_a_process_that_dies_leaves_the_files_to_threads(
    tmp_path: Path, mixed_folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiprocessing

    def dying(workers: int, *args: Any) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=os._exit,
                                   initargs=(3,))

    monkeypatch.setattr(clipfind.indexer, "decode_processes", dying)
    report = _index(tmp_path / "processes", mixed_folder, "processes")
    assert report.notices and "threads" in report.notices[0]
    _index(tmp_path / "threads", mixed_folder, "threads")
    assert catalog_rows(tmp_path / "processes", ROW) == catalog_rows(tmp_path / "threads", ROW)
    assert report.failed == len(BROKEN)



def test_the_cli_asks_for_processes_and_threads(tmp_path: Path, pools: list[int],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`clipfind index --decode processes|threads` reaches the indexer through Library.index_folders."""
    from clipfind.cli import main

    folder = tmp_path / "photos"
    copy_photos(folder, 5)
    common = ["--home", str(tmp_path / "home"), "--model", "clipfind-tiny", "--pretrained", "none",
              "--precision", PRECISION]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights
        assert main([*common, "index", "--decode", "processes", "--workers", "2", "--json", str(folder)]) == 0
        assert pools == [2] and json.loads(capsys.readouterr().out)["added"] == 5
        copy_photos(tmp_path / "more", 3, "skimage_data")
        assert main([*common, "index", "--decode", "threads", "--json", str(tmp_path / "more")]) == 0
    assert pools == [2] and json.loads(capsys.readouterr().out)["added"] == 3  # no second process pool
