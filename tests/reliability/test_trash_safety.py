"""Moving duplicates to the trash: only the chosen files, never deleted, safe under kills and changes.

XDG_DATA_HOME points at a temporary folder, so the real trash is never touched.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import shutil
import time
from pathlib import Path

import pytest

import clipfind.trash as trash_module
from clipfind.library import Library
from tests.reliability.support import ForkServer, catalog_paths, run_cli


def _digests(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _trashed(trash: Path) -> collections.Counter[str]:
    """How many files of each content (sha256) are in the trash (send2trash renames on clashes)."""
    files = trash / "files"
    if not files.is_dir():
        return collections.Counter()
    return collections.Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in files.iterdir())


@pytest.fixture
def indexed(photos: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    keep = sorted(photos.glob("*.jpg"))[:120]
    for extra in sorted(photos.glob("*.jpg"))[120:]:
        extra.unlink()
    home = tmp_path / "home"
    assert run_cli(home, "index", str(photos)).code == 0
    return home, keep


def _assert_each_once(home: Path, originals: dict[str, str], trash: Path) -> tuple[set[str], set[str]]:
    """Every original is either in place and in the catalog, or in the trash and not in the catalog.

    Some photos have byte-identical twins, so the trash is checked by count per content.
    """
    catalog = set(catalog_paths(home, "ok"))
    in_place, moved = set(), set()
    gone: collections.Counter[str] = collections.Counter()
    for path, digest in originals.items():
        if os.path.exists(path):
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest, f"{path} was modified"
            assert path in catalog, f"{path} is in place but was dropped from the catalog"
            in_place.add(path)
        else:
            assert path not in catalog, f"{path} is in the trash but still in the catalog"
            gone[digest] += 1
            moved.add(path)
    assert _trashed(trash) == gone, "files missing from both their place and the trash, or in both"
    return in_place, moved


def test_only_the_chosen_files_move_and_nothing_is_deleted(indexed, trash_home: Path) -> None:
    home, files = indexed
    originals = _digests(files)
    chosen = set(random.sample([str(p) for p in files], 25))
    lib = Library(home, "clipfind-tiny", "none")
    try:
        photos = [p for p in lib.catalog.photos() if p.path in chosen]
        report = lib.trash(photos)
    finally:
        lib.close()
    assert {p.path for p in report.moved} == chosen and not report.refused
    in_place, moved = _assert_each_once(home, originals, trash_home)
    assert moved == chosen and in_place == set(originals) - chosen
    assert sum(_trashed(trash_home).values()) == len(chosen)


def test_failing_trash_leaves_the_file(indexed, trash_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, files = indexed
    originals = _digests(files)
    failing = set(random.sample([str(p) for p in files], 10))
    real_send = trash_module._send

    def flaky(path: str) -> None:
        if path in failing:
            raise OSError(f"trash not available for {path}")
        real_send(path)

    monkeypatch.setattr(trash_module.move_to_trash, "__defaults__", (flaky,))
    lib = Library(home, "clipfind-tiny", "none")
    try:
        report = lib.trash(lib.catalog.photos())
    finally:
        lib.close()
    assert {p.path for p, _ in report.refused} == failing
    in_place, _ = _assert_each_once(home, originals, trash_home)
    assert in_place == failing


class _Killed(BaseException):
    """Stands in for SIGKILL at one exact moment: nothing after it runs, not even `except Exception`."""


def test_kill_between_the_move_and_the_catalog(indexed, trash_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The narrowest window: the file is in the trash, the catalog not yet told. The next start settles it."""
    home, files = indexed
    originals = _digests(files)
    real_send = trash_module._send
    sent: list[str] = []

    def send_then_die(path: str) -> None:
        real_send(path)
        sent.append(path)
        if len(sent) == 3:
            raise _Killed()

    monkeypatch.setattr(trash_module.move_to_trash, "__defaults__", (send_then_die,))
    lib = Library(home, "clipfind-tiny", "none")
    with pytest.raises(_Killed):
        lib.trash(lib.catalog.photos()[:10])
    lib.catalog.close()
    monkeypatch.undo()
    Library(home, "clipfind-tiny", "none").close()  # any next start
    _, moved = _assert_each_once(home, originals, trash_home)
    assert moved == set(sent)


@pytest.mark.timeout(300)
def test_random_sigkills_while_trashing(indexed, trash_home: Path, tmp_path: Path, fork_server: ForkServer) -> None:
    from tests.reliability.support import committed_rows, kill_when

    home, files = indexed
    originals = _digests(files)
    rng = random.Random()
    kills = attempts = 0
    took = [0.3]  # seconds a whole trash run takes here (learnt from runs that finished): kills land inside it
    while kills < 6 and attempts < 30:
        attempts += 1
        remaining = [p for p in originals if os.path.exists(p)]
        if len(remaining) < 4:
            break
        batch = rng.sample(remaining, min(len(remaining), 8))
        rows = committed_rows(home)
        started = time.monotonic()
        child = fork_server.start(["--home", str(home), "trash", "--yes", *batch], tmp_path / f"t{attempts}.txt",
                                  env={"XDG_DATA_HOME": str(trash_home.parent)})
        if rng.random() < 0.5:  # after a random number of files went
            gone = rng.randrange(1, len(batch))
            kill_when(child.pid, child.is_alive, until=lambda r=rows - gone: committed_rows(home) <= r)
        else:
            kill_when(child.pid, child.is_alive, delay=rng.uniform(0.0, 0.9 * min(took)))
        child.join()
        kills += child.exitcode == -9
        if child.exitcode == 0:
            took.append(time.monotonic() - started)
        Library(home, "clipfind-tiny", "none").close()  # the next start settles an interrupted move
        _assert_each_once(home, originals, trash_home)
    assert kills >= 3, f"only {kills} of {attempts} trash runs were killed mid-way"


def test_changed_files_are_refused(indexed, trash_home: Path) -> None:
    home, files = indexed
    lib = Library(home, "clipfind-tiny", "none")
    photos = {p.path: p for p in lib.catalog.photos()}
    a, b, c, d, e, f = (str(p) for p in files[:6])
    # same size, same modification time, other bytes: only the content says it changed
    data = bytearray(Path(a).read_bytes())
    data[len(data) // 2] ^= 0xFF
    st = os.stat(a)
    Path(a).write_bytes(bytes(data))
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    with open(c, "ab") as fh:
        fh.write(b"\0")  # grown
    shutil.copy2(files[10], d)  # replaced by another photo
    os.unlink(e)  # gone
    report = lib.trash([photos[p] for p in (a, b, c, d, e, f)])
    lib.close()
    refused = {p.path: reason for p, reason in report.refused}
    assert [p.path for p in report.moved] == [f]
    assert all("changed on disk" in refused[p] for p in (a, b, c, d)), refused
    assert refused[e] == "already gone"
    assert all(os.path.exists(p) for p in (a, b, c, d))
    assert sum(_trashed(trash_home).values()) == 1
