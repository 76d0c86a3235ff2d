"""clipfind.records: the keeper rules' own logic and format families (the rules' effect on groups is in test_dupes)."""

from __future__ import annotations

import pytest

from clipfind.records import DupeGroup, DupeMember, KeeperRules, PhotoInfo, photo_format


@pytest.mark.parametrize(
    ("path", "family"),
    [("/p/IMG_1.JPG", "jpeg"), ("/p/a.jpeg", "jpeg"), ("/p/IMG_1.HEIC", "heic"), ("/p/x.heif", "heic"),
     ("/p/IMG_1.CR2", "raw"), ("/p/d.dng", "raw"), ("/p/a.png", "png"), ("/p/a.webp", "webp"),
     ("/p/a.tif", "tiff"), ("/p/noext", ""), ("/p.d/noext", ""), ("/p/.hidden.jpg", "jpeg")],
)
def test_photo_format_families(path: str, family: str) -> None:
    assert photo_format(path) == family
    assert PhotoInfo(1, path, 1, 1, "h").format == family


def test_protected_folder_holds_its_subfolders_only() -> None:
    rules = KeeperRules(protect=("/photos/Originals/",))
    assert rules.is_protected("/photos/Originals/a.jpg")
    assert rules.is_protected("/photos/Originals/2020/b.jpg")
    assert not rules.is_protected("/photos/Originals copy/a.jpg")  # a sibling whose name starts the same
    assert not rules.is_protected("/photos/a.jpg")
    assert not KeeperRules().is_protected("/photos/Originals/a.jpg")


def test_rules_json_round_trip_and_bad_json() -> None:
    rules = KeeperRules(("/k.jpg",), ("/o",), ("/a", "/b"), ("raw", "heic", "jpeg"), True, True)
    assert KeeperRules.from_json(rules.to_json()) == rules
    assert KeeperRules.from_json(None) == KeeperRules()
    assert KeeperRules.from_json({"protect": "/o", "formats": ["raw", 3], "prefer_gps": "yes"}) == \
        KeeperRules(formats=("raw",))


def test_suggested_never_takes_a_protected_member() -> None:
    keeper, kept, other = (PhotoInfo(i, f"/{n}.jpg", 10, 1, "h") for i, n in ((1, "k"), (2, "o/p"), (3, "x")))
    group = DupeGroup("identical", keeper, (DupeMember(keeper, 1.0), DupeMember(kept, 1.0, 1, protected=True),
                                            DupeMember(other, 1.0, 1)))
    assert group.suggested() == (other,)
    assert group.suggested(include_similar=True) == (other,)
