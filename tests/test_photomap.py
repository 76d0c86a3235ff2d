"""The map's plumbing (issue 13): constructed vectors, since random weights say nothing of meaning.

Clusters of constructed vectors are recovered, a near-copy lands nearer its original than 99 % of
the other photos, byte-identical copies share a point, the layout is reproducible, new photos
join without moving the old ones, the stored file is a cache, and clusters are named by the
phrases their centroid points to.
"""

from __future__ import annotations

import numpy as np
import pytest

from clipfind.photomap import (
    Layout,
    compute_layout,
    exact_knn,
    extend_layout,
    load_layout,
    name_clusters,
    needs_refit,
    photo_map,
    save_layout,
)
from clipfind.records import PhotoInfo

DIM = 64


def clustered(rng: np.random.Generator, groups: int, per: int, noise: float = 0.08) -> tuple[np.ndarray, np.ndarray,
                                                                                           np.ndarray]:
    """(vectors, true labels, centres): unit vectors scattered around random unit centres."""
    centres = rng.standard_normal((groups, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(groups), per)
    vectors = centres[labels] + noise * rng.standard_normal((groups * per, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), labels, centres


def agreement(found: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(truth, found))


@pytest.fixture(scope="module")
def six() -> tuple[np.ndarray, np.ndarray, np.ndarray, Layout]:
    rng = np.random.default_rng(1)
    vectors, truth, centres = clustered(rng, 6, 120)
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64) * 3
    return vectors, truth, centres, compute_layout(ids, vectors)


def test_clusters_of_constructed_vectors_are_recovered(six) -> None:
    vectors, truth, _, layout = six
    assert layout.xy.shape == (len(vectors), 2) and np.all(np.isfinite(layout.xy))
    assert layout.xy.min() >= 0 and layout.xy.max() <= 1
    assert np.mean(layout.cluster == -1) < 0.1, "most photos are in a cluster"
    clustered_rows = layout.cluster >= 0
    assert agreement(layout.cluster[clustered_rows], truth[clustered_rows]) > 0.95
    assert len(set(layout.cluster.tolist()) - {-1}) == 6


def test_the_same_vectors_give_the_same_map(six) -> None:
    vectors, _, _, layout = six
    again = compute_layout(layout.ids, vectors)
    np.testing.assert_array_equal(again.xy, layout.xy)
    np.testing.assert_array_equal(again.cluster, layout.cluster)


def test_a_near_copy_lands_nearer_its_original_than_99_percent_of_photos() -> None:
    rng = np.random.default_rng(2)
    vectors, _, _ = clustered(rng, 8, 150, noise=0.12)
    original = 17
    copy = vectors[original] + 0.01 * rng.standard_normal(DIM).astype(np.float32)  # a resized copy's drift
    copy /= np.linalg.norm(copy)
    assert float(copy @ vectors[original]) > 0.99
    every = np.vstack([vectors, copy[None]])
    ids = np.arange(len(every), dtype=np.int64)

    def nearer_share(layout: Layout) -> float:
        d = np.linalg.norm(layout.xy - layout.xy[original], axis=1)
        others = np.delete(d, [original, len(every) - 1])
        return float(np.mean(others > d[len(every) - 1]))

    # Both in the UMAP fit...
    assert nearer_share(compute_layout(ids, every)) >= 0.99
    # ...and placed from its neighbours, as a new photo or beyond the fitted sample.
    base = compute_layout(ids[:-1], vectors)
    grown = extend_layout(base, ids, lambda want: every[want], lambda q, k: exact_knn(ids[:-1], vectors, q, k))
    assert nearer_share(grown) >= 0.99
    sampled = compute_layout(ids, every, fit_max=400)
    assert nearer_share(sampled) >= 0.99


def test_placing_beyond_the_sample_keeps_the_clusters() -> None:
    rng = np.random.default_rng(3)
    vectors, truth, _ = clustered(rng, 5, 200)
    layout = compute_layout(np.arange(len(vectors), dtype=np.int64), vectors, fit_max=300)
    assert np.all(np.isfinite(layout.xy)) and layout.fitted == len(vectors)
    rows = layout.cluster >= 0
    assert rows.mean() > 0.85
    assert agreement(layout.cluster[rows], truth[rows]) > 0.95


def test_new_photos_join_without_moving_the_others(six) -> None:
    vectors, truth, centres, layout = six
    rng = np.random.default_rng(4)
    new = centres[2] + 0.08 * rng.standard_normal((5, DIM)).astype(np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    new_ids = np.array([1, 2, 4, 5, 7], np.int64)  # between old ids: the result stays sorted
    gone = layout.ids[:10]
    ids = np.sort(np.concatenate([np.setdiff1d(layout.ids, gone), new_ids]))
    by_id = dict(zip(layout.ids.tolist(), vectors)) | dict(zip(new_ids.tolist(), new))
    kept = np.setdiff1d(layout.ids, gone)

    grown = extend_layout(layout, ids, lambda want: np.array([by_id[int(i)] for i in want]).reshape(-1, DIM),
                          lambda q, k: exact_knn(layout.ids, vectors, q, k))  # an index holding more: filtered
    np.testing.assert_array_equal(grown.ids, ids)
    old_rows, new_rows = np.searchsorted(layout.ids, kept), np.searchsorted(grown.ids, kept)
    np.testing.assert_array_equal(grown.xy[new_rows], layout.xy[old_rows])
    placed = grown.cluster[np.searchsorted(grown.ids, new_ids)]
    group = layout.cluster[truth == 2]
    assert set(placed.tolist()) == {int(np.bincount(group[group >= 0]).argmax())}
    assert not needs_refit(layout, len(ids)) and needs_refit(layout, 3 * len(layout))


def test_a_changed_vector_is_placed_again(six) -> None:
    vectors, truth, centres, layout = six
    moved = int(layout.ids[0])  # a group-0 photo whose file now holds a group-4 picture
    by_id = dict(zip(layout.ids.tolist(), vectors))
    by_id[moved] = centres[4]
    grown = extend_layout(layout, layout.ids, lambda want: np.array([by_id[int(i)] for i in want]).reshape(-1, DIM),
                          lambda q, k: exact_knn(layout.ids, np.array(list(by_id.values())), q, k),
                          changed=np.array([moved]))
    group4 = layout.cluster[truth == 4]
    assert grown.cluster[0] == int(np.bincount(group4[group4 >= 0]).argmax())


def test_small_libraries_get_a_map_too() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 5, 20):
        vectors, _, _ = clustered(rng, 1, n) if n else (np.zeros((0, DIM), np.float32), None, None)
        layout = compute_layout(np.arange(n, dtype=np.int64), vectors)
        assert layout.xy.shape == (n, 2) and np.all(np.isfinite(layout.xy)) and layout.cluster.shape == (n,)


def test_clusters_are_named_by_the_phrases_their_centroid_points_to(six) -> None:
    _, truth, centres, layout = six
    rng = np.random.default_rng(6)
    texts = [f"concept {g}" for g in range(6)] + ["a photo", "something else"]
    generic = layout.mean / np.linalg.norm(layout.mean)  # close to every photo: must name none
    phrases = np.vstack([centres, generic[None], rng.standard_normal((1, DIM))]).astype(np.float32)
    names = name_clusters(layout, texts, phrases, per_cluster=2)
    for c, named in names.items():
        members = truth[layout.cluster == c]
        assert named[0] == f"concept {np.bincount(members).argmax()}"
        assert "a photo" not in named[:1]
    with pytest.raises(ValueError):
        name_clusters(layout, texts, phrases[:, :10])
    assert name_clusters(layout, [], np.zeros((0, DIM), np.float32)) == {}


def photo(i: int, content: str) -> PhotoInfo:
    return PhotoInfo(i, f"/p/{i}.jpg", 1, 1, content)


def test_byte_identical_copies_share_a_point(six) -> None:
    _, _, _, layout = six
    first, second = int(layout.ids[0]), int(layout.ids[1])
    photos = [photo(first, "a"), photo(second, "b"), photo(9999, "a"), photo(10_000, "z")]  # z: no row
    shown = photo_map(layout, photos, {"a": first, "b": second}, {0: ("x",)})
    assert [p.id for p in shown.photos] == [first, second, 9999]
    np.testing.assert_array_equal(shown.xy[0], shown.xy[2])
    assert shown.cluster[0] == shown.cluster[2]
    points = list(shown.points())
    assert points[2].photo.id == 9999 and (points[2].x, points[2].y) == (points[0].x, points[0].y)
    assert all(c.size >= 1 and 0 <= c.x <= 1 for c in shown.clusters)


def test_the_stored_layout_is_a_cache(tmp_path, six) -> None:
    _, _, _, layout = six
    path = tmp_path / "map.npz"
    stamped = Layout(layout.ids, layout.xy, layout.cluster, layout.centroids, layout.mean, layout.fitted, 7, "m1")
    save_layout(path, stamped)
    back = load_layout(path, "m1")
    assert back is not None and back.generation == 7 and back.fitted == layout.fitted
    np.testing.assert_array_equal(back.xy, layout.xy)
    assert load_layout(path, "another model") is None
    path.write_bytes(path.read_bytes()[:100])
    assert load_layout(path, "m1") is None
    assert load_layout(tmp_path / "missing.npz", "m1") is None
    assert [p.name for p in tmp_path.iterdir()] == ["map.npz"], "no temp file left behind"
