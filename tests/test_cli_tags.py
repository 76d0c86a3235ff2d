"""The tags, sort and cut-off parts of the CLI's JSON contract (issue 13), through main() with a tiny
library of real photos and the random-weights `clipfind-tiny` model. Random weights say nothing of
tag quality: these check the plumbing and the shapes scripts rely on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import clipfind.tags
from tests.helpers import copy_photos, needs_shared_data
from tests.test_cli_contracts import cli

pytestmark = needs_shared_data


@pytest.fixture
def pics(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    folder = tmp_path / "pics"
    copy_photos(folder, 5)
    copy_photos(folder / "more", 3, "skimage_data")
    run = cli(capsys, "index", str(folder))
    assert run.code == 0, run.err
    return folder


def indexed_paths(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_file()}


def test_tags_json_is_one_object_per_photo_with_tags_from_the_vocabulary(
        pics: Path, tiny_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "tags", "--json")
    assert run.code == 0, run.err
    photos = json.loads(run.out)
    assert isinstance(photos, list) and {p["path"] for p in photos} == indexed_paths(pics)
    vocabulary = set(clipfind.tags.load_vocabulary(tiny_env).tags)
    for item in photos:
        assert set(item) == {"path", "tags"} and isinstance(item["tags"], list)
        for tag in item["tags"]:
            assert set(tag) == {"tag", "score"} and tag["tag"] in vocabulary
            assert isinstance(tag["score"], float) and math.isfinite(tag["score"])
        assert len(item["tags"]) <= clipfind.tags.TOP_TAGS
    assert (tiny_env / clipfind.tags.PHRASES_FILE).exists() and (tiny_env / clipfind.tags.TAGS_FILE).exists()


def test_with_a_loose_rule_every_photo_is_tagged_and_tags_filter_search(
        pics: Path, tiny_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule's thresholds down (random weights clear no real margin): every photo gets tags, each
    from the vocabulary plus the user's own file, and --tag, albums and the sort follow them."""
    (tiny_env / "vocabulary.txt").write_text("my own tag | a photo of my own thing\n", encoding="utf-8")
    monkeypatch.setattr(clipfind.tags, "MARGIN", -2.0)
    monkeypatch.setattr(clipfind.tags, "FLOOR", -2.0)
    photos = json.loads(cli(capsys, "tags", "--json").out)
    vocabulary = set(clipfind.tags.load_vocabulary(tiny_env).tags)
    assert "my own tag" in vocabulary
    assert all(len(p["tags"]) == clipfind.tags.TOP_TAGS for p in photos)
    assert all(t["tag"] in vocabulary for p in photos for t in p["tags"])
    scores = [[t["score"] for t in p["tags"]] for p in photos]
    assert all(s == sorted(s, reverse=True) for s in scores)  # best first (same neutral: same order as margins)

    albums = json.loads(cli(capsys, "tags", "--albums", "--json").out)
    carried: dict[str, set[str]] = {}
    for p in photos:
        for t in p["tags"]:
            carried.setdefault(t["tag"], set()).add(p["path"])
    assert {a["tag"]: a["count"] for a in albums} == {t: len(ps) for t, ps in carried.items()}
    assert all(set(a) == {"tag", "title", "count", "cleanup"} for a in albums)

    tag, members = max(carried.items(), key=lambda kv: len(kv[1]))
    run = cli(capsys, "search", "anything", "--tag", tag, "-k", "50", "--json")
    assert run.code == 0, run.err
    assert {h["path"] for h in json.loads(run.out)} == members
    listed = cli(capsys, "tags", "--tag", tag.upper())
    assert set(listed.out.split("\n")) - {""} == members

    refused = cli(capsys, "search", "anything", "--tag", "no such tag at all")
    assert refused.code == 1 and "unknown tag 'no such tag at all'" in refused.err


def test_search_sorts_by_date_and_min_score_overrides_the_cutoff(
        pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_score = json.loads(cli(capsys, "search", "a red barn", "-k", "4", "--json").out)
    by_date = json.loads(cli(capsys, "search", "a red barn", "-k", "4", "--sort", "date", "--json").out)
    assert {h["path"] for h in by_score} == {h["path"] for h in by_date} and len(by_date) == 4

    def when(hit: dict) -> str:
        import datetime
        import os

        return hit["taken_at"] or datetime.datetime.fromtimestamp(os.stat(hit["path"]).st_mtime).strftime(
            "%Y-%m-%dT%H:%M:%S")

    assert [when(h) for h in by_date] == sorted((when(h) for h in by_date), reverse=True)
    assert cli(capsys, "search", "x", "--sort", "name").code == 2
    everything = json.loads(cli(capsys, "search", "a red barn", "-k", "50", "--min-score", "-1", "--json").out)
    assert len(everything) == len(indexed_paths(pics))
    best = everything[0]["score"]
    strict = cli(capsys, "search", "a red barn", "--min-score", f"{min(best + 0.01, 1.0):.4f}")
    assert strict.code == 0 and strict.out == "" and "--min-score -1 shows weaker matches" in strict.err


def test_saved_searches_through_the_cli(pics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = cli(capsys, "search", "a red barn", "--min-score", "-1", "--save", "Barns", "--json")
    assert first.code == 0, first.err
    listed = json.loads(cli(capsys, "saved", "--json").out)
    assert listed == [{"name": "Barns", "min_score": -1.0,
                       "terms": [{"kind": "text", "value": "a red barn", "weight": 1.0}]}]
    ran = cli(capsys, "saved", "barns", "-k", "3", "--json")
    assert ran.code == 0 and json.loads(ran.out) == json.loads(first.out)[:3]
    assert cli(capsys, "saved", "barns", "--delete").code == 0
    assert json.loads(cli(capsys, "saved", "--json").out) == []
    gone = cli(capsys, "saved", "Barns")
    assert gone.code == 1 and "no saved search named 'Barns'" in gone.err
