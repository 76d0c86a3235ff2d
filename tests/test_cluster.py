"""`clipfind index --cluster local`: Ray workers compute the vectors, the driver keeps the catalog.

The cluster path must give the catalog a local run gives: the same rows, statuses and reasons, and
vectors within cosine 0.9999 (both runs in fp32: the same runtime mode). One Ray instance serves the
whole module (starting one takes seconds); the kill test's subprocess starts its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipfind.catalog import Catalog
from clipfind.errors import ClipfindError
from clipfind.library import Library
from tests.helpers import (
    FORMATS,
    PHOTOS,
    catalog_rows,
    catalog_vectors,
    committed_rows,
    copy_photos,
    needs_shared_data,
)

pytestmark = needs_shared_data

PRECISION = "fp32"  # one runtime mode for both paths: "auto" could measure different ones
ROW = "path, size, mtime_ns, content_hash, width, height, taken_at, status, error, thumb, capture, dev, ino"

MIXED = [  # from ../shared/data/formats: HEIC, EXIF rotations, files that cannot be read
    "exif-samples/heic/samplefilehub.heif",
    "exif-samples/heic/IMG_5195.HEIC",
    "exif-samples/jpg/orientation/landscape_3.jpg",
    "exif-samples/jpg/orientation/landscape_6.jpg",
    "exif-samples/jpg/orientation/portrait_8.jpg",
    "derived/not_an_image.jpg",
    "derived/zero_bytes.jpg",
    "derived/truncated_50pct_4.webp",
    "photoprism/internal/photoprism/testdata/broken/animated-earth.jpg",
    "pillow_heif/heif_corrupted/corrupted.heic",
]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """One small local Ray instance for the module; the cluster path uses the one it finds running."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'clipfind[cluster]'")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'clipfind[cluster]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Real photos, an identical copy in a subfolder, a name that is not UTF-8, HEIC, EXIF-rotated and
    broken files."""
    folder = tmp_path / "Mixed"
    copy_photos(folder, 4, "kodak24")
    copy_photos(folder / "trip", 3, "skimage_data")
    shutil.copy2(folder / "kodim01.png", folder / "trip" / "copy of kodim01.png")
    shutil.copy2(PHOTOS / "sklearn_images" / "flower.jpg", folder / os.fsdecode(b"caf\xe9 latin-1.jpg"))  # not UTF-8
    (folder / "odd").mkdir()
    for name in MIXED:
        shutil.copy2(FORMATS / name, folder / "odd" / Path(name).name)
    return folder


def _library(home: Path) -> Library:
    return Library(home, "clipfind-tiny", "none", precision=PRECISION)


def _index(home: Path, folder: Path, cluster: str | None = None, **options: Any) -> Any:
    lib = _library(home)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # random weights
            return lib.index_folders([str(folder)], cluster=cluster, batch_size=4, **options)
    finally:
        lib.close()


def assert_same_catalog(local: Path, cluster: Path) -> None:
    rows_local, rows_cluster = catalog_rows(local, ROW), catalog_rows(cluster, ROW)
    assert sorted(rows_cluster) == sorted(rows_local)
    for path, row in rows_local.items():
        assert rows_cluster[path] == row, path
    vec_local, vec_cluster = catalog_vectors(local), catalog_vectors(cluster)
    assert sorted(vec_cluster) == sorted(vec_local)
    for path, v in vec_local.items():
        assert float(v @ vec_cluster[path]) >= 0.9999, path
    assert_index_matches_catalog(cluster)


def assert_index_matches_catalog(home: Path) -> None:
    from clipfind.annindex import open_index
    from clipfind.home import INDEX_FILE

    catalog = Catalog(home / "catalog.sqlite3")
    try:
        index, notice = open_index(home / INDEX_FILE, catalog)
        assert notice is None
        assert index.labels == catalog.ok_ids()
    finally:
        catalog.close()


def test_cli_cluster_run_gives_the_local_catalog(
    ray_local: Any, mixed_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from clipfind.cli import main

    local_home, cluster_home = tmp_path / "local", tmp_path / "cluster"
    local = _index(local_home, mixed_folder)
    assert local.failed >= 4 and local.added >= 10  # the folder really is mixed

    monkeypatch.setenv("CLIPFIND_MODEL", "clipfind-tiny")
    monkeypatch.setenv("CLIPFIND_PRETRAINED", "none")
    monkeypatch.setenv("CLIPFIND_PRECISION", PRECISION)
    assert main(["--home", str(cluster_home), "index", "--cluster", "local", "--batch-size", "4",
                 str(mixed_folder)]) == 0
    out = capsys.readouterr().out
    assert f"{local.failed} unreadable" in out
    assert_same_catalog(local_home, cluster_home)

    # Nothing to do: the cluster is not even asked.
    assert main(["--home", str(cluster_home), "index", "--cluster", "local", str(mixed_folder)]) == 0
    assert "0 added" in capsys.readouterr().out


def test_changes_applied_on_the_cluster_as_locally(ray_local: Any, mixed_folder: Path, tmp_path: Path) -> None:
    """Moved, copied, changed, touched and deleted files: the same reports, the same rows."""
    local_home, cluster_home = tmp_path / "local", tmp_path / "cluster"
    _index(local_home, mixed_folder)
    _index(cluster_home, mixed_folder, cluster="local")
    assert_same_catalog(local_home, cluster_home)

    trip = sorted(p for p in (mixed_folder / "trip").iterdir() if not p.name.startswith("copy"))
    (mixed_folder / "kodim02.png").rename(mixed_folder / "trip" / "moved.png")  # moved: hashed only
    shutil.copy2(mixed_folder / "kodim03.png", mixed_folder / "copy.png")  # a copy: its vector reused
    shutil.copyfile(PHOTOS / "kodak24" / "kodim10.png", mixed_folder / "kodim04.png")  # changed in place
    trip[2].unlink()  # deleted
    copy_photos(mixed_folder / "new", 2, "sklearn_images")  # new: china.jpg, and flower.jpg, a copy
    os.utime(trip[0], (1_000_000_000, 1_000_000_000))  # touched

    local = _index(local_home, mixed_folder)
    on_cluster = _index(cluster_home, mixed_folder, cluster="local")
    keys = ("added", "updated", "moved", "copied", "removed", "failed", "unchanged", "encoded")
    assert {k: getattr(on_cluster, k) for k in keys} == {k: getattr(local, k) for k in keys}
    assert (local.moved, local.copied, local.removed, local.added, local.updated) == (1, 2, 1, 1, 2)
    assert_same_catalog(local_home, cluster_home)


def test_progress_shows_the_workers(ray_local: Any, tmp_path: Path) -> None:
    from clipfind.indexer import ClusterProgress

    folder = tmp_path / "Photos"
    copy_photos(folder, 6, "kodak24")
    events: list[Any] = []
    lib = _library(tmp_path / "home")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            report = lib.index_folders([str(folder)], cluster="local", batch_size=2, workers=2, progress=events.append)
    finally:
        lib.close()
    assert (report.added, report.encoded) == (6, 6)
    indexing = [e for e in events if e.phase == "indexing"]
    assert indexing and all(isinstance(e, ClusterProgress) and e.workers == 2 for e in indexing)
    assert indexing[-1].done == indexing[-1].total == 6
    assert events[-1].phase == "done"


def test_cancel_stops_after_the_chunk_and_frees_the_workers(ray_local: Any, tmp_path: Path) -> None:
    """Ctrl+C: the run stops after the chunk in flight, keeps what it committed, and leaves the Ray
    instance it was given (not started by it, so not shut down) free: the next run finishes the folder."""
    from clipfind.records import Control

    folder = tmp_path / "Photos"
    copy_photos(folder, 24, "kodak24")
    control = Control()

    def cancel(p: Any) -> None:
        if p.phase == "indexing":
            control.cancel()

    lib = _library(tmp_path / "home")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            first = lib.index_folders([str(folder)], cluster="local", batch_size=2, progress=cancel, control=control)
            assert first.cancelled and 0 < first.added < 24
            again = lib.index_folders([str(folder)], cluster="local", batch_size=4)
        assert (again.added, again.unchanged) == (24 - first.added, first.added)
        assert lib.catalog.count("ok") == len(lib.catalog.embedded_ids()) == 24
    finally:
        lib.close()
    deadline = time.monotonic() + 30  # the workers leave a moment after their dataset ends
    while ray_local.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_local.available_resources().get("CPU", 0) == 2  # no worker left holding a CPU


def test_a_lost_worker_costs_no_photo(ray_local: Any, tmp_path: Path) -> None:
    """A worker process killed mid-run: Ray restarts it and retries its batch; every photo is indexed once."""
    if not Path("/proc/self/stat").is_file():
        pytest.skip("finds the worker processes through /proc (Linux)")
    folder = tmp_path / "Photos"
    copy_photos(folder, 24, "kodak24")
    copy_photos(folder / "skimage", 29, "skimage_data")
    total = sum(1 for p in folder.rglob("*") if p.is_file())
    killed: list[int] = []

    def kill_a_worker(p: Any) -> None:
        if p.phase == "indexing" and not killed:
            workers = _map_workers(ray_local)
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])

    lib = _library(tmp_path / "home")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            report = lib.index_folders([str(folder)], cluster="local", batch_size=2, workers=2,
                                       progress=kill_a_worker)
        assert killed, "no worker process was found to kill"
        assert (report.added, report.failed, report.encoded) == (total, 0, total)
        assert lib.catalog.count("ok") == len(lib.catalog.embedded_ids()) == total
    finally:
        lib.close()
    assert_index_matches_catalog(tmp_path / "home")


def _map_workers(ray: Any) -> list[int]:
    """The pids of this Ray instance's Ray Data worker actors (children of its raylet)."""
    node = ray._private.worker._global_node
    raylets = {info.process.pid for info in node.all_processes.get("raylet", [])}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if cmdline.startswith(b"ray::MapWorker") and parent in raylets:
            found.append(int(entry.name))
    return sorted(found)


