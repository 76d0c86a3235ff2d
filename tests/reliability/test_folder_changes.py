"""The photo folder changes while the indexer runs: no crash, and the next pass converges.

Changes are made from the indexer's own progress callback (so they land between batches, while
decoding runs ahead in worker threads) and from a thread sleeping random times (so they land
anywhere). "Converged" means: the catalog lists exactly the files a fresh scan finds, with their
current size and time, each readable photo indexed once, and the index agrees with the catalog.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from clipfind.indexer import Progress
from clipfind.library import Library
from tests.reliability.conftest import IS_ROOT
from tests.reliability.support import catalog_paths, check_home, photo_entries, readable_photos


def _index(home: Path, folder: Path, **kw) -> object:
    lib = Library(home, "clipfind-tiny", "none")
    try:
        return lib.indexer(batch_size=3, workers=2).run([str(folder)], **kw)
    finally:
        lib.close()


def assert_converged(home: Path, folder: Path) -> None:
    from clipfind.catalog import Catalog

    state = check_home(home)
    assert not state.problems, state.problems
    on_disk = {p: os.stat(p) for p in photo_entries(folder)}
    catalog = Catalog(home / "catalog.sqlite3")
    try:
        known = catalog.known_files()
    finally:
        catalog.close()
    assert set(known) == set(on_disk), (
        f"catalog has {sorted(set(known) - set(on_disk))[:5]} not on disk, "
        f"misses {sorted(set(on_disk) - set(known))[:5]}"
    )
    stale = [p for p, k in known.items() if k.status == "ok" and (k.size, k.mtime_ns) != (on_disk[p].st_size,
                                                                                          on_disk[p].st_mtime_ns)]
    assert not stale, f"rows not matching the file on disk: {stale[:5]}"
    ok = catalog_paths(home, "ok")
    assert len(ok) == len(set(ok))
    assert set(ok) == readable_photos(folder)


class Mutator:
    """Random changes to a folder: delete, rename, truncate, replace, remove a subfolder, add."""

    def __init__(self, folder: Path, rng: random.Random, spare: list[Path]) -> None:
        self.folder = folder
        self.rng = rng
        self.spare = spare
        self.done: list[str] = []

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*.jpg") if p.is_file())

    def step(self) -> None:
        files = self.files()
        if not files:
            return
        victim = self.rng.choice(files)
        action = self.rng.choice(["delete", "rename", "truncate", "replace", "rmdir", "add", "overwrite-by-rename"])
        try:
            if action == "delete":
                victim.unlink()
            elif action == "rename":
                victim.rename(victim.with_name(f"renamed-{self.rng.randrange(10**9)}.jpg"))
            elif action == "truncate":
                with open(victim, "r+b") as fh:
                    fh.truncate(max(0, victim.stat().st_size // self.rng.choice((2, 3, 10))))
            elif action == "replace":
                shutil.copyfile(self.rng.choice(self.spare), victim)
            elif action == "overwrite-by-rename":  # mv a.jpg b.jpg onto an existing b.jpg
                other = self.rng.choice(files)
                if other != victim:
                    victim.rename(other)
            elif action == "rmdir":
                subs = [p for p in self.folder.iterdir() if p.is_dir()]
                if subs:
                    shutil.rmtree(self.rng.choice(subs))
            elif action == "add":
                sub = self.folder / f"new-{self.rng.randrange(4)}"
                sub.mkdir(exist_ok=True)
                shutil.copy2(self.rng.choice(self.spare), sub / f"added-{self.rng.randrange(10**9)}.jpg")
        except FileNotFoundError:
            pass  # raced with another change
        self.done.append(action)


def _layout(photos: Path) -> list[Path]:
    """Spread the photos over subfolders (so whole folders can vanish); return spares kept outside."""
    files = sorted(photos.glob("*.jpg"))
    spare_dir = photos.parent / "spare"
    spare_dir.mkdir()
    spares = []
    for path in files[-20:]:
        spares.append(Path(shutil.move(path, spare_dir / path.name)))
    for i, path in enumerate(files[:-20]):
        sub = photos / f"album-{i % 6}"
        sub.mkdir(exist_ok=True)
        path.rename(sub / path.name)
    return spares


@pytest.mark.timeout(300)
@pytest.mark.parametrize("round_", range(3))
def test_changes_between_batches_then_converge(photos: Path, tmp_path: Path, round_: int) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")  # shown by pytest when the test fails
    rng = random.Random(seed)
    spares = _layout(photos)
    home = tmp_path / "home"
    if rng.random() < 0.5:
        _index(home, photos)  # changes to known files too, not only new ones
        for path in rng.sample(sorted(photos.rglob("*.jpg")), 30):
            os.utime(path, ns=(time.time_ns(), time.time_ns() + rng.randrange(10**9)))
    mutator = Mutator(photos, rng, spares)

    def on_progress(p: Progress) -> None:
        if p.phase == "indexing":
            for _ in range(rng.randrange(4)):
                mutator.step()

    _index(home, photos, progress=on_progress)
    assert mutator.done, "the indexer never reported progress"
    _index(home, photos)
    assert_converged(home, photos)


@pytest.mark.timeout(300)
def test_changes_from_another_thread_then_converge(photos: Path, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    spares = _layout(photos)
    home = tmp_path / "home"
    mutator = Mutator(photos, rng, spares)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            mutator.step()
            time.sleep(rng.uniform(0.0, 0.05))

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(2):
            _index(home, photos)
    finally:
        stop.set()
        thread.join()
    _index(home, photos)
    assert_converged(home, photos)


def test_rename_onto_an_indexed_file(photos: Path, tmp_path: Path) -> None:
    """`mv a.jpg b.jpg` over an indexed b.jpg: b's row goes, and its vector leaves the index."""
    home = tmp_path / "home"
    _index(home, photos)
    a, b = sorted(photos.glob("*.jpg"))[:2]
    a.rename(b)
    report = _index(home, photos)
    assert report.moved == 1
    assert_converged(home, photos)
    state = check_home(home, allow_notice=False)
    assert not state.problems


