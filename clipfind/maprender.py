"""The map as a picture (`clipfind map --png`): thumbnails of photos at their places, coloured dots
where photos are too dense for thumbnails, and each cluster's name. Pillow only (no Qt), so the
command works without a display.

Every photo is drawn as a dot in its cluster's colour. Thumbnails go on top, greedily and
without overlapping: first the photo nearest each cluster's centre (so every cluster shows a
face), then the others in a seeded shuffle (so thumbnails spread over the map rather than
piling up where photos are dense). At most :data:`MAX_THUMBS` are decoded, which bounds the
time the picture takes (each thumbnail is a photo decode).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clipfind.home import atomic_write
from clipfind.photomap import PhotoMap

ThumbFn = Callable[[str, int], Image.Image]  # (path, side) -> the photo fit in side x side; raises when unreadable

BACKGROUND = (246, 246, 244)
NOISE = (150, 150, 150)  # the dots of photos in no cluster
# Cluster colours, readable on the light background, cycled past the last (Tableau 10, darker).
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207),
           (140, 86, 75), (227, 119, 194), (127, 127, 14), (57, 59, 121), (82, 84, 163), (173, 73, 74))
MARGIN = 0.04  # of the side, around the map
THUMB_SHARE = 0.045  # a thumbnail's side, as a share of the picture's side (72 px at 1600)
MAX_THUMBS = 400
DOT_SHARE = 0.0025  # a dot's radius, as a share of the side (4 px at 1600)
SEED = 7


def colour(cluster: int) -> tuple[int, int, int]:
    """The colour of a cluster (-1, noise: grey)."""
    return NOISE if cluster < 0 else PALETTE[cluster % len(PALETTE)]


def render_map(photo_map: PhotoMap, path: str | Path, thumb: ThumbFn | None, size: int = 1600) -> int:
    """Draw the map into a PNG file, written whole or not at all.

    Args:
        photo_map: the map to draw (from ``Library.photo_map``).
        path: the PNG file to write.
        thumb: loads a photo's thumbnail; None draws dots and names only. A photo it cannot load
            stays a dot.
        size: the picture's width and height in pixels.

    Returns how many thumbnails were drawn.
    """
    image = draw_map(photo_map, thumb, size)
    target = Path(path)
    with atomic_write(target) as tmp:
        image[0].save(tmp, format="PNG", optimize=True)
    return image[1]


def draw_map(photo_map: PhotoMap, thumb: ThumbFn | None, size: int = 1600) -> tuple[Image.Image, int]:
    """The map as an RGB image of ``size`` x ``size``, and how many thumbnails it shows."""
    if size < 64:
        raise ValueError(f"a map picture needs at least 64 pixels a side, not {size}")
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    margin = MARGIN * size
    inner = size - 2 * margin
    pixels = margin + np.asarray(photo_map.xy, np.float64).reshape(-1, 2) * inner
    pixels[:, 1] = size - pixels[:, 1]  # y grows upwards on the map, downwards in a picture
    radius = max(1.0, DOT_SHARE * size)
    for (x, y), c in zip(pixels.tolist(), photo_map.cluster.tolist()):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour(int(c)))
    drawn = _thumbnails(image, photo_map, pixels, thumb, size) if thumb is not None and len(photo_map) else 0
    _names(draw, photo_map, margin, inner, size)
    return image, drawn


def _order(photo_map: PhotoMap, pixels: np.ndarray) -> list[int]:
    """Which photos get a thumbnail first: each cluster's most central, then a seeded shuffle."""
    first: list[int] = []
    for cluster in photo_map.clusters:
        members = np.flatnonzero(photo_map.cluster == cluster.cluster)
        centre = np.array([cluster.x, cluster.y])
        first.append(int(members[np.argmin(((photo_map.xy[members] - centre) ** 2).sum(axis=1))]))
    rest = np.random.default_rng(SEED).permutation(len(pixels)).tolist()
    seen = set(first)
    return first + [i for i in rest if i not in seen]


def _thumbnails(image: Image.Image, photo_map: PhotoMap, pixels: np.ndarray, thumb: ThumbFn, size: int) -> int:
    side = max(16, round(THUMB_SHARE * size))
    cells = max(1, size // side)
    taken = np.zeros((cells + 2, cells + 2), bool)  # a grid of thumbnail-sized cells: one thumbnail per 2x2 block
    drawn = tried = 0
    paths_done: set[str] = set()
    for i in _order(photo_map, pixels):
        if tried >= MAX_THUMBS:
            break
        x, y = pixels[i]
        cx, cy = int(x // side), int(y // side)
        block = taken[max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2]
        if block.any():
            continue
        photo = photo_map.photos[i]
        if photo.content_hash in paths_done:  # a byte-identical copy of a photo already shown
            continue
        tried += 1
        try:
            picture = thumb(photo.path, side)
        except Exception:  # unreadable, gone, or any decoder failure: it stays a dot
            continue
        picture = picture.convert("RGB")
        picture.thumbnail((side, side))
        w, h = picture.size
        left, top = round(x - w / 2), round(y - h / 2)
        border = colour(int(photo_map.cluster[i]))
        ImageDraw.Draw(image).rectangle((left - 2, top - 2, left + w + 1, top + h + 1), fill=border)
        image.paste(picture, (left, top))
        taken[cy, cx] = True
        paths_done.add(photo.content_hash)
        drawn += 1
    return drawn


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _names(draw: ImageDraw.ImageDraw, photo_map: PhotoMap, margin: float, inner: float, size: int) -> None:
    """Each cluster's name at its centre, dark on a light halo so it reads over thumbnails."""
    font = _font(max(10, size // 70))
    for cluster in photo_map.clusters:
        label = ", ".join(cluster.names[:2]) if cluster.names else f"cluster {cluster.cluster + 1}"
        label = f"{label} ({cluster.size})"
        x = margin + cluster.x * inner
        y = size - (margin + cluster.y * inner)
        box = draw.textbbox((0, 0), label, font=font, stroke_width=3)
        w, h = box[2] - box[0], box[3] - box[1]
        left = min(max(x - w / 2, 2), size - w - 2)
        top = min(max(y - h / 2, 2), size - h - 2)
        draw.text((left, top), label, fill=(20, 20, 20), font=font, stroke_width=3, stroke_fill=(255, 255, 255))
