"""What the command line says (issue 9, "Messages"): a clear one-line error for what cannot be
meant, a word where something is silently changed, and nothing where nothing is wrong."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from clipfind.library import Library
from tests.helpers import FORMATS, copy_photos, needs_shared_data
from tests.test_cli_contracts import cli, indexed

pytestmark = needs_shared_data


@pytest.fixture
def pics(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An indexed folder of three photos (the home is tiny_env's)."""
    folder = tmp_path / "pics"
    copy_photos(folder, 3)
    indexed(capsys, folder)
    return folder


def refused(run_: object, message: str) -> None:
    code, lines = run_.code, run_.lines  # type: ignore[attr-defined]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("clipfind: error:"), lines
    assert message in lines[0], lines


# -- search ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--from", "2023-08-01", "--to", "2023-06-01"], "--from 2023-08-01 00:00:00 is after --to 2023-06-01 23:59:59"),
    (["--from", "2023-06-01T10:00+02:00"], "no time zone"),
    (["--to", "2023-06-01T10:00:00Z"], "no time zone"),
])
def test_dates_that_cannot_mean_anything(pics: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         message: str) -> None:
    refused(cli(capsys, "search", "x", *args), message)


@pytest.mark.parametrize("query, message", [
    ("beach^-1", "bad weight in 'beach^-1'"),
    ("beach^0", "bad weight in 'beach^0'"),
    ("^2", "a weight needs a phrase before it: '^2'"),
])
def test_bad_weights(pics: Path, capsys: pytest.CaptureFixture[str], query: str, message: str) -> None:
    refused(cli(capsys, "search", query), message)
    refused(cli(capsys, "search", "sea", "--minus", query), message)


