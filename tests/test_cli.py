"""End to end: the real `clipfind` command on real photos with the tiny random-weight model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipfind.catalog import Catalog
from tests.helpers import FORMATS, PHOTOS, committed_rows, copy_photos, needs_shared_data

pytestmark = needs_shared_data


def clipfind(home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "CLIPFIND_MODEL": "clipfind-tiny", "CLIPFIND_PRETRAINED": "none", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "clipfind.cli", "--home", str(home), *args],
        capture_output=True, text=True, env=full_env, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"clipfind {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def as_json(proc: subprocess.CompletedProcess[str]):
    return json.loads(proc.stdout)


@pytest.fixture
def library_folder(tmp_path: Path) -> Path:
    """Real photos plus an identical copy, a resized copy and every odd file of the formats corpus."""
    folder = tmp_path / "Photos"
    copy_photos(folder, 8, "kodak24")
    copy_photos(folder / "wallpapers", 3, "debian_wallpapers")
    shutil.copy2(folder / "kodim01.png", folder / "wallpapers" / "kodim01 copy.png")
    with Image.open(folder / "kodim02.png") as im:
        im.resize((384, 256)).save(folder / "kodim02 small.jpg", quality=85)
    odd = folder / "odd"
    odd.mkdir()
    for name in ("exif-samples/jpg/orientation/landscape_6.jpg", "pillow_tests/hopper.gif"):
        if (FORMATS / name).exists():
            shutil.copy2(FORMATS / name, odd / Path(name).name)
    (odd / "empty.jpg").write_bytes(b"")
    (odd / "notes.jpg").write_text("not a photo")
    return folder


def test_index_search_dupes_status_end_to_end(tmp_path: Path, library_folder: Path) -> None:
    home = tmp_path / "home"
    first = clipfind(home, "index", str(library_folder), "--json")
    assert "random weights" in first.stderr
    summary = as_json(first)
    assert summary["added"] >= 13 and summary["failed"] == 2 and summary["copied"] >= 0

    again = as_json(clipfind(home, "index", "--json"))
    assert (again["added"], again["updated"], again["removed"]) == (0, 0, 0)

    status = as_json(clipfind(home, "status", "--json"))
    assert status["files_indexed"] == summary["added"] + summary["copied"]
    assert status["files_failed"] == 2
    assert status["model"] == "clipfind-tiny" and status["pretrained"] is None
    assert [f["path"] for f in status["folders"]] == [str(library_folder)]
    assert {Path(f["path"]).name for f in status["failures"]} == {"empty.jpg", "notes.jpg"}

    hits = as_json(clipfind(home, "search", "a red barn", "-k", "5", "--json"))
    assert len(hits) == 5 and all({"path", "score"} <= set(h) for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    # image query: the photo itself is excluded and its byte-identical copy comes first
    query = library_folder / "kodim01.png"
    hits = as_json(clipfind(home, "search", "--image", str(query), "-k", "3", "--json"))
    assert hits[0]["path"] == str(library_folder / "wallpapers" / "kodim01 copy.png")
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert str(query) not in [h["path"] for h in hits]

    # a photo outside the index works too; combined with text and minus
    outside = tmp_path / "outside.jpg"
    shutil.copy2(PHOTOS / "sklearn_images" / "china.jpg", outside)
    combined = as_json(clipfind(home, "search", "temple", "--image", str(outside), "--minus", "people^0.5", "--json"))
    assert len(combined) == 20 or len(combined) == status["files_indexed"]

    groups = as_json(clipfind(home, "dupes", "--threshold", "0.99", "--json", "--tier", "identical"))
    assert len(groups) == 1
    group = groups[0]
    assert group["tier"] == "identical"
    assert {m["path"] for m in group["members"]} == {str(query), str(library_folder / "wallpapers" / "kodim01 copy.png")}
    assert group["keeper"] == str(query)  # same pixels and size: the shorter path wins
    assert all(m["similarity"] == 1.0 for m in group["members"])


def test_near_tier_from_constructed_vectors(tmp_path: Path, library_folder: Path) -> None:
    """With random weights similarities mean nothing, so give the resized copy a near-identical vector."""
    home = tmp_path / "home"
    clipfind(home, "index", str(library_folder))
    cat = Catalog(home / "catalog.sqlite3")
    original, vector = cat.photo_by_path(str(library_folder / "kodim02.png"))
    small, _ = cat.photo_by_path(str(library_folder / "kodim02 small.jpg"))
    rng = np.random.default_rng(0)
    nudged = vector + 0.01 * rng.standard_normal(vector.shape).astype(np.float32)
    cat.put_photo(small.path, small.size, small.mtime_ns, small.content_hash, small.width, small.height, None,
                  nudged / np.linalg.norm(nudged))
    # spread every other photo away so only the pair is near
    for photo in cat.photos():
        if photo.id not in (original.id, small.id) and "copy" not in photo.path and photo.path != str(library_folder / "kodim01.png"):
            far = rng.standard_normal(vector.shape).astype(np.float32)
            cat.put_photo(photo.path, photo.size, photo.mtime_ns, photo.content_hash, photo.width, photo.height,
                          photo.taken_at, far / np.linalg.norm(far))
    cat.close()
    groups = as_json(clipfind(home, "dupes", "--threshold", "0.98", "--tier", "near", "--json"))
    pair = [g for g in groups if str(library_folder / "kodim02.png") in {m["path"] for m in g["members"]}]
    assert len(pair) == 1
    assert pair[0]["keeper"] == str(library_folder / "kodim02.png")  # more pixels than the small copy
    assert {m["path"] for m in pair[0]["members"]} == {original.path, small.path}
    assert min(m["similarity"] for m in pair[0]["members"]) >= 0.98

    clipfind(home, "not-dupes", original.path, small.path)
    groups = as_json(clipfind(home, "dupes", "--threshold", "0.98", "--tier", "similar", "--json"))
    assert not [g for g in groups if original.path in {m["path"] for m in g["members"]}]


def test_sigkill_mid_run_then_resume_indexes_each_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted((PHOTOS / "kodak24").glob("*.png")) + sorted((PHOTOS / "pexels_interior").glob("*.jp*g"))
    for i in range(3):  # 3 x ~63 files, each copy re-encoded so contents differ
        for src in sources:
            with Image.open(src) as im:
                small = im.convert("RGB").resize((im.width // (i + 1), im.height // (i + 1)))
                small.save(folder / f"{i}_{src.stem}.jpg", quality=80)
    total = len(list(folder.iterdir()))
    home = tmp_path / "home"
    env = {**os.environ, "CLIPFIND_MODEL": "clipfind-tiny", "CLIPFIND_PRETRAINED": "none"}
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "clipfind.cli", "--home", str(home), "index", str(folder), "--batch-size", "4"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        target = (attempt + 1) * total // 4
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if committed_rows(home) >= target:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.05)
        proc.wait()
    assert kills >= 2, "the indexer finished before it could be killed: make the folder larger"
    before_resume = committed_rows(home)
    assert 0 < before_resume < total
    resumed = as_json(clipfind(home, "index", "--json"))
    assert resumed["added"] == total - before_resume  # nothing committed before a kill is redone
    cat = Catalog(home / "catalog.sqlite3")
    assert cat.integrity_ok()
    paths = list(cat.known_files())
    assert len(paths) == len(set(paths)) == total
    assert cat.count("ok") == total
    cat.close()


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "x", "-k", "-3"], "must be 1 or more"),
        (["dupes", "--threshold", "1.5"], "between 0 and 1"),
        (["index", "/definitely/not/here"], "folder not found"),
        (["search", "--image", "/definitely/not/here.jpg"], "not found"),
        (["search", "x", "--from", "yesterday"], "not a date"),
    ],
)
def test_bad_input_one_line_error_nonzero_exit(tmp_path: Path, args: list[str], message: str) -> None:
    home = tmp_path / "home"
    if args[0] == "search":
        copy_photos(tmp_path / "p", 2)
        clipfind(home, "index", str(tmp_path / "p"))
    proc = clipfind(home, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_other_model_refused_with_advice(tmp_path: Path) -> None:
    home = tmp_path / "home"
    copy_photos(tmp_path / "p", 2)
    clipfind(home, "index", str(tmp_path / "p"))
    proc = clipfind(home, "search", "x", "--model", "ViT-B-32", "--pretrained", "none", check=False)
    assert proc.returncode == 1
    assert "clipfind-tiny" in proc.stderr and "--reembed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # the random-weights warning, then the error


def test_trash_with_confirmation_flag(tmp_path: Path) -> None:
    home = tmp_path / "home"
    photos = copy_photos(tmp_path / "p", 3)
    clipfind(home, "index", str(tmp_path / "p"))
    refused = clipfind(home, "trash", str(photos[0]), check=False)  # no terminal: must ask for --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr and photos[0].exists()
    xdg = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    clipfind(home, "trash", str(photos[0]), "--yes", env=xdg)
    assert not photos[0].exists() and photos[1].exists()
    assert (tmp_path / "xdg" / "Trash" / "files" / photos[0].name).exists()
    assert as_json(clipfind(home, "status", "--json"))["files_indexed"] == 2


def test_every_command_has_help() -> None:
    for command in ("index", "search", "dupes", "not-dupes", "trash", "forget", "status", "models"):
        proc = subprocess.run([sys.executable, "-m", "clipfind.cli", command, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "--home" in proc.stdout
