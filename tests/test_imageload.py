"""clipfind.imageload against the real-file corpus and small synthetic images.

Results are checked for correctness (orientation, colours, sizes, reasons), not only for the
absence of a crash: every assertion about a picture compares it with an independent reference.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import random
import re
import struct
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageFile, features

from clipfind.errors import ImageLoadError
from clipfind.imageload import MAX_DECODE_PIXELS, PHOTO_EXTENSIONS, LoadedImage, load_image, register_heif

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FORMATS = DATA / "formats"
MIN_SIDE = 224

T = Image.Transpose
R, G, B, W, K = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)

# Files the manifest marks decodable that load_image deliberately refuses, with the reason.
MANIFEST_OK_BUT_REFUSED = {
    # Cut-off HEICs: libheif fills the missing tiles with flat green and reports success
    # (test_truncated_heic_refused shows it); load_image checks the ISOBMFF box sizes.
    "derived/truncated_60pct_pug.heic": "file is truncated",
    "pillow_heif/heif_truncated/truncated.heic": "file is truncated",
    # Plain Image.open(path).load() raises for these two (test_manifest_ok_pngs_fail_in_plain_pillow).
    # The manifest's "ok" looks like an artefact of reading EXIF first (its exif_orientation
    # column says exif-error): PNG getexif() decodes, fails, and a second load() is then a no-op.
    "pillow_tests/broken_data_stream.png": "unrecognized data stream",
    "pillow_tests/truncated_end_chunk.png": "Truncated File Read",
}


# --- helpers -------------------------------------------------------------------------------


def corpus(relative: str) -> Path:
    """A corpus file, or skip the test with the reason when the shared data is not there."""
    if not FORMATS.is_dir():
        pytest.skip(f"formats corpus not found at {FORMATS} (../shared/data beside the project)")
    path = FORMATS / relative
    if not path.exists():
        pytest.skip(f"corpus file {relative} is missing from {FORMATS}")
    return path


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute RGB difference after bringing b to a's size (0 = identical, 255 = opposite)."""
    if b.size != a.size:
        b = b.resize(a.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def rgb_at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    return cast(tuple[int, ...], image.getpixel(xy))


def close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(p - e) <= tolerance for p, e in zip(pixel, expected, strict=True))


def quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    """Colours at the centres of the top-left, top-right, bottom-left, bottom-right quadrants."""
    w, h = image.size
    return [rgb_at(image, (x, y)) for y in (h // 4, 3 * h // 4) for x in (w // 4, 3 * w // 4)]


def quadrant_image(size: tuple[int, int], colours: tuple[tuple[int, int, int], ...]) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size)
    for (x, y), colour in zip(((0, 0), (1, 0), (0, 1), (1, 1)), colours, strict=True):
        image.paste(colour, (x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2))
    return image


def pattern(width: int, height: int) -> Image.Image:
    """A smooth but structured RGB test picture (no corpus needed)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0)
    green = 255 * x / width
    blue = 255 * y / height
    return Image.fromarray(np.stack([red, green, blue], axis=2).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def exif_bytes(orientation: int | None = None, original: object = None, datetime_: object = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if datetime_ is not None:
        exif[0x0132] = datetime_
    if original is not None:
        exif.get_ifd(0x8769)[0x9003] = original
    return exif.tobytes()


def one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text and len(text) <= 300


def manifest_params() -> list[object]:
    manifest = FORMATS / "manifest.csv"
    if not manifest.is_file():
        reason = f"corpus manifest not found at {manifest} (../shared/data beside the project)"
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=reason))]
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = pytest.mark.skip(reason="listed in manifest.csv but missing from the corpus folder")
    return [
        pytest.param(row, id=row["file"], marks=() if (FORMATS / row["file"]).exists() else missing)
        for row in rows
    ]


# --- the whole corpus ----------------------------------------------------------------------


@pytest.mark.parametrize("row", manifest_params())
def test_corpus_file_loads_or_is_refused_as_the_manifest_says(row: dict[str, str]) -> None:
    path = FORMATS / row["file"]
    refusal = MANIFEST_OK_BUT_REFUSED.get(row["file"])
    if row["decode"] != "ok" or refusal:
        with pytest.raises(ImageLoadError, match=re.escape(refusal) if refusal else None) as error:
            load_image(path, min_side=MIN_SIDE)
        assert one_line(str(error.value))
        return

    loaded = load_image(path, min_side=MIN_SIDE)
    width, height = int(row["width"]), int(row["height"])
    # The manifest has the size Pillow reports at open: still un-rotated for JPEG/PNG/WebP/AVIF,
    # already upright for TIFF (Pillow 13 orients TIFFs itself) and HEIF (orientation reset to 1).
    if row["exif_orientation"] in ("5", "6", "7", "8") and row["format"] != "TIFF":
        width, height = height, width
    assert (loaded.width, loaded.height) == (width, height)
    image = loaded.image
    assert image.mode == "RGB"
    shorter = min(image.size)
    assert shorter >= min(MIN_SIDE, width, height)
    assert shorter < 4 * MIN_SIDE  # reduced when big: by draft, a HEIF thumbnail or a box filter
    # same aspect ratio as the original, allowing for rounding of the reduced size
    assert abs(image.width * height - image.height * width) <= 2 * (width + height)


def test_manifest_ok_pngs_fail_in_plain_pillow() -> None:
    """Backs MANIFEST_OK_BUT_REFUSED: Pillow alone refuses these 'ok' PNGs too."""
    for relative in ("pillow_tests/broken_data_stream.png", "pillow_tests/truncated_end_chunk.png"):
        with Image.open(corpus(relative)) as im, pytest.raises(OSError):
            im.load()


def test_corpus_files_outside_the_manifest() -> None:
    """Files in the folder that the manifest does not list: odd names and formats."""
    grey = load_image(corpus("photoprism/assets/examples/airport_grey"))  # JPEG without extension
    assert (grey.width, grey.height) == (640, 480)
    assert grey.taken_at == "2015-02-09T09:13:16"
    thm = load_image(corpus("photoprism/internal/photoprism/testdata/animated-earth.thm"))  # JPEG
    assert (thm.width, thm.height) == (300, 300)
    jp2 = load_image(corpus("sharp_fixtures/relax.jp2"))  # JPEG 2000 codestream
    assert jp2.image.mode == "RGB" and (jp2.width, jp2.height) == (320, 240)
    for not_a_photo in ("photoprism/internal/photoprism/testdata/favicon.ico",
                        "photoprism/internal/photoprism/testdata/magick.mvg"):
        with pytest.raises(ImageLoadError, match="not an image in a supported format"):
            load_image(corpus(not_a_photo))


# --- 1. orientation ------------------------------------------------------------------------

# Quadrant colours (TL, TR, BL, BR) as STORED for each EXIF orientation, so that the upright
# picture is red/green over blue/white; derived from the EXIF definition of row 0 and column 0
# (e.g. 6: row 0 is the visual right side, column 0 the visual top), not from Pillow.
STORED_QUADRANTS = {
    1: (R, G, B, W), 2: (G, R, W, B), 3: (W, B, G, R), 4: (B, W, R, G),
    5: (R, B, G, W), 6: (G, W, R, B), 7: (W, G, B, R), 8: (B, R, W, G),
}  # fmt: skip


def _can_save(fmt: str) -> bool:
    if fmt == "HEIF":
        return bool(pillow_heif.libheif_info().get("HEIF"))
    if fmt == "AVIF":
        return bool(features.check("avif"))
    return True


@pytest.mark.parametrize("min_side", [None, 32])
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"])
def test_orientation_tag_is_applied_once_in_every_format(fmt: str, orientation: int, min_side: int | None) -> None:
    """EXIF orientation n on pixels stored as the EXIF spec says must come back upright.

    JPEG/PNG/WebP/AVIF are turned by load_image; Pillow's TIFF plugin and libheif (HEIF, whose
    encoder turns the tag into irot/imir) turn the pixels themselves: never both.
    """
    if not _can_save(fmt):
        pytest.skip(f"no {fmt} encoder in this build")
    upright_size = (192, 128)
    stored_size = upright_size if orientation < 5 else upright_size[::-1]
    stored = quadrant_image(stored_size, STORED_QUADRANTS[orientation])
    params = {"quality": 95} if fmt in ("JPEG", "WEBP", "HEIF", "AVIF") else {}
    data = encode(stored, fmt, exif=exif_bytes(orientation), **params)

    loaded = load_image(data, min_side=min_side)

    assert (loaded.width, loaded.height) == upright_size
    w, h = loaded.image.size
    assert w > h  # the upright picture is landscape
    for got, want in zip(quadrant_colours(loaded.image), (R, G, B, W), strict=True):
        assert close(got, want, 40), (quadrant_colours(loaded.image), orientation)


@pytest.mark.parametrize("min_side", [None, MIN_SIDE])
@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_exif_samples_orientations_match_the_upright_photo(kind: str, min_side: int | None) -> None:
    """A real photo stored in 8 orientations: each must load like the upright _1."""
    folder = "exif-samples/jpg/orientation"
    upright = load_image(corpus(f"{folder}/{kind}_1.jpg"), min_side).image
    for n in range(2, 9):
        path = corpus(f"{folder}/{kind}_{n}.jpg")
        loaded = load_image(path, min_side)
        assert (loaded.width, loaded.height) == ((600, 450) if kind == "landscape" else (450, 600))
        assert loaded.image.size == upright.size
        right = mean_diff(upright, loaded.image)  # only the big digit "n" in the middle differs
        wrong = min(mean_diff(upright, loaded.image.transpose(t))
                    for t in (T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.ROTATE_180))
        with Image.open(path) as raw:  # what a loader that ignored the tag would return
            ignored = mean_diff(upright, raw.convert("RGB"))
        assert right < 20, (n, right)
        assert wrong > 35 and ignored > 35, (n, wrong, ignored)  # the metric separates right from wrong


@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_hopper_orientations_match_the_upright_original(ext: str) -> None:
    upright = load_image(corpus("pillow_tests/hopper.png"), None).image
    for n in range(2, 9):
        loaded = load_image(corpus(f"pillow_tests/hopper_orientation_{n}.{ext}"), None).image
        assert mean_diff(upright, loaded) < 8, n
        assert mean_diff(upright, loaded.transpose(T.ROTATE_180)) > 40, n


def test_avif_irot_imir_files_all_display_the_same() -> None:
    """Three AVIFs with different irot/imir (Pillow maps them to EXIF 4, 5, 4) show one picture."""
    reference = load_image(corpus("pillow_tests/avif_rot0mir0.avif"), None)
    assert (reference.width, reference.height) == (640, 427)
    for name in ("avif_rot1mir0", "avif_rot2mir1"):
        loaded = load_image(corpus(f"pillow_tests/{name}.avif"), None)
        assert (loaded.width, loaded.height) == (640, 427)
        assert mean_diff(reference.image, loaded.image) < 12, name  # only the irot/imir labels differ
        for wrong in (T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.ROTATE_180):
            assert mean_diff(reference.image, loaded.image.transpose(wrong)) > 30, name


def test_png_and_tiff_orientation_tags_from_the_corpus() -> None:
    """PhotoPrism's rotate/6.* are untouched pictures tagged 6: shown turned 90 degrees clockwise."""
    png = load_image(corpus("photoprism/internal/photoprism/testdata/rotate/6.png"), None)
    original = load_image(corpus("photoprism/assets/examples/tweethog.png"), None).image
    assert (png.width, png.height) == (960, 1395)
    assert mean_diff(png.image, original.transpose(T.ROTATE_270)) < 1
    assert mean_diff(png.image, original.transpose(T.ROTATE_90)) > 30

    tiff = load_image(corpus("photoprism/internal/photoprism/testdata/rotate/6.tiff"), None)
    original = load_image(corpus("photoprism/internal/meta/testdata/exif-example.tiff"), None).image
    assert (tiff.width, tiff.height) == (43, 65)
    assert mean_diff(tiff.image, original.transpose(T.ROTATE_270)) < 1
    assert mean_diff(tiff.image, original.transpose(T.ROTATE_90)) > 30


