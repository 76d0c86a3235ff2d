"""Model-free confirmation that one photo is a crop of another, from the stored thumbnails alone.

CLIP neighbours propose candidate pairs; this module says whether one picture of each pair is a
sub-rectangle of the other (possibly rescaled, possibly re-encoded), and where it sits.

The thumbnail (:data:`clipfind.fingerprint.SIDE` square, grey, aspect ratio squeezed out) of a
crop is the box average of a rectangle of the original's picture, so it is predicted from the
original's thumbnail by averaging it (read as linear between pixel centres) over the interval
that each cell of the crop's thumbnail covers, along each axis. For one axis hypothesis (scale s, offset o) that is a
(cells x SIDE) matrix M, and the prediction of the whole crop is ``My @ A @ Mx.T``, so every
combination of a set of row hypotheses and a set of column hypotheses comes out of two matrix
products. The search runs coarse to fine, in both directions (either picture may be the crop):

  * coarse: the crop's thumbnail as 8 x 8 cells against the larger one at half size, every scale
    (0.45 to 1 of the side, each axis on its own, so a crop to another aspect ratio is found) and
    offset (2 px steps), scored by normalised cross-correlation;
  * fine: around the best, scales within 5 % and offsets within 1.5 px, 11 x 11 cells; then a
    step a third that size at 22 x 22 cells;
  * check: at 22 x 22 cells, tones matched rank by rank (a crop is often edited too), every
    4 x 4-pixel block of the crop compared with its prediction, with more allowance where the
    block has fine detail (there resampling a 44-pixel thumbnail errs most). A re-encoded crop
    moves every block a little; a burst frame (the camera moved *and* something in the scene
    moved), an HDR twin or a look-alike leaves blocks that do not fit anywhere.

Only crops of 30 % to 85 % of the area are confirmed: a frame a few percent off the original is
what a burst's next frame looks like, and a whole frame is the same tier's to judge (with its
stricter limits and the capture record). Turned or mirrored crops are not looked for.

Thresholds come from bench/dupes_quality.py (crop section), measured on real photos. Their
margin at 44 px is thin (bench/README.md, "Crop check"), so a confirmed crop joins the same tier
but is never ticked for the trash: the user decides (:meth:`clipfind.records.DupeGroup.suggested`).
Which pairs are looked at is :mod:`clipfind.dupes`' choice (CLIP neighbours); :func:`find_crops`
looks at each pair of contents once per cache, as a pair costs about 2 ms.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clipfind.fingerprint import SIDE, Capture
from clipfind.processwide import one_blas_thread

Thumbs = npt.NDArray[np.uint8]  # (n, SIDE, SIDE)
CropCache = MutableMapping[tuple[str, str], str]  # (hash, hash) sorted -> the crop's hash; "" when neither is
Floats = npt.NDArray[np.float32]

MIN_SCALE = 0.45  # the smallest crop looked for, as a share of the side (about 20 % of the area)
MAX_ASPECT_CHANGE = 1.8  # the most the crop's side ratio may differ from the original's
CROP_MAX_BLOCK_CHANGE = 0.25  # the most one block of a crop may differ from its prediction (std devs,
# less where the block has detail: see _check)
CROP_MAX_MEAN_CHANGE = 0.12  # the most the blocks may differ on average (likewise)
MIN_AREA = 0.3  # the smallest crop confirmed, as a share of the area: smaller windows fit too easily
MAX_AREA = 0.85  # the largest crop confirmed, as a share of the area: a frame a few percent off
# is what a burst's next frame looks like (the camera moved), and a full frame is the same tier's
MIN_CORRELATION = 0.95  # fine correlation below which there is no fit
_MIN_COARSE = 0.9  # coarse correlation below which a pair is not looked at further
_MIN_SPREAD = 3.0  # grey levels: a flatter picture (a blank frame) fits inside anything

_HALF = SIDE // 2  # the coarse search reads the larger picture at half size
_COARSE_CELLS, _FINE_CELLS, _CHECK_CELLS = 8, 11, 22
_SUPER = 8  # samples per cell when building the resampling weights
_BLOCK = 2  # check cells per block side: blocks of 4 x 4 thumbnail pixels (11 x 11 blocks)


def _axis_matrices(scales: npt.ArrayLike, offsets: npt.ArrayLike, cells: int, side: int = SIDE) -> Floats:
    """(h, cells, side): for each axis hypothesis h (scale, offset in pixels of a picture this many
    pixels across), the weights that average the larger picture over the interval each of the
    crop's cells covers (the picture read as linear between pixel centres)."""
    s = np.asarray(scales, np.float64)[:, None, None]
    o = np.asarray(offsets, np.float64)[:, None, None]
    k = np.arange(cells, dtype=np.float64)[None, :, None]
    q = (np.arange(_SUPER, dtype=np.float64) + 0.5) / _SUPER
    x = o[..., None] + s[..., None] * side * (k[..., None] + q) / cells  # (h, cells, 1, _SUPER)
    u = np.clip(x - 0.5, 0.0, side - 1.0)[:, :, 0, :]  # pixel centres sit at i + 0.5
    h, cells_ = u.shape[0], u.shape[1]
    left = np.minimum(np.floor(u), side - 2).astype(np.intp)  # linear between the two centres around
    frac = u - left
    base = (np.arange(h * cells_, dtype=np.intp) * side).reshape(h, cells_, 1) + left
    size = h * cells_ * side
    weight = np.bincount(base.ravel(), (1 - frac).ravel(), size) + np.bincount(base.ravel() + 1, frac.ravel(), size)
    return (weight / _SUPER).reshape(h, cells_, side).astype(np.float32)