def test_folder_filter_must_be_an_indexed_folder(pics: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused(cli(capsys, "search", "x", "--folder", str(elsewhere)), f"--folder {elsewhere} is not an indexed folder")
    photo = pics / "kodim01.png"
    refused(cli(capsys, "search", "x", "--folder", str(photo)), f"not a folder: {photo}")
    for inside_or_around in (pics, tmp_path):  # the folder itself, or a folder that holds it
        run = cli(capsys, "search", "x", "--folder", str(inside_or_around), "--json")
        assert run.code == 0 and run.out.count('"path"') == 3, run.err


def test_a_folder_is_not_a_query_photo(pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(cli(capsys, "search", "--image", str(pics)), f"not a photo file: {pics} (a folder)")


def test_a_query_cut_to_the_model_context_is_named_once(pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = " ".join(["a dog running on a sunny beach"] * 20)
    run = cli(capsys, "search", long, "short", "-k", "1")
    assert run.code == 0, run.err
    assert len(run.lines) == 1 and "longer than the model reads" in run.lines[0], run.lines
    assert run.lines[0].startswith("clipfind: warning: the query 'a dog running on a sunny beach")
    assert "short" not in run.lines[0]


def test_an_empty_home_says_to_index_first(tiny_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "search", "dog")
    assert run.code == 0 and run.lines == ["clipfind: nothing indexed yet: run `clipfind index FOLDER`"], run.err


def test_an_index_not_saved_yet_is_no_repair(pics: Path, tiny_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A search during a first index run finds no index file yet: nothing is wrong, say nothing.
    Half of a saved pair is a repair, and says so."""
    (tiny_env / "vectors.hnsw").unlink()
    assert "vector index was missing" in cli(capsys, "search", "x").err
    for name in ("vectors.hnsw", "vectors.hnsw.json"):
        (tiny_env / name).unlink()
    run = cli(capsys, "search", "x", "--json")
    assert run.code == 0 and run.lines == [], run.err


# -- trash and counts -----------------------------------------------------------------------
def test_plurals_and_the_already_gone_wording(pics: Path, tiny_env: Path, trash_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    single = pics.parent / "single"
    copy_photos(single, 1, "skimage_data")
    indexed(capsys, single)
    status = cli(capsys, "status").out
    assert f"{single}  1 file\n" in status and "indexed:  4 photos," in status
    gone = pics / "kodim01.png"
    gone.unlink()
    run = cli(capsys, "trash", "--yes", str(gone), str(pics / "kodim02.png"))
    assert run.code == 1
    assert f"clipfind: not moved: {gone} is already gone" in run.lines, run.lines
    assert run.out.startswith("moved 1 photo (")
    run = cli(capsys, "forget", str(single))
    assert run.code == 0 and "1 photo left the catalog" in run.out, run.err


def test_a_move_the_catalog_cannot_record_reads_as_one_sentence(pics: Path, trash_home: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reason is a predicate after the path: "not moved: P stays where it is: ...", not
    "not moved: P was not moved: ..."."""
    import sqlite3

    from clipfind.catalog import Catalog

    def full(self: Catalog, path: str, pending: bool) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Catalog, "set_trash_pending", full)
    photo = pics / "kodim01.png"
    run = cli(capsys, "trash", "--yes", str(photo))
    assert run.code == 1 and photo.exists()
    assert run.lines == [f"clipfind: not moved: {photo} stays where it is: the catalog cannot record the move "
                         "(database or disk is full)"], run.lines


# -- wrong paths and names ------------------------------------------------------------------
def test_home_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_env: Path) -> None:
    a_file = tmp_path / "home.txt"
    a_file.write_text("not a folder")
    refused(cli(capsys, "--home", str(a_file), "status"), f"--home is not a folder: {a_file}")


def test_index_a_file(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = copy_photos(tmp_path / "p", 1)[0]
    refused(cli(capsys, "index", str(photo)), f"not a folder: {photo}")


def test_unknown_model_on_a_catalog_is_unknown_not_a_mismatch(pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "search", "x", "--model", "NoSuch", "--pretrained", "none")
    refused(run, "Unknown model 'NoSuch'")
    assert "--reembed" not in run.err


def test_os_errors_name_files_as_text(pics: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: Library) -> None:
        raise OSError(28, "No space left on device", b"/photos/caf\xc3\xa9.jpg")

    monkeypatch.setattr(Library, "status", full_disk)
    refused(cli(capsys, "status"), "error: No space left on device: /photos/café.jpg")


# -- third-party noise ----------------------------------------------------------------------
def test_no_onnxruntime_advice_when_quantising(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFIND_PRECISION", "onnx-int8")
    copy_photos(tmp_path / "p", 2)
    with caplog.at_level(logging.WARNING):
        indexed(capsys, tmp_path / "p")
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    assert "pre-processing" not in capsys.readouterr().err


def test_corrupt_exif_names_the_photo(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = FORMATS / "pillow_tests" / "hopper_bad_exif.jpg"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    folder = tmp_path / "p"
    folder.mkdir()
    shutil.copy2(source, folder / "bad exif.jpg")
    run = cli(capsys, "index", str(folder))
    assert run.code == 0, run.err
    exif = [line for line in run.lines if "EXIF" in line]
    assert exif and all(f"{folder / 'bad exif.jpg'}: " in line for line in exif), run.err


# -- indexing before the model is downloaded (issue 11) -------------------------------------
def test_index_without_the_model_says_what_works_and_what_waits(tiny_env: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline with no weights in the cache: the photos are recorded for the duplicates, one notice
    says why, what works and what to do, and the exit status is 0 (the run did what it could; the
    next one finishes it). Search refuses with the same advice; a run with the model embeds them."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CLIPFIND_MODEL", "ViT-B-32")
    monkeypatch.delenv("CLIPFIND_PRETRAINED")
    folder = tmp_path / "p"
    copy_photos(folder, 2)
    shutil.copy2(folder / "kodim01.png", folder / "kodim01 copy.png")
    (folder / "empty.jpg").write_bytes(b"")

    run = cli(capsys, "index", str(folder))
    assert run.code == 0, run.err
    [notice] = run.lines
    assert notice.startswith("clipfind: the model could not be loaded: Could not download the weights for "
                             "ViT-B-32 "), notice
    assert "offline mode is on" in notice
    assert ("3 photos are recorded without it and wait for the model. Duplicates work now (identical files, and the "
            "same photo saved again); search and similar shots need the model: run `clipfind index` again once it "
            "is available.") in notice
    assert run.out.startswith("3 added, 0 updated") and "1 unreadable" in run.out
    again = cli(capsys, "index", "--json")  # each run without the model says it again, once
    assert again.code == 0 and json.loads(again.out)["waiting_for_model"] == 3
    assert len(again.lines) == 1 and "could not be loaded" in again.lines[0]

    status = cli(capsys, "status")
    assert "indexed:  3 photos, 1 unreadable\nwaiting:  3 photos for the model" in status.out
    assert json.loads(cli(capsys, "status", "--json").out)["files_waiting"] == 3
    dupes = cli(capsys, "dupes", "--json")
    assert [(g["tier"], sorted(os.path.basename(m["path"]) for m in g["members"])) for g in json.loads(dupes.out)] \
        == [("identical", ["kodim01 copy.png", "kodim01.png"])]
    assert dupes.lines == ["clipfind: similar shots leave out 3 photos indexed while the model could not be loaded; "
                           "run `clipfind index` once it is available"]
    refused(cli(capsys, "search", "a red door"), "search needs the model, and all 3 photos indexed so far wait for it")

    monkeypatch.setenv("CLIPFIND_MODEL", "clipfind-tiny")  # the model is there now
    monkeypatch.setenv("CLIPFIND_PRETRAINED", "none")
    run = cli(capsys, "index")
    assert run.code == 0 and any("3 photos recorded while the model could not be loaded went through it" in line
                                 for line in run.lines), run.err
    assert "waiting:" not in cli(capsys, "status").out
    search = cli(capsys, "search", "a red door", "--json")
    assert search.code == 0 and len(json.loads(search.out)) == 3 and search.lines == [], search.err