def test_xmp_orientation_is_applied() -> None:
    """Orientation given only in XMP (tiff:Orientation=3): PNG and its AVIF twin."""
    path = corpus("pillow_tests/xmp_tags_orientation.png")
    with Image.open(path) as raw:
        rgba = np.asarray(raw.convert("RGBA"), np.float32)
    alpha = rgba[..., 3:] / 255
    over_white = rgba[..., :3] * alpha + 255 * (1 - alpha)
    expected = Image.fromarray(np.rot90(over_white, 2).round().astype(np.uint8), "RGB")
    loaded = load_image(path, None).image
    assert mean_diff(loaded, expected) < 1
    assert mean_diff(loaded, expected.transpose(T.ROTATE_180)) > 30
    twin = load_image(corpus("pillow_tests/avif_xmp_tags_orientation.avif"), None).image
    assert mean_diff(loaded, twin) < 8


def _arrow_tip_height(image: Image.Image) -> float:
    """Relative height of the highest ink in the middle band: the drawn arrow's tip."""
    grey = np.asarray(image.convert("L").resize((120, 160), Image.Resampling.BOX), np.float32)
    ink = (grey.mean() - grey)[:, 12:-12] > 40
    return float(np.flatnonzero(ink.any(axis=1))[0] / ink.shape[0])


@pytest.mark.parametrize("min_side", [None, MIN_SIDE])
def test_heic_rotation_is_applied_once(min_side: int | None) -> None:
    """arrow.heic is stored landscape with irot (EXIF said 6): upright it is a portrait arrow up."""
    loaded = load_image(corpus("pillow_heif/heif_other/arrow.heic"), min_side)
    assert (loaded.width, loaded.height) == (3024, 4032)
    assert loaded.image.width < loaded.image.height  # not turned a second time
    assert _arrow_tip_height(loaded.image) < 0.15
    assert _arrow_tip_height(loaded.image.transpose(T.ROTATE_180)) > 0.2  # the check can fail


# --- 2. modes and colours ------------------------------------------------------------------


