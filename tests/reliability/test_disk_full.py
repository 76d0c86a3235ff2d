"""A full disk or a read-only home: indexing stops with one clear line, and nothing is lost.

Faults are injected at each write point (catalog commit, index save, index sidecar, neighbour
cache) after a random number of successful writes; where this machine allows it, a real tiny
tmpfs fills up too, and a read-only bind mount (or chmod, when not root) makes the home read-only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import random
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import faults
from tests.reliability.conftest import IS_ROOT
from tests.reliability.support import catalog_paths, check_home, home_digest, readable_photos, run_cli


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, small_set: Path) -> dict[str, Path]:
    """A home with 30 photos indexed (and its neighbour cache), and 40 more photos waiting."""
    root = tmp_path_factory.mktemp("full")
    folder = root / "Photos"
    folder.mkdir()
    waiting = root / "waiting"
    waiting.mkdir()
    for i, src in enumerate(sorted(small_set.iterdir())[:70]):
        shutil.copy2(src, (folder if i < 30 else waiting) / src.name)
    home = root / "home"
    assert run_cli(home, "index", str(folder), "--batch-size", "8").code == 0
    assert run_cli(home, "dupes", "--json").code == 0
    return {"home": home, "folder": folder, "waiting": waiting}


@pytest.fixture
def setup(base: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    shutil.copytree(base["home"], home)
    folder = tmp_path / "Photos"
    shutil.copytree(base["folder"], folder)
    # the catalog stores absolute paths: point this copy's rows at this copy's folder
    _retarget(home, base["folder"], folder)
    return {"home": home, "folder": folder, "waiting": base["waiting"]}


def _retarget(home: Path, old: Path, new: Path) -> None:
    import sqlite3

    db = sqlite3.connect(home / "catalog.sqlite3")
    with db:
        for table, column in (("files", "path"), ("folders", "path")):
            rows = db.execute(f"SELECT rowid, {column} FROM {table}").fetchall()
            for rowid, raw in rows:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                           (raw.replace(bytes(old), bytes(new), 1), rowid))
    db.close()


def _searchable(home: Path) -> set[str]:
    result = run_cli(home, "search", "a photo", "-k", "1000", "--min-score", "-1", "--json")  # every photo
    assert result.code == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.lines == [], result.lines
    return {hit["path"] for hit in json.loads(result.stdout)}


def _add_waiting(setup: dict[str, Path], count: int = 40) -> None:
    for src in sorted(setup["waiting"].iterdir())[:count]:
        shutil.copy2(src, setup["folder"] / src.name)


@pytest.mark.parametrize("point", ["commit", "index_save", "sidecar"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_write_fault_while_indexing(setup: dict[str, Path], point: str, code: int) -> None:
    home, folder = setup["home"], setup["folder"]
    before_paths = set(catalog_paths(home, "ok"))
    before_index = (home / "vectors.hnsw").read_bytes()
    _add_waiting(setup)
    after = random.randrange(0, 5) if point == "commit" else 0
    fault, disarm = faults.install(point, after=after, code=code)
    try:
        result = run_cli(home, "index", "--batch-size", "4")
    finally:
        disarm()
    assert fault.raised, f"the {point} fault never fired"
    assert result.code == 1, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.lines) == 1, result.lines
    reason = {"commit": "disk is full" if code == errno.ENOSPC else "readonly",
              "index_save": "not written completely",  # hnswlib does not say why
              "sidecar": "No space left on device" if code == errno.ENOSPC else "Read-only file system"}[point]
    assert result.lines[0].startswith("clipfind: error:") and reason in result.lines[0], result.lines
    assert not [p.name for p in home.iterdir() if ".tmp" in p.name], "temp files left behind"

    # what was there is intact and searchable; what was committed before the fault is kept
    state = check_home(home)
    assert not state.problems, state.problems
    now = set(catalog_paths(home, "ok"))
    assert before_paths <= now
    if point == "commit":
        assert len(now) - len(before_paths) <= 4 * after
    else:  # every photo committed; only the index file failed, and the old one is untouched
        assert (home / "vectors.hnsw").read_bytes() == before_index
    assert _searchable(home) == now

    # with space again, the next run finishes the job
    assert run_cli(home, "index").code == 0
    assert set(catalog_paths(home, "ok")) == readable_photos(folder)
    assert not check_home(home, allow_notice=False).problems


def test_neighbour_cache_cannot_be_written(setup: dict[str, Path]) -> None:
    """The neighbour cache is a cache: a full disk costs time, not the answer."""
    home = setup["home"]
    (home / "neighbours.npz").unlink()
    expected = run_cli(home, "dupes", "--json", "--threshold", "0.5")
    assert expected.code == 0
    (home / "neighbours.npz").unlink()
    fault, disarm = faults.install("neighbours")
    try:
        result = run_cli(home, "dupes", "--json", "--threshold", "0.5")
    finally:
        disarm()
    assert fault.raised
    assert result.code == 0 and result.lines == [], result.stderr
    assert json.loads(result.stdout) == json.loads(expected.stdout)
    assert not (home / "neighbours.npz").exists()
    assert not [p.name for p in home.iterdir() if "neighbours" in p.name]


def test_failed_commit_does_not_swallow_later_writes(tmp_path: Path) -> None:
    """After a COMMIT that failed, the same connection's next writes must still be committed."""
    import numpy as np

    from clipfind.catalog import Catalog

    fault, disarm = faults.install("commit", after=3)  # schema, model, a
    try:
        catalog = Catalog(tmp_path / "c.sqlite3")
        catalog.bind_model("m", 4, "m", None)
        catalog.put_photo("/p/a.jpg", 1, 1, "a", 1, 1, None, np.ones(4, np.float32) / 2)
        with pytest.raises(Exception, match="full"):
            catalog.put_photo("/p/b.jpg", 1, 1, "b", 1, 1, None, np.ones(4, np.float32) / 2)
        fault.after = 10**9  # space again
        catalog.put_photo("/p/c.jpg", 1, 1, "c", 1, 1, None, np.ones(4, np.float32) / 2)
    finally:
        disarm()
    other = Catalog(tmp_path / "c.sqlite3")
    assert sorted(p.path for p in other.photos()) == ["/p/a.jpg", "/p/c.jpg"]
    other.close()
    catalog.close()


