"""Property tests: query parsing, grouping, and catalog/index agreement under any sequence of changes."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clipfind.annindex import VectorIndex, build_index, open_index, sync_index
from clipfind.catalog import Catalog
from clipfind.dupes import build_graph, choose_keeper, find_duplicates, identical_groups
from clipfind.errors import ClipfindError
from clipfind.records import PhotoInfo
from clipfind.search import Query, Searcher, Term, build_query, split_weight

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

weird_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30) | st.sampled_from(
    ["^", "^^", "a^", "^2", "a^2^3", "a ^ 2", "a^.5", "a^5.", "a^-1", "a^1e9", "a^" + "9" * 400, "a^0",
     "a^00000.00001", " \t\n", "\x00^1", "photo.jpg^2"])
weight_text = st.from_regex(r"[0-9]{0,5}(\.[0-9]{1,5})?", fullmatch=True).filter(lambda w: w not in ("",) and
                                                                                  not w.endswith("."))


@SETTINGS
@given(weird_text)
def test_split_weight_never_fails_unexpectedly(text: str) -> None:
    try:
        term, weight = split_weight(text)
    except ClipfindError:
        return  # a weight that is not a finite number: said in one line
    assert math.isfinite(weight) and weight > 0
    if weight != 1.0 or term != text:
        assert text.startswith(term) and "^" in text[len(term):]


@SETTINGS
@given(st.text(min_size=1, max_size=20).filter(lambda t: t.strip() and not t[-1].isspace()), weight_text)
def test_split_weight_reads_back_what_was_written(term: str, weight: str) -> None:
    assume(any(c.isdigit() for c in weight))
    if not (term.strip() and float(weight) > 0):  # no phrase, or a weight of 0: refused in one line
        with pytest.raises(ClipfindError, match="weight"):
            split_weight(f"{term}^{weight}")
        return
    parsed, value = split_weight(f"{term}^{weight}")
    assert parsed == term and value == pytest.approx(float(weight))


@SETTINGS
@given(st.lists(weird_text, max_size=4), st.lists(weird_text, max_size=3))
def test_build_query_and_query_vector(texts: list[str], minus: list[str]) -> None:
    try:
        query = build_query(texts, (), minus)
    except ClipfindError:
        return
    assert any(t.weight > 0 for t in query.terms)
    assert all(t.value == t.value.strip() and t.value for t in query.terms)
    assert all(math.isfinite(t.weight) for t in query.terms)

    def encode(values: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(abs(hash(v)) % 2**32).standard_normal(8) for v in values]
        return np.asarray([r / np.linalg.norm(r) for r in rows], np.float32)

    searcher = Searcher(None, None, encode, None)  # type: ignore[arg-type]
    try:
        vector, exclude = searcher.query_vector(query)
    except ClipfindError:
        return  # the terms cancel out
    assert vector.dtype == np.float32 and np.all(np.isfinite(vector))
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-4)
    assert exclude == set()


def test_query_vector_with_extreme_weights() -> None:
    def encode(values: list[str]) -> np.ndarray:
        return np.eye(4, dtype=np.float32)[: len(values)]

    searcher = Searcher(None, None, encode, None)  # type: ignore[arg-type]
    for weights in ([1e39], [1e300, 1e300], [1.0, 1e-300], [3.0, 1e39]):
        query = Query(tuple(Term("text", f"t{i}", w) for i, w in enumerate(weights)))
        vector, _ = searcher.query_vector(query)
        assert np.all(np.isfinite(vector)) and float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ClipfindError):
        searcher.query_vector(Query(()))


# -- grouping -------------------------------------------------------------------------------------
@st.composite
def collections(draw: st.DrawFn) -> tuple[list[PhotoInfo], np.ndarray]:
    n = draw(st.integers(2, 40))
    dim = 8
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((draw(st.integers(1, 6)), dim))
    vectors = np.empty((n, dim), np.float32)
    hashes = []
    for i in range(n):
        if i and draw(st.booleans()) and draw(st.booleans()):  # a byte-identical copy of an earlier photo
            j = draw(st.integers(0, i - 1))
            vectors[i] = vectors[j]
            hashes.append(hashes[j])
            continue
        v = centres[rng.integers(len(centres))] + rng.standard_normal(dim) * draw(st.sampled_from([0.01, 0.1, 0.5]))
        vectors[i] = v / np.linalg.norm(v)
        hashes.append(f"h{i}")
    photos = [
        PhotoInfo(i + 1, f"/p/{rng.integers(1000)}/{i}.jpg", int(rng.integers(1, 10**6)), 0, hashes[i],
                  int(rng.integers(1, 5000)), int(rng.integers(1, 5000)), None)
        for i in range(n)
    ]
    return photos, vectors


@SETTINGS
@given(collections(), st.floats(0.0, 1.0), st.integers(1, 8))
def test_grouping_properties(collection: tuple[list[PhotoInfo], np.ndarray], threshold: float, k: int) -> None:
    from clipfind.annindex import exact_search

    photos, vectors = collection
    ids = np.asarray([p.id for p in photos], np.int64)
    graph = build_graph(ids, vectors, lambda q, kk: exact_search(ids, vectors, q, kk), k)
    groups = find_duplicates(photos, graph, threshold)
    by_id = {p.id: i for i, p in enumerate(photos)}
    every_identical = identical_groups(photos)
    seen: set[int] = set()
    for group in groups:
        members = [m.photo for m in group.members]
        assert len(members) >= 2
        assert group.keeper == members[0] and group.keeper in members
        member_ids = {p.id for p in members}
        assert len(member_ids) == len(members)
        assert not seen & member_ids, "a photo is in two groups"
        seen |= member_ids
        if group.tier == "identical":
            assert group in every_identical
            assert group.keeper == choose_keeper(members)
            continue
        originals = [m.photo for m in group.members if m.copy_of is None]
        assert len({p.content_hash for p in originals}) == len(originals)  # one photo per content
        by_member = {m.photo.id: m.photo for m in group.members}
        for m in group.members:
            if m.copy_of is not None:  # a byte copy rides with the member it copies
                assert by_member[m.copy_of].content_hash == m.photo.content_hash
        keeper = vectors[by_id[group.keeper.id]]
        for m in group.members[1:]:
            similarity = float(vectors[by_id[m.photo.id]] @ keeper)
            assert similarity >= np.float32(threshold) - 1e-5, (similarity, threshold)
            assert m.similarity == pytest.approx(similarity, abs=1e-5)
    for copies in every_identical:  # a set of copies is shown whole, or not at all
        ids_ = {m.photo.id for m in copies.members}
        assert ids_ <= seen or ids_.isdisjoint(seen)


# -- catalog and index agreement ---------------------------------------------------------------------
operations = st.lists(
    st.tuples(st.sampled_from(["add", "update", "fail", "remove", "move", "move_over", "sync", "save_load",
                               "lose_index", "reopen", "compact"]),
              st.integers(0, 10**6)),
    min_size=1, max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(operations)
def test_catalog_and_index_agree_after_any_sequence(ops: list[tuple[str, int]]) -> None:
    dim = 6
    folder = Path(tempfile.mkdtemp(prefix="clipfind-prop-"))
    try:
        path = folder / "catalog.sqlite3"
        index_path = folder / "vectors.hnsw"
        catalog = Catalog(path)
        catalog.bind_model("m/none", dim, "m", None)
        index = VectorIndex(dim, catalog.generation)
        counter = 0

        def vector(seed: int) -> np.ndarray:
            v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
            return v / np.linalg.norm(v)

        def paths() -> list[str]:
            return sorted(catalog.known_files())

        for op, seed in ops:
            existing = paths()
            pick = existing[seed % len(existing)] if existing else None
            if op == "add" or pick is None:
                counter += 1
                catalog.put_photo(f"/p/{counter}.jpg", 1, 1, f"h{seed}", 1, 1, None, vector(seed))
            elif op == "update":
                catalog.put_photo(pick, 2, seed, f"h{seed}", 1, 1, None, vector(seed + 1))
            elif op == "fail":
                catalog.put_failure(pick, 3, seed, None, "cannot decode")
            elif op == "remove":
                index.remove(catalog.remove_paths([pick]))
            elif op == "move":
                counter += 1
                row = catalog.known_files()[pick]
                catalog.move(row.id, f"/p/moved-{counter}.jpg", 1, 1)
            elif op == "move_over" and len(existing) >= 2:
                other = existing[(seed + 1) % len(existing)]
                if other != pick:
                    replaced = catalog.move(catalog.known_files()[pick].id, other, 1, 1)
                    if replaced is not None:
                        index.remove([replaced])
            elif op == "sync":
                sync_index(index, catalog)
            elif op == "save_load":
                sync_index(index, catalog)
                index.save(index_path, "m/none")
                index, notice = open_index(index_path, catalog)
                assert notice is None
            elif op == "lose_index":  # a kill before the index was saved: start from what is on disk
                index, _ = open_index(index_path, catalog)
            elif op == "reopen":
                catalog.close()
                catalog = Catalog(path)
            elif op == "compact":
                index = build_index(catalog, dim)
            sync_index(index, catalog)
            ok = catalog.ok_ids()
            assert index.labels == ok, (op, index.labels ^ ok)
            if ok:
                ids, vectors = catalog.vectors()
                assert np.allclose(index.vectors_of(ids), vectors, atol=1e-6)
        catalog.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