def test_palette_images_with_and_without_transparency() -> None:
    palette = [255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (253 * 3)
    image = Image.new("P", (3, 1))
    image.putpalette(palette)
    image.putdata([0, 1, 2])

    def pixels(data: bytes) -> list[tuple[int, ...]]:
        loaded = load_image(data, None).image
        return [rgb_at(loaded, (x, 0)) for x in range(3)]

    assert pixels(encode(image, "PNG")) == [R, B, G]
    assert pixels(encode(image, "GIF")) == [R, B, G]
    assert pixels(encode(image, "PNG", transparency=1)) == [R, W, G]  # index 1 fully transparent
    assert pixels(encode(image, "GIF", transparency=1)) == [R, W, G]
    half = pixels(encode(image, "PNG", transparency=bytes([255, 128, 255])))  # blue at alpha 128
    assert half[0] == R and half[2] == G and close(half[1], (127, 127, 255), 2)


def test_alpha_is_composited_over_white() -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(255, 0, 0, 0), (0, 0, 255, 255), (0, 0, 0, 128)])
    la = Image.new("LA", (3, 1))
    la.putdata([(0, 0), (0, 255), (0, 128)])
    for image, fmt in ((rgba, "PNG"), (rgba, "WEBP"), (rgba, "TIFF"), (la, "PNG")):
        params = {"lossless": True} if fmt == "WEBP" else {}
        loaded = load_image(encode(image, fmt, **params), None).image
        got = [rgb_at(loaded, (x, 0)) for x in range(3)]
        opaque = B if image.mode == "RGBA" else K
        assert got[0] == W and got[1] == opaque and close(got[2], (127, 127, 127), 2), (fmt, image.mode, got)


@pytest.mark.parametrize("relative", ["photoprism/assets/examples/tweethog.png", "sharp_fixtures/5_webp_a.webp"])
def test_transparent_corpus_areas_come_out_white(relative: str) -> None:
    path = corpus(relative)
    with Image.open(path) as raw:
        transparent = np.asarray(raw.getchannel("A")) == 0
    assert transparent.mean() > 0.1
    assert np.asarray(load_image(path, None).image)[transparent].min() == 255  # not black


def test_grey_and_bilevel_images() -> None:
    grey = Image.new("L", (2, 1))
    grey.putdata([77, 200])
    for fmt in ("PNG", "TIFF", "BMP"):
        loaded = load_image(encode(grey, fmt), None).image
        assert [rgb_at(loaded, (x, 0)) for x in range(2)] == [(77, 77, 77), (200, 200, 200)], fmt
    bilevel = Image.new("1", (2, 1))
    bilevel.putdata([0, 255])
    for fmt in ("PNG", "TIFF", "BMP"):
        loaded = load_image(encode(bilevel, fmt), None).image
        assert [rgb_at(loaded, (x, 0)) for x in range(2)] == [K, W], fmt


def test_16bit_grey_is_scaled_to_8bit_not_clipped() -> None:
    deep = Image.new("I;16", (4, 1))
    deep.putdata([0, 257 * 100, 65535, 1000])
    for fmt in ("PNG", "TIFF"):
        loaded = load_image(encode(deep, fmt), None).image
        assert [rgb_at(loaded, (x, 0))[0] for x in range(4)] == [0, 100, 255, 4], fmt
    # a 16-bit PNG from the corpus, against its raw samples scaled independently
    path = corpus("pillow_heif/non_heif/L_16__128x128.png")
    with Image.open(path) as raw:
        expected = np.asarray(raw).astype(np.float64) / 257
    loaded_grey = np.asarray(load_image(path, None).image)[..., 0]
    assert np.abs(loaded_grey - expected).max() <= 1
    # the same picture stored by libheif at 10, 12 and 8 bits per sample
    shallow = load_image(corpus("pillow_heif/heif/L_8__128x128.heif"), None).image
    for deep_file in ("pillow_heif/heif/L_10__128x128.heif", "pillow_heif/heif/L_12__128x128.heif"):
        assert mean_diff(load_image(corpus(deep_file), None).image, shallow) < 2, deep_file
    # linear sensor data using 0..4273 of the 16 bits, no gAMA chunk: as dark as viewers show it,
    # neither clipped to white nor stretched
    linear = np.asarray(load_image(corpus("imagecompression_info/gray16bit_linear/flower_foveon.png"), None).image)
    assert linear.max() == round(4273 / 257)


def test_32bit_integer_and_float_images_are_scaled_by_their_range() -> None:
    def first_row(image: Image.Image) -> list[int]:
        loaded = load_image(encode(image, "TIFF"), None).image
        return [rgb_at(loaded, (x, 0))[0] for x in range(image.width)]

    sixteen = Image.new("I", (3, 1))
    sixteen.putdata([0, 257 * 50, 65535])
    assert first_row(sixteen) == [0, 50, 255]
    eight = Image.new("I", (3, 1))
    eight.putdata([0, 50, 255])
    assert first_row(eight) == [0, 50, 255]
    unit = Image.new("F", (3, 1))
    unit.putdata([0.0, 0.5, 1.0])
    assert first_row(unit) == [0, 128, 255]
    byte_range = Image.new("F", (3, 1))
    byte_range.putdata([0.0, 100.0, 255.0])
    assert first_row(byte_range) == [0, 100, 255]
    # 16-bit PGM (mode I): same picture as the 8-bit original
    pgm = load_image(corpus("pillow_tests/hopper_16bit.pgm"), None).image
    reference = load_image(corpus("pillow_tests/hopper.png"), None).image.convert("L").convert("RGB")
    assert mean_diff(pgm, reference) < 3


