"""Image loading against the formats corpus: results checked for correctness, not just no crash."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipfind.errors import ImageLoadError
from clipfind.imageload import MAX_DECODE_PIXELS, PHOTO_EXTENSIONS, load_image
from tests.helpers import FORMATS, needs_shared_data

# Files the manifest marks decodable that we deliberately record as failures, with why.
EXPECTED_REFUSALS = {
    # 200 MP: over our bomb limit and not a JPEG, so draft() cannot shrink it while decoding
    "pillow_heif/heif_special/200MP.heic": "too large to decode safely",
    # pixel data readable, but the PNG's chunks are damaged: Pillow refuses to finish loading it
    "pillow_tests/broken_data_stream.png": "cannot decode",
    "pillow_tests/truncated_end_chunk.png": "truncated",
}


def manifest_rows() -> list[dict[str, str]]:
    path = FORMATS / "manifest.csv"
    if not path.exists():
        return []
    return [r for r in csv.DictReader(path.open()) if (FORMATS / r["file"]).exists()]


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    b = b.resize(a.size)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@needs_shared_data
@pytest.mark.parametrize("row", manifest_rows(), ids=lambda r: r["file"])
def test_every_corpus_file_loads_right_or_is_refused_with_a_reason(row: dict[str, str]) -> None:
    path = FORMATS / row["file"]
    refusal = EXPECTED_REFUSALS.get(row["file"])
    if row["decode"] != "ok" or refusal:
        with pytest.raises(ImageLoadError, match=refusal):
            load_image(path, min_side=224)
        return
    loaded = load_image(path, min_side=224)
    width, height = int(row["width"]), int(row["height"])
    if row["exif_orientation"] in ("5", "6", "7", "8") and row["format"] != "HEIF":
        width, height = height, width
    assert (loaded.width, loaded.height) == (width, height)
    assert loaded.image.mode == "RGB"
    assert min(loaded.image.size) >= min(224, width, height)


@needs_shared_data
@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_exif_orientations_match_the_upright_original(kind: str) -> None:
    folder = FORMATS / "exif-samples" / "jpg" / "orientation"
    upright = load_image(folder / f"{kind}_1.jpg", None).image
    for n in range(2, 9):
        loaded = load_image(folder / f"{kind}_{n}.jpg", None).image
        assert loaded.size == upright.size, n
        right = mean_diff(upright, loaded)
        wrong = mean_diff(upright, loaded.transpose(Image.Transpose.ROTATE_180))
        assert right < 20 < wrong, (n, right, wrong)  # the metric separates right from wrong


@needs_shared_data
@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_orientation_in_other_containers(ext: str) -> None:
    upright = load_image(FORMATS / "pillow_tests" / "hopper.jpg", None).image
    for n in range(2, 9):
        loaded = load_image(FORMATS / "pillow_tests" / f"hopper_orientation_{n}.{ext}", None).image
        assert mean_diff(upright, loaded) < 12, n


@needs_shared_data
def test_cmyk_with_icc_profile_matches_the_same_picture_in_rgb() -> None:
    with_icc = load_image(FORMATS / "sharp_fixtures" / "Channel_digital_image_CMYK_color.jpg", None).image
    plain = load_image(FORMATS / "sharp_fixtures" / "Channel_digital_image_CMYK_color_no_profile.jpg", None).image
    grey = with_icc.convert("L").convert("RGB")
    assert mean_diff(with_icc, plain) < 40  # same picture either way
    assert mean_diff(with_icc, grey) > 5  # and in colour


def test_cmyk_profile_conversion_is_used(tmp_path: Path) -> None:
    """A CMYK file carrying a profile goes through it (colour managed), without it plain conversion."""
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red ink
    plain = tmp_path / "plain.jpg"
    cmyk.save(plain, quality=95)
    red = load_image(plain, None).image.getpixel((16, 16))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


@pytest.mark.parametrize(
    "image, expected",
    [
        (Image.new("RGBA", (8, 8), (255, 0, 0, 0)), (255, 255, 255)),  # transparent: over white
        (Image.new("RGBA", (8, 8), (255, 0, 0, 255)), (255, 0, 0)),
        (Image.new("LA", (8, 8), (0, 0)), (255, 255, 255)),
        (Image.new("LA", (8, 8), (100, 255)), (100, 100, 100)),
        (Image.new("L", (8, 8), 77), (77, 77, 77)),
        (Image.new("1", (8, 8), 1), (255, 255, 255)),
    ],
)
def test_modes_convert_to_the_right_colours(tmp_path: Path, image: Image.Image, expected: tuple[int, int, int]) -> None:
    path = tmp_path / "x.png"
    image.save(path)
    loaded = load_image(path, None)
    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((4, 4)) == expected


def test_palette_with_transparency_over_white(tmp_path: Path) -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    path = tmp_path / "p.gif"
    image.save(path, transparency=0)
    assert load_image(path, None).image.getpixel((1, 1)) == (255, 255, 255)
    image.save(tmp_path / "opaque.png")
    assert load_image(tmp_path / "opaque.png", None).image.getpixel((1, 1)) == (10, 20, 30)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = (np.linspace(0, 65535, 256, dtype=np.uint16)[None, :].repeat(4, axis=0))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    pixels = np.asarray(load_image(path, None).image)[:, :, 0]
    assert pixels[0, 0] == 0 and pixels[0, -1] == 255
    assert 110 < pixels[0, 128] < 145  # mid-grey stays mid-grey, not white


def test_float_image_scaled(tmp_path: Path) -> None:
    path = tmp_path / "f.tif"
    Image.fromarray(np.full((4, 4), 0.5, np.float32), "F").save(path)
    assert load_image(path, None).image.getpixel((1, 1)) == (127, 127, 127)


def test_large_jpeg_decoded_reduced_but_reports_full_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (10, 120, 200)).save(path, quality=90)
    loaded = load_image(path, min_side=224)
    assert (loaded.width, loaded.height) == (4000, 3000)
    assert 224 <= min(loaded.image.size) < 448  # draft at 1/8 scale: 500x375
    full = load_image(path, min_side=None)
    assert full.image.size == (4000, 3000)


@needs_shared_data
def test_decompression_bombs_are_handled_deliberately() -> None:
    giant = load_image(FORMATS / "sharp_fixtures" / "giant-image.jpg", min_side=224)  # 280 MP JPEG
    assert giant.width * giant.height > MAX_DECODE_PIXELS
    assert giant.image.width * giant.image.height <= MAX_DECODE_PIXELS
    with pytest.raises(ImageLoadError, match="too large to decode safely"):
        load_image(FORMATS / "sharp_fixtures" / "giant-image.jpg", min_side=None)


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    r, g, b = load_image(path, None).image.getpixel((8, 8))
    assert r > 200 and b < 50


@pytest.mark.parametrize(
    "data, reason",
    [(b"", "not an image"), (b"hello, this is text\n" * 50, "not an image")],
)
def test_non_images_raise_load_error(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    with pytest.raises(ImageLoadError, match=reason):
        load_image(path)


def test_truncated_jpeg_is_an_error_not_a_grey_half(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((512, 512), 64).convert("RGB").save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(data[: len(data) // 2], min_side=None)


def test_lying_extension_and_bytes_source(tmp_path: Path) -> None:
    path = tmp_path / "actually-a-jpeg.png"
    Image.new("RGB", (300, 200), (0, 200, 0)).save(path, "JPEG")
    from_path = load_image(path, 64)
    from_bytes = load_image(path.read_bytes(), 64)
    assert from_path.image.tobytes() == from_bytes.image.tobytes()
    assert (from_path.width, from_path.height) == (300, 200)


def test_capture_date_from_exif_and_garbage_tolerated(tmp_path: Path) -> None:
    image = Image.new("RGB", (8, 8))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:07:04 18:30:00"
    image.save(tmp_path / "dated.jpg", exif=exif)
    assert load_image(tmp_path / "dated.jpg").taken_at == "2019-07-04T18:30:00"
    bad = Image.Exif()
    bad.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    image.save(tmp_path / "bad.jpg", exif=bad)
    assert load_image(tmp_path / "bad.jpg").taken_at is None
    image.save(tmp_path / "none.jpg")
    assert load_image(tmp_path / "none.jpg").taken_at is None


def test_photo_extensions_cover_phone_formats() -> None:
    assert {".jpg", ".jpeg", ".heic", ".heif", ".png", ".webp", ".avif", ".tif"} <= PHOTO_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in PHOTO_EXTENSIONS)
