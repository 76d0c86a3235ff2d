"""Model-free signals that tell "the same photo, saved again" from "another shot of the scene".

CLIP similarity cannot tell a re-saved copy from the next frame of a burst, and perceptual
hashes alone miss mirrors and rotations. So each photo keeps a small grey thumbnail (SIDE x SIDE
bytes in the catalog) and its capture record:
  * candidates come from a descriptor that does not change when the picture is turned by a
    multiple of 90 degrees or mirrored (magnitudes of its low DCT frequencies, folded over the
    diagonal), so one nearest-neighbour query per photo finds its turned copies too;
  * the signed low frequencies then say in which of the 8 orientations the two line up, and
    drop pairs that do not line up in any;
  * the pair is confirmed by comparing the thumbnails in that orientation, on a grid of small
    blocks, after matching their tones rank by rank: a re-encode, a resize, grey or a brightness,
    contrast or gamma change moves every block a little, while a burst's shifted frame or moved
    subject moves some blocks a lot;
  * the camera's own record of when it took the picture settles the rest: two files whose
    capture times differ (to the sub-second where both carry it) are two captures.

Thresholds come from bench/dupes_quality.py, which measures them on real photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from clipfind.processwide import one_blas_thread

SIDE = 44  # thumbnail side: 1,936 bytes a photo in the catalog (a 32 px one separated bursts barely)
BLOCK = 4  # side of a block of the confirmation grid, in thumbnail pixels (11 x 11 blocks)
SAME_MAX_BLOCK_CHANGE = 0.28  # the most one block may change in a re-save (standard deviations)
SAME_MAX_SHIFT = 0.3  # the most the content may move in a re-save, in thumbnail pixels (0.7 %)
CAPTURE_SLACK = 1.8  # both limits widen this much where both files name one capture to the sub-second
MAX_SLACK = 3.0  # distances above this many limits are only known to be large (inf), not measured
MIN_ALIGNMENT = 0.97  # signed low-frequency agreement below which two pictures do not line up
_MIN_SPREAD = 3.0  # grey levels: a flatter thumbnail (a blank frame) cannot tell captures apart
_LOW = 8  # low DCT frequencies kept for the descriptor and the alignment
_MIN_COMPARABLE = 0.25  # a share of pixels not clipped in only one of the two: below it, no verdict
_MIN_BLOCK_PIXELS = 2  # a block with fewer comparable pixels has no say
_CLIP_LOW, _CLIP_HIGH = 4, 251  # grey levels that clip: a brightened sky turns 255 and tells nothing

Thumb = npt.NDArray[np.uint8]  # (SIDE, SIDE) grey levels of the upright picture
Thumbs = npt.NDArray[np.uint8]  # (n, SIDE, SIDE)
Floats = npt.NDArray[np.float32]

# The 8 orientations, as (transpose, flip rows, flip columns) applied in that order to the second
# picture of a pair. Index 0 is "as it is".
ORIENTATIONS: tuple[tuple[bool, bool, bool], ...] = tuple(
    (t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)
)


def is_mirrored(orientation: int) -> bool:
    """Whether lining up took a mirror image (an odd number of flips and transposes)."""
    return sum(ORIENTATIONS[orientation]) % 2 == 1


def is_turned(orientation: int) -> bool:
    """Whether lining up took a turn: anything but "as it is" and the plain left-right mirror."""
    return ORIENTATIONS[orientation] not in ((False, False, False), (False, False, True))


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(SIDE)[:_LOW]
_UPPER = np.triu_indices(_LOW)
DESCRIPTOR_DIM = 2 * len(_UPPER[0]) - 1  # the folded DC term is dropped
_SIGN = (-1.0) ** np.arange(_LOW)  # a flip of the picture flips the sign of its odd frequencies


def thumbnail(image: Image.Image) -> Thumb:
    """The picture as the comparison sees it: grey, squeezed to SIDE x SIDE (the aspect ratio is
    dropped, so a 90-degree turn of the picture is a 90-degree turn of its thumbnail)."""
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image.resize((SIDE, SIDE), Image.Resampling.BOX, reducing_gap=None), np.uint8)


@one_blas_thread()
def low_frequencies(thumbs: Thumbs) -> Floats:
    """(n, _LOW, _LOW) signed low DCT coefficients, DC dropped, each set of unit length."""
    n = len(thumbs)
    dct = _DCT.astype(np.float32)
    # Two plain matrix products over the whole stack (a batched 3-D matmul is far slower here).
    rows = (thumbs.reshape(n * SIDE, SIDE).astype(np.float32) @ dct.T).reshape(n, SIDE, _LOW)
    coef = np.ascontiguousarray((dct @ rows).reshape(n, _LOW, _LOW)) if n else np.zeros((0, _LOW, _LOW), np.float32)
    coef[:, 0, 0] = 0.0  # the mean: brightness says nothing
    norms = np.sqrt((coef**2).sum(axis=(1, 2), keepdims=True))
    return coef / np.where(norms > 0, norms, 1.0)


@one_blas_thread()
def descriptors(thumbs: Thumbs, low: Floats | None = None) -> Floats:
    """(n, DESCRIPTOR_DIM) unit vectors that stay put when a picture is turned or mirrored, and
    nearly so when it is re-saved: close vectors propose pairs to confirm. ``low``: the
    thumbnails' :func:`low_frequencies`, where already at hand."""
    coef = np.abs(low_frequencies(thumbs) if low is None else low)  # flips only change signs
    folded = np.concatenate(
        [(coef + coef.transpose(0, 2, 1))[:, _UPPER[0], _UPPER[1]][:, 1:],  # a turn swaps (u, v)
         np.abs(coef - coef.transpose(0, 2, 1))[:, _UPPER[0], _UPPER[1]]],
        axis=1,
    )
    norms = np.linalg.norm(folded, axis=1, keepdims=True)
    return (folded / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@one_blas_thread()
def alignments(low_a: Floats, low_b: Floats) -> Floats:
    """(p, 8) agreement (cosine) of the signed low frequencies of a[i] and b[i] turned each of the
    8 ways: a copy agrees near 1 in its own orientation."""
    out = np.empty((len(low_a), 8), np.float32)
    rows, cols = _SIGN[:, None], _SIGN[None, :]
    for o, (t, r, c) in enumerate(ORIENTATIONS):
        x = low_b.transpose(0, 2, 1) if t else low_b
        sign = (rows if r else 1.0) * (cols if c else 1.0)
        out[:, o] = (low_a * (x * sign)).sum(axis=(1, 2))
    return out


def oriented(thumbs: Thumbs, orientation: npt.NDArray[np.integer]) -> Thumbs:
    """Each thumbnail turned the way its pair's orientation says."""
    out = np.empty_like(thumbs)
    for o, (t, r, c) in enumerate(ORIENTATIONS):
        pick = orientation == o
        if not pick.any():
            continue
        x = thumbs[pick]
        if t:
            x = x.transpose(0, 2, 1)
        if r:
            x = x[:, ::-1]
        if c:
            x = x[:, :, ::-1]
        out[pick] = x
    return out


@one_blas_thread()
def changes(a: Thumbs, b: Thumbs, shift_below: float = np.inf) -> tuple[Floats, Floats]:
    """(worst block, shift) between a[i] and b[i] as they lie (turn b first), after their tones
    are matched. The worst block: how much the most-changed block of the grid differs, in standard
    deviations of the picture. The shift: how far, in thumbnail pixels, the content of b has moved
    at the farthest corner, fitted as one small affine motion over the whole picture (a burst's
    camera moves; a re-saved copy's content stays put). ``inf`` where the two cannot be compared:
    one is mostly clipped to black or white where the other is not, or either is nearly flat (a
    blank frame matches every other blank frame). The shift, the costlier half, is only measured
    where the worst block is at most ``shift_below`` (``inf`` elsewhere)."""
    p = len(a)
    fa, fb = a.reshape(p, -1), b.reshape(p, -1)
    clipped_a = (fa <= _CLIP_LOW) | (fa >= _CLIP_HIGH)
    clipped_b = (fb <= _CLIP_LOW) | (fb >= _CLIP_HIGH)
    usable = ~(clipped_a ^ clipped_b)  # clipped in one only: says nothing about sameness
    # Tone matching: a grey level at some rank in one picture meets the level at that rank in the
    # other, and both move halfway. Any monotone brightness, contrast or gamma change (and grey)
    # then cancels out, while moved content still lands on other levels in other places.
    cdf_a, cdf_b = _cdf(fa), _cdf(fb)
    ma = np.take_along_axis((_LEVELS + _level_at(cdf_b, _mid_rank(cdf_a))) / 2, fa.astype(np.intp), axis=1)
    mb = np.take_along_axis((_LEVELS + _level_at(cdf_a, _mid_rank(cdf_b))) / 2, fb.astype(np.intp), axis=1)
    spread = (ma.std(axis=1, keepdims=True) + mb.std(axis=1, keepdims=True)) / 2
    ma /= np.where(spread > 1e-6, spread, 1.0)
    mb /= np.where(spread > 1e-6, spread, 1.0)
    diff = np.abs(ma - mb) * usable
    g = SIDE // BLOCK
    shape = (p, g, BLOCK, g, BLOCK)
    counted = usable.reshape(shape).sum(axis=(2, 4))
    per_block = diff.reshape(shape).sum(axis=(2, 4)) / np.maximum(counted, 1)
    worst = np.where(counted >= _MIN_BLOCK_PIXELS, per_block, 0.0).max(axis=(1, 2))
    flat = (_spread(cdf_a) < _MIN_SPREAD) | (_spread(cdf_b) < _MIN_SPREAD)
    bad = (usable.mean(axis=1) < _MIN_COMPARABLE) | flat
    shift = np.full(p, np.inf, np.float32)
    wanted = ~bad & (worst <= shift_below)
    if wanted.any():
        shift[wanted] = _shift(*(x[wanted].reshape(-1, SIDE, SIDE) for x in (ma, mb, usable)))
    return np.where(bad, np.inf, worst).astype(np.float32), np.where(bad, np.inf, shift).astype(np.float32)


_AXIS = np.linspace(-1.0, 1.0, SIDE, dtype=np.float32)
_CORNERS = np.array([[1.0, x, y] for x in (-1.0, 1.0) for y in (-1.0, 1.0)], np.float32)


def _shift(a: Floats, b: Floats, usable: npt.NDArray[np.bool_]) -> Floats:
    """(p,) largest displacement (thumbnail pixels) at a corner of the affine motion that best
    explains b - a from the pictures' gradients (one Lucas-Kanade step over the whole picture)."""
    p = len(a)
    grad_y, grad_x = np.gradient((a + b) / 2, axis=(1, 2))
    weight = usable.astype(np.float32)
    weight[:, [0, -1], :] = 0.0  # one-sided gradients at the border
    weight[:, :, [0, -1]] = 0.0
    x, y = _AXIS[None, None, :], _AXIS[None, :, None]
    basis = np.stack([grad_x, grad_x * x, grad_x * y, grad_y, grad_y * x, grad_y * y], axis=-1)
    basis = basis.reshape(p, -1, 6)
    weighted = (basis * weight.reshape(p, -1, 1)).transpose(0, 2, 1)  # (p, 6, pixels)
    normal = weighted @ basis + 1e-3 * np.eye(6, dtype=np.float32)  # batched matmul: BLAS, unlike einsum
    rhs = (weighted @ (b - a).reshape(p, -1, 1))[..., 0]
    motion = np.linalg.solve(normal, rhs[..., None])[..., 0]  # (dx: 1, x, y; dy: 1, x, y)
    dx, dy = motion[:, :3] @ _CORNERS.T, motion[:, 3:] @ _CORNERS.T
    return np.sqrt(dx**2 + dy**2).max(axis=1)


_LEVELS = np.arange(256, dtype=np.float32)


def _cdf(flat: npt.NDArray[np.uint8]) -> Floats:
    """(p, 256) share of each picture's pixels at or below each grey level."""
    p, size = flat.shape
    counts = np.bincount((flat + np.arange(p)[:, None] * 256).ravel(), minlength=p * 256).reshape(p, 256)
    return (np.cumsum(counts, axis=1) / size).astype(np.float32)


def _mid_rank(cdf: Floats) -> Floats:
    """(p, 256) the middle rank (0..1) of each grey level's pixels."""
    below = np.concatenate([np.zeros((len(cdf), 1), np.float32), cdf[:, :-1]], axis=1)
    return (below + cdf) / 2


def _level_at(cdf: Floats, rank: Floats) -> Floats:
    """(p, 256) the grey level found at each rank of the picture with this cdf (row by row)."""
    offset = np.arange(len(cdf), dtype=np.float64)[:, None] * 2.0  # cdf rows are in 0..1: keep rows apart
    where = np.searchsorted((cdf + offset).ravel(), (rank + offset).ravel()).reshape(rank.shape)
    return (where - np.arange(len(cdf))[:, None] * 256).clip(0, 255).astype(np.float32)


def _spread(cdf: Floats) -> Floats:
    """Standard deviation of each picture's grey levels, from its cdf."""
    share = np.diff(cdf, axis=1, prepend=0.0)
    mean = share @ _LEVELS
    return np.sqrt(np.maximum(share @ _LEVELS**2 - mean**2, 0.0))


@dataclass(frozen=True, slots=True)
class Match:
    """How two thumbnails compare in the orientation where they line up best."""

    orientation: int  # index into ORIENTATIONS: how the second was turned to meet the first
    alignment: float  # signed low-frequency agreement in that orientation
    change: float  # worst block change there (see :func:`changes`)
    shift: float  # content motion there, in thumbnail pixels (see :func:`changes`)
    distance: float  # the larger of change and shift, each in units of its limit: "same" at <= 1
    # (inf where the change alone exceeds MAX_SLACK limits)

    def same(self, slack: float = 1.0) -> bool:
        """Whether the pixels say one picture saved twice (``slack`` widens the limits)."""
        return self.distance <= slack


@one_blas_thread()
def compare(a: Thumbs, b: Thumbs, low_a: Floats | None = None,
            low_b: Floats | None = None) -> tuple[npt.NDArray[np.int64], Floats, Floats, Floats, Floats]:
    """(orientation, alignment, change, shift, distance) of each pair (a[i], b[i]) in its best
    orientation; see :class:`Match`. Pairs that do not line up (alignment under MIN_ALIGNMENT) get
    ``inf`` for the rest. Pass the :func:`low_frequencies` of a and b where already at hand."""
    align = alignments(low_frequencies(a) if low_a is None else low_a, low_frequencies(b) if low_b is None else low_b)
    best = align.argmax(axis=1)
    top = align[np.arange(len(a)), best]
    change = np.full(len(a), np.inf, np.float32)
    shift = np.full(len(a), np.inf, np.float32)
    aligned = top >= MIN_ALIGNMENT
    if aligned.any():
        change[aligned], shift[aligned] = changes(a[aligned], oriented(b[aligned], best[aligned]),
                                                  shift_below=SAME_MAX_BLOCK_CHANGE * MAX_SLACK)
    distance = np.maximum(change / SAME_MAX_BLOCK_CHANGE, shift / SAME_MAX_SHIFT)
    return best, top, change, shift, distance


def match(a: Thumb, b: Thumb) -> Match:
    """:func:`compare` for one pair."""
    o, al, ch, sh, d = compare(a[None], b[None])
    return Match(int(o[0]), float(al[0]), float(ch[0]), float(sh[0]), float(d[0]))


def same_picture(a: Thumb, b: Thumb, capture_a: Capture | None = None, capture_b: Capture | None = None) -> bool:
    """Whether two files hold one capture, saved twice (the "same" tier's test for one pair)."""
    if capture_a is not None and capture_b is not None and capture_a.differs_from(capture_b):
        return False
    return match(a, b).same()


@dataclass(frozen=True, slots=True)
class Capture:
    """When and with what a camera took the picture, as its EXIF says (None: not recorded)."""

    camera: str | None = None
    taken: str | None = None  # DateTimeOriginal, 'YYYY:MM:DD HH:MM:SS'
    subsec: str | None = None  # SubSecTimeOriginal digits
    gps: bool = False  # a GPS position is recorded (not part of the capture's identity: editors strip it)

    def differs_from(self, other: Capture) -> bool:
        """True when both record their capture and the records say two captures: another camera,
        another second, or (both recording sub-seconds) another fraction of it. A re-saved copy
        keeps its EXIF or loses it; it never gets another capture time."""
        if self.camera and other.camera and self.camera != other.camera:
            return True
        if not (self.taken and other.taken):
            return False
        if self.taken != other.taken:
            return True
        if self.subsec and other.subsec:
            width = max(len(self.subsec), len(other.subsec))
            return self.subsec.ljust(width, "0") != other.subsec.ljust(width, "0")
        return False

    def matches(self, other: Capture) -> bool:
        """True when both records name one capture down to the sub-second: a signal of sameness
        (a capture time to the second alone is shared by every frame of a burst)."""
        return bool(self.taken and self.subsec and other.taken and other.subsec) and not self.differs_from(other)

    def agrees_with(self, other: Capture) -> bool:
        """True when both record a capture time and nothing in the records tells them apart: the
        EXIF backs the pixels (on its own, a time to the second does not single out a frame)."""
        return bool(self.taken and other.taken) and not self.differs_from(other)

    def to_text(self) -> str | None:
        """One line for a TEXT column (None when nothing is recorded); :meth:`from_text` reads it."""
        if self == Capture():
            return None
        return "\t".join(v or "" for v in (self.camera, self.taken, self.subsec, "1" if self.gps else ""))

    @classmethod
    def from_text(cls, text: str | None) -> Capture:
        """The capture written by :meth:`to_text`; an empty record for None or a malformed line."""
        if not text:
            return cls()
        parts = text.split("\t")
        if len(parts) not in (3, 4):  # 3: written before GPS was recorded
            return cls()
        camera, taken, subsec = (p or None for p in parts[:3])
        return cls(camera, taken, subsec, len(parts) == 4 and parts[3] == "1")


_MAKE, _MODEL, _EXIF_IFD, _DATETIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x010F, 0x0110, 0x8769, 0x9003, 0x9291
_GPS_IFD, _GPS_LATITUDE, _GPS_LONGITUDE = 0x8825, 2, 4


def read_capture(image: Image.Image) -> Capture:
    """The capture record of an opened image. Only DateTimeOriginal counts: IFD0's DateTime is
    rewritten by editors on every save, so it would split copies of one capture."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # corrupt EXIF: no record, the pixels decide
        return Capture()
    camera = " ".join(v for v in (_text(exif.get(_MAKE)), _text(exif.get(_MODEL))) if v) or None
    taken = _text(sub.get(_DATETIME_ORIGINAL))
    if taken is not None and (len(taken) < 19 or taken.startswith("0000")):
        taken = None  # blank or zeroed by the camera: not a record
    subsec = _text(sub.get(_SUBSEC_ORIGINAL))
    subsec = subsec if subsec and subsec.isdigit() else None
    return Capture(_clean(camera), taken[:19] if taken else None, subsec, _has_position(exif))


def _has_position(exif: Image.Exif) -> bool:
    """Whether the GPS block holds a latitude and a longitude (cameras write an empty block without a fix)."""
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:
        return False
    return bool(gps.get(_GPS_LATITUDE)) and bool(gps.get(_GPS_LONGITUDE))


def _clean(value: str | None) -> str | None:
    """A tab or newline would break to_text's one line; no camera name needs them."""
    return " ".join(value.split()) if value else value


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00 \t")
    return value or None