def test_cmyk_with_icc_profile_is_converted_through_it() -> None:
    # 100% magenta + 100% yellow in FOGRA39 is a press red, which sRGB shows as about (227, 6, 20);
    # the plain formula would give pure (255, 0, 0).
    fogra = load_image(corpus("sharp_fixtures/fogra-0-100-100-0.tif"), None).image
    r, g, b = rgb_at(fogra, (500, 500))
    assert 205 <= r <= 245 and g <= 40 and b <= 50, (r, g, b)
    # the same CMYK pixels with a SWOP profile and without any: one picture, different colours
    with_icc = load_image(corpus("sharp_fixtures/Channel_digital_image_CMYK_color.jpg"), None).image
    plain = load_image(corpus("sharp_fixtures/Channel_digital_image_CMYK_color_no_profile.jpg"), None).image
    grey_a = np.asarray(with_icc.convert("L"), np.float32).ravel()
    grey_b = np.asarray(plain.convert("L"), np.float32).ravel()
    assert np.corrcoef(grey_a, grey_b)[0, 1] > 0.95
    assert mean_diff(with_icc, plain) > 6

    def saturation(image: Image.Image) -> float:
        return float(np.asarray(image.convert("HSV"))[..., 1].mean())

    assert saturation(with_icc) < 0.75 * saturation(plain)  # the plain formula is garish


def test_cmyk_without_profile_and_adobe_inverted_jpeg() -> None:
    # Adobe CMYK JPEGs store inverted values; its non-inverted TIFF sibling is the same picture.
    jpeg = load_image(corpus("pillow_tests/pil_sample_cmyk.jpg"), None).image
    tiff = load_image(corpus("pillow_tests/tiff_strip_cmyk_jpeg.tif"), None).image
    assert mean_diff(jpeg, tiff) < 2
    assert close(rgb_at(jpeg, (5, 2)), (255, 15, 25), 30)  # the red block, top left
    assert close(rgb_at(jpeg, (50, 90)), K, 20)  # on a black background
    # synthetic patches, no profile: plain conversion
    patches = Image.new("CMYK", (5 * 16, 16))
    for i, ink in enumerate([(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255), (0, 0, 0, 0)]):
        patches.paste(ink, (i * 16, 0, i * 16 + 16, 16))
    expected = [(0, 255, 255), (255, 0, 255), (255, 255, 0), K, W]
    for data in (encode(patches, "JPEG", quality=95), encode(patches, "TIFF"),
                 encode(patches, "JPEG", quality=95, icc_profile=b"not an ICC profile")):
        loaded = load_image(data, None).image
        for i, colour in enumerate(expected):
            assert close(rgb_at(loaded, (i * 16 + 8, 8)), colour, 12), (i, rgb_at(loaded, (i * 16 + 8, 8)))


def test_lab_and_ycbcr_images() -> None:
    colour = (200, 30, 40)
    lab = Image.new("RGB", (8, 8), colour).convert("LAB")
    ycbcr = Image.new("RGB", (8, 8), colour).convert("YCbCr")
    for image in (lab, ycbcr):
        loaded = load_image(encode(image, "TIFF"), None).image
        assert close(rgb_at(loaded, (4, 4)), colour, 6), image.mode


# --- 3. reduced decoding -------------------------------------------------------------------


def test_large_jpeg_is_decoded_reduced_but_reports_its_size() -> None:
    for name in ("derived/50MP_from_200MP_heic.jpg", "derived/50MP_from_200MP_heic_progressive.jpg"):
        loaded = load_image(corpus(name), MIN_SIDE)
        assert (loaded.width, loaded.height) == (6120, 8160)
        assert loaded.image.size == (765, 1020)  # 1/8 scale: shorter side 765 >= 224


def test_reduced_jpeg_decode_matches_full_decode_and_is_faster() -> None:
    data = encode(pattern(4000, 3000), "JPEG", quality=90, exif=exif_bytes(6))
    reduced = load_image(data, MIN_SIDE)
    full = load_image(data, None)
    assert (reduced.width, reduced.height) == (full.width, full.height) == (3000, 4000)
    assert full.image.size == (3000, 4000)
    assert MIN_SIDE <= min(reduced.image.size) < 2 * MIN_SIDE
    assert mean_diff(reduced.image, full.image) < 3

    def best_of_three(min_side: int | None) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            load_image(data, min_side)
            times.append(time.perf_counter() - start)
        return min(times)

    assert best_of_three(MIN_SIDE) * 3 < best_of_three(None)  # about 10x here


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("size", [(100, 60), (224, 500), (447, 300), (448, 448), (1000, 449), (3000, 1793)])
def test_shorter_side_never_below_min_side(fmt: str, size: tuple[int, int]) -> None:
    data = encode(pattern(*size), fmt)
    loaded = load_image(data, MIN_SIDE)
    assert (loaded.width, loaded.height) == size
    assert min(loaded.image.size) >= min(MIN_SIDE, *size)
    assert load_image(data, None).image.size == size


def test_big_non_jpeg_is_box_reduced_to_within_twice_min_side() -> None:
    picture = pattern(2400, 1800)
    loaded = load_image(encode(picture, "PNG"), MIN_SIDE)
    assert (loaded.width, loaded.height) == (2400, 1800)
    assert 2 * MIN_SIDE <= min(loaded.image.size) < 4 * MIN_SIDE
    assert mean_diff(loaded.image, picture) < 2


