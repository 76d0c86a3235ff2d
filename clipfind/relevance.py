"""Which results are worth showing, and in which order: the relevance cut-off and the sort.

The cut-off. CLIP's text-image scores differ between models (about 0.2-0.35 for a good match with
ViT-B-32, other ranges elsewhere), and image-image scores sit higher still, so no fixed number
separates a match from noise. What holds across models is the shape: for one query, most photos
of a library are unrelated and form a bulk of similar scores; the matches stand out above it as
a tail. The rule (:func:`auto_cutoff`) keeps a photo when its score is at least

    median + Z * 1.4826 * MAD

of the query's scores over the library (MAD: the median absolute deviation; 1.4826 * MAD is the
standard deviation of a normal bulk). Median and MAD are robust: the tail of matches, even a
large one, barely moves them, unlike a mean and standard deviation. Z = 3 lets through about
0.1 % of a normal bulk. The scores come from the whole library where search is exact anyway
(up to search.EXACT_LIMIT photos: the scores are computed for every photo there), else from a
fixed random sample of the library's vectors (one small product per query, no extra scan).
Below MIN_SAMPLE scores there is no cut-off: too few photos to tell a bulk from a tail.
Its limits: a query that matches most of the library (the median is a match) cuts matches, and
a query that matches nothing still lets the bulk's own top through; so front ends offer a way to
see weaker matches (``--min-score``, a slider).

The sort: the k best matches, by score (best first) or by capture date (newest first; the EXIF
capture date, else the file's time, as the date filters read it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

from clipfind.records import SORT_ORDERS, PhotoInfo, Scores, SearchHit, SortOrder

__all__ = ["MIN_SAMPLE", "SAMPLE_SIZE", "Z", "auto_cutoff", "capture_time", "newest_first", "passed_share", "sort_hits"]

Z = 3.0  # robust standard deviations above the median score
MIN_SAMPLE = 50  # fewer scores than this: no automatic cut-off
SAMPLE_SIZE = 4096  # library vectors sampled for the distribution where search is approximate
_MAD_TO_SD = 1.4826  # a normal distribution's standard deviation per MAD


def auto_cutoff(scores: Scores | Sequence[float], z: float = Z) -> float | None:
    """The least score a result needs, from one query's scores over the library (or a sample).

    Args:
        scores: the query's cosine scores with the library's photos (all or a random sample).
        z: how many robust standard deviations above the median.

    Returns None when there are too few scores (MIN_SAMPLE) or they do not spread (all equal).
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < MIN_SAMPLE:
        return None
    median = float(np.median(values))
    spread = _MAD_TO_SD * float(np.median(np.abs(values - median)))
    if not spread > 1e-6:
        return None
    return median + z * spread


def passed_share(sample: Scores, cutoff: float) -> float:
    """The share of a sample's scores at or above a cut-off: how many of a large library pass, estimated."""
    return float(np.mean(np.asarray(sample) >= cutoff)) if len(sample) else 0.0


def capture_time(photo: PhotoInfo) -> str:
    """When a photo was taken, as an ISO string that sorts: the EXIF capture date, else the file's
    local modification time (what the date filters compare)."""
    if photo.taken_at:
        return photo.taken_at
    return datetime.fromtimestamp(photo.mtime_ns / 1e9).strftime("%Y-%m-%dT%H:%M:%S")


def newest_first(photos: Iterable[PhotoInfo]) -> list[PhotoInfo]:
    """Photos without a score (an album, a selection on the map) by capture date, newest first."""
    return sorted(photos, key=capture_time, reverse=True)


def sort_hits(hits: Iterable[SearchHit], by: SortOrder = "score") -> list[SearchHit]:
    """Hits by score (best first) or by capture date (newest first, equal dates best first).

    Raises ValueError for another order.
    """
    if by not in SORT_ORDERS:
        raise ValueError(f"unknown sort order {by!r}; use one of {', '.join(SORT_ORDERS)}")
    by_score = sorted(hits, key=lambda h: -h.score)
    if by == "score":
        return by_score
    return sorted(by_score, key=lambda h: capture_time(h.photo), reverse=True)
