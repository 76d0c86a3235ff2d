"""SIGKILL the indexer at random moments: nothing committed is lost or redone, catalog and index agree.

Two kills go to the real `python -m clipfind.cli index` as a user starts it; the other kills go to
the same CLI forked from a process that has already imported torch (see support.ForkServer), so
the suite can afford more than twenty of them.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.support import (
    TINY_ENV,
    ForkServer,
    catalog_generation,
    catalog_paths,
    check_home,
    kill_when,
    readable_photos,
)

KILLS = 24
REAL_PROCESS_KILLS = 2


def _folder_with_odd_files(photos: Path) -> Path:
    (photos / "notes.jpg").write_text("not a photo")
    (photos / "empty.jpg").write_bytes(b"")
    sub = photos / "copies"
    sub.mkdir()
    for src in sorted(photos.glob("00[0-4]*.jpg")):
        shutil.copy2(src, sub / src.name)  # byte-identical copies: vectors are reused
    return photos


def _assert_consistent(home: Path, context: str) -> None:
    state = check_home(home)
    assert not state.problems, f"{context}: {state.problems}"


def _refresh(folder: Path, rng: random.Random) -> None:
    """Give the indexer new work once it has caught up: rewrite, add, move and delete photos."""
    from PIL import Image

    photos = sorted(p for p in folder.glob("*.jpg") if p.name not in ODD)
    for path in rng.sample(photos, min(40, len(photos))):
        with Image.open(path) as im:
            im = im.convert("RGB").rotate(90, expand=True)
        im.save(path, quality=rng.randrange(60, 95))
    for i, path in enumerate(rng.sample(photos, 6)):
        shutil.copy2(path, folder / f"extra-{rng.randrange(10**9)}-{i}.jpg")
    for path in rng.sample(photos, 4):
        path.rename(folder / "copies" / f"moved-{rng.randrange(10**9)}-{path.name}")
    for path in rng.sample(sorted((folder / "copies").glob("moved-*")), 1):
        path.unlink()


ODD = {"notes.jpg", "empty.jpg"}


def _pending(home: Path, folder: Path) -> int:
    """Files on disk that the catalog does not have as they are now."""
    from clipfind.catalog import Catalog

    if not (home / "catalog.sqlite3").exists():
        return sum(1 for _ in folder.rglob("*.jpg"))
    catalog = Catalog(home / "catalog.sqlite3")
    known = catalog.known_files()
    catalog.close()
    pending = 0
    for path in folder.rglob("*.jpg"):
        st = path.stat()
        k = known.get(str(path))
        pending += k is None or (k.size, k.mtime_ns) != (st.st_size, st.st_mtime_ns)
    return pending


@pytest.mark.timeout(420)
def test_random_sigkills_then_resume(photos: Path, tmp_path: Path, fork_server: ForkServer) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    folder = _folder_with_odd_files(photos)
    home = tmp_path / "home"
    kills = 0
    runs = 0
    log: list[str] = []
    while kills < KILLS:
        runs += 1
        assert runs < 4 * KILLS, f"could not kill the indexer often enough (seed {seed}): {log}"
        if _pending(home, folder) < 10:
            _refresh(folder, rng)
        batch = str(rng.choice((2, 3, 4)))
        argv = ["--home", str(home), "index", str(folder), "--batch-size", batch]
        # Half the kills wait for a number of committed changes, half for a random delay (which
        # may land anywhere: start-up, model load, scanning, a commit or the index save).
        generation = catalog_generation(home)
        target = generation + rng.randrange(1, 30) if rng.random() < 0.5 else None
        delay = None if target is not None else rng.uniform(0.02, 1.2)
        until = None if target is None else (lambda t=target: catalog_generation(home) >= t)
        if kills < REAL_PROCESS_KILLS:
            proc = subprocess.Popen([sys.executable, "-m", "clipfind.cli", *argv], env={**_env(), **TINY_ENV},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            outcome = kill_when(proc.pid, lambda p=proc: p.poll() is None, until=until,
                                delay=None if delay is None else delay + 6)  # + the imports
            _, stderr = proc.communicate()
            code = proc.returncode
        else:
            out = tmp_path / f"run{runs}.txt"
            child = fork_server.start(argv, out)
            outcome = kill_when(child.pid, child.is_alive, until=until, delay=delay)
            child.join()
            code = child.exitcode
            stderr = out.read_bytes() if out.exists() else b""
        log.append(f"{outcome} gen>={target} delay={delay} batch={batch} code={code}")
        if code == -9:
            kills += 1
        else:  # finished before the kill (or just as it came)
            assert code == 0 and b"Traceback" not in stderr, f"{log[-1]}: {stderr!r}"
        _assert_consistent(home, f"after run {runs} ({log[-1]}, seed {seed})")

    print(f"{kills} kills in {runs} runs (seed {seed})")
    # The last pass finishes the job and redoes nothing that a killed run had committed.
    pending = _pending(home, folder)
    proc = subprocess.run([sys.executable, "-m", "clipfind.cli", "--home", str(home), "index", "--json"],
                          capture_output=True, text=True, env={**_env(), **TINY_ENV}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    done = sum(summary[k] for k in ("added", "updated", "moved", "copied", "failed"))
    assert done == pending, f"{summary} but {pending} files were left to do (seed {seed})"

    state = check_home(home, allow_notice=False)
    assert not state.problems, state.problems
    ok = catalog_paths(home, "ok")
    assert len(ok) == len(set(ok))
    assert set(ok) == readable_photos(folder)
    assert set(catalog_paths(home)) == {str(p) for p in folder.rglob("*.jpg")}
    assert {Path(p).name for p in catalog_paths(home, "failed")} == ODD


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
