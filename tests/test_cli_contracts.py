"""The command line's contracts (issue 9): stdout is the command's output only, prompts take
Ctrl+D and "no" alike, Ctrl+C while indexing says so and exits 130, empty paths are refused,
and the commands reach the Library's clean-up, marks and folders as the contract says.

In-process runs (`cli`) are cheap: torch is imported once. Where a terminal or a signal is the
point, the real command runs in a subprocess (`spawn`).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from clipfind.catalog import Catalog
from clipfind.cli import main
from tests.helpers import ROOT, copy_photos, needs_shared_data

pytestmark = needs_shared_data

TINY = {"CLIPFIND_MODEL": "clipfind-tiny", "CLIPFIND_PRETRAINED": "none"}


class Run(NamedTuple):
    """What a command gave: exit code, stdout, stderr (unpacks as a tuple too)."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """stderr lines besides the random-weights warning the tiny model always gives."""
        return [line for line in self.err.splitlines() if line.strip() and "random weights" not in line]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    """`clipfind ARGS` in this process (the tiny_env fixture sets model and home)."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refusals
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def indexed(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    run = cli(capsys, "index", str(folder))
    assert run.code == 0, run.err


def spawn(home: Path, *args: str, **popen: object) -> subprocess.Popen[bytes]:
    """The real `python -m clipfind.cli --home HOME ARGS`."""
    return subprocess.Popen(
        [sys.executable, "-m", "clipfind.cli", "--home", str(home), *args],
        env={**os.environ, **TINY, "XDG_DATA_HOME": str(home.parent / "xdg")}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,  # type: ignore[arg-type]
    )


def answer_prompt(home: Path, args: list[str], keys: bytes) -> Run:
    """Run a command on a terminal and type `keys` at its [y/N] prompt (b"\\x04" is Ctrl+D)."""
    master, slave = pty.openpty()
    proc = spawn(home, *args, stdin=slave)
    os.close(slave)
    err = b""
    deadline = time.monotonic() + 120
    while b"[y/N]" not in err and proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        if ready:
            err += os.read(proc.stderr.fileno(), 4096)  # type: ignore[union-attr]
    assert b"[y/N]" in err, err.decode(errors="replace")
    os.write(master, keys)
    out, rest = proc.communicate(timeout=120)
    os.close(master)
    return Run(proc.returncode, out.decode(), (err + rest).decode())


@pytest.fixture
def pics(tmp_path: Path) -> Path:
    """Three photos and a byte copy of the first."""
    folder = tmp_path / "pics"
    copy_photos(folder, 3)
    shutil.copy2(folder / "kodim01.png", folder / "copy_of_kodim01.png")
    return folder


# -- item 12: empty paths -----------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["index", ""],
    ["search", "x", "--folder", ""],
    ["search", "--image", ""],
    ["forget", ""],
    ["trash", "--yes", ""],
    ["not-dupes", "", "a.jpg"],
    ["--home", "", "status"],
], ids=lambda a: " ".join(a).replace('""', "<empty>"))
def test_empty_paths_are_refused(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    cwd = tmp_path / "cwd"  # what an empty path used to mean
    copy_photos(cwd, 1)
    monkeypatch.chdir(cwd)
    run = cli(capsys, *args)
    assert run.code == 2 and "empty path" in run.err and len(run.lines) == 1, run.err
    assert not (tiny_env / "catalog.sqlite3").exists() or str(cwd) not in cli(capsys, "status").out


# -- items 7 and 8: prompts ---------------------------------------------------------------
@pytest.mark.parametrize("keys", [b"\x04", b"n\n"], ids=["ctrl-d", "no"])
@pytest.mark.parametrize("command", ["trash", "dupes --trash"])
def test_a_declined_prompt_moves_nothing_and_says_so_alike(
    tiny_env: Path, pics: Path, capsys: pytest.CaptureFixture[str], command: str, keys: bytes
) -> None:
    indexed(capsys, pics)
    args = ["trash", str(pics / "kodim02.png")] if command == "trash" else ["dupes", "--trash"]
    run = answer_prompt(tiny_env, args, keys)
    assert run.code == 1 and "Traceback" not in run.err, run.err
    assert run.err.strip().endswith("clipfind: nothing moved"), run.err
    assert "[y/N]" not in run.out  # the prompt is on stderr
    assert len(list(pics.iterdir())) == 4


def test_dupes_json_trash_prints_one_json_document(tiny_env: Path, pics: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    listed = json.loads(cli(capsys, "dupes", "--json").out)
    assert isinstance(listed, list) and len(listed) == 1  # without --trash: the list of groups, as before

    run = answer_prompt(tiny_env, ["dupes", "--json", "--trash"], b"y\n")
    assert run.code == 0, run.err
    result = json.loads(run.out)  # the prompt and the summaries are not on stdout
    assert result["groups"] == listed
    assert result["trash"]["moved"] == [str(pics / "copy_of_kodim01.png")]
    assert result["trash"]["refused"] == [] and result["trash"]["skipped_groups"] == []
    assert (pics / "kodim01.png").exists() and not (pics / "copy_of_kodim01.png").exists()


def test_tier_identical_shows_copies_that_sit_in_a_similar_group(tiny_env: Path, pics: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    _near_copy(tiny_env, pics / "kodim01.png", pics / "kodim02.png")  # kodim01 and its copy join a similar group
    everything = json.loads(cli(capsys, "dupes", "--threshold", "0.98", "--json").out)
    assert [g["tier"] for g in everything] == ["similar"] and len(everything[0]["members"]) == 3
    identical = json.loads(cli(capsys, "dupes", "--threshold", "0.98", "--tier", "identical", "--json").out)
    assert [(g["tier"], g["keeper"], len(g["members"])) for g in identical] == [
        ("identical", str(pics / "kodim01.png"), 2)]
    run = cli(capsys, "dupes", "--threshold", "0.98", "--tier", "identical", "--trash", "--yes")
    assert run.code == 0 and "moved 1 photo " in run.out, run.err
    assert sorted(p.name for p in pics.iterdir()) == ["kodim01.png", "kodim02.png", "kodim03.png"]


# -- item 9: Ctrl+C while indexing --------------------------------------------------------
# A real SIGINT, sent by the process to itself at the start of one stage of `clipfind index`.
INTERRUPT = "import os, signal, sys\ndef interrupt():\n    os.kill(os.getpid(), signal.SIGINT)\n"
STAGES = {
    "opening the catalog": (
        "import clipfind.library as m\norig = m.Library.__init__\n"
        "def hooked(self, *a, **k):\n    interrupt()\n    orig(self, *a, **k)\nm.Library.__init__ = hooked\n"
    ),
    "scanning": (
        "import clipfind.indexer as m\norig = m.scan_folders\n"
        "def hooked(*a, **k):\n    interrupt()\n    yield from orig(*a, **k)\nm.scan_folders = hooked\n"
    ),
    "loading the model": (
        "import clipfind.library as m\norig = m.Library.image_encoder\n"
        "def hooked(self):\n    interrupt()\n    return orig(self)\nm.Library.image_encoder = hooked\n"
    ),
    "before the first batch": (
        "import clipfind.library as m\norig = m.Library.image_encoder\n"
        "def hooked(self):\n    encoder = orig(self)\n    interrupt()\n    return encoder\n"
        "m.Library.image_encoder = hooked\n"
    ),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_ctrl_c_at_any_stage_of_index_is_a_cancel(tmp_path: Path, pics: Path, stage: str) -> None:
    home = tmp_path / "home"
    script = INTERRUPT + STAGES[stage] + "from clipfind.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script, "--home", str(home), "index", str(pics)],
        env={**os.environ, **TINY}, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "clipfind: cancelled, run again to continue" in proc.stderr
    if stage != "opening the catalog":  # the first Ctrl+C is answered at once
        assert "stopping after the current step" in proc.stderr
    if (home / "catalog.sqlite3").exists():
        catalog = Catalog(home / "catalog.sqlite3")
        assert catalog.count("ok") == 0  # stopped before the first batch
        catalog.close()


# -- the Library's clean-up, marks and folders through the CLI ----------------------------
def _near_copy(home: Path, original: Path, near: Path) -> None:
    """Give `near` a vector within 0.99 of `original`'s, and every other photo a far one."""
    cat = Catalog(home / "catalog.sqlite3")
    _, vector = cat.photo_by_path(str(original))  # type: ignore[misc]
    rng = np.random.default_rng(0)
    for photo in cat.photos():
        if photo.content_hash == cat.photo_by_path(str(original))[0].content_hash:  # type: ignore[index]
            continue
        if photo.path == str(near):
            new = vector + 0.01 * rng.standard_normal(vector.shape).astype(np.float32)
        else:
            new = rng.standard_normal(vector.shape).astype(np.float32)
        cat.put_photo(photo.path, photo.size, photo.mtime_ns, photo.content_hash, photo.width, photo.height,
                      photo.taken_at, new / np.linalg.norm(new))
    cat.close()


def test_dupes_trash_moves_similar_shots_only_with_tier_similar(
    tiny_env: Path, pics: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    indexed(capsys, pics)
    _near_copy(tiny_env, pics / "kodim01.png", pics / "kodim02.png")
    run = cli(capsys, "dupes", "--threshold", "0.98", "--trash", "--yes")
    assert run.code == 0, run.err
    assert "similar shot listed above will stay" in run.err and "--tier similar" in run.err
    assert "moved 1 photo " in run.out
    assert not (pics / "copy_of_kodim01.png").exists()
    assert (pics / "kodim01.png").exists() and (pics / "kodim02.png").exists()

    run = cli(capsys, "dupes", "--threshold", "0.98", "--tier", "similar", "--trash", "--yes")
    assert run.code == 0, run.err
    assert (pics / "kodim01.png").exists() and not (pics / "kodim02.png").exists()


def test_dupes_trash_reports_a_group_left_alone(tiny_env: Path, pics: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    (pics / "kodim01.png").unlink()  # the keeper, outside clipfind
    run = cli(capsys, "dupes", "--trash", "--yes", "--json")
    assert run.code == 1
    result = json.loads(run.out)
    assert result["trash"]["moved"] == [] and len(result["trash"]["skipped_groups"]) == 1
    assert any("kodim01.png" in line and "left alone" in line for line in run.lines), run.err
    assert (pics / "copy_of_kodim01.png").exists()


def test_not_dupes_needs_two_photos_and_can_be_undone(tiny_env: Path, pics: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    one = str(pics / "kodim01.png")
    copy = str(pics / "copy_of_kodim01.png")

    def together() -> bool:
        groups = json.loads(cli(capsys, "dupes", "--json").out)
        return any({one, copy} <= {m["path"] for m in g["members"]} for g in groups)

    for args in ([one], [one, one]):
        run = cli(capsys, "not-dupes", *args)
        assert run.code == 1 and "at least two" in run.err, run.err
    assert together()

    assert cli(capsys, "not-dupes", one, copy).code == 0
    assert not together()
    run = cli(capsys, "not-dupes", "--undo", one, copy)
    assert run.code == 0 and "took back 1 mark:" in run.out, run.err
    assert together()
    run = cli(capsys, "not-dupes", "--undo", one, copy)
    assert run.code == 1 and "no \"not duplicates\" mark" in run.err


def test_forget_keeps_what_another_indexed_folder_covers(tiny_env: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "par"
    copy_photos(parent, 1)
    copy_photos(parent / "child", 2, "skimage_data")
    indexed(capsys, parent / "child")
    indexed(capsys, parent)
    run = cli(capsys, "forget", str(parent))
    assert run.code == 0 and "forgot" in run.out, run.err
    status = json.loads(cli(capsys, "status", "--json").out)
    assert [f["path"] for f in status["folders"]] == [str(parent / "child")]
    assert status["files_indexed"] == 2


def test_trash_names_why_an_unreadable_file_is_not_in_the_catalog(
    tiny_env: Path, pics: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pics / "notes.jpg").write_text("not a photo")
    indexed(capsys, pics)
    run = cli(capsys, "trash", "--yes", str(pics / "notes.jpg"))
    assert run.code == 1 and "could not be read when it was indexed" in run.err, run.err
    assert "not in the catalog" not in run.err and (pics / "notes.jpg").exists()


def test_index_rebuild_starts_over_from_the_photos(tiny_env: Path, pics: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    indexed(capsys, pics)
    for leftover in tiny_env.glob("catalog.sqlite3-*"):
        leftover.unlink()
    (tiny_env / "catalog.sqlite3").write_bytes(b"this is not a database\n" * 200)
    assert cli(capsys, "status").code == 1
    run = cli(capsys, "index", "--rebuild", str(pics), "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["added"] + json.loads(run.out)["copied"] == 4
    assert json.loads(cli(capsys, "status", "--json").out)["files_indexed"] == 4


# -- issue 11: three tiers, the same tier found without the model ----------------------------
@pytest.fixture
def resaved(tmp_path: Path) -> Path:
    """Three photos, a byte copy, re-saved copies (a smaller JPEG, a mirror, a grey JPEG) and two
    empty files that cannot be read."""
    from PIL import Image, ImageOps

    folder = tmp_path / "resaved"
    copy_photos(folder, 3)
    shutil.copy2(folder / "kodim01.png", folder / "copy_of_kodim01.png")
    with Image.open(folder / "kodim01.png") as im:
        im.resize((im.width // 2, im.height // 2)).convert("RGB").save(folder / "kodim01 small.jpg", quality=60)
    with Image.open(folder / "kodim02.png") as im:
        ImageOps.mirror(im).save(folder / "kodim02 mirrored.png")
    with Image.open(folder / "kodim03.png") as im:
        ImageOps.grayscale(im).save(folder / "kodim03 grey.jpg", quality=90)
    (folder / "zero_bytes.jpg").write_bytes(b"")
    (folder / "empty.heic").write_bytes(b"")
    return folder


def _names(group: dict) -> list[str]:
    return sorted(os.path.basename(m["path"]) for m in group["members"])


def test_dupes_json_three_tiers_with_reasons_and_no_unreadable_files(
    tiny_env: Path, resaved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    indexed(capsys, resaved)
    # 1.0: no two different pictures are similar to the model, so what groups them is the same tier.
    groups = json.loads(cli(capsys, "dupes", "--threshold", "1.0", "--json").out)
    assert sorted(_names(g) for g in groups) == [
        ["copy_of_kodim01.png", "kodim01 small.jpg", "kodim01.png"],
        ["kodim02 mirrored.png", "kodim02.png"],
        ["kodim03 grey.jpg", "kodim03.png"],
    ]
    assert {g["tier"] for g in groups} == {"same"}
    for group in groups:
        for member in group["members"]:
            assert isinstance(member["similarity"], float) and member["suggested"] != member["keeper"]
            if member["keeper"]:
                assert member["reasons"] == []
            elif member["path"].endswith("copy_of_kodim01.png"):
                assert member["reasons"] == ["identical"]
            else:
                assert "fingerprint" in member["reasons"]
    pair = next(g for g in groups if "kodim02.png" in _names(g))
    assert "mirrored" in next(m for m in pair["members"] if not m["keeper"])["reasons"]
    # Unreadable files are not photos: in no group, listed as failures.
    status = json.loads(cli(capsys, "status", "--json").out)
    assert sorted(os.path.basename(f["path"]) for f in status["failures"]) == ["empty.heic", "zero_bytes.jpg"]

    same = json.loads(cli(capsys, "dupes", "--threshold", "1.0", "--tier", "same", "--json").out)
    assert same == groups
    identical = json.loads(cli(capsys, "dupes", "--threshold", "1.0", "--tier", "identical", "--json").out)
    assert [_names(g) for g in identical] == [["copy_of_kodim01.png", "kodim01.png"]]

    run = cli(capsys, "dupes", "--threshold", "1.0", "--trash", "--yes")
    assert run.code == 0 and "moved 4 photos" in run.out, run.err
    left = sorted(p.name for p in resaved.iterdir())
    assert "kodim01.png" in left and "kodim03.png" in left  # the larger, colour originals are kept
    assert len([n for n in left if n.startswith("kodim02")]) == 1


def test_a_same_group_inside_a_similar_group_keeps_its_copies_ticked(
    tiny_env: Path, resaved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    indexed(capsys, resaved)
    # 0.0: with random weights every photo is similar to every other: one similar group, which
    # takes the same groups whole; only the copies of a member are ticked, never a similar shot.
    [group] = json.loads(cli(capsys, "dupes", "--threshold", "0.0", "--json").out)
    assert group["tier"] == "similar" and len(group["members"]) == 7
    ticked = sorted(os.path.basename(m["path"]) for m in group["members"] if m["suggested"])
    heads = [m for m in group["members"] if "clip" in m["reasons"]]
    assert len(heads) == 2 and not any(m["suggested"] for m in heads)
    assert len(ticked) == 4 and "copy_of_kodim01.png" in ticked
    same = json.loads(cli(capsys, "dupes", "--threshold", "0.0", "--tier", "same", "--json").out)
    assert sorted(_names(g) for g in same) == [
        ["copy_of_kodim01.png", "kodim01 small.jpg", "kodim01.png"],
        ["kodim02 mirrored.png", "kodim02.png"],
        ["kodim03 grey.jpg", "kodim03.png"],
    ]
    run = cli(capsys, "dupes", "--threshold", "0.0", "--trash", "--yes")
    assert run.code == 0 and "moved 4 photos" in run.out, run.err
    assert "2 similar shots listed above will stay" in run.err
