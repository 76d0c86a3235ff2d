"""PhotoTable: columns read up front, rows read in bulk when picked, and the same duplicate groups as a list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipfind.annindex import exact_search
from clipfind.catalog import Catalog
from clipfind.dupes import build_graph, contents_of, find_duplicates, same_search, same_sets
from clipfind.fingerprint import SIDE
from clipfind.phototable import PhotoTable, RowsGone, catalog_ids, content_hashes, pick
from clipfind.records import KeeperRules, PhotoInfo


class Rows:
    """A fetch over a list of photos that counts its calls and the ids asked for."""

    def __init__(self, photos: list[PhotoInfo]) -> None:
        self.by_id = {p.id: p for p in photos}
        self.calls: list[list[int]] = []

    def __call__(self, ids: list[int]) -> list[PhotoInfo]:
        self.calls.append(ids)
        return [self.by_id[i] for i in reversed(ids) if i in self.by_id]  # any order will do


def table_of(photos: list[PhotoInfo]) -> tuple[PhotoTable, Rows]:
    rows = Rows(photos)
    devices = np.array([-1 if p.device is None else p.device for p in photos], np.int64)
    inodes = np.array([-1 if p.inode is None else p.inode for p in photos], np.int64)
    return PhotoTable(np.array([p.id for p in photos], np.int64), [p.content_hash for p in photos], devices,
                      inodes, rows), rows


def photos_(n: int) -> list[PhotoInfo]:
    return [PhotoInfo(i, f"/p/{i}.jpg", 1000 + i, 0, f"h{i % 3}", 10, 10, None, 1, 100 + i % 4)
            for i in range(1, n + 1)]


def test_columns_answer_without_reading_rows_and_rows_are_read_once_in_bulk() -> None:
    photos = photos_(8)
    table, rows = table_of(photos)
    assert len(table) == 8 and list(content_hashes(table)) == [p.content_hash for p in photos]
    assert catalog_ids(table).tolist() == list(range(1, 9)) and rows.calls == []
    assert pick(table, [5, 1, 5]) == [photos[5], photos[1], photos[5]]
    assert rows.calls == [[2, 6]]  # both rows in one read, each once
    assert table[5] is table[5] and table[-1] == photos[-1] and table[1:3] == photos[1:3]
    assert rows.calls == [[2, 6], [8], [3]]
    assert list(table) == photos and rows.calls[-1] == [1, 4, 5, 7]
    with pytest.raises(IndexError):
        table[8]


def test_a_row_gone_since_the_columns_were_read_is_an_error_not_a_wrong_photo() -> None:
    photos = photos_(4)
    table, rows = table_of(photos)
    del rows.by_id[3]
    with pytest.raises(RowsGone):
        table.pick([0, 2])


def test_shared_files_and_a_table_without_some_positions() -> None:
    photos = photos_(8)  # device 1, inodes 100..103 in turn: positions i and i + 4 are one file
    photos[7] = PhotoInfo(8, "/p/8.jpg", 1, 0, "h", device=None, inode=None)
    table, rows = table_of(photos)
    assert table.shared_files() == [[0, 4], [1, 5], [2, 6]]
    table.pick([6, 7])
    rest = table.without([1, 6])
    assert rest.ids.tolist() == [1, 3, 4, 5, 6, 8] and list(rest.hashes) == ["h1", "h0", "h1", "h2", "h0", "h"]
    assert rest.shared_files() == [[0, 3]]
    calls = len(rows.calls)
    assert rest[5] == photos[7] and len(rows.calls) == calls  # read before, not again


def test_the_catalogs_table_matches_its_photos(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    try:
        for i, folder in enumerate(["/a", "/a", "/b", "/a-old", "/b"]):
            catalog.put_photo(f"{folder}/{i}.jpg", 100 + i, i, f"h{i % 2}", 4, 3, None, np.ones(4, np.float32))
        catalog.put_failure("/a/broken.jpg", 1, 1, None, "not a picture")
        with catalog.snapshot():
            table = catalog.photo_table()
            assert list(table) == catalog.photos()
            away = catalog.photo_table(leave_out=["/a"])
            assert [p.path for p in away] == ["/b/2.jpg", "/a-old/3.jpg", "/b/4.jpg"]
            assert table.shared_files() == []  # put_photo records no file identity
    finally:
        catalog.close()


# -- the same groups from a table as from a list --------------------------------------------------------
@st.composite
def libraries(draw: st.DrawFn) -> tuple[list[PhotoInfo], np.ndarray, list[bytes]]:
    """Photos by id with byte-identical copies, paths that reach one file, clustered vectors and
    fingerprints of a few pictures saved again with a little noise."""
    n = draw(st.integers(2, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    centres = rng.standard_normal((draw(st.integers(1, 5)), 8))
    pictures = rng.integers(0, 256, (draw(st.integers(1, 5)), SIDE, SIDE))
    photos: list[PhotoInfo] = []
    vectors = np.empty((n, 8), np.float32)
    thumbs: list[bytes] = []
    for i in range(n):
        earlier = draw(st.integers(0, i - 1)) if i else None
        kind = draw(st.sampled_from(["new", "new", "copy", "link"])) if i else "new"
        if kind == "new":
            v = centres[rng.integers(len(centres))] + rng.standard_normal(8) * 0.05
            vectors[i] = v / np.linalg.norm(v)
            noisy = pictures[rng.integers(len(pictures))] + rng.integers(-3, 4, (SIDE, SIDE))
            thumbs.append(np.clip(noisy, 0, 255).astype(np.uint8).tobytes())
            content, device, inode = f"h{i}", (int(rng.integers(1, 3)) if draw(st.booleans()) else None), 1000 + i
        else:
            assert earlier is not None
            vectors[i], content = vectors[earlier], photos[earlier].content_hash
            thumbs.append(thumbs[earlier])
            device, inode = ((photos[earlier].device, photos[earlier].inode) if kind == "link"
                             else (None, None))
        folder = draw(st.sampled_from(["/a", "/b", "/a/Copies"]))
        photos.append(PhotoInfo(i + 1, f"{folder}/{i} {draw(st.sampled_from(['', 'copy']))}.jpg",
                                int(rng.integers(1, 10**6)), i, content, int(rng.integers(1, 50)),
                                int(rng.integers(1, 50)), draw(st.sampled_from([None, "2020-01-01T00:00:00"])),
                                device, inode, None, draw(st.booleans())))
    return photos, vectors, thumbs


RULES = [None, KeeperRules(prefer_folders=("/b",), formats=("png",), prefer_dated=True, prefer_gps=True),
         KeeperRules(protect=("/a/Copies",))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(libraries(), st.sampled_from([0.0, 0.9, 0.99, 1.0]), st.sampled_from(RULES))
def test_duplicates_from_a_table_equal_those_from_the_list(
    library: tuple[list[PhotoInfo], np.ndarray, list[bytes]], threshold: float, rules: KeeperRules | None
) -> None:
    photos, vectors, thumbs = library
    ids = np.array([p.id for p in photos], np.int64)
    graph = build_graph(ids, vectors, lambda q, k: exact_search(ids, vectors, q, k), 4)
    by_id = dict(zip(ids.tolist(), vectors))

    def vectors_of(wanted: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return np.array(wanted, np.int64), np.stack([by_id[i] for i in wanted])

    found = []
    for source in (photos, table_of(photos)[0]):
        contents = contents_of(source, **({} if rules is None else {"rules": rules}))
        search, thumbs_of = same_search(contents, ids, thumbs, [None] * len(ids))
        same = same_sets(contents, search, thumbs_of, vectors=vectors_of, graph=graph)
        found.append((same, find_duplicates(contents, graph, threshold, same=same)))
    assert found[0] == found[1]
