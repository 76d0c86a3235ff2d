from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipfind.annindex import VectorIndex
from clipfind.catalog import Catalog
from clipfind.errors import ClipfindError
from clipfind.search import Filters, Searcher, Term, build_query, split_weight

WORDS = {"beach": 0, "people": 1, "dog": 2, "snow": 3}


def word_vector(word: str) -> np.ndarray:
    return np.eye(8, dtype=np.float32)[WORDS[word]]


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def searcher(tmp_path: Path) -> Searcher:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m", 8, "m", None)
    # beach-only, beach-with-people, dog, snow-dog; in two folders with dates
    rows = {
        "/p/a/beach.jpg": (unit(word_vector("beach")), "2020-06-01T12:00:00"),
        "/p/a/beach_people.jpg": (unit(word_vector("beach") + word_vector("people")), "2021-06-01T12:00:00"),
        "/p/b/dog.jpg": (unit(word_vector("dog")), "2019-01-01T12:00:00"),
        "/p/b/snowdog.jpg": (unit(word_vector("dog") + word_vector("snow")), None),
    }
    for i, (path, (v, taken)) in enumerate(rows.items()):
        cat.put_photo(path, 100 + i, 1, f"h{i}", 10, 10, taken, v)
    encode_texts = lambda texts: np.stack([word_vector(t) for t in texts])
    encode_image = lambda path: unit(word_vector("snow"))
    return Searcher(cat, VectorIndex(8), encode_texts, encode_image)


def paths(hits) -> list[str]:
    return [h.photo.path for h in hits]


def test_text_query_best_first_with_cosine_scores(searcher: Searcher) -> None:
    hits = searcher.search(build_query(["beach"]), k=2)
    assert paths(hits) == ["/p/a/beach.jpg", "/p/a/beach_people.jpg"]
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(2**-0.5, rel=1e-5)


def test_minus_pushes_results_away(searcher: Searcher) -> None:
    plain = {h.photo.path: h.score for h in searcher.search(build_query(["beach"]), k=4)}
    hits = searcher.search(build_query(["beach"], minus=["people"]), k=4)
    scores = {h.photo.path: h.score for h in hits}
    assert paths(hits)[0] == "/p/a/beach.jpg"
    assert scores["/p/a/beach_people.jpg"] < plain["/p/a/beach_people.jpg"] - 0.5


def test_indexed_image_reuses_vector_and_excludes_itself(searcher: Searcher) -> None:
    hits = searcher.search(build_query(images=["/p/b/dog.jpg"]), k=3)
    assert "/p/b/dog.jpg" not in paths(hits)
    assert paths(hits)[0] == "/p/b/snowdog.jpg"


def test_outside_image_is_encoded(searcher: Searcher, tmp_path: Path) -> None:
    outside = tmp_path / "query.jpg"
    outside.write_bytes(b"whatever: the fake encoder says snow")
    hits = searcher.search(build_query(["dog"], images=[str(outside)]), k=1)
    assert paths(hits) == ["/p/b/snowdog.jpg"]


def test_missing_query_image_is_a_clear_error(searcher: Searcher) -> None:
    with pytest.raises(ClipfindError, match="query photo not found"):
        searcher.search(build_query(images=["/nope/x.jpg"]))


def test_filters_folder_dates_and_min_score(searcher: Searcher) -> None:
    in_b = searcher.search(build_query(["beach"]), 10, Filters(folder="/p/b"))
    assert set(paths(in_b)) == {"/p/b/dog.jpg", "/p/b/snowdog.jpg"}
    dated = searcher.search(build_query(["beach"]), 10, Filters(date_from="2021-01-01T00:00:00", date_to="2021-12-31T23:59:59"))
    assert paths(dated) == ["/p/a/beach_people.jpg"]
    strict = searcher.search(build_query(["beach"]), 10, Filters(min_score=0.9))
    assert paths(strict) == ["/p/a/beach.jpg"]


def test_deleted_photo_drops_out_of_results(searcher: Searcher) -> None:
    searcher.search(build_query(["beach"]), 1)
    searcher.catalog.remove_paths(["/p/a/beach.jpg"])
    assert paths(searcher.search(build_query(["beach"]), 1)) == ["/p/a/beach_people.jpg"]


