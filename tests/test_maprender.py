"""The map picture (`clipfind map --png`): thumbnails at their photos' places without overlapping,
a dot for every photo, unreadable photos left as dots, cluster names drawn, the file whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipfind.maprender import BACKGROUND, MARGIN, colour, draw_map, render_map
from clipfind.photomap import MapCluster, PhotoMap
from clipfind.records import PhotoInfo

SIZE = 800


def constructed(n: int = 300) -> PhotoMap:
    """Two clusters (left and right) and some noise, on a unit square."""
    rng = np.random.default_rng(0)
    xy = np.vstack([rng.normal((0.25, 0.5), 0.05, (n // 2, 2)), rng.normal((0.75, 0.5), 0.05, (n // 2, 2))])
    cluster = np.repeat([0, 1], n // 2).astype(np.int32)
    cluster[::25] = -1
    photos = tuple(PhotoInfo(i, f"/p/{i}.jpg", 1, 1, f"h{i}") for i in range(n))
    clusters = (MapCluster(0, ("beach", "sea"), n // 2, 0.25, 0.5), MapCluster(1, (), n // 2, 0.75, 0.5))
    return PhotoMap(photos, np.clip(xy, 0, 1).astype(np.float32), cluster, clusters)


def solid(path: str, side: int) -> Image.Image:
    if int(Path(path).stem) % 2:
        raise OSError("unreadable")  # odd photos cannot be read: they stay dots
    return Image.new("RGB", (side, side // 2), (0, 0, 0))


def to_pixel(x: float, y: float) -> tuple[int, int]:
    inner = SIZE * (1 - 2 * MARGIN)
    return round(SIZE * MARGIN + x * inner), round(SIZE - (SIZE * MARGIN + y * inner))


def test_dots_thumbnails_and_names() -> None:
    photo_map = constructed()
    image, shown = draw_map(photo_map, solid, SIZE)
    assert image.size == (SIZE, SIZE)
    pixels = np.asarray(image)
    black = np.all(pixels == 0, axis=2)
    side = round(0.045 * SIZE)
    assert 2 <= shown <= (SIZE // side) ** 2
    # thumbnails (black, side x side/2 each) do not overlap: their area adds up
    assert black.sum() == pytest.approx(shown * side * (side // 2), rel=0.15)
    # a photo far from any thumbnail shows as a dot in its cluster's colour
    colours = {tuple(c) for c in pixels.reshape(-1, 3)[::7]}
    assert colour(0) in colours or colour(1) in colours
    # the corner outside the map stays background
    assert tuple(pixels[2, 2]) == BACKGROUND
    # names: dark text with a white halo at the named cluster's centre
    x, y = to_pixel(0.25, 0.5)
    around = pixels[y - 15:y + 15, x - 80:x + 80]
    assert np.any(np.all(around == 255, axis=2)) and np.any(np.all(around == (20, 20, 20), axis=2))


def test_without_thumbnails_or_photos() -> None:
    image, shown = draw_map(constructed(), None, SIZE)
    assert shown == 0 and not np.any(np.all(np.asarray(image) == 0, axis=2))
    empty = PhotoMap((), np.zeros((0, 2), np.float32), np.zeros(0, np.int32))
    image, shown = draw_map(empty, solid, 200)
    assert shown == 0 and image.getcolors() == [(200 * 200, BACKGROUND)]
    with pytest.raises(ValueError):
        draw_map(empty, None, 10)


def test_the_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "map.png"
    shown = render_map(constructed(), target, solid, 300)
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (300, 300)
    assert shown > 0 and [p.name for p in tmp_path.iterdir()] == ["map.png"]