def test_heif_uses_its_embedded_thumbnail_when_big_enough() -> None:
    path = corpus("photoprism/assets/examples/iphone_15_pro.heic")  # 320x240 thumbnail inside
    small = load_image(path, MIN_SIDE)
    assert (small.width, small.height) == (3024, 4032)
    assert small.image.size == (240, 320)
    full = load_image(path, None)
    assert full.image.size == (3024, 4032)
    assert mean_diff(small.image, full.image) < 12  # the same picture, upright in both
    larger = load_image(path, 400)  # thumbnail too small: full decode, box-reduced
    assert min(larger.image.size) >= 400


def test_invalid_min_side_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        load_image(encode(pattern(8, 8), "PNG"), 0)


# --- 4. decompression bombs ----------------------------------------------------------------


def test_giant_jpeg_is_decoded_reduced_under_the_limit() -> None:
    path = corpus("sharp_fixtures/giant-image.jpg")  # 20000x14000 = 280 MP
    loaded = load_image(path, MIN_SIDE)
    assert (loaded.width, loaded.height) == (20000, 14000)
    assert loaded.width * loaded.height > MAX_DECODE_PIXELS
    assert loaded.image.width * loaded.image.height <= MAX_DECODE_PIXELS
    assert min(loaded.image.size) >= MIN_SIDE
    with pytest.raises(ImageLoadError, match=re.escape("too large to decode safely (280 MP, limit 120 MP)")):
        load_image(path, None)


def test_200mp_heic_only_through_its_thumbnail() -> None:
    path = corpus("pillow_heif/heif_special/200MP.heic")  # 12240x16320, 384x512 thumbnail inside
    with pytest.raises(ImageLoadError, match=re.escape("too large to decode safely (200 MP, limit 120 MP)")):
        load_image(path, None)
    with pytest.raises(ImageLoadError, match="too large to decode safely"):
        load_image(path, 1000)  # no thumbnail that big, and the image itself is over the limit
    loaded = load_image(path, MIN_SIDE)
    assert (loaded.width, loaded.height) == (12240, 16320)
    assert loaded.image.size == (384, 512)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_bomb_is_refused_from_the_header_before_decoding() -> None:
    data = _png_header_only(40000, 40000)  # 100 bytes claiming 1600 MP (4.8 GB as RGB)
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match=re.escape("too large to decode safely (1600 MP, limit 120 MP)")):
        load_image(data, MIN_SIDE)
    assert time.perf_counter() - start < 1


def test_pillow_guard_is_off_and_warns_nothing() -> None:
    assert Image.MAX_IMAGE_PIXELS is None
    # 95 MP: over Pillow's default warning threshold (89 MP), under its error threshold
    data = encode(Image.new("L", (10000, 9500), 90), "JPEG")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        loaded = load_image(data, MIN_SIDE)
    assert (loaded.width, loaded.height) == (10000, 9500)


def test_rearmed_pillow_guard_still_gives_image_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # as if other code turned it back on
    with pytest.raises(ImageLoadError, match="too large to decode safely"):
        load_image(encode(Image.new("L", (3000, 3000)), "JPEG"), MIN_SIDE)


# --- 5. animations -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "MPO", "TIFF"])
def test_animated_files_give_their_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (64, 48), colour) for colour in (R, B, G)]
    params = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **params)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 3
    loaded = load_image(data, None)
    assert (loaded.width, loaded.height) == (64, 48)
    assert close(rgb_at(loaded.image, (32, 24)), R, 8)


def test_corpus_animations_and_stereo_give_their_first_frame() -> None:
    for relative in ("pillow_tests/iss634.apng", "pillow_tests/iss634.gif", "sharp_fixtures/animated-loop-3.webp",
                     "pillow_tests/frozenpond.mpo", "photoprism/internal/photoprism/testdata/star.avifs"):
        path = corpus(relative)
        with Image.open(path) as first:
            assert getattr(first, "n_frames", 1) > 1
            first.load()
            rgba = first.convert("RGBA")
        expected = Image.new("RGB", rgba.size, W)
        expected.paste(rgba, mask=rgba)
        assert mean_diff(load_image(path, None).image, expected) < 1, relative


# --- 6. truncated, corrupt and mislabelled files -------------------------------------------


