"""clipfind.cropcheck: confirming from the stored thumbnails that one photo is a crop of another."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageOps

from clipfind.cropcheck import MIN_CORRELATION, confirm_crops, find_crops, fit_crop, fit_crops
from clipfind.fingerprint import SIDE, Capture, thumbnail
from tests.helpers import FORMATS, PHOTOS, real_photo

NAMES = ("kodak24/kodim05.png", "kodak24/kodim23.png", "kodak24/kodim14.png",
         "pexels_interior/pexels-1571459.jpg", "skimage_data/chelsea.png")
HDR = FORMATS / "exif-samples" / "jpg" / "hdr"


def _photo(name: str) -> Image.Image:
    return real_photo(name, 800)


def _thumb(image: Image.Image, quality: int = 90) -> npt.NDArray[np.uint8]:
    """Save as JPEG, then read back as the indexer does."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        return thumbnail(ImageOps.exif_transpose(opened).convert("RGB"))


def _crop(image: Image.Image, share: float, where: tuple[float, float] = (0.5, 0.5),
          aspect: float = 1.0) -> Image.Image:
    """A crop of this share of the area, its centre at ``where`` (as far as it fits); ``aspect``
    stretches its width against its height."""
    w, h = image.size
    cw, ch = int(w * (share * aspect) ** 0.5), int(h * (share / aspect) ** 0.5)
    x0 = int(np.clip(where[0] * w - cw / 2, 0, w - cw))
    y0 = int(np.clip(where[1] * h - ch / 2, 0, h - ch))
    return image.crop((x0, y0, x0 + cw, y0 + ch))


