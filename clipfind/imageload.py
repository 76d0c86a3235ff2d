"""Decode a photo file into an upright RGB image for the CLIP preprocessor, plus its metadata.

Speed matters (every photo of a library passes through here), so big images are decoded
reduced where the format allows it: JPEG through libjpeg's DCT scaling (``Image.draft``),
HEIF through an embedded thumbnail that is a scaled copy of the image (pillow-heif's ``draft``).
Everything else is decoded at full size and then box-reduced before rotation.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

import pillow_heif
from PIL import Image, ImageCms, ImageFile, TiffImagePlugin, UnidentifiedImageError, features

from clipfind.errors import ImageLoadError, one_line
from clipfind.fingerprint import Capture, read_capture

__all__ = ["MAX_DECODE_PIXELS", "MAX_FILE_BYTES", "PHOTO_EXTENSIONS", "LoadedImage", "content_hash", "load_image",
           "read_photo", "register_heif"]

MAX_DECODE_PIXELS = 120_000_000
MAX_FILE_BYTES = 512 * 1024 * 1024  # larger files are not photos we can decode in memory
"""Largest image (in pixels, as actually decoded) we agree to decode: 360 MB as RGB."""

# Pillow's own bomb guard (Image.MAX_IMAGE_PIXELS) checks the FULL size at open time, before
# draft() can shrink a JPEG, so it refuses a 280 MP JPEG that decodes to 4 MP at 1/8 scale.
# Raising or restoring it around each call would race between loader threads, so it is switched
# off once here and load_image enforces MAX_DECODE_PIXELS on the size that will really be decoded,
# from the header, before any pixel is decoded. Without the guard Pillow emits no
# DecompressionBombWarning either. Code that opens untrusted images with Pillow elsewhere in this
# process must check the size itself.
Image.MAX_IMAGE_PIXELS = None



class _NamingWarnings:
    """Stands in for the `warnings` module inside Pillow's EXIF and TIFF parsers, whose warnings
    ("Corrupt EXIF data.  Expecting to read 12 bytes but only got 2.") do not say which file:
    the file this thread is decoding is put in front. warnings.catch_warnings around each call
    would swap process-wide state from the decoder threads, and could leave it swapped."""

    def __getattr__(self, name: str) -> Any:
        return getattr(warnings, name)

    def warn(self, message: Any, category: Any = None, stacklevel: int = 1, source: Any = None) -> None:
        path = getattr(_decoding, "path", None)
        if path is not None and isinstance(message, str):
            message = f"{path}: {message.strip()}"
        warnings.warn(message, category, stacklevel + 1, source)


_decoding = threading.local()  # .path: the file this thread is decoding, for _NamingWarnings
for _module in (Image, TiffImagePlugin):
    if getattr(_module, "warnings", None) is warnings:
        _module.warnings = _NamingWarnings()  # type: ignore[attr-defined]

_ORIENTATION_TAG = 0x0112
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# 'YYYY:MM:DD HH:MM:SS' per EXIF; some writers use '-' or '/' in the date or a 'T'.
_EXIF_DATE = re.compile(r"\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")

# Extensions people keep photos under, kept only if this Pillow/pillow-heif can open them.
_PHOTO_EXTENSION_CANDIDATES = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo",
    ".png", ".apng", ".gif", ".webp", ".bmp", ".tif", ".tiff",
    ".heic", ".heif", ".hif", ".heics", ".heifs", ".avif", ".avifs",
    ".jp2", ".j2k", ".jpf", ".jpx",
)  # fmt: skip

_registered = False


def register_heif() -> None:
    """Let Pillow open HEIC/HEIF (and AVIF where Pillow itself cannot); safe to call repeatedly."""
    global _registered
    if _registered:
        return
    pillow_heif.register_heif_opener()
    # Pillow >= 11.2 reads AVIF itself; older pillow-heif releases offered an AVIF opener instead.
    pillow_avif = "avif" in features.modules and features.check_module("avif")
    if not pillow_avif and hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()
    _registered = True


register_heif()

_EXTENSION_FORMATS = Image.registered_extensions()
PHOTO_EXTENSIONS: frozenset[str] = frozenset(
    ext for ext in _PHOTO_EXTENSION_CANDIDATES if ext in _EXTENSION_FORMATS
)
# Only photo decoders are tried, whatever a file's extension claims: this keeps out plugins that
# shell out (EPS runs Ghostscript) or read icons/textures. PPM is harmless and appears in real folders.
# Kept in Pillow's own order of trying them. (MPO has no opener: the JPEG opener returns MPO files.)
_DECODE_FORMATS: tuple[str, ...] = tuple(
    fmt for fmt in Image.OPEN if fmt in {_EXTENSION_FORMATS[ext] for ext in PHOTO_EXTENSIONS} | {"PPM"}
)


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """A decoded photo: an upright RGB image (possibly reduced) and facts about the original."""

    image: Image.Image  # mode "RGB", orientation applied
    width: int  # original pixel size, after orientation
    height: int
    taken_at: str | None  # ISO 8601 'YYYY-MM-DDTHH:MM:SS' from EXIF, local time, no zone
    capture: Capture = Capture()  # camera and capture time to the sub-second: tells two captures apart


def load_image(
    source: str | os.PathLike[str] | bytes, min_side: int | None = 224, *, name: str | None = None
) -> LoadedImage:
    """Decode ``source`` (a path or the file's bytes) into an upright RGB image.

    The returned image's shorter side is at least ``min_side`` (unless the original is smaller)
    and may be reduced to that to save time; ``None`` decodes at full size. Every failure to read
    or decode the file raises ImageLoadError with a one-line reason. ``name`` (the file's path,
    when ``source`` is its bytes) is what Pillow's warnings about the file are prefixed with.
    """
    if min_side is not None and min_side < 1:
        raise ValueError(f"min_side must be positive or None, not {min_side}")
    if name is None and not isinstance(source, (bytes, bytearray, memoryview)):
        name = os.fsdecode(source)
    with _naming(name):
        return _load(source, min_side)


@contextmanager
def _naming(name: str | None) -> Iterator[None]:
    """Name the file in the warnings Pillow gives while this thread decodes it."""
    previous = getattr(_decoding, "path", None)
    _decoding.path = name
    try:
        yield
    finally:
        _decoding.path = previous


def _load(source: str | os.PathLike[str] | bytes, min_side: int | None) -> LoadedImage:
    try:
        opened = _open(source)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError("file not found") from None
    except UnidentifiedImageError:
        raise ImageLoadError(_unidentified_reason(source)) from None
    except MemoryError:
        raise ImageLoadError("not enough memory to read the image header") from None
    except Image.DecompressionBombError as exc:  # only if other code re-armed Pillow's guard
        raise ImageLoadError(f"too large to decode safely ({one_line(exc, names=False)})") from None
    except Exception as exc:  # plugins raise many types (OSError, SyntaxError, struct.error, ...)
        raise ImageLoadError(f"cannot read image: {one_line(exc, names=False)}") from exc
    try:
        with opened as im:
            return _decode(im, min_side)
    except _ReducedDecodeFailed:
        pass  # decoded again at full size, below
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError("not enough memory to decode the image") from None
    except Exception as exc:  # truncated data, corrupt streams, decoder errors of any type
        raise ImageLoadError(f"cannot decode image: {one_line(exc, names=False)}") from exc
    return _load(source, None)


class _ReducedDecodeFailed(Exception):
    """The reduced decode failed; a few valid JPEGs (sharp's testimgl.jpg) decode only at full size."""


def _open(source: str | os.PathLike[str] | bytes) -> ImageFile.ImageFile:
    """Open lazily (header only); bytes are wrapped, not copied into another buffer."""
    fp: str | os.PathLike[str] | IO[bytes]
    if isinstance(source, (bytes, bytearray, memoryview)):
        fp = io.BytesIO(source)
    else:
        # Opening a FIFO would block until some writer appears, and a device can stream forever.
        if not stat.S_ISREG(os.stat(source).st_mode):
            raise ImageLoadError("not a regular file")
        fp = source
    return Image.open(fp, formats=_DECODE_FORMATS)


def _unidentified_reason(source: str | os.PathLike[str] | bytes) -> str:
    """Tell an empty file from one that is not an image: the first is a common sync/copy accident."""
    try:
        empty = len(source) == 0 if isinstance(source, (bytes, bytearray, memoryview)) else os.path.getsize(source) == 0
    except OSError:
        empty = False
    return "empty file (0 bytes)" if empty else "not an image in a supported format"


def _decode(im: ImageFile.ImageFile, min_side: int | None) -> LoadedImage:
    """Decode an opened image, reduced when allowed, and make it upright RGB."""
    width, height = im.size
    if im.format in ("HEIF", "AVIF"):
        truncation = _isobmff_truncation(im.fp)
        if truncation:  # libheif would paint the missing tiles and report success
            raise ImageLoadError(f"file is truncated ({truncation})")
    if min_side is not None:
        # JPEG: DCT scaling by 1/2, 1/4 or 1/8; HEIF: an embedded thumbnail; others: no-op.
        # A square request keeps the shorter side >= min_side whatever the orientation.
        im.draft("RGB", (min_side, min_side))
    if im.width * im.height > MAX_DECODE_PIXELS:
        raise ImageLoadError(
            f"too large to decode safely ({width * height / 1e6:.0f} MP, "
            f"limit {MAX_DECODE_PIXELS / 1e6:.0f} MP)"
        )
    try:
        im.load()
    except OSError:
        if im.size != (width, height):
            raise _ReducedDecodeFailed() from None
        raise
    # EXIF is read only now: PNG may keep it after the pixel data, and plugins that orient the
    # image themselves (Pillow's TIFF, pillow-heif) have removed or reset the tag by now, so
    # what remains is exactly what is left for us to do.
    orientation, taken_at = _read_exif(im)
    capture = read_capture(im)

    image = _to_rgb(im)
    if min_side is not None:
        # Box-reduce to within 2x of min_side: the preprocessor's bicubic resize from there is as
        # good as from full size (Pillow's reducing_gap=2), at a fraction of the cost.
        factor = min(image.size) // (2 * min_side)
        if factor >= 2:
            image = image.reduce(factor)
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
        if orientation >= 5:  # the header gave the size as stored, before the quarter turn
            width, height = height, width
    if image is im:
        image = im.copy()  # detach the pixels from the file object, which is about to be closed
    return LoadedImage(image=image, width=width, height=height, taken_at=taken_at, capture=capture)


def _isobmff_truncation(fp: IO[bytes] | None) -> str | None:
    """Return why a HEIF/AVIF file is cut short (a top-level box runs past its end), else None."""
    if fp is None:
        return None
    position = fp.tell()
    try:
        size = fp.seek(0, os.SEEK_END)
        offset = 0
        while offset + 8 <= size:
            fp.seek(offset)
            header = fp.read(16)
            box_size = int.from_bytes(header[:4], "big")
            box_type = header[4:8].decode("latin-1")
            if box_size == 1 and len(header) == 16:  # 64-bit size follows the type
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # box extends to the end of the file
                return None
            if box_size < 8:
                return f"invalid size {box_size} for box {box_type!r} at byte {offset}"
            if offset + box_size > size:
                return f"box {box_type!r} needs {offset + box_size} bytes, file has {size}"
            offset += box_size
        return None
    finally:
        fp.seek(position)


def _read_exif(im: Image.Image) -> tuple[int, str | None]:
    """Return (orientation 1..8, taken_at); bad or missing EXIF gives (1, None), never an error."""
    try:
        exif = im.getexif()
        # libheif has applied the irot/imir boxes, which rule in HEIF (its EXIF orientation is
        # informational only and pillow-heif resets it); honouring the tag would rotate twice.
        value = None if im.format == "HEIF" else exif.get(_ORIENTATION_TAG)
    except Exception:  # corrupt EXIF must not cost us the photo
        return 1, None
    orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
    return orientation, _taken_at(exif)


def _taken_at(exif: Image.Exif) -> str | None:
    """DateTimeOriginal from the Exif IFD, falling back to IFD0 DateTime, as ISO 8601."""
    candidates = []
    try:
        candidates.append(exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL))
    except Exception:
        pass
    try:
        candidates.append(exif.get(_DATETIME))
    except Exception:
        pass
    for value in candidates:
        parsed = _parse_exif_datetime(value)
        if parsed:
            return parsed
    return None


def _parse_exif_datetime(value: object) -> str | None:
    """Parse an EXIF date-time ('2019:05:21 10:45:52'); None for blanks, zeros and garbage."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    match = _EXIF_DATE.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        parsed = datetime(year, month, day, hour, minute, second)
    except ValueError:  # '0000:00:00 00:00:00', month 13, ...
        return None
    return parsed.isoformat()


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any decoded mode to RGB with the colours a viewer would show."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode.startswith("I") or mode == "F":
        return _to_8bit_grey(im).convert("RGB")
    if im.has_transparency_data:
        return _over_white(im.convert("RGBA"))
    return im.convert("RGB")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """CMYK through its embedded ICC profile to sRGB; plain conversion without (or with a bad) one.

    The naive formula makes print files garish (oversaturated greens, neon reds), which shifts
    what CLIP sees. Pillow already un-inverts Adobe CMYK JPEGs while decoding.
    """
    icc = im.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            # Fresh profiles per call: LittleCMS objects are not safe to share between threads.
            return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "CMYK", "RGB").apply(im)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # unusable profile: the plain conversion still shows the picture
    return im.convert("RGB")


def _to_8bit_grey(im: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float grey to L instead of clipping everything above 255.

    I;16 is a 16-bit container: 0..65535 maps to 0..255. I and F carry no range, so it is inferred
    from the data: floats within 0..1, values within 0..255, 0..65535, else 0..max.
    """
    full_scale: float
    if im.mode.startswith("I;16"):
        im, full_scale = im.convert("I"), 65535
    else:
        high = cast(tuple[float, float], im.getextrema())[1]  # one band: (min, max)
        if im.mode == "F" and high <= 1:
            full_scale = 1
        elif high <= 255:
            full_scale = 255
        elif high <= 65535:
            full_scale = 65535
        else:
            full_scale = high
    scale = 255 / full_scale
    return im.point(lambda value: value * scale + 0.5).convert("L")


def _over_white(rgba: Image.Image) -> Image.Image:
    """Composite over white: transparent areas would otherwise turn black, unlike in any viewer."""
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba)
    return background


def content_hash(data: bytes) -> str:
    """The file's identity for byte-identical copies: 128 bits of BLAKE2b, fast and collision-safe."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()



def read_photo(path: str) -> bytes:
    """The file's bytes, read once; never blocks on a pipe, nor reads a device or a growing file forever.

    The scan skipped pipes and devices, but the folder may have changed since.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageLoadError("not a regular file (a pipe or a device named like a photo)")
        if st.st_size > MAX_FILE_BYTES:
            raise ImageLoadError(f"file too large ({st.st_size // 2**20} MiB)")
        with open(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ImageLoadError(f"file too large (over {MAX_FILE_BYTES // 2**20} MiB)")
    return data
