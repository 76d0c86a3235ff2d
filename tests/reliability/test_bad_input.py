"""Bad input at every interface: one clear line on stderr, a non-zero exit, nothing changed on disk.

"Nothing changed" compares a hash of every file in the home before and after (the lock file,
which records the last indexer's pid, aside) and the photo folder's files.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.support import ROOT, TINY_ENV, home_digest, run_cli


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, small_set: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-input")
    folder = root / "Photos"
    folder.mkdir()
    for src in sorted(small_set.iterdir())[:12]:
        shutil.copy2(src, folder / src.name)
    home = root / "home"
    assert run_cli(home, "index", str(folder)).code == 0
    assert run_cli(home, "dupes").code == 0
    other = root / "Other"
    other.mkdir()
    for src in sorted(small_set.iterdir())[12:15]:
        shutil.copy2(src, other / src.name)
    odd = root / "odd"
    odd.mkdir()
    (odd / "notes.jpg").write_text("not a photo")
    (odd / "empty.jpg").write_bytes(b"")
    (odd / "folder.jpg").mkdir()
    return {"home": home, "folder": folder, "other": other, "odd": odd}


@pytest.fixture
def home(base: dict[str, Path], tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(base["home"], target)
    return target


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _expect_refused(home: Path, args: list[str], message: str, photos: Path | None = None) -> None:
    before = home_digest(home)
    tree = _tree(photos) if photos else None
    result = run_cli(home, *args)
    assert result.code != 0, (args, result.stdout)
    assert "Traceback" not in result.stderr
    assert len(result.lines) == 1, (args, result.stderr)
    assert result.lines[0].startswith("clipfind: error:"), result.lines
    assert message.lower() in result.lines[0].lower(), (args, result.lines)
    assert home_digest(home) == before, f"{args} changed the home"
    if photos:
        assert _tree(photos) == tree, f"{args} changed the photos"


BAD_ARGUMENTS = [
    (["search", "x", "-k", "-3"], "must be 1 or more"),
    (["search", "x", "-k", "0"], "must be 1 or more"),
    (["search", "x", "-k", "many"], "not a whole number"),
    (["search", "x", "--min-score", "2"], "between -1 and 1"),
    (["search", "x", "--from", "yesterday"], "not a date"),
    (["search", "x", "--to", "2023-02-30"], "not a date"),
    (["search"], "nothing to search for"),
    (["search", "   "], "nothing to search for"),
    (["search", "--minus", "people"], "nothing to search for"),
    (["search", "a^0"], "bad weight in 'a^0'"),
    (["search", "beach^-1"], "bad weight in 'beach^-1'"),
    (["search", "^2"], "a weight needs a phrase"),
    (["search", "x", "--from", "2023-08-01", "--to", "2023-06-01"], "is after --to"),
    (["search", "x", "--from", "2023-06-01T10:00+02:00"], "no time zone"),
    (["search", "x", "--folder", "/definitely/not/indexed"], "not an indexed folder"),
    (["search", "x", "--folder", ""], "empty path"),
    (["search", "--image", ""], "empty path"),
    (["search", "a", "--minus", "a"], "cancel each other out"),
    (["dupes", "--threshold", "1.5"], "between 0 and 1"),
    (["dupes", "--threshold", "-0.1"], "between 0 and 1"),
    (["dupes", "--threshold", "nan"], "between 0 and 1"),
    (["dupes", "--threshold", "high"], "not a number"),
    (["dupes", "--tier", "fuzzy"], "invalid choice"),
    (["index", "--batch-size", "0"], "must be 1 or more"),
    (["index", "/definitely/not/here"], "folder not found"),
    (["index", ""], "empty path"),
    (["forget", ""], "empty path"),
    (["trash", "--yes", ""], "empty path"),
    (["frobnicate"], "invalid choice"),
    (["not-dupes"], "two or more photos"),
    (["not-dupes", "/not/in/the/catalog.jpg", "/nor/this.jpg"], "not in the catalog"),
    (["search", "x", "--model", "NoSuchModel", "--pretrained", "none"], "Unknown model 'NoSuchModel'"),
    (["trash", "--yes", "/not/in/the/catalog.jpg"], "not in the catalog"),
    (["forget", "/never/indexed"], "not an indexed folder"),
    (["search", "x", "--model", "ViT-B-32", "--pretrained", "none"], "--reembed"),
    (["index", "--model", "NoSuchModel", "--pretrained", "none"], "NoSuchModel"),
    (["search", "--image", "/definitely/not/here.jpg"], "not found"),
]


@pytest.mark.parametrize("args, message", BAD_ARGUMENTS, ids=[" ".join(a)[:40] for a, _ in BAD_ARGUMENTS])
def test_bad_arguments(home: Path, base: dict[str, Path], args: list[str], message: str) -> None:
    _expect_refused(home, args, message, base["folder"])


def test_other_model_adding_a_folder_changes_nothing(home: Path, base: dict[str, Path]) -> None:
    """A run refused for its model must not have added the new folder to the catalog first."""
    _expect_refused(home, ["index", str(base["other"]), "--model", "NoSuchModel", "--pretrained", "none"],
                    "NoSuchModel")
    _expect_refused(home, ["index", str(base["other"]), "--model", "ViT-B-32", "--pretrained", "none"], "--reembed")
    status = run_cli(home, "status", "--json")
    assert str(base["other"]) not in status.stdout


def test_unknown_model_on_a_new_home(tmp_path: Path, base: dict[str, Path]) -> None:
    home = tmp_path / "fresh"
    result = run_cli(home, "index", str(base["other"]), "--model", "NoSuchModel", "--pretrained", "none")
    assert result.code == 1 and len(result.lines) == 1 and "Unknown model" in result.lines[0], result.stderr
    assert "NoSuchModel" not in run_cli(home, "status").stdout
    assert '"folders": []' in run_cli(home, "status", "--json").stdout.replace("\n", "").replace("  ", "")


@pytest.mark.parametrize("name", ["notes.jpg", "empty.jpg", "folder.jpg"])
def test_unreadable_query_photo(home: Path, base: dict[str, Path], name: str) -> None:
    path = base["odd"] / name
    message = f"not a photo file: {path} (a folder)" if path.is_dir() else str(path)
    _expect_refused(home, ["search", "--image", str(path)], message)


def _newer_schema(home: Path) -> None:
    db = sqlite3.connect(home / "catalog.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()


def _garbage(home: Path) -> None:
    (home / "catalog.sqlite3").write_bytes(b"this is not a database, just text\n" * 200)


def _truncated(home: Path) -> None:
    path = home / "catalog.sqlite3"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _header_damaged(home: Path) -> None:
    path = home / "catalog.sqlite3"
    data = bytearray(path.read_bytes())
    data[16:24] = b"\xff" * 8  # page size and format bytes
    path.write_bytes(bytes(data))


def _home_is_a_file(home: Path) -> None:
    shutil.rmtree(home)
    home.write_text("oops")


def _catalog_is_a_folder(home: Path) -> None:
    (home / "catalog.sqlite3").unlink()
    (home / "catalog.sqlite3").mkdir()


BROKEN_HOMES = {
    "newer schema": (_newer_schema, "newer clipfind"),
    "garbage catalog": (_garbage, "catalog"),
    "truncated catalog": (_truncated, "catalog"),
    "damaged header": (_header_damaged, "catalog"),
    "home is a file": (_home_is_a_file, ""),
    "catalog is a folder": (_catalog_is_a_folder, "catalog"),
}


@pytest.mark.parametrize("case", list(BROKEN_HOMES))
@pytest.mark.parametrize("command", [["status"], ["search", "x"], ["index"], ["dupes"]])
def test_broken_home(home: Path, case: str, command: list[str]) -> None:
    damage, message = BROKEN_HOMES[case]
    damage(home)
    if home.is_file():
        before = home.read_bytes()
        result = run_cli(home, *command)
        assert result.code != 0 and len(result.lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert home.read_bytes() == before
        return
    _expect_refused(home, command, message)


def test_real_process_bad_input_is_one_line() -> None:
    """The same through the real command, where argparse would print its usage and a traceback would show."""
    for args in (["search", "x", "-k", "-3"], ["dupes", "--threshold", "7"], ["nonsense"]):
        proc = subprocess.run([sys.executable, "-m", "clipfind.cli", *args], capture_output=True, text=True,
                              env={**os.environ, **TINY_ENV}, cwd=ROOT, timeout=120)
        assert proc.returncode == 2, proc
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("clipfind: error:"), proc.stderr