def _gram(m: Floats) -> Floats:
    """(h, side * side): each m[h].T @ m[h], flattened."""
    return (m.transpose(0, 2, 1) @ m).reshape(len(m), -1)


def _coarse_hypotheses() -> tuple[Floats, Floats]:
    """Scales from MIN_SCALE to 1, offsets in 1-pixel steps of the half-size picture."""
    scales, offsets = [], []
    for s in np.geomspace(MIN_SCALE, 1.0, 16):
        room = _HALF * (1 - s)
        for o in np.arange(0.0, room + 1e-6, 1.0) if room >= 1 else [room / 2]:
            scales.append(s)
            offsets.append(o)
        if room >= 1 and room % 1 > 0.25:
            scales.append(s)
            offsets.append(room)
    return np.array(scales, np.float32), np.array(offsets, np.float32)


_COARSE_S, _COARSE_O = _coarse_hypotheses()
_COARSE_M = _axis_matrices(_COARSE_S, _COARSE_O, _COARSE_CELLS, _HALF)
_COARSE_GRAM = _gram(_COARSE_M)
_WHOLE = {c: _axis_matrices(np.ones(1), np.zeros(1), c)[0] for c in (_COARSE_CELLS, _FINE_CELLS, _CHECK_CELLS)}
_ASPECT_OK = np.abs(np.log(_COARSE_S[:, None] / _COARSE_S[None, :])) <= np.log(MAX_ASPECT_CHANGE)


def _ncc(big: Floats, target: Floats, my: Floats, mx: Floats, gram_x: Floats | None = None) -> Floats:
    """(I, J) normalised cross-correlation of target (c, c) with each prediction My[i] @ big @ Mx[j].T,
    from matrix products only (the (I, c, J, c) predictions are never built)."""
    c, side = target.shape[0], big.shape[0]
    t = target - target.mean()
    tn = float(np.sqrt((t**2).sum())) + 1e-6
    rows = (my.reshape(-1, side) @ big).reshape(len(my), c, side)  # R_i = My_i @ big
    s_pt = (t.T @ rows).reshape(len(my), -1) @ mx.reshape(len(mx), -1).T
    s_p = rows.sum(axis=1) @ mx.sum(axis=1).T
    if gram_x is None:
        gram_x = _gram(mx)
    gram_r = _gram(rows)
    s_pp = gram_r @ gram_x.T
    var = np.maximum(s_pp - s_p**2 / (c * c), 1e-6)
    return s_pt / (np.sqrt(var) * tn)


def _coarse(big: Floats, small: Floats) -> tuple[float, tuple[float, float, float, float]]:
    """Best (correlation, (sy, oy, sx, ox)) of small (as coarse cells) inside big (read at half
    size) over every coarse row x column hypothesis; offsets in pixels of the thumbnail."""
    half = big.reshape(_HALF, 2, _HALF, 2).mean(axis=(1, 3))
    score = np.where(_ASPECT_OK, _ncc(half, small, _COARSE_M, _COARSE_M, _COARSE_GRAM), -1.0)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    s, o = _COARSE_S, _COARSE_O
    return float(score[i, j]), (float(s[i]), 2 * float(o[i]), float(s[j]), 2 * float(o[j]))


def _resample(thumb: Floats, cells: int) -> Floats:
    m = _WHOLE[cells]
    return m @ thumb @ m.T


