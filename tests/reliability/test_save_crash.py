"""A crash while saving the index or the catalog, and damaged cache files, found at the next start.

Each case starts from a real indexed home and leaves it as a kill or a bad disk would: temp
files next to the real ones, an index newer than its sidecar, truncated or bit-flipped files,
a missing index, an index older or newer than the catalog, a damaged neighbour cache. The CLI
must then work, say at most one line about it, never show a traceback, and repair the home.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tests.reliability.support import check_home, run_cli

INDEX = "vectors.hnsw"
SIDECAR = "vectors.hnsw.json"
NEIGHBOURS = "neighbours.npz"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, small_set: Path) -> dict[str, Path]:
    """Two states of one home: after indexing 30 photos, and after 10 more (each a full copy)."""
    base = tmp_path_factory.mktemp("saved")
    folder = base / "Photos"
    folder.mkdir()
    files = sorted(small_set.iterdir())
    for src in files[:30]:
        shutil.copy2(src, folder / src.name)
    home = base / "home"
    assert run_cli(home, "index", str(folder), "--batch-size", "8").code == 0
    assert run_cli(home, "dupes", "--json").code == 0  # writes the neighbour cache
    first = base / "first"
    shutil.copytree(home, first)
    for src in files[30:40]:
        shutil.copy2(src, folder / src.name)
    (folder / sorted(folder.iterdir())[0].name).unlink()
    assert run_cli(home, "index", "--batch-size", "8").code == 0
    assert run_cli(home, "dupes", "--json").code == 0
    return {"first": first, "second": home, "folder": folder}


@pytest.fixture
def home(indexed: dict[str, Path], tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(indexed["second"], target)
    return target


def _search_all(home: Path) -> set[str]:
    result = run_cli(home, "search", "anything", "-k", "1000", "--json")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return {hit["path"] for hit in json.loads(result.stdout)}


def _expect_repaired(home: Path, expected: set[str], *, notice: str | None) -> None:
    """One search: right results and at most the expected one-line notice; a second: no notice."""
    result = run_cli(home, "search", "anything", "-k", "1000", "--json")
    assert result.code == 0 and "Traceback" not in result.stderr, result.stderr
    assert {hit["path"] for hit in json.loads(result.stdout)} == expected
    assert len(result.lines) <= 1, result.lines
    if notice is not None:
        assert len(result.lines) == 1 and notice in result.lines[0] and "rebuilt" in result.lines[0], result.lines
    again = run_cli(home, "search", "anything", "-k", "1000", "--json")
    assert again.code == 0 and again.lines == [], f"not repaired on disk: {again.lines}"
    dupes = run_cli(home, "dupes", "--json")
    assert dupes.code == 0 and "Traceback" not in dupes.stderr, dupes.stderr
    state = check_home(home, allow_notice=False)
    assert not state.problems, state.problems


@pytest.fixture
def expected(indexed: dict[str, Path]) -> set[str]:
    return {str(p) for p in indexed["folder"].iterdir()}


def test_baseline_is_clean(home: Path, expected: set[str]) -> None:
    _expect_repaired(home, expected, notice=None)


def test_kill_before_rename_leaves_temp_files(home: Path, expected: set[str], indexed: dict[str, Path]) -> None:
    # A kill while writing: half-written temp files beside intact real ones.
    (home / f"{INDEX}.tmp").write_bytes((home / INDEX).read_bytes()[:1000])
    (home / f"{SIDECAR}.tmp").write_text('{"format": 1, "gen')
    (home / "neighbours.npz.tmp.npz").write_bytes(b"PK\x03\x04garbage")
    _expect_repaired(home, expected, notice=None)
    photo = indexed["folder"] / "new.jpg"
    shutil.copy2(sorted(indexed["folder"].iterdir())[0], photo)
    try:
        assert run_cli(home, "index").code == 0
    finally:
        photo.unlink()
    leftovers = [p.name for p in home.iterdir() if ".tmp" in p.name]
    assert leftovers == [], f"temp files left behind by a killed save: {leftovers}"


def test_kill_between_index_and_sidecar_rename(home: Path, expected: set[str], indexed: dict[str, Path]) -> None:
    # The new index was renamed into place, the sidecar still describes the old one.
    shutil.copy2(indexed["first"] / SIDECAR, home / SIDECAR)
    _expect_repaired(home, expected, notice="damaged")


def test_old_index_with_new_sidecar(home: Path, expected: set[str], indexed: dict[str, Path]) -> None:
    shutil.copy2(indexed["first"] / INDEX, home / INDEX)
    _expect_repaired(home, expected, notice="damaged")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.999, None])
def test_truncated_index(home: Path, expected: set[str], fraction: float | None) -> None:
    data = (home / INDEX).read_bytes()
    keep = int(len(data) * (fraction if fraction is not None else random.random()))
    (home / INDEX).write_bytes(data[:keep])
    _expect_repaired(home, expected, notice="damaged")


@pytest.mark.parametrize("flips", [1, 3])
def test_bit_flipped_index(home: Path, expected: set[str], flips: int) -> None:
    data = bytearray((home / INDEX).read_bytes())
    for _ in range(flips):
        data[random.randrange(len(data))] ^= 1 << random.randrange(8)
    (home / INDEX).write_bytes(bytes(data))
    _expect_repaired(home, expected, notice="damaged")


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"format": 1}', b"\xff\xfe\x00garbage",
                                     b'{"format": 1, "dim": "x", "model": 3, "generation": null, '
                                     b'"deleted": 7, "checksum": 0, "count": 0}'])
def test_damaged_sidecar(home: Path, expected: set[str], content: bytes) -> None:
    (home / SIDECAR).write_bytes(content)
    _expect_repaired(home, expected, notice="damaged")


def test_missing_sidecar(home: Path, expected: set[str]) -> None:
    (home / SIDECAR).unlink()
    _expect_repaired(home, expected, notice="rebuilt")


def test_missing_index(home: Path, expected: set[str]) -> None:
    (home / INDEX).unlink()
    _expect_repaired(home, expected, notice="missing")


def test_stale_index_is_brought_up_to_date(home: Path, expected: set[str], indexed: dict[str, Path]) -> None:
    # A kill before the final save: the index on disk is from an earlier run; the catalog is newer.
    for name in (INDEX, SIDECAR):
        shutil.copy2(indexed["first"] / name, home / name)
    result = run_cli(home, "search", "anything", "-k", "1000", "--json")
    assert result.code == 0 and "Traceback" not in result.stderr and len(result.lines) <= 1
    assert {hit["path"] for hit in json.loads(result.stdout)} == expected
    assert not check_home(home).problems


def test_index_newer_than_catalog(home: Path, indexed: dict[str, Path]) -> None:
    # The catalog went back in time (restored from a backup, or lost its last commits) while the
    # index kept vectors of rows the catalog no longer has: they must not be trusted.
    for name in ("catalog.sqlite3",):
        shutil.copy2(indexed["first"] / name, home / name)
    for extra in home.glob("catalog.sqlite3-*"):
        extra.unlink()
    state = check_home(home)
    assert not state.problems, state.problems
    assert state.notice and "rebuilt" in state.notice


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "wrong-shape"])
def test_damaged_neighbour_cache(home: Path, damage: str) -> None:
    path = home / NEIGHBOURS
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        flipped = bytearray(data)
        flipped[random.randrange(len(flipped))] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif damage == "garbage":
        path.write_bytes(random.randbytes(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        import numpy as np

        with np.load(path) as old:
            fields = {k: old[k] for k in old.files}
        fields["neighbours"] = fields["neighbours"][:, :3].T.copy()
        np.savez(path.with_suffix(""), **fields)
    before = run_cli(home, "dupes", "--json", "--threshold", "0.5")
    assert before.code == 0 and "Traceback" not in before.stderr, before.stderr
    assert before.lines == []
    json.loads(before.stdout)