def test_truncated_files_are_refused_with_a_reason() -> None:
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    picture = pattern(300, 200)
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "GIF"):
        data = encode(picture, fmt)
        with pytest.raises(ImageLoadError) as error:
            load_image(data[: len(data) * 6 // 10], None)
        assert one_line(str(error.value)), fmt
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(corpus("derived/truncated_50pct_iphone_hdr_NO.jpg"))
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_truncated_heic_refused() -> None:
    path = corpus("derived/truncated_60pct_pug.heic")
    with Image.open(path) as im:  # what pillow-heif alone does: no error, missing tiles painted
        im.load()
    with pytest.raises(ImageLoadError, match=re.escape("file is truncated (box 'mdat' needs 1299081 bytes")):
        load_image(path)
    with pytest.raises(ImageLoadError, match="file is truncated"):
        load_image(path.read_bytes())
    complete = corpus("pillow_heif/heif_other/pug.heic")
    assert load_image(complete).width == 4032


def test_unreadable_inputs_say_why(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    eps = tmp_path / "drawing.jpg"  # EPS would run Ghostscript: that decoder is never tried
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    cases: list[tuple[object, str]] = [
        (empty, "empty file"),
        (b"", "empty file"),
        (text, "not an image in a supported format"),
        (eps, "not an image in a supported format"),
        (tmp_path / "missing.jpg", "file not found"),
        (tmp_path, "not a regular file"),
        (fifo, "not a regular file"),  # opening it would block until a writer came
    ]
    if Path("/dev/zero").exists():
        cases.append((Path("/dev/zero"), "not a regular file"))  # endless stream
    for source, reason in cases:
        with pytest.raises(ImageLoadError, match=reason) as error:
            load_image(source)  # type: ignore[arg-type]
        assert one_line(str(error.value))


def test_lying_extensions_load_by_content(tmp_path: Path) -> None:
    for relative in ("photoprism/internal/photoprism/testdata/wrong.heic",
                     "photoprism/assets/examples/this-is-a-jpeg.png", "derived/jpeg_bytes_named.png"):
        assert load_image(corpus(relative)).image.mode == "RGB"
    picture = pattern(300, 240)
    (tmp_path / "png.jpg").write_bytes(encode(picture, "PNG"))
    (tmp_path / "jpeg.heic").write_bytes(encode(picture, "JPEG", quality=95))
    for name in ("png.jpg", "jpeg.heic"):
        loaded = load_image(tmp_path / name, None)
        assert loaded.image.size == (300, 240) and mean_diff(loaded.image, picture) < 3, name


def test_corrupted_bytes_only_ever_raise_image_load_error() -> None:
    """Random truncations and byte overwrites: an RGB image or ImageLoadError, nothing else."""
    sources = ["pillow_tests/hopper_orientation_6.jpg", "pillow_tests/hopper.png", "pillow_tests/hopper.webp",
               "pillow_tests/hopper.gif", "pillow_tests/hopper.tif", "pillow_tests/avif_hopper.avif",
               "pillow_heif/heif/RGB_8__29x100.heif", "pillow_tests/frozenpond.mpo", "pillow_tests/pil_sample_cmyk.jpg",
               "sharp_fixtures/relax.jp2", "photoprism/assets/examples/example.bmp"]
    rng = random.Random(1234)
    outcomes = {"loaded": 0, "refused": 0}
    for relative in sources:
        original = corpus(relative).read_bytes()
        for attempt in range(16):
            data = bytearray(original[: rng.randrange(len(original))] if attempt % 2 else original)
            for _ in range(rng.randrange(1, 8)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                assert load_image(bytes(data), 64).image.mode == "RGB"
                outcomes["loaded"] += 1
            except ImageLoadError as error:
                assert one_line(str(error))
                outcomes["refused"] += 1
    assert outcomes["loaded"] > 20 and outcomes["refused"] > 20


# --- 7. capture time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "datetime_", "expected"),
    [
        ("2019:07:04 18:30:00", None, "2019-07-04T18:30:00"),
        ("2019:07:04 18:30:00", "2020:01:01 00:00:00", "2019-07-04T18:30:00"),  # DateTimeOriginal wins
        (None, "2020:01:02 03:04:05", "2020-01-02T03:04:05"),  # fallback to DateTime
        ("0000:00:00 00:00:00", "2020:01:02 03:04:05", "2020-01-02T03:04:05"),  # blank original
        ("2019-07-04 18:30:00", None, "2019-07-04T18:30:00"),  # dashes, written by some software
        ("0000:00:00 00:00:00", None, None),
        ("2019:13:45 25:61:61", None, None),
        ("garbage", "    :  :     :  :  ", None),
        ("", None, None),
        (20190704, None, None),  # wrong type
        (None, None, None),
    ],
)
def test_taken_at_from_exif(original: object, datetime_: object, expected: str | None) -> None:
    exif = exif_bytes(6, original, datetime_)
    for fmt in ("JPEG", "PNG", "WEBP"):
        loaded = load_image(encode(pattern(60, 40), fmt, exif=exif), None)
        assert loaded.taken_at == expected, fmt
        assert (loaded.width, loaded.height) == (40, 60), fmt  # a bad date does not cost the orientation


def test_taken_at_from_real_files() -> None:
    assert load_image(corpus("exif-samples/heic/mobile/iphone_13_pro_max.HEIC")).taken_at == "2022-02-16T12:55:41"
    assert load_image(corpus("photoprism/internal/photoprism/testdata/wrong.heic")).taken_at == "2013-03-05T17:29:26"
    assert load_image(corpus("pillow_tests/hopper.png")).taken_at is None
    bad = load_image(corpus("pillow_tests/hopper_bad_exif.jpg"))  # corrupt EXIF: the photo still loads
    assert bad.taken_at is None and (bad.width, bad.height) == (500, 500)


# --- sources, API, threads -----------------------------------------------------------------


def _outcome(load: Callable[[], LoadedImage]) -> tuple[object, ...]:
    try:
        loaded = load()
    except ImageLoadError as error:
        return ("refused", str(error))
    return (loaded.width, loaded.height, loaded.taken_at, loaded.image.size, loaded.image.tobytes())


@pytest.mark.parametrize("relative", [
    "exif-samples/jpg/orientation/portrait_6.jpg", "photoprism/assets/examples/iphone_15_pro.heic",
    "pillow_heif/non_heif/L_16__128x128.png", "sharp_fixtures/Channel_digital_image_CMYK_color.jpg",
    "photoprism/internal/photoprism/testdata/rotate/6.tiff", "pillow_tests/avif_rot1mir0.avif",
    "pillow_tests/iss634.gif", "derived/truncated_60pct_pug.heic", "sharp_fixtures/truncated.jpg",
])  # fmt: skip
def test_bytes_and_path_give_the_same_result(relative: str) -> None:
    path = corpus(relative)
    data = path.read_bytes()
    from_path = _outcome(lambda: load_image(path))
    assert _outcome(lambda: load_image(data)) == from_path
    assert _outcome(lambda: load_image(str(path))) == from_path
    assert _outcome(lambda: load_image(bytearray(data))) == from_path  # type: ignore[arg-type]
    assert _outcome(lambda: load_image(memoryview(data))) == from_path  # type: ignore[arg-type]


def test_result_is_a_loaded_image_detached_from_the_file() -> None:
    loaded = load_image(encode(pattern(300, 240), "JPEG"))  # RGB, nothing to convert or turn
    assert type(loaded.image) is Image.Image  # decoded pixels, not a lazy ImageFile holding the file open
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.width = 1  # type: ignore[misc]


def test_photo_extensions() -> None:
    expected = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff",
                ".heic", ".heif", ".hif", ".avif", ".mpo"}
    assert expected <= PHOTO_EXTENSIONS
    assert isinstance(PHOTO_EXTENSIONS, frozenset)
    assert all(ext.startswith(".") and ext == ext.lower() for ext in PHOTO_EXTENSIONS)
    assert PHOTO_EXTENSIONS <= Image.registered_extensions().keys()
    assert not PHOTO_EXTENSIONS & {".eps", ".pdf", ".ico", ".svg", ".psd", ".txt", ".dng"}


def test_register_heif_is_idempotent() -> None:
    register_heif()
    register_heif()
    assert Image.registered_extensions()[".heic"] == "HEIF"
    assert load_image(encode(pattern(64, 48), "HEIF") if _can_save("HEIF") else
                      corpus("pillow_heif/heif/RGB_8__128x128.heif")).image.mode == "RGB"


def test_parallel_loads_match_serial_loads() -> None:
    sources = [corpus(relative) for relative in (
        "sharp_fixtures/giant-image.jpg", "pillow_heif/heif_special/200MP.heic",
        "sharp_fixtures/Channel_digital_image_CMYK_color.jpg", "sharp_fixtures/fogra-0-100-100-0.tif",
        "photoprism/assets/examples/iphone_15_pro.heic", "exif-samples/jpg/orientation/landscape_8.jpg",
        "pillow_heif/non_heif/RGBA_16__128x128.png", "sharp_fixtures/truncated.jpg",
    )]  # fmt: skip
    jobs = [(source, min_side) for source in sources for min_side in (MIN_SIDE, None)]

    def run(job: tuple[Path, int | None]) -> tuple[object, ...]:
        return _outcome(lambda: load_image(*job))

    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            assert list(pool.map(run, jobs * 2)) == serial * 2


def test_pillow_warnings_name_the_photo_in_every_thread() -> None:
    """Pillow says "Corrupt EXIF data..." without a file name; with many decoder threads the user
    could not tell which photo it is about."""
    bad = corpus("pillow_tests/hopper_bad_exif.jpg")
    good = corpus("exif-samples/jpg/orientation/landscape_6.jpg")

    def warnings_of(source: Path | bytes, name: str | None = None) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_image(source, name=name)
        return [str(w.message) for w in caught]

    assert warnings_of(bad) == [f"{bad}: Corrupt EXIF data.  Expecting to read 12 bytes but only got 2."]
    assert warnings_of(bad.read_bytes(), name="/photos/bad.jpg")[0].startswith("/photos/bad.jpg: Corrupt EXIF")
    assert warnings_of(good) == []
    data = bad.read_bytes()
    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(max_workers=4) as pool:
        warnings.simplefilter("always")
        list(pool.map(lambda i: load_image(data, name=f"/p/{i}.jpg"), range(16)))  # each thread its own file
    assert sorted(str(w.message).split(":")[0] for w in caught) == sorted(f"/p/{i}.jpg" for i in range(16))