def test_a_worker_that_cannot_find_a_file_says_the_folders_must_be_shared(tmp_path: Path) -> None:
    """On one machine every worker sees every file, so the record of a worker elsewhere is made here."""
    from clipfind.cluster import SharedStorageError, _prepared, _Record
    from clipfind.indexer import _Prepared
    from clipfind.scan import ScannedFile

    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    record = _Record(None, "cannot read file: No such file or directory", True, True, False, False, False,
                     None, None, None, None, None, "worker-7", "")
    with pytest.raises(SharedStorageError, match=r"worker on worker-7 cannot find .*a\.jpg.*same path"):
        _prepared(record, np.zeros(4, np.float32), ScannedFile(str(photo), 1, 0), _Prepared)
    # Gone here too (deleted after the scan): recorded as a local run records it, to retry.
    gone = ScannedFile(str(tmp_path / "gone.jpg"), 1, 0)
    item = _prepared(record, np.zeros(4, np.float32), gone, _Prepared)
    assert (item.error, item.transient) == ("cannot read file: No such file or directory", True)


def test_without_ray_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    from clipfind.cluster import Cluster
    from clipfind.embedding.spec import ModelSpec

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    with pytest.raises(ClipfindError, match=r"pip install 'clipfind\[cluster\]'"):
        Cluster("local", ModelSpec("clipfind-tiny", None), home=home)


