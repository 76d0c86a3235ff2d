"""Library's caches follow the catalog: what it answers after a change is the new state."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from clipfind.library import Library


def test_duplicates_follow_the_catalog_between_calls(tiny_env: Path, photo_folder: Path, trash_home: Path) -> None:
    original = sorted(photo_folder.glob("*.png"))[0]
    copy = photo_folder / "copy of it.png"
    shutil.copy2(original, copy)
    lib = Library()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lib.indexer(batch_size=4).run([str(photo_folder)])
    identical = [g for g in lib.duplicates(0.95) if g.tier == "identical"]
    assert [sorted(m.photo.path for m in g.members) for g in identical] == [sorted([str(original), str(copy)])]
    assert lib.duplicates(0.95) == lib.duplicates(0.95)  # the cached contents give the same answer

    report = lib.trash([p for p in identical[0].others + (identical[0].keeper,) if p.path == str(copy)])
    assert [p.path for p in report.moved] == [str(copy)]
    assert not [g for g in lib.duplicates(0.95) if g.tier == "identical"]
    lib.close()
