"""clipfind.fingerprint: thumbnails, the pair comparison and capture records."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from clipfind.fingerprint import (
    SIDE,
    Capture,
    is_mirrored,
    is_turned,
    match,
    read_capture,
    same_picture,
    thumbnail,
)
from tests.helpers import PHOTOS

_EXIF_IFD = 0x8769


def _photo(name: str = "kodak24/kodim05.png") -> Image.Image:
    if not PHOTOS.is_dir():
        pytest.skip(f"real test photos not found at {PHOTOS}")
    with Image.open(PHOTOS / name) as opened:
        image = opened.convert("RGB")
    image.thumbnail((600, 600))
    return image


def _resaved(image: Image.Image, fmt: str = "JPEG", **options: object) -> Image.Image:
    """The image written and read back as the indexer reads a file: EXIF upright, RGB."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        return ImageOps.exif_transpose(opened).convert("RGB")


def _burst(image: Image.Image, pct: int = 2) -> Image.Image:
    """Another frame: shifted a few percent, and a patch of the scene moved."""
    w, h = image.size
    frame = image.crop((w * pct // 100, h * pct // 200, w, h)).resize((w, h))
    patch = frame.crop((w // 3, h // 3, w // 3 + w // 5, h // 3 + h // 5))
    frame.paste(patch, (w // 3 + w // 10, h // 3 + h // 15))
    return frame


def _capture_jpeg(camera: tuple[str, str] | None, taken: str | None, subsec: str | None) -> Image.Image:
    exif = Image.Exif()
    if camera:
        exif[0x010F], exif[0x0110] = camera
    sub = exif.get_ifd(_EXIF_IFD)
    if taken:
        sub[0x9003] = taken
    if subsec:
        sub[0x9291] = subsec
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif.tobytes())
    return Image.open(io.BytesIO(out.getvalue()))


def test_thumbnail_is_small_grey_and_square() -> None:
    thumb = thumbnail(Image.new("RGB", (300, 224), (10, 200, 30)))
    assert thumb.shape == (SIDE, SIDE) and thumb.dtype == np.uint8
    assert thumb.nbytes <= 2048  # stored per photo in the catalog


def test_resaved_copies_are_the_same_picture() -> None:
    image = _photo()
    original = thumbnail(image)
    copies = {
        "jpeg q30": _resaved(image, quality=30),
        "resize 50%": _resaved(image.resize((image.width // 2, image.height // 2)), quality=90),
        "grey": _resaved(image.convert("L"), quality=90),
        "brightness +30%": _resaved(ImageEnhance.Brightness(image).enhance(1.3), quality=90),
        "webp": _resaved(image, "WEBP", quality=70),
    }
    for name, copy in copies.items():
        m = match(original, thumbnail(copy))
        assert m.same(), f"{name}: {m}"


def test_turns_and_mirrors_are_found_and_named() -> None:
    image = _photo()
    original = thumbnail(image)
    mirrored = match(original, thumbnail(_resaved(ImageOps.mirror(image), quality=90)))
    assert mirrored.same() and is_mirrored(mirrored.orientation) and not is_turned(mirrored.orientation)
    turned = match(original, thumbnail(_resaved(image.rotate(90, expand=True), quality=90)))
    assert turned.same() and is_turned(turned.orientation) and not is_mirrored(turned.orientation)
    plain = match(original, thumbnail(_resaved(image, quality=80)))
    assert not is_turned(plain.orientation) and not is_mirrored(plain.orientation)


def test_exif_orientation_copy_matches_once_read_upright() -> None:
    image = _photo()
    exif = Image.Exif()
    exif[0x0112] = 6
    copy = _resaved(image, quality=90, exif=exif.tobytes())
    assert copy.size == (image.height, image.width)  # exif_transpose turned it
    assert match(thumbnail(image), thumbnail(copy)).same()


def test_burst_frames_and_other_photos_are_not_the_same_picture() -> None:
    for name in ("kodak24/kodim05.png", "kodak24/kodim23.png"):
        image = _photo(name)
        for pct in (2, 4):
            m = match(thumbnail(image), thumbnail(_resaved(_burst(image, pct), quality=90)))
            assert not m.same(), f"{name} burst {pct}%: {m}"
    assert not match(thumbnail(_photo("kodak24/kodim05.png")), thumbnail(_photo("kodak24/kodim23.png"))).same()


def test_blank_frames_are_not_called_the_same() -> None:
    """A flat picture tells nothing: two lens-cap frames are not one capture."""
    dark = np.full((SIDE, SIDE), 12, np.uint8)
    assert not match(dark, dark.copy()).same()


def test_differing_captures_override_the_pixels() -> None:
    thumb = thumbnail(_photo())
    a = Capture("Apple iPhone 12", "2023:05:01 10:00:00", "016")
    b = Capture("Apple iPhone 12", "2023:05:01 10:00:00", "550")  # HDR on and off: one second, two frames
    assert same_picture(thumb, thumb, a, a)
    assert not same_picture(thumb, thumb, a, b)
    assert same_picture(thumb, thumb, a, Capture())  # a copy that lost its EXIF


@pytest.mark.parametrize(
    ("a", "b", "differ"),
    [
        (Capture("Canon", "2021:01:02 03:04:05", "12"), Capture("Canon", "2021:01:02 03:04:05", "13"), True),
        (Capture("Canon", "2021:01:02 03:04:05", "5"), Capture("Canon", "2021:01:02 03:04:05", "50"), False),
        (Capture("Canon", "2021:01:02 03:04:05"), Capture("Canon", "2021:01:02 03:04:06"), True),
        (Capture("Canon", "2021:01:02 03:04:05", "12"), Capture("Canon", "2021:01:02 03:04:05"), False),
        (Capture("Canon", "2021:01:02 03:04:05"), Capture(None, None, None), False),
        (Capture(None, "2021:01:02 03:04:05"), Capture("Nikon", "2021:01:02 03:04:05"), False),
        (Capture("Canon", None), Capture("Nikon", None), True),
        (Capture(), Capture(), False),
    ],
)
def test_capture_differs_from(a: Capture, b: Capture, differ: bool) -> None:
    assert a.differs_from(b) is differ
    assert b.differs_from(a) is differ


def test_capture_agreement_needs_a_time_and_matching_needs_subseconds() -> None:
    with_sub = Capture("Canon", "2021:01:02 03:04:05", "12")
    second_only = Capture("Canon", "2021:01:02 03:04:05")
    assert with_sub.agrees_with(second_only) and not with_sub.matches(second_only)
    assert with_sub.matches(Capture(None, "2021:01:02 03:04:05", "120"))
    assert not Capture().agrees_with(Capture())


@pytest.mark.parametrize(
    "capture",
    [Capture("Canon EOS 5D", "2021:01:02 03:04:05", "012"), Capture(None, "2021:01:02 03:04:05"),
     Capture("Apple iPhone 15 Pro"), Capture(None, None, "5"), Capture(gps=True),
     Capture("Apple iPhone 6", "2015:04:10 20:12:23", "016", gps=True)],
)
def test_capture_text_round_trip(capture: Capture) -> None:
    text = capture.to_text()
    assert isinstance(text, str) and "\n" not in text
    assert Capture.from_text(text) == capture


def test_empty_capture_text_is_none_and_bad_text_is_empty() -> None:
    assert Capture().to_text() is None
    assert Capture.from_text(None) == Capture()
    assert Capture.from_text("") == Capture()
    assert Capture.from_text("one\ttwo") == Capture()


def test_capture_written_before_gps_reads_as_no_position() -> None:
    """Catalogs of schema 3 hold three fields; they read back whole, with no GPS claimed."""
    assert Capture.from_text("Canon\t2021:01:02 03:04:05\t12") == Capture("Canon", "2021:01:02 03:04:05", "12")


def test_read_capture_gps_needs_a_position() -> None:
    """A GPS block with latitude and longitude is a position; an empty block (no fix) is not."""
    def with_gps(block: dict[int, object]) -> Image.Image:
        exif = Image.Exif()
        exif[0x8825] = block
        out = io.BytesIO()
        Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif)
        return Image.open(io.BytesIO(out.getvalue()))

    fix = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    assert read_capture(with_gps(fix)).gps
    assert not read_capture(with_gps({0: b"\x02\x02\x00\x00"})).gps
    assert not read_capture(Image.new("RGB", (4, 4))).gps


def test_read_capture_from_exif() -> None:
    image = _capture_jpeg(("Canon", "Canon EOS 5D\x00"), "2021:01:02 03:04:05", "042")
    assert read_capture(image) == Capture("Canon Canon EOS 5D", "2021:01:02 03:04:05", "042")
    zeroed = _capture_jpeg(None, "0000:00:00 00:00:00", "x1")
    assert read_capture(zeroed) == Capture()
    assert read_capture(Image.new("RGB", (4, 4))) == Capture()