# -- real file systems ---------------------------------------------------------------------------
@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make `path` read-only: a read-only bind mount as root (who ignores permissions), else chmod."""
    if IS_ROOT:
        try:
            subprocess.run(["mount", "--bind", str(path), str(path)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot bind-mount here ({exc}); root ignores chmod, so no read-only home to test")
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True, capture_output=True)
            yield
        finally:
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)
    else:
        modes = {p: p.stat().st_mode for p in [path, *path.iterdir()]}
        for p, mode in modes.items():
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def test_read_only_home(setup: dict[str, Path], trash_home: Path) -> None:
    home, folder = setup["home"], setup["folder"]
    expected = set(catalog_paths(home, "ok"))
    digest = home_digest(home)
    _add_waiting(setup, 5)
    with _read_only(home):
        assert _searchable(home) == expected
        for args in (["status", "--json"], ["dupes", "--json"], ["search", "--image", sorted(expected)[0], "--json"]):
            result = run_cli(home, *args)
            assert result.code == 0 and result.lines == [], (args, result.stderr)
        for args in (["index"], ["trash", "--yes", sorted(expected)[1]], ["not-dupes", *sorted(expected)[:2]],
                     ["forget", str(folder)]):
            result = run_cli(home, *args)
            assert result.code != 0, args
            assert "Traceback" not in result.stderr and len(result.lines) == 1, (args, result.stderr)
            assert "read" in result.lines[0].lower() or "permission" in result.lines[0].lower(), (args, result.lines)
        assert Path(sorted(expected)[1]).exists(), "trash moved a photo it could not forget"
    assert home_digest(home) == digest


def test_real_full_disk(setup: dict[str, Path], tmp_path: Path) -> None:
    """A 4 MB tmpfs, filled up while indexing: one line, a consistent home, search still works. (4 MB:
    once the filler goes, the home and a new index saved beside the old one must fit.)"""
    if not IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        home = mount / "home"
        # The catalog and index only: the exported model towers (clipfind.embedding.calibrate) would fill 2 MB alone.
        shutil.copytree(setup["home"], home, ignore=shutil.ignore_patterns("onnx", "runtime.json"))
        _add_waiting(setup)
        for extra in sorted(setup["waiting"].iterdir())[:40]:  # more work: copies under new names
            shutil.copy2(extra, setup["folder"] / f"again {extra.name}")
            with open(setup["folder"] / f"again {extra.name}", "ab") as fh:
                fh.write(b"\0" * random.randrange(1, 64))  # different bytes, same picture
        free = shutil.disk_usage(mount).free
        (mount / "filler").write_bytes(b"\0" * max(0, free - 96 * 1024))
        result = run_cli(home, "index", "--batch-size", "4")
        assert "Traceback" not in result.stderr
        if result.code == 0:
            pytest.skip("the index fitted in the space left; nothing to test")
        assert result.code == 1 and len(result.lines) == 1, result.stderr
        assert "full" in result.lines[0] or "space" in result.lines[0], result.lines
        state = check_home(home)
        assert not state.problems, state.problems
        assert _searchable(home) == set(catalog_paths(home, "ok"))
        (mount / "filler").unlink()
        assert run_cli(home, "index").code == 0
        assert set(catalog_paths(home, "ok")) == readable_photos(setup["folder"])
        assert not check_home(home, allow_notice=False).problems
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("count", [0, 1, 700])
def test_index_file_check_matches_hnswlib(tmp_path: Path, count: int) -> None:
    """The save-time check walks hnswlib's file layout: every real file passes, every short one fails.

    (If an hnswlib upgrade changes its layout, this fails first, instead of every save.)
    """
    import numpy as np

    from clipfind.annindex import VectorIndex, _check_hnsw_file

    rng = np.random.default_rng(count)
    index = VectorIndex(16)
    vectors = rng.standard_normal((count, 16)).astype(np.float32)
    index.add(np.arange(1, count + 1), vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-6))
    index.remove(list(range(1, count // 3 + 1)))
    path = tmp_path / "vectors.hnsw"
    index.save(path, "m")
    _check_hnsw_file(path)
    data = path.read_bytes()
    for cut in sorted({0, 1, 95, 96, len(data) // 2, len(data) - 5, len(data) - 1} - {len(data)}):
        if 0 <= cut < len(data):
            (tmp_path / "short.hnsw").write_bytes(data[:cut])
            with pytest.raises(OSError, match="not written completely"):
                _check_hnsw_file(tmp_path / "short.hnsw")
