from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clipfind.annindex import VectorIndex, exact_search, open_index, sync_index
from clipfind.catalog import Catalog
from tests.helpers import unit_rows


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int = 50) -> np.ndarray:
    centres = unit_rows(rng, clusters, dim)
    v = centres[rng.integers(0, clusters, n)] + 0.15 * rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_search_orders_by_inner_product() -> None:
    ids = np.array([7, 8, 9])
    vecs = np.eye(3, dtype=np.float32)
    labels, sims = exact_search(ids, vecs, np.array([0.1, 0.9, 0.5], np.float32), 2)
    assert labels.tolist() == [[8, 9]]
    np.testing.assert_allclose(sims, [[0.9, 0.5]])


def test_hnsw_recall_against_exact_oracle() -> None:
    rng = np.random.default_rng(1)
    vecs = clustered(rng, 3000, 32)
    ids = np.arange(100, 3100)
    index = VectorIndex(32)
    index.add(ids, vecs)
    queries = clustered(rng, 100, 32)
    got, _ = index.search(queries, 10)
    want, _ = exact_search(ids, vecs, queries, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)])
    assert recall >= 0.98


def test_add_update_remove_and_readd() -> None:
    index = VectorIndex(4)
    v = np.eye(4, dtype=np.float32)
    index.add(np.array([1, 2, 3]), v[:3])
    index.remove([2])
    assert 2 not in index and len(index) == 2
    assert 2 not in index.search(v[1], 3)[0][0]
    index.add(np.array([2]), v[3:4])  # re-added with a new vector
    labels, sims = index.search(v[3], 1)
    assert labels[0, 0] == 2 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_resize_beyond_initial_capacity() -> None:
    rng = np.random.default_rng(0)
    index = VectorIndex(8)
    index.add(np.arange(5000), unit_rows(rng, 5000, 8))
    assert len(index) == 5000


def test_save_load_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = unit_rows(rng, 200, 16)
    index = VectorIndex(16, generation=5)
    index.add(np.arange(200), vecs)
    index.remove([3, 4])
    index.save(tmp_path / "v.hnsw", "m")
    loaded = VectorIndex.load(tmp_path / "v.hnsw", 16, "m")
    assert loaded.generation == 5 and len(loaded) == 198 and 3 not in loaded
    np.testing.assert_array_equal(loaded.search(vecs[:5], 3)[0], index.search(vecs[:5], 3)[0])
    assert not list(tmp_path.glob("*.tmp"))


@pytest.fixture
def catalog_with_vectors(tmp_path: Path) -> Catalog:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 16, "m", None)
    rng = np.random.default_rng(3)
    for i, v in enumerate(unit_rows(rng, 50, 16)):
        cat.put_photo(f"/p/{i}.jpg", 1, 1, f"h{i}", 1, 1, None, v)
    yield cat
    cat.close()


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "missing", "sidecar"])
def test_damaged_index_is_rebuilt_with_notice(tmp_path: Path, catalog_with_vectors: Catalog, damage: str) -> None:
    path = tmp_path / "v.hnsw"
    index, notice = open_index(path, catalog_with_vectors)
    assert len(index) == 50
    index.save(path, "m")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "bitflip":
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif damage == "missing":
        path.unlink()
    else:
        path.with_name("v.hnsw.json").write_text("{not json")
    rebuilt, notice = open_index(path, catalog_with_vectors)
    assert notice is not None and "rebuilt" in notice
    assert rebuilt.labels == catalog_with_vectors.ok_ids()


def test_stale_index_synced_from_newer_rows(tmp_path: Path, catalog_with_vectors: Catalog) -> None:
    path = tmp_path / "v.hnsw"
    index, _ = open_index(path, catalog_with_vectors)
    index.save(path, "m")
    cat = catalog_with_vectors
    new_id = cat.put_photo("/p/new.jpg", 1, 1, "hn", 1, 1, None, np.eye(16, dtype=np.float32)[0])
    gone = cat.remove_paths(["/p/0.jpg"])
    loaded, notice = open_index(path, cat)
    assert notice is None
    assert new_id in loaded and gone[0] not in loaded
    assert loaded.labels == cat.ok_ids() and loaded.generation == cat.generation
    assert sync_index(loaded, cat) == 0
