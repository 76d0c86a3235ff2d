"""Issue 9's data-loss cases, end to end: real photos, a private trash, and what is left on disk.

Each case once emptied a duplicate group of every copy; each now keeps one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipfind.dupes import DupeGroup, DupeMember
from clipfind.library import Library
from tests.helpers import copy_photos, index, needs_shared_data

pytestmark = needs_shared_data


def pics_with_copy(folder: Path) -> tuple[Path, Path]:
    original = copy_photos(folder, 1)[0]
    copy = folder / f"copy_of_{original.name}"
    shutil.copy2(original, copy)
    return original, copy


def identical(lib: Library) -> list[DupeGroup]:
    return [g for g in lib.duplicates(1.0) if g.tier == "identical"]  # 1.0: no near group takes them in


def test_keeper_deleted_outside_clipfind_keeps_its_last_copy(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    original, copy = pics_with_copy(tmp_path / "pics")
    index(lib, tmp_path / "pics")
    groups = identical(lib)
    assert groups[0].keeper.path == str(original)
    original.unlink()
    report = lib.clean_up(groups, include_similar=False)
    assert report.moved == [] and copy.exists()
    assert "missing" in report.skipped_groups[0][1]


def test_keeper_swapped_for_other_bytes_with_its_date_set_back(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    original, copy = pics_with_copy(tmp_path / "pics")
    index(lib, tmp_path / "pics")
    groups = identical(lib)
    st = original.stat()
    data = bytearray(original.read_bytes())
    data[-20] ^= 0xFF  # other bytes, same size
    original.write_bytes(bytes(data))
    os.utime(original, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r
    report = lib.clean_up(groups, include_similar=False)
    assert report.moved == [] and copy.exists()
    assert "no longer holds" in report.skipped_groups[0][1]


def test_a_folder_moved_away_leaves_no_ghost_keepers(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    gone = tmp_path / "data" / "gone"
    photos = copy_photos(gone, 3)
    index(lib, gone)
    moved = gone.rename(tmp_path / "data" / "gone_moved")
    index(lib, moved)
    report = lib.clean_up(lib.duplicates(0.0), include_similar=True)
    assert report.moved == []
    assert all((moved / p.name).exists() for p in photos)


def test_ghost_rows_as_keepers_never_empty_a_group(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    """The same through groups made while the old folder was there: its keepers are gone, so nothing moves."""
    gone = tmp_path / "data" / "gone"
    photos = copy_photos(gone, 3)
    index(lib, gone)
    shutil.copytree(gone, tmp_path / "data" / "gone_moved")
    index(lib, tmp_path / "data" / "gone_moved")
    groups = identical(lib)
    assert len(groups) == 3 and all(g.keeper.path.startswith(str(gone)) for g in groups)
    shutil.rmtree(gone)
    report = lib.clean_up(groups, include_similar=False)
    assert report.moved == [] and len(report.skipped_groups) == 3
    assert all((tmp_path / "data" / "gone_moved" / p.name).exists() for p in photos)


def test_a_folder_indexed_again_through_a_symlink_is_not_its_own_duplicate(
    lib: Library, tmp_path: Path, trash_home: Path
) -> None:
    real = tmp_path / "real"
    photos = copy_photos(real, 3)
    (tmp_path / "alias").symlink_to(real)
    index(lib, real)
    index(lib, tmp_path / "alias")
    assert lib.duplicates(1.0) == []
    for group in lib.duplicates(0.0):  # random weights: every photo is "near" every other at 0
        files = [(os.stat(m.photo.path).st_dev, os.stat(m.photo.path).st_ino) for m in group.members]
        assert len(files) == len(set(files))
    report = lib.clean_up(lib.duplicates(0.0), include_similar=False)
    assert report.moved == [] and all(p.exists() for p in photos)


@pytest.fixture
def bind_mounted(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder bind-mounted onto another: one set of files, two paths, no symlink to see through."""
    real, mirror = tmp_path / "real", tmp_path / "mirror"
    real.mkdir()
    mirror.mkdir()
    done = subprocess.run(["mount", "--bind", str(real), str(mirror)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"bind mounts need mount privileges here: {done.stderr.strip()}")
    try:
        yield real, mirror
    finally:
        subprocess.run(["umount", str(mirror)], check=True)


def test_a_bind_mounted_folder_is_not_its_own_duplicate(
    lib: Library, bind_mounted: tuple[Path, Path], trash_home: Path
) -> None:
    real, mirror = bind_mounted
    photos = copy_photos(real, 3)
    index(lib, real)
    index(lib, mirror)
    assert lib.status().files_indexed == 6 and lib.duplicates(1.0) == []
    report = lib.clean_up(lib.duplicates(0.0), include_similar=False)  # 0.0: every photo is "near" here
    assert report.moved == [] and all(p.exists() for p in photos)
    groups = lib.duplicates(0.0)
    lib.clean_up(groups, include_similar=True)  # near members may go; a keeper, by either path, never
    assert groups and all(os.path.exists(g.keeper.path) for g in groups)


def test_a_symlinked_file_and_a_hard_link_are_the_same_photo(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    originals = tmp_path / "originals"
    k = copy_photos(originals, 1)[0]
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / k.name).symlink_to(k)
    (tmp_path / "h").mkdir()
    os.link(k, tmp_path / "h" / k.name)
    for folder in ("originals", "s", "h"):
        index(lib, tmp_path / folder)
    assert lib.duplicates(1.0) == []  # one file, three names: nothing to offer
    assert lib.status().files_indexed == 3


def test_stale_groups_never_trash_a_path_of_the_keepers_file(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    """Groups made before clipfind knew the file identity (older catalogs): the check on disk refuses."""
    real = tmp_path / "real"
    k = copy_photos(real, 1)[0]
    (tmp_path / "alias").symlink_to(real)
    index(lib, real)
    index(lib, tmp_path / "alias")
    keeper, other = sorted(lib.catalog.photos(), key=lambda p: len(p.path))
    stale = [DupeGroup("identical", keeper, (DupeMember(keeper, 1.0), DupeMember(other, 1.0, keeper.id)))]
    report = lib.clean_up(stale, include_similar=False)
    assert report.moved == [] and k.exists()
    assert "same file" in report.refused[0][1]


def test_a_keeper_of_one_group_is_never_moved_as_a_member_of_another(
    lib: Library, tmp_path: Path, trash_home: Path
) -> None:
    """china.jpg kept {china, china_copy} and was a to-remove member of a near group: both copies went."""
    pics = tmp_path / "pics"
    china, china_copy = pics_with_copy(pics)
    other = copy_photos(tmp_path / "other", 2)[1]
    index(lib, pics, tmp_path / "other")
    by_path = {p.path: p for p in lib.catalog.photos()}
    c, cc, k = by_path[str(china)], by_path[str(china_copy)], by_path[str(other)]
    overlapping = [
        DupeGroup("identical", c, (DupeMember(c, 1.0), DupeMember(cc, 1.0, c.id))),
        DupeGroup("similar", k, (DupeMember(k, 1.0), DupeMember(c, 0.99))),
    ]
    report = lib.clean_up(overlapping, include_similar=True)  # both groups' defaults: cc, and c
    assert china.exists() and not china_copy.exists() and other.exists()
    assert [p.path for p in report.moved] == [str(china_copy)]
    assert "keeps" in report.refused[0][1]


def test_a_selected_keeper_is_refused(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    original, copy = pics_with_copy(tmp_path / "pics")
    index(lib, tmp_path / "pics")
    groups = identical(lib)
    report = lib.clean_up(groups, [groups[0].keeper])
    assert report.moved == [] and original.exists() and copy.exists()


def test_default_clean_up_moves_only_byte_identical_copies(lib: Library, tmp_path: Path, trash_home: Path) -> None:
    pics = tmp_path / "pics"
    photos = copy_photos(pics, 4)
    shutil.copy2(photos[0], pics / "copy.png")
    index(lib, pics)
    groups = lib.duplicates(0.0)  # random weights: everything is "near" at 0
    report = lib.clean_up(groups, include_similar=False)
    assert [os.path.basename(p.path) for p in report.moved] in (["copy.png"], [photos[0].name])
    assert sum(p.exists() for p in photos) + (pics / "copy.png").exists() == 4
