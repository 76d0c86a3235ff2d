"""Turn a photo file into an upright RGB image for the model, fast, or say why it cannot be read.

Pillow decodes, pillow-heif adds HEIC/HEIF; JPEGs are decoded at reduced scale (DCT scaling
via `Image.draft`) when the model needs far fewer pixels, which is most of the cost of a
12 MP photo.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image, ImageCms, ImageOps

from clipfind.errors import ImageLoadError

# Our own decompression-bomb limit, checked from the header before any pixel is decoded and
# after draft() has shrunk a JPEG. Pillow's guard (a process-wide global) raises at open time,
# before draft() could help, and toggling it per call is not thread-safe; so it is switched
# off once here and this limit takes its place.
MAX_DECODE_PIXELS = 120_000_000
Image.MAX_IMAGE_PIXELS = None
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

PHOTO_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".dib",
        ".tif", ".tiff", ".heic", ".heif", ".hif", ".avif", ".mpo", ".jp2", ".j2k", ".ppm",
        ".pgm", ".pbm", ".tga", ".ico",
    }
)

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_ORIENTATION = 0x0112
_WHITE = (255, 255, 255)
# Anything Pillow or a plugin raises on a bad file; each becomes a recorded, skipped failure.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, KeyError,
                  TypeError, ZeroDivisionError, MemoryError, Image.DecompressionBombError)


@dataclass(frozen=True, slots=True)
class LoadedImage:
    image: Image.Image  # RGB, upright, possibly reduced
    width: int  # original pixel size, after orientation
    height: int
    taken_at: str | None  # EXIF capture time, ISO 8601, no zone


_registered = False


def register_heif() -> None:
    """HEIC/HEIF through pillow-heif (AVIF is native in Pillow 11.3+)."""
    global _registered
    if not _registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _registered = True


register_heif()


def load_image(source: str | os.PathLike[str] | bytes, min_side: int | None = 224) -> LoadedImage:
    """Decode `source` (a path or the file's bytes) upright in RGB, shorter side >= min_side."""
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with Image.open(fp) as im:
            try:
                return _decode(im, min_side)
            except _ReducedDecodeFailed:
                pass
        if isinstance(fp, io.BytesIO):
            fp.seek(0)
        with Image.open(fp) as im:  # a few valid JPEGs only decode at full scale
            return _decode(im, None)
    except ImageLoadError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageLoadError("not an image, or a format clipfind cannot read") from None
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(_reason(exc)) from None


class _ReducedDecodeFailed(Exception):
    """libjpeg failed at reduced (DCT-scaled) size; some valid JPEGs decode only at full size."""


def _decode(im: Image.Image, min_side: int | None) -> LoadedImage:
    exif = im.getexif()
    orientation = exif.get(_ORIENTATION, 1)
    width, height = im.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    taken_at = _taken_at(exif)
    full_size = im.size
    if min_side and im.format == "JPEG":
        im.draft("RGB" if im.mode in ("RGB", "YCbCr") else None, (min_side, min_side))
    decoded = im.size[0] * im.size[1]
    if decoded > MAX_DECODE_PIXELS:
        raise ImageLoadError(
            f"too large to decode safely ({decoded / 1e6:.0f} MP, limit {MAX_DECODE_PIXELS / 1e6:.0f} MP)"
        )
    try:
        im.load()
    except OSError:
        if im.size != full_size:
            raise _ReducedDecodeFailed() from None
        raise
    rgb = _reduce(_to_rgb(im), min_side)
    if orientation in range(2, 9):
        rgb = ImageOps.exif_transpose(_with_orientation(rgb, orientation))
    return LoadedImage(rgb, width, height, taken_at)


def _reduce(im: Image.Image, min_side: int | None) -> Image.Image:
    """Box-reduce what draft() could not (PNG, HEIC, WebP...) to within 2x of the model's size.

    The model's bicubic resize from 2x is as good as from full size, and a 20 MP wallpaper
    costs a fraction of the time.
    """
    if not min_side:
        return im
    factor = min(im.size) // (2 * min_side)
    return im.reduce(factor) if factor >= 2 else im


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """exif_transpose reads the tag from the image itself; the converted copy lost it."""
    image.getexif()[_ORIENTATION] = orientation
    return image


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "CMYK":
        icc = im.info.get("icc_profile")
        if icc:
            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
                if converted is not None:
                    return converted
            except (ImageCms.PyCMSError, OSError, ValueError):
                pass  # a broken profile: plain conversion is still the same picture
        return im.convert("RGB")
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _deep_grey_to_rgb(np.asarray(im))
    if mode == "F":
        values = np.asarray(im, dtype=np.float32)
        scale = 255.0 if values.size and float(values.max()) <= 1.0 else 1.0
        return Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in im.info or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def _deep_grey_to_rgb(values: np.ndarray) -> Image.Image:
    """16- and 32-bit greys scaled to 8 bits instead of clipped to white."""
    values = values.astype(np.int64)
    top = int(values.max()) if values.size else 0
    if top > 255:
        bits = max(top.bit_length(), 8)
        values = values >> (bits - 8)
    grey = np.clip(values, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _taken_at(exif: Image.Exif) -> str | None:
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
        if isinstance(raw, bytes):
            raw = raw.decode("ascii", "replace")
        if not isinstance(raw, str):
            return None
        return datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except Exception:  # EXIF from the wild is often garbage; a date is a nicety
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "not enough memory to decode"
    if "truncated" in text.lower():
        return f"file is truncated or damaged ({text})"
    return f"cannot decode: {text}"
