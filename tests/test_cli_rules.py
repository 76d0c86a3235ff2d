"""Issue 11's command line: keeper rules (saved and per run), protected folders, the list of
"not duplicates" marks, and `clipfind trash --undo`, end to end on real photos in this process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clipfind.cli import _notes
from clipfind.records import DupeMember, PhotoInfo
from tests.helpers import copy_photos, needs_shared_data
from tests.test_cli_contracts import cli, indexed

pytestmark = needs_shared_data


@pytest.fixture
def pics(tmp_path: Path) -> Path:
    """Three photos and a byte copy of the first in a subfolder."""
    folder = tmp_path / "pics"
    copy_photos(folder, 3)
    (folder / "backup").mkdir()
    shutil.copy2(folder / "kodim01.png", folder / "backup" / "kodim01.png")
    return folder


def identical(capsys: pytest.CaptureFixture[str], *options: str) -> list[dict]:
    run = cli(capsys, "dupes", "--threshold", "1.0", "--tier", "identical", "--json", *options)
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_rules_are_shown_set_and_cleared(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "rules")
    assert run.code == 0 and "no keeper rules" in run.out
    originals = tmp_path / "Originals"
    run = cli(capsys, "rules", "--protect", str(originals), "--prefer-format", "CR2,heif,jpg",
              "--prefer-gps", "--json")
    assert run.code == 0, run.err
    saved = {"keep": [], "protect": [str(originals)], "prefer_folders": [], "formats": ["raw", "heic", "jpeg"],
             "prefer_dated": False, "prefer_gps": True}
    assert json.loads(run.out) == saved
    assert json.loads(cli(capsys, "rules", "--json").out) == saved  # saved in the home
    run = cli(capsys, "rules", "--prefer-folder", "Phone", "--no-prefer-gps")
    assert run.code == 0 and f"protect:       {originals}" in run.out and "raw > heic > jpeg" in run.out
    assert "prefer GPS" not in run.out and f"prefer folder: {Path.cwd() / 'Phone'}" in run.out
    cleared = json.loads(cli(capsys, "rules", "--clear", "--prefer-dated", "--json").out)
    assert cleared == {**saved, "protect": [], "formats": [], "prefer_gps": False, "prefer_dated": True}
    run = cli(capsys, "rules", "--prefer-format", "raw,,jpeg")
    assert run.code == 2 and "separated by commas" in run.err


def test_dupes_rules_for_one_run_are_not_saved(tiny_env: Path, pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    [group] = identical(capsys)
    assert group["keeper"] == str(pics / "kodim01.png")
    assert group["tier"] == "identical"
    for member in group["members"]:  # the contract of issue 11 stays, with the new fields
        assert {"similarity", "reasons", "suggested", "capture_gap_seconds"} <= set(member)
        assert member["protected"] is False and member["keeper_lacks"] == []
    [group] = identical(capsys, "--prefer-folder", str(pics / "backup"))
    assert group["keeper"] == str(pics / "backup" / "kodim01.png")
    [group] = identical(capsys, "--protect", str(pics / "backup"))  # a protected folder's photo is kept first
    assert group["keeper"] == str(pics / "backup" / "kodim01.png")
    assert [(m["path"], m["protected"], m["suggested"]) for m in group["members"]] == [
        (str(pics / "backup" / "kodim01.png"), True, False), (str(pics / "kodim01.png"), False, True)]
    assert json.loads(cli(capsys, "rules", "--json").out)["protect"] == []  # only for that run


def test_a_protected_folder_is_never_emptied_by_dupes_trash(tiny_env: Path, pics: Path, trash_home: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    assert cli(capsys, "rules", "--protect", str(pics)).code == 0
    run = cli(capsys, "dupes", "--threshold", "1.0", "--tier", "identical")
    assert "(protected)" in run.out, run.out
    run = cli(capsys, "dupes", "--threshold", "1.0", "--trash", "--yes")
    assert run.code == 0 and "nothing to move" in run.err, run.err
    assert (pics / "backup" / "kodim01.png").exists() and (pics / "kodim01.png").exists()
    # named on the command line, a photo of a protected folder stays too, with why and a non-zero code
    run = cli(capsys, "trash", "--yes", str(pics / "backup" / "kodim01.png"), str(pics / "kodim02.png"))
    assert run.code == 1 and f"is in the protected folder {pics}" in run.err, run.err
    assert (pics / "backup" / "kodim01.png").exists() and (pics / "kodim02.png").exists()


def test_trash_undo_puts_the_last_batch_back(tiny_env: Path, pics: Path, trash_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    run = cli(capsys, "trash", "--undo")
    assert run.code == 0 and "nothing to undo" in run.err
    run = cli(capsys, "dupes", "--threshold", "1.0", "--trash", "--yes")
    assert run.code == 0 and "moved 1 photo" in run.out, run.err
    copy = pics / "backup" / "kodim01.png"
    assert not copy.exists() and identical(capsys) == []
    run = cli(capsys, "trash", "--undo")
    assert run.code == 0 and run.out == f"put back: {copy}\n" and "put back 1 photo of 1" in run.err, run.err
    assert copy.exists() and len(identical(capsys)) == 1  # in the catalog again, no index run needed
    assert "nothing to undo" in cli(capsys, "trash", "--undo").err
    # A file at that path again is never overwritten: the rest is said on stderr, with a non-zero code.
    assert cli(capsys, "trash", "--yes", str(copy)).code == 0
    copy.write_bytes(b"another file")
    run = cli(capsys, "trash", "--undo")
    assert run.code == 1 and f"not put back: {copy} was not put back: a file is at that path again" in run.err
    assert copy.read_bytes() == b"another file"
    for args, message in ((["trash", "--undo", str(copy)], "give no photos"), (["trash", "--yes"], "give the photos")):
        run = cli(capsys, *args)
        assert run.code == 1 and message in run.err


def test_not_dupes_list_and_remove(tiny_env: Path, pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    one, copy = str(pics / "kodim01.png"), str(pics / "backup" / "kodim01.png")
    run = cli(capsys, "not-dupes", "--list")
    assert run.code == 0 and run.out == "" and "no \"not duplicates\" marks" in run.err
    assert cli(capsys, "not-dupes", one, copy).code == 0
    assert identical(capsys) == []
    run = cli(capsys, "not-dupes", "--list")
    assert run.out.splitlines() == ["mark 1 (every tier): 2 photos", f"  {one}", f"  {copy}"] or \
        run.out.splitlines() == ["mark 1 (every tier): 2 photos", f"  {copy}", f"  {one}"]
    listed = json.loads(cli(capsys, "not-dupes", "--list", "--json").out)
    assert [(m["id"], m["tier"], m["contents"], sorted(m["paths"])) for m in listed] == [
        (1, None, 1, sorted([one, copy]))]
    run = cli(capsys, "not-dupes", "--remove", "1")
    assert run.code == 0 and "took back mark 1" in run.out
    assert len(identical(capsys)) == 1
    run = cli(capsys, "not-dupes", "--remove", "1")
    assert run.code == 1 and "no \"not duplicates\" mark 1" in run.err
    run = cli(capsys, "not-dupes", "--list", one)
    assert run.code == 1 and "mark numbers, not photos" in run.err


def test_text_output_says_what_removing_a_photo_would_lose() -> None:
    photo = PhotoInfo(1, "/p/a.jpg", 1, 1, "h")
    assert _notes(DupeMember(photo, 1.0)) == ""
    assert _notes(DupeMember(photo, 1.0, protected=True)) == "  (protected)"
    assert _notes(DupeMember(photo, 1.0, keeper_lacks=("GPS",))) == "  (has GPS the kept photo lacks)"
    assert _notes(DupeMember(photo, 1.0, keeper_lacks=("GPS", "capture date", "camera"))) == \
        "  (has GPS, capture date and camera the kept photo lacks)"