def _burst(image: Image.Image, pct: int, seed: int) -> Image.Image:
    """The next frame of a burst, as bench/dupes_quality.py makes it: the camera moved a few
    percent and something in the scene moved."""
    rng = np.random.default_rng(seed)
    w, h = image.size
    frame = image.crop((w * pct // 100, h * pct // 200, w, h)).resize((w, h), Image.Resampling.LANCZOS)
    pw, ph = w // 5, h // 5
    x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
    frame.paste(frame.crop((x, y, x + pw, y + ph)), (min(w - pw, x + pw // 2), min(h - ph, y + ph // 3)))
    return frame


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [_photo(n) for n in NAMES]


def test_crops_of_half_and_four_fifths_of_the_area_are_confirmed(photos: list[Image.Image]) -> None:
    thumbs, shares = [], []
    for image in photos:
        thumbs.append(_thumb(image, 95))
        for share, where in ((0.5, (0.5, 0.5)), (0.8, (0.5, 0.5)), (0.5, (0.3, 0.7)), (0.8, (0.6, 0.4))):
            thumbs.append(_thumb(_crop(image, share, where)))
            shares.append(share)
    # each photo's rows: its original, then its 4 crops; each crop is paired with its original
    pairs = [((k // 4) * 5, (k // 4) * 5 + 1 + k % 4) for k in range(len(shares))]
    stack = np.stack(thumbs)
    assert confirm_crops(stack, np.array(pairs)).all()
    fits = fit_crops(stack, np.array(pairs))
    for fit, share in zip(fits, shares):
        assert fit.crop_is_second
        assert fit.area == pytest.approx(share, abs=0.06)
    # given the other way round, the crop is found on the other side
    flipped = fit_crops(stack, np.array(pairs)[:, ::-1])
    assert all(f.is_crop() and not f.crop_is_second for f in flipped)


def test_re_encoded_and_resized_crops_and_a_crop_to_another_aspect_are_confirmed(photos: list[Image.Image]) -> None:
    for image in photos[:3]:
        original = _thumb(image, 95)
        crop = _crop(image, 0.6, (0.45, 0.55))
        small = crop.resize((crop.width // 2, crop.height // 2), Image.Resampling.LANCZOS)
        assert fit_crop(original, _thumb(crop, 40)).is_crop()  # heavy JPEG
        assert fit_crop(original, _thumb(small, 80)).is_crop()  # shared at half size
        wide = fit_crop(original, _thumb(_crop(image, 0.55, aspect=1.4)))  # a wider frame than the original's
        assert wide.is_crop()
        assert wide.scale[1] / wide.scale[0] == pytest.approx(1.4, rel=0.08)


def test_crop_position_is_found(photos: list[Image.Image]) -> None:
    image = photos[0]
    w, h = image.size
    box = (int(w * 0.1), int(h * 0.25), int(w * 0.8), int(h * 0.95))
    assert fit_crop(_thumb(photos[1], 95), _thumb(photos[1].crop(
        (int(photos[1].width * 0.1), int(photos[1].height * 0.25), int(photos[1].width * 0.8),
         int(photos[1].height * 0.95))))).is_crop()
    fit = fit_crop(_thumb(image, 95), _thumb(image.crop(box)))
    # where it sits is found even on this most detailed of the photos, where the verdict itself
    # may stay a careful no (its worst block measures about 0.29, just above the limit)
    assert fit.crop_is_second and fit.correlation >= MIN_CORRELATION
    assert fit.offset == pytest.approx((0.25, 0.1), abs=0.03)  # (top, left)
    assert fit.scale == pytest.approx((0.7, 0.7), abs=0.03)


def test_burst_frames_are_not_crops(photos: list[Image.Image]) -> None:
    for n, image in enumerate(photos):
        original = _thumb(image, 95)
        frames = [_thumb(_burst(image, pct, seed=n * 10 + pct)) for pct in (2, 4, 6)]
        for frame in frames:
            assert not fit_crop(original, frame).is_crop()
        for a, b in itertools.combinations(frames, 2):
            assert not fit_crop(a, b).is_crop()


def test_a_crop_of_another_frame_is_not_a_crop(photos: list[Image.Image]) -> None:
    """The camera moved and something in the scene moved: a crop of that frame that shows the
    moved thing fits the original everywhere but there, and is rejected there."""
    for image in photos:
        w, h = image.size
        frame = image.crop((w * 3 // 100, h * 2 // 100, w, h)).resize((w, h), Image.Resampling.LANCZOS)
        box = (int(w * 0.35), int(h * 0.35), int(w * 0.55), int(h * 0.55))
        frame.paste(frame.crop(box), (box[0] + w // 10, box[1] + h // 15))
        original = _thumb(image, 95)
        assert fit_crop(original, _thumb(_crop(image, 0.5))).is_crop()  # the same crop of this frame is
        fit = fit_crop(original, _thumb(_crop(frame, 0.5)))
        assert not fit.is_crop(), fit


def test_a_full_frame_copy_is_left_to_the_same_tier(photos: list[Image.Image]) -> None:
    """A re-save of the whole frame fits as a 'crop' of all the area: that is the same tier's to
    judge (with its stricter limits and the capture record), so the crop check says no."""
    image = photos[1]
    fit = fit_crop(_thumb(image, 95), _thumb(image, 50))
    assert fit.area > 0.95 and not fit.is_crop()


def test_hdr_on_off_pairs_are_not_crops() -> None:
    files = sorted(HDR.glob("*.jpg"))
    if len(files) < 4:
        pytest.skip(f"HDR samples not found at {HDR}")
    thumbs = []
    for path in files:
        with Image.open(path) as opened:
            thumbs.append(thumbnail(ImageOps.exif_transpose(opened).convert("RGB")))
    pairs = np.array(list(itertools.combinations(range(len(files)), 2)))
    assert not confirm_crops(np.stack(thumbs), pairs).any()


def test_distinct_photos_are_not_crops_of_each_other() -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"real test photos not found at {PHOTOS}")
    paths: list[Path] = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[::3]
    thumbs = []
    for path in paths:
        with Image.open(path) as opened:
            thumbs.append(thumbnail(ImageOps.exif_transpose(opened).convert("RGB")))
    pairs = np.array(list(itertools.combinations(range(len(paths)), 2)))
    confirmed = confirm_crops(np.stack(thumbs), pairs)
    assert len(pairs) > 500
    assert not confirmed.any(), [(paths[i].name, paths[j].name) for i, j in pairs[confirmed]]


def test_capture_records_that_differ_settle_a_zoomed_shot(photos: list[Image.Image]) -> None:
    """A shot zoomed in from the same spot fits like a crop; its capture time says otherwise."""
    image = photos[2]
    stack = np.stack([_thumb(image, 95), _thumb(_crop(image, 0.5))])
    pairs = np.array([[0, 1]])
    wide = Capture("Canon EOS", "2024:05:01 10:00:00", "12")
    assert confirm_crops(stack, pairs).all()
    assert confirm_crops(stack, pairs, [wide, Capture("Canon EOS", "2024:05:01 10:00:00")]).all()  # crop: kept
    assert confirm_crops(stack, pairs, [wide, Capture()]).all()  # crop: dropped by the editor
    assert not confirm_crops(stack, pairs, [wide, Capture("Canon EOS", "2024:05:01 10:00:03", "40")]).any()


def test_find_crops_names_the_crop_and_fits_each_pair_of_contents_once(photos: list[Image.Image],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import clipfind.cropcheck as cropcheck

    image = photos[0]
    stack = np.stack([_thumb(_crop(image, 0.5)), _thumb(image, 95), _thumb(photos[1], 95)])
    hashes, plain = ["c", "o", "x"], [Capture()] * 3
    cache: dict[tuple[str, str], str] = {}
    assert find_crops(stack, plain, hashes, np.array([[0, 1], [1, 2]]), cache) == [(1, 0)]  # (larger, crop)
    assert cache == {("c", "o"): "c", ("o", "x"): ""}
    fitted = []
    monkeypatch.setattr(cropcheck, "fit_crop", lambda a, b: fitted.append(1))
    # the same contents in other rows, asked the other way round: answered from the cache
    assert find_crops(stack[[1, 0]], plain, ["o", "c"], np.array([[1, 0]]), cache) == [(0, 1)]
    assert not fitted
    # two capture records that say two captures are not fitted at all
    taken = [Capture("Cam", "2024:05:01 10:00:00"), Capture("Cam", "2024:05:01 10:00:04"), Capture()]
    assert find_crops(stack, taken, hashes, np.array([[0, 1]])) == [] and not fitted


def test_flat_pictures_and_empty_input() -> None:
    flat = np.full((2, SIDE, SIDE), 128, np.uint8)
    assert not confirm_crops(flat, np.array([[0, 1]])).any()
    assert confirm_crops(flat, np.zeros((0, 2), np.int64)).shape == (0,)


def test_find_crops_fits_no_more_than_its_budget_and_goes_on_next_time(photos: list[Image.Image]) -> None:
    image = photos[0]
    stack = np.stack([_thumb(image, 95), _thumb(_crop(image, 0.5)), _thumb(_crop(image, 0.7))])
    pairs, hashes, plain = np.array([[0, 1], [0, 2], [1, 2]]), ["o", "c5", "c7"], [Capture()] * 3
    cache: dict[tuple[str, str], str] = {}
    assert find_crops(stack, plain, hashes, pairs, cache, budget=1) == [(0, 1)]
    assert len(cache) == 1
    assert find_crops(stack, plain, hashes, pairs, cache, budget=1) == [(0, 1), (0, 2)]
    assert len(cache) == 2
