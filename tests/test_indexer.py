"""The indexer against real photos with the tiny random-weight model: diffing, moves, copies, failures."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from clipfind.errors import ClipfindError, LockedError, ModelMismatchError
from clipfind.home import WriterLock
from clipfind.indexer import Control, Indexer, Progress
from clipfind.library import Library
from tests.helpers import FORMATS, copy_photos, index, needs_shared_data, real_photo

pytestmark = needs_shared_data


def assert_index_matches_catalog(lib: Library) -> None:
    from clipfind.annindex import open_index
    from clipfind.home import INDEX_FILE

    index, notice = open_index(lib.home / INDEX_FILE, lib.catalog)
    assert notice is None
    assert index.labels == lib.catalog.ok_ids()


def test_first_run_indexes_everything_then_nothing_to_do(lib: Library, photo_folder: Path) -> None:
    events: list[Progress] = []
    report = index(lib, photo_folder, progress=events.append)
    assert (report.added, report.failed, report.encoded) == (10, 0, 10)
    assert lib.catalog.count("ok") == 10
    indexing = [e for e in events if e.phase == "indexing"]
    assert indexing[-1].done == indexing[-1].total == 10
    assert all(e.rate > 0 and e.current for e in indexing)
    assert events[-1].phase == "done"
    assert_index_matches_catalog(lib)
    again = index(lib, photo_folder)
    assert (again.added, again.updated, again.encoded, again.unchanged) == (0, 0, 0, 10)
    assert index(lib).unchanged == 10  # no folders given: the known ones


def test_touch_add_delete_rename_change_copy(lib: Library, photo_folder: Path) -> None:
    index(lib, photo_folder)
    files = sorted(photo_folder.glob("*.png"))
    ids_before = {p.path: p.id for p in lib.catalog.photos()}

    os.utime(files[0], (1_000_000_000, 1_000_000_000))  # touched: same bytes
    r = index(lib)
    assert (r.updated, r.encoded, r.added) == (1, 0, 0)

    copy_photos(photo_folder / "new", 1, "sklearn_images")  # added
    r = index(lib)
    assert (r.added, r.encoded) == (1, 1)

    files[1].unlink()  # deleted
    r = index(lib)
    assert r.removed == 1 and str(files[1]) not in lib.catalog.known_files()

    renamed = photo_folder / "trip" / "renamed.png"
    files[2].rename(renamed)  # moved: keeps its id and vector, no model work
    r = index(lib)
    assert (r.moved, r.encoded, r.removed, r.added) == (1, 0, 0, 0)
    assert lib.catalog.photo_by_path(str(renamed))[0].id == ids_before[str(files[2])]

    before = lib.catalog.photo_by_path(str(files[3]))[1]
    shutil.copyfile(PHOTO_SWAP, files[3])  # content changed in place: re-embedded, same id
    r = index(lib)
    assert (r.updated, r.encoded) == (1, 1)
    photo, after = lib.catalog.photo_by_path(str(files[3]))
    assert photo.id == ids_before[str(files[3])] and not np.allclose(before, after)

    shutil.copy2(files[4], photo_folder / "copy of photo.png")  # byte-identical copy: vector reused
    r = index(lib)
    assert (r.copied, r.encoded) == (1, 0)
    assert_index_matches_catalog(lib)


PHOTO_SWAP = FORMATS.parent / "photos" / "sklearn_images" / "flower.jpg"


def test_unreadable_files_recorded_and_skipped(lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    copy_photos(folder, 2)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a photo at all")
    good = (FORMATS.parent / "photos" / "kodak24").glob("*.png").__next__().read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    report = index(lib, folder)
    assert (report.added, report.failed) == (2, 3)
    failures = {Path(f.path).name: f.error for f in lib.catalog.failures()}
    assert set(failures) == {"empty.jpg", "text.jpg", "truncated.png"}
    assert all(failures.values())
    again = index(lib, folder)
    assert (again.failed, again.unchanged) == (0, 5)  # not retried until the file changes


def test_pause_resume_and_cancel(lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    copy_photos(folder, 24)
    control = Control()
    seen: list[int] = []
    paused_once = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.phase == "indexing":
            seen.append(p.done)
            if p.done >= 8 and not paused_once.is_set():
                paused_once.set()
                control.pause()
                threading.Timer(0.3, control.resume).start()
            if p.done >= 16:
                control.cancel()

    report = index(lib, folder, progress=on_progress, control=control)
    assert paused_once.is_set() and report.cancelled
    assert 16 <= lib.catalog.count("ok") < 24
    rest = index(lib)
    assert rest.added == 24 - report.added and lib.catalog.count("ok") == 24


def test_second_indexer_refused(lib: Library, photo_folder: Path) -> None:
    with WriterLock(lib.home):
        with pytest.raises(LockedError):
            index(lib, photo_folder)


def test_missing_folder_and_other_model(lib: Library, photo_folder: Path, home: Path) -> None:
    with pytest.raises(ClipfindError, match="folder not found"):
        index(lib, photo_folder / "nope")
    index(lib, photo_folder)
    other = Library(home, "clipfind-tiny", str(home / "some-checkpoint.safetensors"))
    with pytest.raises(ModelMismatchError, match="reembed"):
        other.indexer().run()
    other.close()


def test_unreachable_folder_keeps_its_photos(lib: Library, photo_folder: Path, tmp_path: Path) -> None:
    index(lib, photo_folder)
    moved_away = tmp_path / "unplugged"
    photo_folder.rename(moved_away)
    report = index(lib)
    assert report.removed == 0 and lib.catalog.count("ok") == 10
    assert any("not reachable" in n for n in report.notices)


def _unlistable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """chmod 000 does not stop root, which runs these tests: refuse the listing itself."""
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(folder))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_listed_keeps_its_photos(
    lib: Library, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index(lib, photo_folder)
    _unlistable(monkeypatch, photo_folder / "trip")
    report = index(lib)
    assert report.removed == 0 and lib.catalog.count("ok") == 10
    assert any("cannot be read" in n and n.endswith("trip") for n in report.notices)
    assert [f.path for f in lib.status().failures] == [str(photo_folder / "trip")]
    with pytest.raises(ClipfindError, match="cannot re-embed while .*trip"):
        index(lib, reembed=True)
    assert lib.catalog.count("ok") == 10
    monkeypatch.undo()
    assert index(lib).removed == 0 and lib.status().failures == ()  # listed again: the problem is gone


def test_reembed_with_the_same_model_embeds_every_photo_again(lib: Library, photo_folder: Path) -> None:
    index(lib, photo_folder)
    report = index(lib, reembed=True)
    assert report.encoded == 10 and lib.catalog.count("ok") == 10


def test_content_swapped_with_size_and_mtime_set_back_is_indexed_again(lib: Library, tmp_path: Path) -> None:
    """`touch -r` sets size and mtime back over other bytes; the inode change time gives it away."""
    folder = tmp_path / "pics"
    a, b = copy_photos(folder, 2, "sklearn_images")  # JPEGs: a flipped byte still decodes
    index(lib, folder)
    before = lib.catalog.photo_by_path(str(a))[0]
    st = a.stat()
    data = bytearray(a.read_bytes())
    data[len(data) // 2] ^= 0xFF
    a.write_bytes(bytes(data))
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (a.stat().st_size, a.stat().st_mtime_ns) == (before.size, before.mtime_ns)
    report = index(lib)
    assert report.updated == 1
    from clipfind.imageload import content_hash

    assert lib.catalog.photo_by_path(str(a))[0].content_hash == content_hash(bytes(data))


@pytest.mark.parametrize("stage", ["scanning", "model"])
def test_cancel_before_the_first_batch_is_reported_as_cancelled(lib: Library, photo_folder: Path, stage: str) -> None:
    control = Control()
    if stage == "scanning":
        def progress(p: Progress) -> None:
            if p.phase == "scanning":
                control.cancel()

        report = lib.indexer(batch_size=4).run([str(photo_folder)], control=control, progress=progress)
    else:
        load = lib.image_encoder

        def slow_load():  # type: ignore[no-untyped-def]
            control.cancel()  # a Ctrl+C while the model loads
            return load()

        report = Indexer(lib.home, lib.spec, slow_load, batch_size=4).run([str(photo_folder)], control=control)
    assert report.cancelled and report.added == 0 and lib.catalog.count("ok") == 0


def test_reembed_with_another_model_replaces_every_vector(lib: Library, photo_folder: Path, home: Path,
                                                          tmp_path: Path) -> None:
    import open_clip
    import torch

    from clipfind.embedding.torch_model import register_tiny_model
    from clipfind.search import build_query

    index(lib, photo_folder)
    register_tiny_model()
    torch.manual_seed(1)
    checkpoint = tmp_path / "tiny-other.pt"
    torch.save(open_clip.create_model("clipfind-tiny").state_dict(), checkpoint)
    other = Library(home, "clipfind-tiny", str(checkpoint))
    report = other.indexer(batch_size=4).run(reembed=True)
    assert (report.added, report.encoded) == (10, 10) and not report.notices
    assert other.catalog.model_identity == f"clipfind-tiny/file:{checkpoint}"
    assert_index_matches_catalog(other)
    query = sorted(photo_folder.glob("*.png"))[0]
    assert len(other.search(build_query(images=[str(query)]), k=3)) == 3
    other.close()


def test_photos_are_fingerprinted_in_the_decode_step(lib: Library, photo_folder: Path) -> None:
    from clipfind.fingerprint import SIDE

    index(lib, photo_folder)
    ids, thumbs, _ = lib.catalog.fingerprints()
    assert sorted(ids.tolist()) == sorted(p.id for p in lib.catalog.photos())
    assert {len(t) for t in thumbs} == {SIDE * SIDE} and len(set(thumbs)) == 10  # ten different pictures


def test_capture_records_written_before_gps_gain_it_on_the_next_run(lib: Library, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "trip"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0110] = "Phone"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    real_photo("kodak24/kodim05.png", 300).save(folder / "placed.jpg", exif=exif)
    index(lib, folder)
    [placed] = lib.catalog.photos()
    assert placed.gps and placed.camera == "Phone"
    with lib.catalog.transaction():  # as schema 3 wrote it: camera, date, sub-second, no GPS field
        lib.catalog._db.execute("UPDATE files SET capture = 'Phone' || char(9) || char(9)")
    assert not lib.catalog.photos()[0].gps and len(lib.catalog.unfingerprinted()) == 1
    report = index(lib, folder)
    assert (report.encoded, report.fingerprinted) == (0, 1)
    assert lib.catalog.photos()[0].gps and lib.catalog.unfingerprinted() == []


def test_an_older_catalog_gains_fingerprints_without_embedding_again(lib: Library, photo_folder: Path) -> None:
    index(lib, photo_folder)
    _, before, _ = lib.catalog.fingerprints()
    with lib.catalog.transaction():  # as a catalog of schema 2 has them: none
        lib.catalog._db.execute("UPDATE files SET thumb = NULL, capture = NULL")
    (photo_folder / "trip" / "notes.jpg").write_text("not a photo")
    changed = sorted(photo_folder.glob("*.png"))[0]
    generation = lib.catalog.generation
    events: list[Progress] = []
    report = index(lib, photo_folder, progress=events.append)
    assert report.encoded == 0 and report.fingerprinted == 10 and report.failed == 1
    assert lib.catalog.unfingerprinted() == []
    # Decoded at another size than for this model (none is loaded), so a few grey levels apart.
    after = lib.catalog.fingerprints()[1]
    gaps = [np.abs(np.frombuffer(a, np.uint8).astype(int) - np.frombuffer(b, np.uint8)).mean()
            for a, b in zip(before, after)]
    assert max(gaps) < 4.0
    assert lib.catalog.generation == generation + 1  # the failure's row only: the graph of the rest stays
    assert [e.done for e in events if e.phase == "fingerprinting"] == [10]
    # A file changed between the runs is not fingerprinted from its old row: it is indexed again.
    with lib.catalog.transaction():
        lib.catalog._db.execute("UPDATE files SET thumb = NULL")
    changed.write_bytes(changed.read_bytes() + b"\0")
    report = index(lib, photo_folder)
    assert (report.updated, report.encoded, report.fingerprinted) == (1, 1, 9)
    assert lib.catalog.unfingerprinted() == []


def test_only_looks_at_the_paths_given_and_leaves_the_rest(lib: Library, photo_folder: Path,
                                                           looked_at: list[str]) -> None:
    index(lib, photo_folder)
    assert len(looked_at) == 10  # the full scan stats every photo
    gone_unwatched = sorted(photo_folder.glob("*.png"))[0]
    gone_unwatched.unlink()  # deleted while nobody watched: not in the batch
    new = photo_folder / "trip" / "new.png"
    shutil.copyfile(PHOTO_SWAP, new)
    generation = lib.catalog.generation
    looked_at.clear()
    report = index(lib, only=[str(new)])
    assert looked_at == [str(new)]  # not the other nine
    assert (report.added, report.encoded, report.removed, report.unchanged) == (1, 1, 0, 0)
    assert lib.catalog.photo_by_path(str(new)) is not None
    assert str(gone_unwatched) in lib.catalog.known_files()  # left for the next full scan
    assert lib.catalog.generation > generation
    assert_index_matches_catalog(lib)
    assert index(lib, only=[str(photo_folder)]).removed == 1  # the folder itself among the paths: scanned whole


def test_only_drops_what_is_gone_and_follows_a_move(lib: Library, photo_folder: Path) -> None:
    index(lib, photo_folder)
    files = sorted(photo_folder.glob("*.png"))
    ids = {p.path: p.id for p in lib.catalog.photos()}
    files[0].unlink()
    moved = photo_folder / "trip" / "moved.png"
    files[1].rename(moved)  # the event names both paths
    report = index(lib, only=[str(files[0]), str(files[1]), str(moved)])
    assert (report.removed, report.moved, report.encoded, report.added) == (1, 1, 0, 0)
    assert str(files[0]) not in lib.catalog.known_files()
    assert lib.catalog.photo_by_path(str(moved))[0].id == ids[str(files[1])]  # the row followed the file
    assert lib.catalog.count("ok") == 9
    assert_index_matches_catalog(lib)


def test_only_walks_a_folder_given_and_drops_one_gone(lib: Library, photo_folder: Path) -> None:
    index(lib, photo_folder)
    new = photo_folder / "new folder"
    copy_photos(new, 2, "sklearn_images")
    (new / ".thumbs").mkdir()
    shutil.copyfile(PHOTO_SWAP, new / ".thumbs" / "t.png")  # hidden: skipped as the full scan does
    (new / "notes.txt").write_text("not a photo")
    report = index(lib, only=[str(new)])
    assert (report.added, report.failed) == (2, 0)
    renamed = photo_folder / "renamed folder"
    new.rename(renamed)
    report = index(lib, only=[str(new), str(renamed)])
    assert (report.moved, report.encoded, report.removed) == (2, 0, 0)
    shutil.rmtree(photo_folder / "trip")
    report = index(lib, only=[str(photo_folder / "trip")])
    assert report.removed == 4 and lib.catalog.count("ok") == 8
    assert_index_matches_catalog(lib)


def test_only_keeps_the_full_scans_guarantees(lib: Library, photo_folder: Path, tmp_path: Path,
                                              looked_at: list[str]) -> None:
    """Broken photos recorded, hidden and non-photo paths ignored, paths outside the folders never looked at,
    an unreachable folder's photos kept, and re-embedding refused as partial."""
    index(lib, photo_folder)
    broken = photo_folder / "broken.jpg"
    broken.write_text("not a photo at all")
    hidden = photo_folder / ".hidden" / "h.png"
    hidden.parent.mkdir()
    shutil.copyfile(PHOTO_SWAP, hidden)
    outside = tmp_path / "elsewhere.png"
    shutil.copyfile(PHOTO_SWAP, outside)
    (photo_folder / "notes.txt").write_text("x")
    looked_at.clear()
    report = index(lib, only=[str(broken), str(hidden), str(hidden.parent), str(outside),
                              str(photo_folder / "notes.txt")])
    assert (report.added, report.failed) == (0, 1)
    assert looked_at == [str(broken)]
    assert [Path(f.path).name for f in lib.catalog.failures()] == ["broken.jpg"]
    with pytest.raises(ClipfindError, match="re-embedding covers every photo"):
        index(lib, reembed=True, only=[str(broken)])
    away = tmp_path / "unplugged"
    photo_folder.rename(away)
    report = index(lib, only=[str(photo_folder / "trip")])
    assert report.removed == 0 and lib.catalog.count("ok") == 10


def test_a_gpu_model_gets_batches_that_fill_it(lib: Library, photo_folder: Path) -> None:
    """The batch size follows the loaded model's device (ClipModel.batch_size_for: the request on a CPU,
    up to 256 by free memory on a GPU); an encoder without it (ONNX, on the CPU) keeps the request."""
    load = lib.image_encoder
    asked: list[int] = []

    class OnAGpu:
        def __init__(self, model) -> None:  # noqa: ANN001
            self._model = model

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self._model, name)

        def batch_size_for(self, requested: int = 32) -> int:
            asked.append(requested)
            return 256

    indexer = Indexer(lib.home, lib.spec, lambda: OnAGpu(load()), batch_size=4)
    report = indexer.run([str(photo_folder)])
    assert asked == [4] and indexer.batch_size == 256 and report.added > 0
    model = load()
    assert not hasattr(model, "batch_size_for") or model.batch_size_for(4) == 4  # on this CPU: as asked