def test_killed_driver_resumes_with_every_file_indexed_once(tmp_path: Path) -> None:
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'clipfind[cluster]'")
    folder = tmp_path / "Photos"
    copy_photos(folder, 24, "kodak24")
    copy_photos(folder / "interior", 39, "pexels_interior")
    copy_photos(folder / "skimage", 29, "skimage_data")
    total = sum(1 for p in folder.rglob("*") if p.is_file())
    home = tmp_path / "home"
    env = {**os.environ, "CLIPFIND_MODEL": "clipfind-tiny", "CLIPFIND_PRETRAINED": "none",
           "CLIPFIND_PRECISION": PRECISION}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipfind.cli", "--home", str(home), "index", "--cluster", "local",
         "--batch-size", "2", str(folder)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and committed_rows(home) < 8:
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed: make the folder larger"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        # The driver's local Ray instance: its processes are in the driver's session; end them too.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = committed_rows(home)
    assert 0 < before < total
    proc2 = subprocess.run(
        [sys.executable, "-m", "clipfind.cli", "--home", str(home), "index", "--cluster", "local", "--json",
         str(folder)],
        env=env, capture_output=True, text=True, timeout=400, start_new_session=True,
    )
    assert proc2.returncode == 0, proc2.stderr
    import json

    summary = json.loads(proc2.stdout)
    assert summary["added"] == total - before  # nothing committed before the kill is done again
    assert summary["unchanged"] == before
    catalog = Catalog(home / "catalog.sqlite3")
    try:
        assert catalog.integrity_ok()
        paths = list(catalog.known_files())
        assert len(paths) == len(set(paths)) == total
        assert catalog.count("ok") == total
        assert len(catalog.embedded_ids()) == total
    finally:
        catalog.close()
    assert_index_matches_catalog(home)


