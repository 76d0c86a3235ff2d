"""Readers while the indexer writes, two indexers on one home, and the CLI beside an app's Library.

Every reader has its own Library (one SQLite connection per thread). For a fixed time they search
by text and by photo, group duplicates and read the status while an indexer keeps writing; every
answer must be consistent and nothing may raise.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from clipfind.library import Library
from clipfind.search import build_query
from tests.reliability.support import TINY_ENV, ForkServer, catalog_generation, check_home, run_cli

READ_SECONDS = 8.0


def _rewrite_some(folder: Path, rng: random.Random, count: int) -> None:
    from PIL import Image

    for path in rng.sample(sorted(folder.glob("*.jpg")), count):
        with Image.open(path) as im:
            im = im.convert("RGB").transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        im.save(path, quality=rng.randrange(70, 95))


def _check_hits(lib: Library, hits: list, k: int) -> None:
    assert len(hits) <= k
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), scores
    ids = [h.photo.id for h in hits]
    assert len(ids) == len(set(ids))
    known = lib.catalog.ok_ids()  # rows are only added or updated in these tests, never removed
    assert set(ids) <= known, set(ids) - known


def _check_groups(groups: list, threshold: float) -> None:
    # a copy's keeper may be in two tiers
    seen: dict[str, set[int]] = {"identical": set(), "same": set(), "similar": set()}
    for group in groups:
        ids = [m.photo.id for m in group.members]
        assert group.members[0].photo.id == group.keeper.id
        assert not seen[group.tier] & set(ids), f"a photo in two {group.tier} groups"
        seen[group.tier].update(ids)
        if group.tier == "similar":
            assert all(m.similarity >= threshold - 1e-6 for m in group.members)


def _reader(kind: str, home: Path, stop: threading.Event, errors: list[str], counts: dict[str, int],
            paths: list[str]) -> Callable[[], None]:
    def run() -> None:
        rng = random.Random()
        lib = Library(home, "clipfind-tiny", "none")
        try:
            while not stop.is_set():
                if kind == "text":
                    k = rng.randrange(1, 30)
                    _check_hits(lib, lib.search(build_query([rng.choice(["beach", "a cat", "red^2", "dog"])]), k), k)
                elif kind == "image":
                    k = rng.randrange(1, 30)
                    _check_hits(lib, lib.search(build_query(images=[rng.choice(paths)]), k), k)
                elif kind == "dupes":
                    threshold = rng.choice([0.3, 0.6, 0.9, 0.95])
                    _check_groups(lib.duplicates(threshold), threshold)
                else:
                    status = lib.status()
                    assert status.files_indexed >= 0
                counts[kind] = counts.get(kind, 0) + 1
        except Exception:
            errors.append(f"{kind}: {traceback.format_exc()}")
        finally:
            lib.close()

    return run


@pytest.mark.timeout(240)
def test_readers_in_many_threads_while_indexing(photos: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = sorted(photos.glob("*.jpg"))
    held_back = first[40:]
    waiting = tmp_path / "waiting"
    waiting.mkdir()
    for path in held_back:
        path.rename(waiting / path.name)
    assert run_cli(home, "index", str(photos)).code == 0
    paths = [str(p) for p in first[:40]]

    stop = threading.Event()
    errors: list[str] = []
    counts: dict[str, int] = {}
    runs = [0]

    def indexer() -> None:
        rng = random.Random()
        lib = Library(home, "clipfind-tiny", "none")
        try:
            pending = sorted(waiting.iterdir())
            while not stop.is_set():
                for path in pending[:10]:  # new photos, and changed ones
                    path.rename(photos / path.name)
                pending = pending[10:]
                _rewrite_some(photos, rng, 8)
                lib.indexer(batch_size=2, workers=2).run([str(photos)])
                runs[0] += 1
        except Exception:
            errors.append(f"indexer: {traceback.format_exc()}")
        finally:
            lib.close()

    threads = [threading.Thread(target=indexer)]
    for kind in ("text", "text", "image", "image", "dupes", "dupes", "status"):
        threads.append(threading.Thread(target=_reader(kind, home, stop, errors, counts, paths)))
    for t in threads:
        t.start()
    time.sleep(READ_SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors, "\n".join(errors)
    assert runs[0] >= 1 and all(counts.get(k) for k in ("text", "image", "dupes", "status")), (runs, counts)
    state = check_home(home, allow_notice=False)
    assert not state.problems, state.problems


@pytest.mark.timeout(240)
def test_second_indexer_refused_and_cli_beside_a_library(photos: Path, tmp_path: Path,
                                                         fork_server: ForkServer) -> None:
    """A CLI indexer in another process: a second one is refused; a Library here reads meanwhile."""
    home = tmp_path / "home"
    some = sorted(photos.glob("*.jpg"))
    assert run_cli(home, "index", str(photos)).code == 0
    _rewrite_some(photos, random.Random(), len(some))  # work for the other process
    generation = catalog_generation(home)
    child = fork_server.start(["--home", str(home), "index", "--batch-size", "1"], tmp_path / "child.txt")
    try:
        deadline = time.monotonic() + 60
        while catalog_generation(home) == generation and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert child.is_alive(), "the other indexer finished too soon"
        second = run_cli(home, "index", "--batch-size", "1")
        assert second.code == 1 and len(second.lines) == 1, second.stderr
        assert "another clipfind indexer" in second.lines[0] and "Traceback" not in second.stderr
        forget = run_cli(home, "forget", str(photos))
        assert forget.code == 1 and "another clipfind indexer" in forget.stderr
        lib = Library(home, "clipfind-tiny", "none")
        try:
            while child.is_alive():
                hits = lib.search(build_query(images=[str(random.choice(some))]), 10)
                _check_hits(lib, hits, 10)
                _check_groups(lib.duplicates(0.9), 0.9)
        finally:
            lib.close()
    finally:
        child.join(timeout=120)
    assert child.exitcode == 0, (tmp_path / "child.txt").read_text()
    assert not check_home(home, allow_notice=False).problems


@pytest.mark.timeout(240)
def test_library_indexes_while_the_cli_searches(photos: Path, tmp_path: Path) -> None:
    """The app's side: a Library here indexes; the real CLI, in another process, searches meanwhile."""
    home = tmp_path / "home"
    some = sorted(photos.glob("*.jpg"))
    assert run_cli(home, "index", *[str(photos)]).code == 0
    _rewrite_some(photos, random.Random(), 80)
    done = threading.Event()
    failures: list[str] = []

    def index() -> None:
        lib = Library(home, "clipfind-tiny", "none")
        try:
            lib.indexer(batch_size=1, workers=1).run()
        except Exception:
            failures.append(traceback.format_exc())
        finally:
            lib.close()
            done.set()

    thread = threading.Thread(target=index)
    thread.start()
    searches = 0
    try:
        while not done.is_set() or searches < 2:
            args = random.choice([["search", "a red car", "-k", "7", "--json"],
                                  ["search", "--image", str(random.choice(some)), "-k", "7", "--json"],
                                  ["dupes", "--json", "--threshold", "0.8"], ["status", "--json"]])
            proc = subprocess.run([sys.executable, "-m", "clipfind.cli", "--home", str(home), *args],
                                  capture_output=True, text=True, timeout=120,
                                  env={**os.environ, **TINY_ENV})
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
            json.loads(proc.stdout)
            searches += 1
    finally:
        thread.join(timeout=120)
    assert not failures, failures
    print(f"{searches} CLI commands while indexing")
    assert not check_home(home, allow_notice=False).problems
