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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    assert refused[e] == "is already gone"
    assert all(os.path.exists(p) for p in (a, b, c, d))
    assert sum(_trashed(trash_home).values()) == 1


def test_disk_full_after_the_move_reports_it_moved(indexed, trash_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file reached the trash, then the catalog could not be written: report it as moved, with a
    notice, and let the journal mark settle the catalog on the next start."""
    import sqlite3

    from clipfind.catalog import Catalog

    home, files = indexed
    originals = _digests(files)
    lib = Library(home, "clipfind-tiny", "none")
    photo = lib.catalog.photos()[0]

    def full(self: Catalog, paths: object) -> list[int]:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Catalog, "remove_paths", full)
    report = lib.trash([photo])
    monkeypatch.undo()
    assert [p.path for p in report.moved] == [photo.path] and not report.refused
    assert "could not be updated" in report.notices[0]
    assert lib.catalog.trash_pending() == [photo.path]  # the journal says the move was under way
    lib.close()
    Library(home, "clipfind-tiny", "none").close()
    _, moved = _assert_each_once(home, originals, trash_home)
    assert moved == {photo.path}


# --- property: whatever happens on disk between grouping and clean-up, a group keeps its photo ---

_OPS = ("delete", "rename", "symlink", "swap", "overwrite", "nothing")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 3), min_size=2, max_size=5),
    aliases=st.lists(st.integers(0, 20), max_size=2),
    edges=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.floats(0.9, 1.0)), max_size=6),
    ops=st.lists(st.tuples(st.sampled_from(_OPS), st.integers(0, 20), st.integers(0, 20)), max_size=5),
    picks=st.one_of(st.none(), st.lists(st.integers(0, 20), max_size=8)),
    include_similar=st.booleans(),
)
def test_every_group_keeps_its_photo_whatever_changed_on_disk(
    tmp_path: Path, sizes, aliases, edges, ops, picks, include_similar
) -> None:
    import tempfile

    import numpy as np

    from clipfind.catalog import Catalog, FileStamp
    from clipfind.dupes import build_graph, find_duplicates
    from clipfind.imageload import content_hash

    root = Path(tempfile.mkdtemp(dir=tmp_path))
    folder, trash = root / "pics", root / "trash"
    folder.mkdir()
    trash.mkdir()
    cat = Catalog(root / "c.sqlite3")
    cat.bind_model("m", 4, "m", None)
    files: list[Path] = []
    vectors = np.eye(4, dtype=np.float32)
    for content, copies in enumerate(sizes):
        for copy in range(copies):
            path = folder / f"c{content}_{copy}.jpg"
            path.write_bytes(f"content {content}".encode() * 50)
            files.append(path)
    for i in aliases:  # a second path to one of the files, indexed as its own row
        target = files[i % len(files)]
        link = folder / f"link{len(files)}.jpg"
        if not link.exists():
            link.symlink_to(target)
            files.append(link)
    for path in files:
        st_ = path.stat()
        data = path.read_bytes()
        content = int(data.split(b" ")[1][:1])
        # Links are stored without their identity now and then, as an older catalog would hold them.
        stamp = FileStamp() if path.is_symlink() and content % 2 else FileStamp(st_.st_dev, st_.st_ino, st_.st_ctime_ns)
        cat.put_photo(str(path), st_.st_size, st_.st_mtime_ns, content_hash(data), 10, 10, None,
                      vectors[content % 4], stamp)
    ids, vecs = cat.vectors()
    sims = {(a % len(sizes), b % len(sizes)): s for a, b, s in edges}

    def knn(queries: np.ndarray, k: int):  # contents linked by `edges` are "near"
        out_ids = np.tile(ids, (len(queries), 1))[:, :k]
        out_sims = np.zeros_like(out_ids, dtype=np.float32)
        for row, q in enumerate(queries):
            mine = int(np.argmax(q))
            for col, other in enumerate(out_ids[row]):
                theirs = int(np.argmax(vecs[ids.tolist().index(other)]))
                out_sims[row, col] = 1.0 if mine == theirs else sims.get((mine, theirs), sims.get((theirs, mine), 0.0))
        return out_ids, out_sims

    graph = build_graph(ids, vecs, knn, k=len(ids))
    groups = find_duplicates(cat.photos(), graph, 0.9, cat.ignored_pairs())
    members = [m.photo for g in groups for m in g.members]

    for op, i, j in ops:  # the world changes between grouping and clean-up
        a, b = files[i % len(files)], files[j % len(files)]
        if not a.exists() and not a.is_symlink():
            continue
        if op == "delete":
            a.unlink()
        elif op == "rename":
            a.rename(a.with_name("renamed_" + a.name))
        elif op == "symlink" and a != b and b.exists():
            a.unlink()
            a.symlink_to(b)
        elif op in ("swap", "overwrite") and a != b and b.exists() and not a.is_symlink():
            st_ = a.stat()
            other = b.read_bytes() if op == "swap" else b"something else entirely" * 20
            a.write_bytes(other[: st_.st_size].ljust(st_.st_size, b"\0"))
            os.utime(a, ns=(st_.st_atime_ns, st_.st_mtime_ns))

    def on_disk() -> set[str]:
        return {content_hash(p.read_bytes()) for p in folder.iterdir() if p.is_file() and not p.is_symlink()}

    before = on_disk()
    selected = None if picks is None or not members else [members[k % len(members)] for k in picks]
    trash_module.clean_up(cat, groups, selected, include_similar=include_similar,
                          send=lambda path: os.rename(path, trash / f"{len(os.listdir(trash))}"))
    after = on_disk()
    for group in groups:
        if group.keeper.content_hash in before:
            assert group.keeper.content_hash in after, f"the last copy of {group.keeper.path} went to the trash"
    cat.close()
