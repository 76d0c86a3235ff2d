"""Indexing before the model is there (issue 11): photos are recorded without vectors, so identical
files and the same photo saved again are found offline; a later run with the model embeds them.

"Offline" is a load_model that raises ModelLoadError, as clipfind.embedding.download does when the
weights cannot be fetched; the model itself is the tiny random-weight one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import clipfind.indexer
from clipfind.annindex import open_index
from clipfind.errors import ClipfindError, ModelLoadError
from clipfind.home import INDEX_FILE
from clipfind.indexer import Control, Indexer, IndexReport, Progress
from clipfind.library import Library, build_query, tier_view
from tests.helpers import FORMATS, ROOT, copy_photos, needs_shared_data

pytestmark = needs_shared_data

WHY = "Could not download the weights for clipfind-tiny: no internet connection. Connect once to download them."


def offline() -> Any:
    raise ModelLoadError(WHY)


def run(lib: Library, load: Callable[[], Any] | None, *folders: Path, **options: Any) -> IndexReport:
    """One indexing pass with this model loader (None: the library's own, the tiny model)."""
    loader = lib.image_encoder if load is None else load
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the tiny model's random weights
        return Indexer(lib.home, lib.spec, loader, batch_size=2).run([str(f) for f in folders] or None, **options)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Which files the indexer decoded, how many times each (its only decode is load_image)."""
    counted: Counter[str] = Counter()
    real = clipfind.indexer.load_image

    def counting(data: Any, *args: Any, **kwargs: Any) -> Any:
        counted[os.path.basename(kwargs.get("name") or "")] += 1
        return real(data, *args, **kwargs)

    monkeypatch.setattr(clipfind.indexer, "load_image", counting)
    yield counted


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three photos; kodim01 re-saved smaller as a JPEG (the same photo), kodim02 copied byte for byte
    (identical), and two files that cannot be read (real broken files from ../shared/data/formats)."""
    from PIL import Image

    folder = tmp_path / "photos"
    copy_photos(folder, 3)
    with Image.open(folder / "kodim01.png") as im:
        im.resize((im.width // 2, im.height // 2)).convert("RGB").save(folder / "kodim01 small.jpg", quality=70)
    shutil.copy2(folder / "kodim02.png", folder / "kodim02 copy.png")
    for broken in ("derived/zero_bytes.jpg", "pillow_tests/truncated_image.png"):
        source = FORMATS / broken
        if not source.is_file():
            pytest.skip(f"{source} not found")
        shutil.copy2(source, folder / source.name)
    return folder


def names(photos: Any) -> list[str]:
    return sorted(os.path.basename(p.path) for p in photos)


def index_agrees(lib: Library) -> set[int]:
    """The saved vector index holds exactly the photos with a vector; returns its labels."""
    index, notice = open_index(lib.home / INDEX_FILE, lib.catalog)
    assert notice is None
    assert index.labels == lib.catalog.embedded_ids()
    return index.labels


def test_without_the_model_photos_are_recorded_for_the_duplicates_then_embedded(
    lib: Library, folder: Path, decodes: Counter[str]
) -> None:
    report = run(lib, offline, folder)
    assert (report.added, report.failed, report.encoded) == (5, 2, 0)
    # Said once: why, how many wait, what works now, what to do.
    [notice] = [n for n in report.notices if "could not be loaded" in n]
    assert notice.startswith(f"the model could not be loaded: {WHY[:-1]}. 5 photos are recorded without it")
    assert "Duplicates work now" in notice and "search and similar shots need the model" in notice
    assert "run `clipfind index` again" in notice
    cat = lib.catalog
    assert cat.count("ok") == 5 and cat.waiting() == 5 and lib.waiting_for_model() == 5
    assert not cat.has_vectors() and len(cat.vectors()[0]) == 0
    assert cat.model_identity is None and cat.dim is None  # no model bound by such a run
    assert len(cat.fingerprints()[0]) == 5  # every photo fingerprinted from its one decode
    assert names(cat.failures()) == ["truncated_image.png", "zero_bytes.jpg"]
    assert all(f.error for f in cat.failures())
    assert set(decodes.values()) == {1}

    groups = lib.duplicates(0.5)
    assert [(g.tier, names(m.photo for m in g.members)) for g in groups] == [
        ("identical", ["kodim02 copy.png", "kodim02.png"]),
        ("same", ["kodim01 small.jpg", "kodim01.png"]),
    ]
    assert names(p for g in tier_view(groups, "identical") for p in (m.photo for m in g.members)) == [
        "kodim02 copy.png", "kodim02.png"]
    with pytest.raises(ClipfindError, match="search needs the model, and all 5 photos indexed so far wait for it"):
        lib.search(build_query(["a red door"]))
    # A photo that waits for the model is still a photo for commands that take paths.
    assert lib.lookup([str(folder / "kodim01.png")])[0].path == str(folder / "kodim01.png")

    ids = {p.path: p.id for p in cat.photos()}
    decodes.clear()
    report = run(lib, None, folder)
    assert (report.added, report.updated, report.failed, report.unchanged) == (0, 0, 0, 2)
    assert report.encoded >= 4  # the byte copy may reuse its original's vector, when that one went first
    assert any("5 photos recorded while the model could not be loaded went through it" in n for n in report.notices)
    assert cat.waiting() == 0 and cat.model_identity == lib.spec.identity
    assert {p.path: p.id for p in cat.photos()} == ids  # the same rows, now with vectors
    assert index_agrees(lib) == set(ids.values())
    assert max(decodes.values()) == 1 and not {"zero_bytes.jpg", "truncated_image.png"} & set(decodes)
    hits = lib.search(build_query(["a red door"]))
    assert names(h.photo for h in hits) == names(cat.photos())

    decodes.clear()
    report = run(lib, None, folder)
    assert (report.encoded, report.unchanged, report.notices) == (0, 7, [])
    assert not decodes


def test_a_run_without_the_model_on_an_embedded_catalog(lib: Library, folder: Path) -> None:
    """New and changed photos wait; the rest keep their vectors and stay searchable, and a changed
    photo's old vector leaves the index (it no longer describes the file). A byte copy of an
    embedded photo takes its vector, model or not."""
    from PIL import Image

    run(lib, None, folder)
    cat = lib.catalog
    identity = cat.model_identity
    before = index_agrees(lib)
    changed = folder / "kodim03.png"
    with Image.open(changed) as im:
        im.crop((0, 0, im.width // 2, im.height // 2)).save(changed)  # edited in place: other pixels
    copy_photos(folder / "new", 2, "skimage_data")
    shutil.copy2(folder / "kodim02.png", folder / "new" / "another copy.png")  # reuses the stored vector

    report = run(lib, offline, folder)
    assert (report.added, report.updated, report.copied) == (2, 1, 1)
    assert cat.model_identity == identity and cat.waiting() == 3
    assert any("3 photos are recorded without it and wait" in n for n in report.notices)
    changed_id = cat.photo_at(str(changed)).id
    assert changed_id in before and changed_id not in index_agrees(lib)
    assert cat.photo_by_path(str(changed)) is None  # no vector to search by: a search encodes the file
    hits = lib.search(build_query(["a red door"]))
    assert changed_id not in {h.photo.id for h in hits} and len(hits) == cat.count("ok") - 3

    report = run(lib, None)
    assert cat.waiting() == 0 and index_agrees(lib) == cat.ok_ids()
    assert any("3 photos recorded while the model could not be loaded" in n for n in report.notices)


def test_only_a_model_that_cannot_be_loaded_is_skipped(lib: Library, folder: Path) -> None:
    def broken() -> Any:
        raise RuntimeError("a bug in the loader")

    with pytest.raises(RuntimeError):
        run(lib, broken, folder)
    assert lib.catalog.count("ok") == 0 and lib.catalog.folders() == []
    with pytest.raises(ModelLoadError):  # re-embedding is asked of the model itself
        Indexer(lib.home, lib.spec, offline).run([str(folder)], reembed=True)
    assert lib.catalog.count("ok") == 0


def test_cancelled_runs_in_either_mode_resume(lib: Library, folder: Path) -> None:
    def cancel_after_first_batch() -> tuple[Control, Callable[[Progress], None]]:
        control = Control()

        def progress(p: Progress) -> None:
            if p.phase == "indexing":
                control.cancel()

        return control, progress

    control, progress = cancel_after_first_batch()
    report = run(lib, offline, folder, control=control, progress=progress)
    assert report.cancelled and 0 < lib.catalog.count("ok") + lib.catalog.count("failed") < 7
    run(lib, offline)
    assert lib.catalog.waiting() == 5 and lib.catalog.count("failed") == 2
    control, progress = cancel_after_first_batch()
    report = run(lib, None, control=control, progress=progress)
    assert report.cancelled and 0 < lib.catalog.waiting() < 5
    run(lib, None)
    assert lib.catalog.waiting() == 0 and index_agrees(lib) == lib.catalog.ok_ids()


KILLED_RUN = """
import os, signal, sys
from clipfind.errors import ModelLoadError
from clipfind.indexer import Indexer
from clipfind.library import Library

home, folder, mode, kill_after = sys.argv[1:5]
lib = Library(home, "clipfind-tiny", "none")

def offline():
    raise ModelLoadError("no internet connection")

batches = 0

def progress(p):
    global batches
    if p.phase == "indexing":
        batches += 1
        if batches == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a crash or a power cut

Indexer(lib.home, lib.spec, offline if mode == "offline" else lib.image_encoder, batch_size=2, workers=1).run(
    [folder], progress=progress)
"""


def test_killed_runs_in_either_mode_resume(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    copy_photos(folder, 12)

    def index_in_a_process(mode: str, kill_after: int) -> int:
        done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(home), str(folder), mode, str(kill_after)],
                              cwd=ROOT, capture_output=True, timeout=300)
        return done.returncode

    def counts() -> tuple[int, int]:
        lib = Library(home, "clipfind-tiny", "none")
        try:
            return lib.catalog.count("ok"), lib.waiting_for_model()
        finally:
            lib.close()

    assert index_in_a_process("offline", 2) == -signal.SIGKILL
    ok, waiting = counts()
    assert ok == waiting and 0 < ok < 12
    assert index_in_a_process("offline", 0) == 0
    assert counts() == (12, 12)
    assert index_in_a_process("model", 2) == -signal.SIGKILL
    ok, waiting = counts()
    assert ok == 12 and 0 < waiting < 12
    assert index_in_a_process("model", 0) == 0
    assert counts() == (12, 0)
    lib = Library(home, "clipfind-tiny", "none")
    try:
        assert index_agrees(lib) == lib.catalog.ok_ids()
    finally:
        lib.close()
