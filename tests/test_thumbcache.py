"""Thumbnails cached on disk per home (clipfind.thumbcache): a second read comes from the cache, a changed
photo gets a fresh entry, a damaged entry is made again, and nothing half-written is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from clipfind.errors import ImageLoadError
from clipfind.library import Library
from clipfind.thumbcache import ThumbCache


def _photo(path: Path, size: tuple[int, int] = (800, 600), colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=90)
    return path


def test_second_read_comes_from_the_cache_and_fits_the_side(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "a.jpg")
    cache = ThumbCache(tmp_path / "thumbs", 128)
    first = cache.thumbnail(str(photo))
    assert first.size == (128, 96) and first.mode == "RGB"
    assert (cache.hits, cache.misses) == (0, 1)
    again = ThumbCache(tmp_path / "thumbs", 128).thumbnail(str(photo))  # a second start: a new instance
    assert again.size == (128, 96)
    entries = list((tmp_path / "thumbs").rglob("*"))
    assert [p.suffix for p in entries if p.is_file()] == [".jpg"]  # one entry, no temp file left
    assert ThumbCache(tmp_path / "thumbs", 64).entry(str(photo)) != cache.entry(str(photo))  # another size


def test_a_changed_photo_gets_a_new_entry(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "a.jpg", colour="red")
    cache = ThumbCache(tmp_path / "thumbs", 64)
    old = cache.entry(str(photo))
    assert cache.thumbnail(str(photo)).getpixel((10, 10))[0] > 200
    _photo(photo, colour="blue")
    os.utime(photo, ns=(1, 1_000_000_000))  # another mtime, whatever the clock's resolution
    assert cache.entry(str(photo)) != old
    assert cache.thumbnail(str(photo)).getpixel((10, 10))[2] > 200 and cache.misses == 2


def test_a_damaged_entry_is_made_again(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "a.jpg")
    cache = ThumbCache(tmp_path / "thumbs", 64)
    cache.thumbnail(str(photo))
    entry = cache.entry(str(photo))
    entry.write_bytes(entry.read_bytes()[:40])  # truncated, as after a full disk
    image = cache.thumbnail(str(photo))
    assert image.size == (64, 48) and cache.repaired == 1 and cache.misses == 2
    assert Image.open(entry).size == (64, 48)  # written again, whole
    assert cache.thumbnail(str(photo)) and cache.hits == 1


def test_unreadable_photo_raises_and_an_unwritable_cache_is_only_slower(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    cache = ThumbCache(tmp_path / "thumbs", 64)
    with pytest.raises(ImageLoadError):
        cache.thumbnail(str(broken))
    photo = _photo(tmp_path / "a.jpg")
    (tmp_path / "file").write_text("x")
    blocked = ThumbCache(tmp_path / "file" / "thumbs", 64)  # its folder cannot be made
    assert blocked.thumbnail(str(photo)).size == (64, 48)


def test_library_keeps_thumbnails_in_its_home(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p" / "a.jpg")
    library = Library(tmp_path / "home", "clipfind-tiny", "none")
    try:
        cache = library.thumbnails(96)
        cache.thumbnail(str(photo))
        assert cache.entry(str(photo)).is_relative_to(tmp_path / "home")
        assert cache.entry(str(photo)).is_file()
    finally:
        library.close()