def test_file_replaced_by_a_fifo_after_the_scan(photos: Path, tmp_path: Path, monkeypatch) -> None:
    """The scan saw a photo; by the time a worker opens it, it is a pipe: no hang, recorded."""
    import clipfind.indexer as indexer_module

    home = tmp_path / "home"
    victim = sorted(photos.glob("*.jpg"))[5]
    real_plan = indexer_module.Indexer._plan

    def plan_then_swap(self, *args, **kwargs):
        plan = real_plan(self, *args, **kwargs)
        victim.unlink()
        os.mkfifo(victim)
        return plan

    monkeypatch.setattr(indexer_module.Indexer, "_plan", plan_then_swap)
    report = _index(home, photos)
    monkeypatch.undo()
    assert report.failed == 1
    _index(home, photos)
    assert_converged(home, photos)
    from clipfind.catalog import Catalog

    catalog = Catalog(home / "catalog.sqlite3")
    reasons = {f.path: f.error for f in catalog.failures()}
    catalog.close()
    assert "FIFO" in reasons[str(victim)] or "pipe" in reasons[str(victim)]


def _deny(monkeypatch: pytest.MonkeyPatch, denied: set[str]) -> None:
    """Simulate chmod 000 for root, who can read anything: opening these paths fails with EACCES."""
    import builtins

    def refusing(real):
        def fake_open(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path) in denied:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
            return real(path, *args, **kwargs)
        return fake_open

    monkeypatch.setattr(os, "open", refusing(os.open))
    monkeypatch.setattr(builtins, "open", refusing(builtins.open))


@pytest.mark.parametrize("how", ["chmod", "simulated"])
def test_unreadable_files_are_retried_once_readable(photos: Path, tmp_path: Path, monkeypatch, how: str) -> None:
    """A permission error is not a property of the photo: once readable again, it gets indexed."""
    if how == "chmod" and IS_ROOT:
        pytest.skip("running as root: chmod 000 does not stop root from reading (the simulated case covers it)")
    home = tmp_path / "home"
    victims = sorted(photos.glob("*.jpg"))[10:14]
    if how == "chmod":
        for v in victims:
            v.chmod(0)
    else:
        _deny(monkeypatch, {str(v) for v in victims})
    report = _index(home, photos)
    assert report.failed == len(victims)
    from clipfind.catalog import Catalog

    catalog = Catalog(home / "catalog.sqlite3")
    errors = {f.path: f.error for f in catalog.failures()}
    catalog.close()
    assert all("denied" in errors[str(v)].lower() for v in victims), errors
    # permissions given back (chmod does not change the modification time)
    if how == "chmod":
        for v in victims:
            v.chmod(0o644)
    else:
        monkeypatch.undo()
    again = _index(home, photos)
    assert again.added == len(victims) or again.updated == len(victims), again
    assert_converged(home, photos)


def test_folder_removed_during_indexing(photos: Path, tmp_path: Path) -> None:
    """A whole subfolder (an unmounted card) disappears mid-run: its photos go on the next pass."""
    spares = _layout(photos)
    assert spares
    home = tmp_path / "home"
    gone: list[Path] = []

    def on_progress(p: Progress) -> None:
        if p.phase == "indexing" and not gone and p.done >= 6:
            victim = photos / "album-3"
            shutil.rmtree(victim)
            gone.append(victim)

    _index(home, photos, progress=on_progress)
    assert gone
    _index(home, photos)
    assert_converged(home, photos)
    assert not any(p.startswith(str(gone[0]) + os.sep) for p in catalog_paths(home))


def test_copy_then_edit_the_original_in_one_pass(photos: Path, tmp_path: Path) -> None:
    """cp a.jpg b.jpg; then a.jpg is edited: one pass indexes both (b reuses a's old vector)."""
    from PIL import Image

    home = tmp_path / "home"
    _index(home, photos)
    a = sorted(photos.glob("*.jpg"))[0]
    b = photos / "zz copy.jpg"  # scanned after a, so a's new content is committed first
    shutil.copy2(a, b)
    with Image.open(a) as im:
        edited = im.convert("RGB").rotate(90, expand=True)
    edited.save(a, quality=90)
    report = _index(home, photos)
    assert (report.updated, report.copied) == (1, 1), report
    assert_converged(home, photos)
