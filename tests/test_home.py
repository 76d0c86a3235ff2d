from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clipfind.errors import LockedError
from clipfind.home import WriterLock, atomic_write, remove_temp_files, resolve_home
from tests.helpers import ROOT


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFIND_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_home() == tmp_path / "env"
    monkeypatch.delenv("CLIPFIND_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_home() == tmp_path / "xdg" / "clipfind"


def test_second_writer_refused_until_first_releases(tmp_path: Path) -> None:
    with WriterLock(tmp_path):
        with pytest.raises(LockedError, match="already indexing"):
            WriterLock(tmp_path).acquire()
    with WriterLock(tmp_path) as again:
        assert again.held


# -- atomic_write -----------------------------------------------------------------------------
def test_atomic_write_replaces_whole_files_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "a.bin.json"
    first.write_text("old")
    with atomic_write(first, second) as (tmp_first, tmp_second):
        assert tmp_first.name == first.name and tmp_first.parent != tmp_path
        tmp_first.write_text("new")
        tmp_second.write_text("{}")
        assert first.read_text() == "old" and not second.exists()  # nothing visible until the end
    assert first.read_text() == "new" and second.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.bin.json"]  # no staging left


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "runtime.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["runtime.json"]


def test_atomic_write_refuses_files_in_different_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError), atomic_write(tmp_path / "a", tmp_path / "sub" / "b"):
        pass


# -- remove_temp_files --------------------------------------------------------------------------
# Every saver of the home in a process that dies before its renames: each leaves its temp files
# as a kill would (os.replace fails; the clean-up that a live process would do never runs).
KILLED_SAVES = r"""
import os, shutil, sys
from pathlib import Path

import numpy as np
import torch

from clipfind.annindex import VectorIndex
from clipfind.dupes import NeighbourGraph
from clipfind.embedding import calibrate, onnx, runtime
from clipfind.embedding.spec import ModelSpec
from clipfind.library import _save_graph

home = Path(sys.argv[1])
exports = home / "onnx"
calibrate.export_onnx(torch.nn.Linear(64, 64), torch.zeros(2, 64), exports / "made.onnx", "x")  # a real one


def killed(*args, **kwargs):
    raise RuntimeError("killed before the rename")


os.replace = killed
shutil.rmtree = lambda *args, **kwargs: None
index = VectorIndex(4)
index.add(np.arange(3, dtype=np.int64), np.eye(3, 4, dtype=np.float32))
graph = NeighbourGraph(np.arange(2, dtype=np.int64), np.zeros((2, 1), np.int64), np.zeros((2, 1), np.float32))
saves = {
    "index and sidecar": lambda: index.save(home / "vectors.hnsw", "m"),
    "neighbour graph": lambda: _save_graph(home / "neighbours.npz", graph, 1, "m"),
    "runtime choice": lambda: runtime.save_choice(home, "key", runtime.Choice("fp32")),
    "export info": lambda: onnx.save_export_info(exports / "made.onnx", ModelSpec("m", None), 4),
    "export and its weights": lambda: calibrate.export_onnx(
        torch.nn.Linear(64, 64), torch.zeros(2, 64), exports / "other.onnx", "x"),
    "quantised export": lambda: calibrate.quantise(exports / "made.onnx", exports / "made.int8.onnx"),
}
for name, save in saves.items():
    try:
        save()
    except RuntimeError:
        continue
    sys.exit(f"{name}: saved without its rename")
os._exit(0)
"""
# What earlier versions left when killed mid-save (a home outlives upgrades).
OLD_TEMP_FILES = ["vectors.hnsw.tmp", "vectors.hnsw.json.tmp", "neighbours.npz.tmp.npz", "neighbours.npz.123.tmp",
                  "runtime.json.123.tmp", "onnx/made.onnx.123.tmp", "onnx/.export-abc123/made.onnx"]
REAL_FILES = ["catalog.sqlite3", "catalog.sqlite3-wal", "catalog.sqlite3.damaged-20250101-120000", "indexer.lock",
              "vectors.hnsw", "vectors.hnsw.json", "neighbours.npz", "runtime.json", "onnx/made.json",
              "onnx/made.int8.onnx", "onnx/bpe_simple_vocab_16e6.txt.gz"]


def _tree(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*")}


@pytest.mark.slow
def test_remove_temp_files_knows_every_temp_file_the_code_makes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "onnx").mkdir(parents=True)
    for name in REAL_FILES:
        (home / name).write_text("real")
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVES, str(home)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    real = set(REAL_FILES) | {"onnx", "onnx/made.onnx", "onnx/made.onnx.data"}
    staged = {p.name for p in home.iterdir() if p.name.endswith(".tmp")} | {
        p.name for p in (home / "onnx").iterdir() if p.name.endswith(".tmp")}
    assert len(staged) == 6, _tree(home)  # one staging folder per interrupted save
    assert {p.read_text() for p in (home / name for name in REAL_FILES)} == {"real"}  # nothing replaced
    for name in OLD_TEMP_FILES:
        (home / name).parent.mkdir(exist_ok=True)
        (home / name).write_bytes(b"half")

    remove_temp_files(home)

    assert _tree(home) == real


def test_remove_temp_files_spares_a_save_in_progress(tmp_path: Path) -> None:
    """A process without the lock (a search saving its graph cache, exporting a tower) may be
    writing while an indexer starts: its temp files are not pulled from under it."""
    with atomic_write(tmp_path / "neighbours.npz") as mine:
        mine.write_bytes(b"being written")
        remove_temp_files(tmp_path)
        assert mine.read_bytes() == b"being written"
    assert (tmp_path / "neighbours.npz").read_bytes() == b"being written"
