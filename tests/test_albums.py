"""Saved searches (clipfind.albums): saved by name in the home, listed, run, deleted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clipfind.albums import SAVED_FILE, SavedSearches
from clipfind.errors import ClipfindError
from clipfind.library import Library, build_query
from clipfind.records import Query, Term


def test_save_list_replace_and_delete(tmp_path: Path) -> None:
    saved = SavedSearches(tmp_path)
    assert saved.all() == []
    beach = build_query(["beach^2"], images=["/p/x.jpg"], minus=["people"])
    saved.save("Beach days", beach, 0.25)
    saved.save("Snow", build_query(["snow"]))
    again = SavedSearches(tmp_path)  # from the file
    assert [(s.name, s.min_score) for s in again.all()] == [("Beach days", 0.25), ("Snow", None)]
    assert again.get("beach  DAYS").query == beach
    again.save("beach days", build_query(["sea"]), None)  # same name ignoring case: replaced
    assert [s.name for s in again.all()] == ["Snow", "beach days"]
    again.delete("SNOW")
    assert [s.name for s in SavedSearches(tmp_path).all()] == ["beach days"]
    with pytest.raises(ClipfindError, match="no saved search named 'Snow'"):
        again.delete("Snow")
    with pytest.raises(ClipfindError, match="saved: beach days"):
        again.get("nope")


@pytest.mark.parametrize("name, query, least, message", [
    ("  ", Query((Term("text", "x", 1.0),)), None, "name"),
    ("n", Query((Term("text", "x", -1.0),)), None, "nothing to search"),
    ("n", Query((Term("text", "x", 1.0),)), 1.5, "between -1 and 1"),
])
def test_refusals(tmp_path: Path, name: str, query: Query, least: float | None, message: str) -> None:
    with pytest.raises(ClipfindError, match=message):
        SavedSearches(tmp_path).save(name, query, least)
    assert not (tmp_path / SAVED_FILE).exists()


def test_a_damaged_file_is_set_aside_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / SAVED_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ClipfindError, match="set aside"):
        SavedSearches(tmp_path).all()
    assert (tmp_path / (SAVED_FILE + ".damaged")).read_text(encoding="utf-8") == "{not json"
    assert SavedSearches(tmp_path).all() == []


def test_library_runs_a_saved_search_with_its_least_score(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    dim = 8
    lib.catalog.bind_model(lib.spec.identity, dim, lib.spec.name, None)
    eye = np.eye(dim, dtype=np.float32)
    for i in range(6):
        v = eye[i % 2] * (1.0 - i / 10) + eye[7] * (i / 10)
        lib.catalog.put_photo(f"/p/{i}.jpg", 100 + i, 1, f"h{i}", 10, 10, f"202{i}-01-01T00:00:00",
                              v / np.linalg.norm(v))
    monkeypatch.setattr(lib, "_encode_texts", lambda texts: np.stack([eye[0] for _ in texts]))
    lib.save_search("Zeros", build_query(["zero"]), 0.9)
    lib.save_search("All", build_query(["zero"]))
    assert [s.name for s in lib.saved_searches()] == ["Zeros", "All"]
    zeros = lib.run_saved_search("zeros")
    assert [h.photo.path for h in zeros.hits] == ["/p/0.jpg", "/p/2.jpg"] and zeros.cutoff == 0.9
    by_date = lib.run_saved_search("Zeros", sort="date")
    assert [h.photo.path for h in by_date.hits] == ["/p/2.jpg", "/p/0.jpg"]
    every = lib.run_saved_search("All")
    assert len(every.hits) == 6 and every.cutoff is None  # six photos: too few for an automatic cut-off
    lib.delete_saved_search("All")
    assert [s.name for s in lib.saved_searches()] == ["Zeros"]
