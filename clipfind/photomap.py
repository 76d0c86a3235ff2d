"""The map of a library: every embedded photo placed in 2D from its vector, grouped into clusters,
each cluster named by vocabulary phrases.

How the layout is made, and why:

- **UMAP** (umap-learn) on the unit vectors, with a fixed seed (``random_state``), so the same
  catalog gives the same map. Euclidean distance on unit vectors ranks neighbours exactly as
  cosine does, and is the metric pynndescent is quickest at.
- **Fit on a sample, place the rest.** With a seed UMAP runs on one thread; measured on this
  project's 2-core machine it takes about 6 s at 10k photos once numba has compiled it (the first
  call in a process adds ~25 s of compiling), and grows faster than linearly
  (``python -m bench.map``). So at most :data:`FIT_MAX` photos (a seeded random sample) are fitted
  and every other photo is placed from its nearest fitted neighbours (:func:`place`): a weighted
  mean of their positions, with weights that fall off sharply with similarity, so a photo lands
  on top of a near-copy and between neighbours of equal standing. This is also how new photos
  join an existing map (:func:`extend_layout`): no UMAP ``transform`` (which runs a small
  optimisation per batch, needs the fitted model pickled in the home, and costs seconds even for
  a few photos), just a nearest-neighbour query and a mean; removed photos are dropped.
  A map is fitted again when the library has more than doubled or halved since its fit.
- **Clusters**: HDBSCAN (scikit-learn) on the fitted 2D positions, -1 for noise. On the 512-d
  vectors HDBSCAN is quadratic (no tree helps in that many dimensions); on the map it is quick,
  and the clusters are the islands the user sees. Placed photos take the cluster their
  neighbours vote for (weighted as for the position).
- **Names**: each cluster's centroid (mean of its fitted members' vectors), minus the mean of
  all fitted vectors, is compared with the phrase vectors; the closest phrases name it.
  Subtracting the mean matters with CLIP: every photo is closer to some generic phrases ("a
  photo") than to specific ones (the gap between image and text vectors), so raw closeness would
  give every cluster the same name.

Byte-identical copies have one row (one vector) in the layout; :class:`PhotoMap` gives every copy
that row's point. The stored layout (:func:`save_layout`) is a cache in the home, keyed by the
catalog's model and generation: a damaged file, or one of another model, is computed again.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clipfind.annindex import top_k
from clipfind.home import atomic_write
from clipfind.records import Ids, PhotoInfo, Scores, Vectors

KnnFn = Callable[[Vectors, int], tuple[Ids, Scores]]  # (queries, k) -> (labels, similarities), -1 for none
Positions = npt.NDArray[np.float32]  # (n, 2), in [0, 1] x [0, 1] after a full layout
Labels = npt.NDArray[np.int32]  # (n,) cluster per row, -1 for noise

SEED = 42  # UMAP's and the sample's random state: one catalog, one map
FIT_MAX = 20_000  # photos fitted by UMAP at most; the rest are placed from their neighbours (see above)
N_NEIGHBORS = 15  # UMAP's default: local structure without losing the islands' arrangement
MIN_DIST = 0.1  # UMAP's default: tight enough that clusters read as islands
SMALL = 16  # below this many photos UMAP is not worth it (nor stable): principal axes instead
PLACE_K = 8  # fitted neighbours a placed photo is averaged from
PLACE_SHARPNESS = 0.02  # weight = exp((similarity - best) / this): 0.05 less similar weighs 8 % as much
CLUSTER_SHARE = 0.005  # a cluster holds at least this share of the fitted photos...
CLUSTER_MIN = 5  # ...and at least this many
CLUSTER_MAX_SHARE = 0.25  # and at most this share: HDBSCAN otherwise may keep 2-3 huge clusters of a library
# of many small groups (measured: 3 clusters, 3.5 % noise, for 20k photos in 1,000 groups; 63 with this)
REFIT_GROWTH = 2.0  # fit again when the library grew (or shrank) by this factor since the fit
EXACT_BATCH = 512  # queries per exact-search block: (512 x FIT_MAX) similarities at a time (2048 took ~1 GB at 100k)


@dataclass(frozen=True)
class Layout:
    """The stored map of one catalog state: a point and a cluster per layout row (one row per
    content: byte-identical copies share it), plus what naming the clusters needs.

    ``fitted`` is how many rows there were at the last full layout (for the refit rule);
    ``centroids`` (c, dim) and ``mean`` (dim,) are the unit-free means of each cluster's fitted
    vectors and of all fitted vectors, from that layout.
    """

    ids: Ids
    xy: Positions
    cluster: Labels
    centroids: Vectors
    mean: Vectors
    fitted: int
    generation: int = -1
    model: str = ""

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True, slots=True)
class MapPoint:
    """One photo on the map."""

    photo: PhotoInfo
    x: float
    y: float
    cluster: int  # -1: noise (in no cluster)


@dataclass(frozen=True, slots=True)
class MapCluster:
    """One cluster: its number, the phrases that name it (best first; empty without a vocabulary),
    how many photos it holds, and where its name goes (the median of its points)."""

    cluster: int
    names: tuple[str, ...]
    size: int
    x: float
    y: float


@dataclass(frozen=True)
class PhotoMap:
    """The map for a front end: every embedded photo (byte-identical copies included) with its
    point and cluster, as arrays in the order of ``photos`` (a view draws 100k points from arrays,
    not from objects), and the clusters with their names. Coordinates are in [0, 1]."""

    photos: tuple[PhotoInfo, ...]
    xy: Positions
    cluster: Labels
    clusters: tuple[MapCluster, ...] = ()
    generation: int = -1

    def __len__(self) -> int:
        return len(self.photos)

    def points(self) -> Iterator[MapPoint]:
        """One :class:`MapPoint` per photo, in order."""
        for photo, (x, y), c in zip(self.photos, self.xy.tolist(), self.cluster.tolist()):
            yield MapPoint(photo, float(x), float(y), int(c))


def compute_layout(ids: Ids, vectors: Vectors, *, seed: int = SEED, fit_max: int = FIT_MAX) -> Layout:
    """A full layout: UMAP on (a sample of) the vectors, the rest placed from their neighbours,
    HDBSCAN clusters on the fitted points.

    Args:
        ids: the layout rows (catalog ids, one per content), ascending.
        vectors: their unit vectors, (n, dim) float32.
        seed: random state of the sample and of UMAP.
        fit_max: photos fitted by UMAP at most.
    """
    ids = np.asarray(ids, np.int64)
    vectors = np.ascontiguousarray(vectors, np.float32)
    n = ids.size
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    if n == 0:
        return Layout(ids, np.zeros((0, 2), np.float32), np.zeros(0, np.int32), np.zeros((0, dim), np.float32),
                      np.zeros(dim, np.float32), 0)
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(n, fit_max, replace=False)) if n > fit_max else np.arange(n)
    fit_xy = _normalised(_embed(vectors[fit], seed))
    fit_labels = _clusters(fit_xy)
    xy = np.empty((n, 2), np.float32)
    labels = np.empty(n, np.int32)
    xy[fit], labels[fit] = fit_xy, fit_labels
    rest = np.setdiff1d(np.arange(n), fit, assume_unique=True)
    if rest.size:
        fit_ids = ids[fit]

        def knn(queries: Vectors, k: int) -> tuple[Ids, Scores]:
            return exact_knn(fit_ids, vectors[fit], queries, k)

        xy[rest], labels[rest] = place(fit_ids, fit_xy, fit_labels, vectors[rest], knn)
    centroids, mean = _centroids(vectors[fit], fit_labels)
    return Layout(ids, xy, labels, centroids, mean, n)


def _embed(vectors: Vectors, seed: int) -> Positions:
    """2D positions of these vectors: UMAP, or the two principal axes for a handful of photos."""
    n = len(vectors)
    if n < SMALL:
        return _principal_axes(vectors)
    with warnings.catch_warnings():
        # "n_jobs overridden to 1 by setting random_state": the price of a reproducible map.
        warnings.simplefilter("ignore")
        import umap

        reducer = umap.UMAP(
            n_neighbors=min(N_NEIGHBORS, n - 1), min_dist=MIN_DIST, metric="euclidean", random_state=seed,
            init="spectral" if n >= 64 else "pca", low_memory=True, n_epochs=200 if n > 2_000 else None,
        )
        out = reducer.fit_transform(vectors)
    out = np.asarray(out, np.float32)
    if not np.all(np.isfinite(out)):  # never seen; a map with a point at infinity is worse than a plain one
        return _principal_axes(vectors)
    return out


def _principal_axes(vectors: Vectors) -> Positions:
    """The two principal axes, signs fixed (the largest coordinate positive) so the map is stable."""
    n = len(vectors)
    if n == 1:
        return np.zeros((1, 2), np.float32)
    centred = vectors - vectors.mean(axis=0)
    u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    out = np.zeros((n, 2))
    k = min(2, u.shape[1])
    out[:, :k] = u[:, :k] * s[:k]
    for j in range(k):
        if out[np.argmax(np.abs(out[:, j])), j] < 0:
            out[:, j] = -out[:, j]
    return out.astype(np.float32)


def _normalised(xy: Positions) -> Positions:
    """Moved and scaled into [0, 1] x [0, 1], keeping the aspect (the longer side spans 0..1)."""
    if len(xy) == 0:
        return xy.astype(np.float32)
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = float((high - low).max())
    if span <= 0:
        return np.full_like(xy, 0.5, dtype=np.float32)
    out = (xy - low) / span
    out += (1 - (high - low) / span) / 2  # centre the shorter side
    return out.astype(np.float32)


def _clusters(xy: Positions) -> Labels:
    """HDBSCAN on the 2D points; -1 for noise. Too few points for a cluster: all noise."""
    n = len(xy)
    size = max(CLUSTER_MIN, round(CLUSTER_SHARE * n))
    if n < 2 * size:
        return np.full(n, -1, np.int32)
    from sklearn.cluster import HDBSCAN

    labels = HDBSCAN(min_cluster_size=size, min_samples=min(10, size), max_cluster_size=max(2 * size, round(
        CLUSTER_MAX_SHARE * n)), copy=True).fit_predict(xy.astype(np.float64))
    return np.asarray(labels, np.int32)


def _centroids(vectors: Vectors, labels: Labels) -> tuple[Vectors, Vectors]:
    """Each cluster's mean vector (row c for cluster c) and the mean of all vectors."""
    dim = vectors.shape[1]
    count = int(labels.max()) + 1 if labels.size else 0
    centroids = np.zeros((count, dim), np.float32)
    for c in range(count):
        members = vectors[labels == c]
        if len(members):
            centroids[c] = members.mean(axis=0)
    mean = vectors.mean(axis=0).astype(np.float32) if len(vectors) else np.zeros(dim, np.float32)
    return centroids, mean