def _fine_axis(s: float, o: float, reach: float = 1.0, steps: int = 7) -> tuple[Floats, Floats]:
    """Axis hypotheses around (s, o): scale within 5 % and offset within 1.5 px, times reach."""
    ss, oo = np.meshgrid(s * (1 + reach * np.linspace(-0.05, 0.05, steps)), reach * np.linspace(-1.5, 1.5, steps),
                         indexing="ij")
    ss, oo = ss.ravel(), (o + oo).ravel()
    # keep the window inside the picture (a hair of slack for rounding)
    ok = (ss <= 1.0 + 1e-6) & (oo >= -0.5) & (oo + ss * SIDE <= SIDE + 0.5) & (ss >= MIN_SCALE * 0.9)
    return ss[ok].astype(np.float32), oo[ok].astype(np.float32)


def _ranked(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """Tones matched rank by rank, both moved halfway: a monotone edit cancels out."""
    sx, sy = np.sort(x), np.sort(y)
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return (x + sy[rx]) / 2, (y + sx[ry]) / 2


@dataclass(frozen=True, slots=True)
class CropFit:
    """How one picture of a pair sits inside the other, as well as the thumbnails tell."""

    crop_is_second: bool  # True: pairs[:, 1] is the crop of pairs[:, 0]
    correlation: float  # of the fine fit, at 11 x 11 cells
    scale: tuple[float, float]  # the crop's height and width as shares of the larger picture's
    offset: tuple[float, float]  # its top-left corner, as shares of the larger picture's height, width
    worst_block: float  # the most-changed 4 x 4-pixel block, in standard deviations of the picture,
    # less where the block has detail (see _check)
    mean_block: float  # the blocks' mean change, likewise

    @property
    def area(self) -> float:
        """The crop's share of the larger picture's area."""
        return self.scale[0] * self.scale[1]

    def is_crop(self) -> bool:
        return (self.correlation >= MIN_CORRELATION and MIN_AREA <= self.area <= MAX_AREA
                and self.worst_block <= CROP_MAX_BLOCK_CHANGE and self.mean_block <= CROP_MAX_MEAN_CHANGE)


_NO_FIT = CropFit(True, -1.0, (0.0, 0.0), (0.0, 0.0), float("inf"), float("inf"))


_DETAIL_WEIGHT = 1.0  # how fast the allowance grows with detail (measured: 0 lets crops of detailed
# pictures and moved subjects on flat ground overlap; 1 and 2 separate them about equally)


def _detail(x: Floats) -> Floats:
    """(c, c) mean absolute step to the right and down neighbours of each cell."""
    dx = np.abs(np.diff(x, axis=1, append=x[:, -1:]))
    dy = np.abs(np.diff(x, axis=0, append=x[-1:, :]))
    return (dx + dy) / 2


def _check(big: Floats, small: Floats, fit: tuple[float, float, float, float]) -> tuple[float, float]:
    """(worst block, mean block) change of small against its prediction from big."""
    sy, oy, sx, ox = fit
    my = _axis_matrices([sy], [oy], _CHECK_CELLS)[0]
    mx = _axis_matrices([sx], [ox], _CHECK_CELLS)[0]
    pred = (my @ big @ mx.T).ravel()
    target = _resample(small, _CHECK_CELLS).ravel()
    p, t = _ranked(pred, target)
    spread = (p.std() + t.std()) / 2
    if spread < _MIN_SPREAD:
        return float("inf"), float("inf")
    g = _CHECK_CELLS // _BLOCK
    diff = np.abs(p - t).reshape(g, _BLOCK, g, _BLOCK).mean(axis=(1, 3))
    # where the picture has fine detail, resampling a 44-pixel thumbnail misses more: a block's
    # allowance grows with its detail (the mean step between neighbouring cells, both pictures)
    detail = _detail(p.reshape(_CHECK_CELLS, _CHECK_CELLS)) + _detail(t.reshape(_CHECK_CELLS, _CHECK_CELLS))
    diff = diff / (spread * (1 + _DETAIL_WEIGHT * detail.reshape(g, _BLOCK, g, _BLOCK).mean(axis=(1, 3)) / spread))
    return float(diff.max()), float(diff.mean())


@one_blas_thread()
def fit_crop(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> CropFit:
    """The best fit of either thumbnail as a crop of the other (see :class:`CropFit`)."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    if fa.std() < _MIN_SPREAD or fb.std() < _MIN_SPREAD:
        return _NO_FIT
    best = _NO_FIT
    for crop_is_second, big, small in ((True, fa, fb), (False, fb, fa)):
        coarse, (sy, oy, sx, ox) = _coarse(big, _resample(small, _COARSE_CELLS))
        if coarse < _MIN_COARSE:
            continue
        ys, yo = _fine_axis(sy, oy)
        xs, xo = _fine_axis(sx, ox)
        fine, fit = _search(big, _resample(small, _FINE_CELLS), (ys, yo), (xs, xo), _FINE_CELLS)
        # then a finer step, judged at the check's own cells
        _, fit = _search(big, _resample(small, _CHECK_CELLS), _fine_axis(fit[0], fit[1], 0.3, 5),
                          _fine_axis(fit[2], fit[3], 0.3, 5), _CHECK_CELLS)
        worst, mean = _check(big, small, fit)
        cand = CropFit(crop_is_second, fine, (fit[0], fit[2]), (fit[1] / SIDE, fit[3] / SIDE), worst, mean)
        if (not cand.is_crop(), cand.worst_block) < (not best.is_crop(), best.worst_block):
            best = cand
    return best


def _search(big: Floats, target: Floats, ys: tuple[Floats, Floats], xs: tuple[Floats, Floats],
             cells: int) -> tuple[float, tuple[float, float, float, float]]:
    """Best (correlation, (sy, oy, sx, ox)) of target (cells x cells) inside big over these row and
    column hypotheses (scales, offsets)."""
    my = _axis_matrices(ys[0], ys[1], cells)
    mx = _axis_matrices(xs[0], xs[1], cells)
    score = _ncc(big, target, my, mx)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(score[i, j]), (float(ys[0][i]), float(ys[1][i]), float(xs[0][j]), float(xs[1][j]))


@one_blas_thread()
def fit_crops(thumbs: Thumbs, pairs: npt.NDArray[np.integer]) -> list[CropFit]:
    """:func:`fit_crop` for each pair of rows of thumbs."""
    return [fit_crop(thumbs[i], thumbs[j]) for i, j in np.asarray(pairs, np.int64).reshape(-1, 2)]


@one_blas_thread()
def confirm_crops(thumbs: Thumbs, pairs: npt.NDArray[np.integer],
                  captures: Sequence[Capture] | None = None) -> npt.NDArray[np.bool_]:
    """(m,) whether one picture of each candidate pair (m, 2) is a crop of the other.

    ``captures`` (one per thumbnail), where given, settle what pixels cannot: a photo zoomed in
    from the same spot a moment later fits inside the wider one like a crop, but its camera
    recorded another capture time (an editor's crop keeps or drops the record, never changes it).
    Such pairs are not looked at."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    out = np.zeros(len(pairs), dtype=bool)
    keep = np.ones(len(pairs), dtype=bool)
    if captures is not None:
        keep = np.array([not captures[i].differs_from(captures[j]) for i, j in pairs], dtype=bool)
    out[keep] = [f.is_crop() for f in fit_crops(thumbs, pairs[keep])]
    return out


@one_blas_thread()
def find_crops(thumbs: Thumbs | Callable[[npt.NDArray[np.int64]], Thumbs], captures: Sequence[Capture],
               hashes: Sequence[str], pairs: npt.NDArray[np.integer], cache: CropCache | None = None,
               budget: int | None = None) -> list[tuple[int, int]]:
    """(larger, crop) for each candidate pair (m, 2) of rows whose one picture is a crop of the other,
    in the pairs' order. ``hashes`` (content hashes, one per row) key ``cache``, so a pair of
    contents is fitted once while the cache lives, whatever rows they have in a later call.
    At most ``budget`` pairs are fitted (the first ones not in the cache): a caller that keeps the
    cache goes on with the rest next time. Pairs whose capture records say two captures are not
    fitted (see :func:`confirm_crops`). ``thumbs``: by row, or a function ``rows -> thumbnails``
    asked once, for the rows of the pairs fitted (a library need not read every thumbnail)."""
    cache = {} if cache is None else cache
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    keys = [(hashes[i], hashes[j]) if hashes[i] <= hashes[j] else (hashes[j], hashes[i]) for i, j in pairs.tolist()]
    todo = [n for n, key in enumerate(keys) if key not in cache]
    todo = todo if budget is None else todo[:max(budget, 0)]
    if todo:
        rows = np.unique(pairs[todo])
        got = thumbs(rows) if callable(thumbs) else thumbs[rows]
        for n in todo:
            i, j = pairs[n].tolist()
            crop = ""
            if not captures[i].differs_from(captures[j]):
                fit = fit_crop(got[np.searchsorted(rows, i)], got[np.searchsorted(rows, j)])
                if fit.is_crop():
                    crop = hashes[j] if fit.crop_is_second else hashes[i]
            cache[keys[n]] = crop
    found = []
    for (i, j), key in zip(pairs.tolist(), keys):
        crop = cache.get(key)
        if crop and hashes[i] != hashes[j]:
            found.append((i, j) if crop == hashes[j] else (j, i))
    return found
