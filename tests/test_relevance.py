"""The relevance cut-off from a query's own score distribution, sorting, and the passed count
(clipfind.relevance through the Searcher): exact and approximate paths alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clipfind.annindex import VectorIndex
from clipfind.catalog import Catalog
from clipfind.records import Filters, PhotoInfo, SearchHit
from clipfind.relevance import MIN_SAMPLE, auto_cutoff, capture_time, sort_hits
from clipfind.search import Searcher, build_query

DIM = 32


def test_the_cutoff_sits_above_the_bulk_and_below_a_clear_tail() -> None:
    rng = np.random.default_rng(0)
    for centre, spread in ((0.18, 0.02), (0.5, 0.08), (-0.1, 0.01)):  # other models, other ranges
        bulk = rng.normal(centre, spread, 5000)
        tail = np.full(30, centre + 10 * spread)
        cut = auto_cutoff(np.concatenate([bulk, tail]))
        assert cut is not None
        assert centre + 2 * spread < cut < centre + 4 * spread
        assert (tail >= cut).all() and (bulk >= cut).mean() < 0.005


def test_no_cutoff_from_too_few_or_identical_scores() -> None:
    assert auto_cutoff(np.linspace(0, 1, MIN_SAMPLE - 1)) is None
    assert auto_cutoff(np.full(500, 0.3)) is None
    assert auto_cutoff([float("nan")] * 100) is None


def photo(i: int, taken: str | None, mtime_s: int = 0) -> PhotoInfo:
    return PhotoInfo(i, f"/p/{i}.jpg", 1, mtime_s * 10**9, f"h{i}", taken_at=taken)


def test_sort_by_score_or_by_capture_date_newest_first() -> None:
    hits = [SearchHit(photo(1, "2020-01-01T00:00:00"), 0.5), SearchHit(photo(2, None, 2_000_000_000), 0.9),
            SearchHit(photo(3, "2021-05-01T00:00:00"), 0.7), SearchHit(photo(4, "2021-05-01T00:00:00"), 0.8)]
    assert [h.photo.id for h in sort_hits(hits, "score")] == [2, 4, 3, 1]
    assert [h.photo.id for h in sort_hits(hits, "date")] == [2, 4, 3, 1]  # 2033 (file time), then equal dates by score
    assert capture_time(photo(2, None, 2_000_000_000)).startswith("2033-")
    with pytest.raises(ValueError):
        sort_hits(hits, "name")  # type: ignore[arg-type]


@pytest.fixture
def searcher(tmp_path: Path) -> Searcher:
    """400 photos: 12 near the 'target' direction, the rest random; dates spread over years."""
    rng = np.random.default_rng(7)
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", DIM, "m", None)
    target = np.eye(DIM, dtype=np.float32)[0]
    for i in range(400):
        v = rng.standard_normal(DIM).astype(np.float32)
        if i % 33 == 0:
            v = v * 0.15 + target * 3
        v /= np.linalg.norm(v)
        cat.put_photo(f"/p/{'a' if i % 2 else 'b'}/{i:03d}.jpg", 100 + i, 1, f"h{i}", 10, 10,
                      f"{2000 + i % 20}-01-01T00:00:00", v)
    encode_texts = lambda texts: np.stack([target for _ in texts])
    return Searcher(cat, VectorIndex(DIM), encode_texts, lambda path: target)


def targets(hits) -> set[int]:
    return {int(h.photo.path[-7:-4]) for h in hits}


@pytest.mark.parametrize("approximate", [False, True])
def test_auto_cutoff_keeps_the_tail_and_counts_it(searcher: Searcher, approximate: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if approximate:
        monkeypatch.setattr("clipfind.search.EXACT_LIMIT", 0)  # force the HNSW path and the sample
    tail = {i for i in range(400) if i % 33 == 0}
    plain = searcher.search_results(build_query(["target"]), 50)
    assert len(plain.hits) == 50 and plain.cutoff is None and plain.passed == 400 and not plain.automatic
    cut = searcher.search_results(build_query(["target"]), 50, Filters(auto_cutoff=True))
    assert cut.automatic and cut.cutoff is not None
    assert targets(cut.hits) == tail and cut.passed == len(tail) and not cut.estimated
    few = searcher.search_results(build_query(["target"]), 5, Filters(auto_cutoff=True))
    assert len(few.hits) == 5 and few.passed == len(tail)  # the count the grid shows, beyond k
    explicit = searcher.search_results(build_query(["target"]), 50, Filters(min_score=-1.0, auto_cutoff=True))
    assert len(explicit.hits) == 50 and explicit.cutoff == -1.0 and not explicit.automatic  # --min-score wins


def test_the_estimate_on_a_large_library_says_so(searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("clipfind.search.EXACT_LIMIT", 0)
    loose = searcher.search_results(build_query(["target"]), 5, Filters(min_score=-1.0))
    assert loose.estimated and loose.passed == 400  # every one of the sample passes


def test_sort_by_date_keeps_the_same_best_k(searcher: Searcher) -> None:
    by_score = searcher.search_results(build_query(["target"]), 8)
    by_date = searcher.search_results(build_query(["target"]), 8, Filters(sort="date"))
    assert {h.photo.id for h in by_score.hits} == {h.photo.id for h in by_date.hits}
    dates = [h.photo.taken_at for h in by_date.hits]
    assert dates == sorted(dates, reverse=True)


def test_an_image_query_excludes_itself_from_the_count(searcher: Searcher) -> None:
    results = searcher.search_results(build_query(images=["/p/b/000.jpg"]), 50, Filters(auto_cutoff=True))
    assert "/p/b/000.jpg" not in [h.photo.path for h in results.hits]
    assert results.passed == len(results.hits) == len(range(0, 400, 33)) - 1


def test_auto_cutoff_reads_no_vectors_beyond_the_search(searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed: the automatic cut-off adds no pass over the catalog on either path."""
    reads: list[object] = []
    real = searcher.catalog.vectors
    monkeypatch.setattr(searcher.catalog, "vectors", lambda *a, **k: reads.append(k) or real(*a, **k))
    searcher.search_results(build_query(["target"]), 5, Filters(auto_cutoff=True))
    searcher.search_results(build_query(["target"]), 5, Filters(auto_cutoff=True))
    assert len(reads) <= 2  # the index's sync and the exact cache, once; none per query after that
    before = len(reads)
    searcher.search_results(build_query(["target"]), 5, Filters(auto_cutoff=True))
    assert len(reads) == before
    monkeypatch.setattr("clipfind.search.EXACT_LIMIT", 0)
    searcher.search_results(build_query(["target"]), 5, Filters(auto_cutoff=True))
    before = len(reads)
    searcher.search_results(build_query(images=["/p/b/000.jpg"]), 5, Filters(auto_cutoff=True))
    assert len(reads) == before