def exact_knn(ids: Ids, vectors: Vectors, queries: Vectors, k: int) -> tuple[Ids, Scores]:
    """Top-k by inner product, in blocks of queries (memory stays (block x n)); -1 pads when n < k."""
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    m, n = len(queries), len(ids)
    kk = min(k, n)
    labels = np.full((m, k), -1, np.int64)
    sims = np.full((m, k), -np.inf, np.float32)
    if kk == 0:
        return labels, sims
    for start in range(0, m, EXACT_BATCH):
        block_labels, block_sims = top_k(ids, queries[start:start + EXACT_BATCH] @ vectors.T, kk)
        labels[start:start + len(block_labels), :kk] = block_labels
        sims[start:start + len(block_labels), :kk] = block_sims
    return labels, sims


def place(
    known_ids: Ids, known_xy: Positions, known_labels: Labels, vectors: Vectors, knn: KnnFn, k: int = PLACE_K
) -> tuple[Positions, Labels]:
    """Points and clusters for new vectors from their nearest laid-out neighbours.

    Each new point is the weighted mean of its ``k`` nearest known points, weight
    ``exp((similarity - best) / PLACE_SHARPNESS)``: a near-copy of a known photo (similarity close
    to 1, the others well below) lands on it; a photo between two groups lands between them. The
    cluster is the one with the most weight among the neighbours (-1 when noise wins). A photo
    with no known neighbour at all lands at the centre, as noise.

    Args:
        known_ids: the laid-out rows, ascending.
        known_xy: their points.
        known_labels: their clusters.
        vectors: the new photos' unit vectors.
        knn: ``(queries, k) -> (labels, similarities)`` over the known rows only (-1: none).
        k: neighbours per new photo.
    """
    m = len(vectors)
    if m == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int32)
    if known_ids.size == 0:
        return np.full((m, 2), 0.5, np.float32), np.full(m, -1, np.int32)
    labels, sims = knn(np.asarray(vectors, np.float32), min(k, known_ids.size))
    labels = np.asarray(labels, np.int64)
    sims = np.asarray(sims, np.float64)
    rows = np.searchsorted(known_ids, labels)
    found = (labels >= 0) & (rows < known_ids.size)
    rows = np.where(found, np.minimum(rows, known_ids.size - 1), 0)
    found &= known_ids[rows] == labels
    sims = np.where(found, sims, -np.inf)
    best = sims.max(axis=1, keepdims=True)
    weights = np.where(found, np.exp((sims - np.where(np.isfinite(best), best, 0)) / PLACE_SHARPNESS), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    none = total[:, 0] <= 0
    weights = weights / np.where(total > 0, total, 1)
    xy = (weights[:, :, None] * known_xy[rows].astype(np.float64)).sum(axis=1)
    xy[none] = 0.5
    neighbour_labels = known_labels[rows]
    # Weight per candidate label: for each column j, the weight of every column with column j's label.
    same = neighbour_labels[:, :, None] == neighbour_labels[:, None, :]
    votes = (same * weights[:, None, :]).sum(axis=2)
    votes = np.where(found, votes, -1.0)
    winner = np.take_along_axis(neighbour_labels, votes.argmax(axis=1)[:, None], axis=1)[:, 0]
    winner[none] = -1
    return xy.astype(np.float32), winner.astype(np.int32)


def needs_refit(old: Layout, rows: int) -> bool:
    """Whether a map of ``rows`` photos should be laid out again rather than extended: the library
    grew or shrank by :data:`REFIT_GROWTH` since the fit, or the old map is empty."""
    if old.fitted <= 0 or len(old) == 0:
        return True
    return rows > REFIT_GROWTH * old.fitted or rows * REFIT_GROWTH < old.fitted


def extend_layout(
    old: Layout, ids: Ids, vectors_of: Callable[[Ids], Vectors], knn: KnnFn, changed: Ids | None = None
) -> Layout:
    """The old map brought up to the rows ``ids``: rows that left are dropped, rows that are new
    (or whose vector changed, ``changed``) are placed from their nearest kept rows; every other
    point stays where it was, so the map the user knows does not move.

    Args:
        old: the stored layout.
        ids: the rows now (ascending).
        vectors_of: the unit vectors of the given ids, in their order.
        knn: nearest neighbours among the kept rows: ``knn(queries, k)`` whose labels outside the
            kept rows are ignored (the caller may pass an index that holds more).
        changed: rows whose vector was written since the old layout (re-placed).
    """
    ids = np.asarray(ids, np.int64)
    keep = np.isin(old.ids, ids)
    if changed is not None and len(changed):
        keep &= ~np.isin(old.ids, np.asarray(changed, np.int64))
    kept_ids, kept_xy, kept_labels = old.ids[keep], old.xy[keep], old.cluster[keep]
    new = np.setdiff1d(ids, kept_ids, assume_unique=True)
    xy, labels = place(kept_ids, kept_xy, kept_labels, vectors_of(new), knn)
    all_ids = np.concatenate([kept_ids, new])
    order = np.argsort(all_ids, kind="stable")
    return Layout(
        all_ids[order], np.concatenate([kept_xy, xy])[order], np.concatenate([kept_labels, labels])[order],
        old.centroids, old.mean, old.fitted, old.generation, old.model,
    )


def name_clusters(
    layout: Layout, texts: Sequence[str], text_vectors: Vectors, per_cluster: int = 3
) -> dict[int, tuple[str, ...]]:
    """Each cluster's closest phrases, best first (see the module's notes on the mean).

    Args:
        layout: a layout with its centroids.
        texts: the vocabulary phrases.
        text_vectors: their vectors, one row per phrase, in the model's space.
        per_cluster: how many phrases name a cluster.
    """
    if not len(texts) or layout.centroids.shape[0] == 0:
        return {}
    phrases = np.asarray(text_vectors, np.float32)
    if phrases.shape != (len(texts), layout.centroids.shape[1]):
        raise ValueError(f"{len(texts)} phrases need ({len(texts)}, {layout.centroids.shape[1]}) vectors, "
                         f"got {phrases.shape}")
    phrases = phrases / np.maximum(np.linalg.norm(phrases, axis=1, keepdims=True), 1e-12)
    directions = layout.centroids - layout.mean
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    scores = directions @ phrases.T
    best = np.argsort(-scores, axis=1, kind="stable")[:, :per_cluster]
    return {c: tuple(texts[j] for j in best[c]) for c in range(len(best))}


def photo_map(layout: Layout, photos: Sequence[PhotoInfo], row_of: dict[str, int],
              names: dict[int, tuple[str, ...]] | None = None) -> PhotoMap:
    """The front end's map: every photo at its content row's point.

    Args:
        layout: the layout of the current catalog.
        photos: every embedded photo (copies included).
        row_of: content hash -> layout row id (the lowest id of that content).
        names: cluster -> phrases, from :func:`name_clusters`.
    """
    position = {int(i): r for r, i in enumerate(layout.ids.tolist())}
    shown, rows = [], []
    for photo in photos:
        row = position.get(row_of.get(photo.content_hash, photo.id), position.get(photo.id))
        if row is not None:
            shown.append(photo)
            rows.append(row)
    index = np.asarray(rows, np.int64)
    xy = layout.xy[index] if index.size else np.zeros((0, 2), np.float32)
    cluster = layout.cluster[index] if index.size else np.zeros(0, np.int32)
    clusters = []
    for c in sorted(set(cluster.tolist()) - {-1}):
        members = xy[cluster == c]
        x, y = np.median(members, axis=0).tolist()
        clusters.append(MapCluster(int(c), (names or {}).get(int(c), ()), int(len(members)), float(x), float(y)))
    return PhotoMap(tuple(shown), xy, cluster, tuple(clusters), layout.generation)


@dataclass(frozen=True)
class MapWork:
    """A map with the catalog already read: what is left (UMAP where a layout is due, naming, the
    front end's arrays) touches neither the catalog nor the model, so a front end runs it on a
    thread of its own and the library's lane stays free for searches meanwhile.

    ``layout`` is the finished layout where none is due (stored, or extended); otherwise ``vectors``
    are laid out by :meth:`run`. ``path`` is where the new layout is kept (None: not kept).
    """

    ids: Ids
    layout: Layout | None
    vectors: Vectors | None
    generation: int
    model: str
    path: Path | None
    photos: tuple[PhotoInfo, ...]
    row_of: dict[str, int]
    vocabulary: tuple[Sequence[str], Vectors] | None = None

    @property
    def size(self) -> int:
        """How many points (one per content) the map has."""
        return int(self.ids.size)

    @property
    def lays_out(self) -> bool:
        """Whether :meth:`run` lays the map out from scratch (UMAP: seconds to a minute)."""
        return self.layout is None

    def run(self) -> PhotoMap:
        """The map: laid out where due (and kept at ``path``), clusters named by the vocabulary."""
        layout = self.layout
        if layout is None:
            vectors = self.vectors if self.vectors is not None else np.zeros((0, 0), np.float32)
            layout = compute_layout(self.ids, vectors)
        if layout.generation != self.generation or layout.model != self.model:
            layout = replace(layout, generation=self.generation, model=self.model)
            if self.path is not None and self.model:
                save_layout(self.path, layout)  # a cache: a failure to write costs the layout next time
        names = name_clusters(layout, self.vocabulary[0], self.vocabulary[1]) if self.vocabulary is not None else None
        return photo_map(layout, self.photos, self.row_of, names)


_FIELDS = ("ids", "xy", "cluster", "centroids", "mean")


def load_layout(path: Path, model: str) -> Layout | None:
    """The saved layout, whatever generation it matches; None for a file missing, damaged, of
    another model, or inconsistent (it is a cache: lay out again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != model:
                return None
            arrays = {f: data[f] for f in _FIELDS}
            fitted, generation = int(data["fitted"]), int(data["generation"])
    except Exception:  # missing, or damaged in any way (BadZipFile, EOFError, KeyError, ValueError...)
        return None
    n = arrays["ids"].shape[0] if arrays["ids"].ndim == 1 else -1
    ok = (n >= 0 and arrays["xy"].shape == (n, 2) and arrays["cluster"].shape == (n,)
          and arrays["centroids"].ndim == 2 and arrays["mean"].shape == (arrays["centroids"].shape[1],)
          and np.all(np.isfinite(arrays["xy"])) and (n < 2 or bool(np.all(np.diff(arrays["ids"]) > 0)))
          and (n == 0 or int(arrays["cluster"].max()) < arrays["centroids"].shape[0]))
    if not ok:
        return None
    return Layout(arrays["ids"].astype(np.int64), arrays["xy"].astype(np.float32),
                  arrays["cluster"].astype(np.int32), arrays["centroids"].astype(np.float32),
                  arrays["mean"].astype(np.float32), fitted, generation, model)


def save_layout(path: Path, layout: Layout) -> None:
    """Written whole or not at all; a failure to write (full disk, read-only home) costs only the
    layout next time."""
    with contextlib.suppress(OSError), atomic_write(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{f: getattr(layout, f) for f in _FIELDS}, fitted=np.int64(layout.fitted),
                 generation=np.int64(layout.generation), model=np.str_(layout.model))


__all__ = [
    "FIT_MAX", "SEED", "Layout", "MapCluster", "MapPoint", "MapWork", "PhotoMap", "compute_layout", "exact_knn",
    "extend_layout", "load_layout", "name_clusters", "needs_refit", "photo_map", "place", "save_layout",
]