def test_weights_and_errors() -> None:
    assert split_weight("beach^2") == ("beach", 2.0)
    assert split_weight("beach ^0.5") == ("beach", 0.5)
    assert split_weight("12:30 sunset") == ("12:30 sunset", 1.0)
    assert split_weight("x^y") == ("x^y", 1.0)
    query = build_query(["beach^2"], minus=["people^0.5"])
    assert query.terms == (Term("text", "beach", 2.0), Term("text", "people", -0.5))
    with pytest.raises(ClipfindError, match="nothing to search"):
        build_query([], minus=["people"])
    with pytest.raises(ClipfindError, match="nothing to search"):
        build_query(["   "])


@pytest.mark.parametrize("text", ["beach^-1", "beach^0", "beach^", "beach^2x", "beach^1e999", "^2", "  ^0.5"])
def test_a_bad_weight_is_an_error_not_literal_text(text: str) -> None:
    with pytest.raises(ClipfindError, match="bad weight|needs a phrase"):
        build_query([text])
    with pytest.raises(ClipfindError, match="bad weight|needs a phrase"):
        build_query(["sea"], minus=[text])
    assert split_weight("e^x") == ("e^x", 1.0)  # a caret before a word is text


def test_a_folder_is_not_a_query_photo(searcher: Searcher, tmp_path: Path) -> None:
    with pytest.raises(ClipfindError, match=re.escape(f"not a photo file: {tmp_path} (a folder)")):
        searcher.search(build_query(images=[str(tmp_path)]))


def test_cancelling_terms_is_an_error(searcher: Searcher) -> None:
    with pytest.raises(ClipfindError, match="cancel"):
        searcher.search(build_query(["beach"], minus=["beach"]))


@given(st.text(min_size=1, max_size=40), st.floats(min_value=0.01, max_value=100, allow_nan=False))
def test_weight_suffix_roundtrip(text: str, weight: float) -> None:
    term, got = split_weight(f"{text.strip() or 'x'}^{weight}")
    assert got == pytest.approx(weight) and term == (text.strip() or "x")


def test_approximate_path_agrees_with_exact(searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    def ranked(filters: Filters = Filters()) -> list[list[tuple[str, float]]]:
        # (top path, scores): paths of equal score may come in any order
        results = [searcher.search(build_query([w]), 3, filters) for w in WORDS]
        return [(hits[0].photo.path, [round(h.score, 5) for h in hits]) for hits in results]

    exact, filtered_exact = ranked(), ranked(Filters(folder="/p/a"))
    monkeypatch.setattr("clipfind.search.EXACT_LIMIT", 0)  # force the HNSW path
    assert ranked() == exact
    assert ranked(Filters(folder="/p/a")) == filtered_exact
    assert len(searcher.index) == 4


def test_tag_filter_restricts_candidates_with_the_other_filters(searcher: Searcher) -> None:
    with pytest.raises(ClipfindError, match="tags are not available"):
        searcher.search(build_query(["beach"]), 10, Filters(tag="dogs"))
    ids = {h.photo.path: h.photo.id for h in searcher.search(build_query(["dog"]), 10)}
    asked: list[str] = []

    def tag_ids(tag: str) -> np.ndarray:
        asked.append(tag)
        return np.array(sorted([ids["/p/b/dog.jpg"], ids["/p/b/snowdog.jpg"], ids["/p/a/beach.jpg"]]))

    searcher._tag_ids = tag_ids
    assert set(paths(searcher.search(build_query(["beach"]), 10, Filters(tag="dogs")))) == {
        "/p/b/dog.jpg", "/p/b/snowdog.jpg", "/p/a/beach.jpg"}
    assert paths(searcher.search(build_query(["beach"]), 10, Filters(tag="dogs", folder="/p/a"))) == ["/p/a/beach.jpg"]
    assert asked == ["dogs", "dogs"]


def test_sorted_by_date_and_counted(searcher: Searcher) -> None:
    results = searcher.search_results(build_query(["beach"]), 2, Filters(sort="date"))
    assert paths(results.hits) == ["/p/a/beach_people.jpg", "/p/a/beach.jpg"]  # the best 2, newest first
    assert results.passed == 4 and results.cutoff is None
    few = searcher.search_results(build_query(["beach"]), 3, Filters(auto_cutoff=True))
    assert few.cutoff is None and len(few.hits) == 3  # four photos: too few to tell a bulk from a tail
