"""Automatic tags (clipfind.tags): the vocabulary as data, the margin rule, the caches. Random weights
say nothing of tag quality, so these test the plumbing with constructed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clipfind.library import Library
from clipfind.tags import (
    FLOOR,
    MARGIN,
    PHRASES_FILE,
    TAGS_FILE,
    TagTable,
    load_vocabulary,
    parse_vocabulary,
    phrase_vectors,
    tag_vectors,
)
from tests.helpers import unit_rows

DIM = 16


def basis(i: int, dim: int = DIM) -> np.ndarray:
    return np.eye(dim, dtype=np.float32)[i]


def test_the_builtin_vocabulary_is_hundreds_of_unique_tags_with_cleanup_categories() -> None:
    vocab = load_vocabulary()
    tags = vocab.tags
    assert 250 <= len(tags) <= 600
    assert len({t.casefold() for t in tags}) == len(tags)
    cleanup = {p.tag for p in vocab.phrases if p.cleanup}
    assert {"screenshots", "documents", "receipts"} <= cleanup
    assert {"people", "dog", "food", "beach", "mountains", "city", "sunset", "snow"} <= set(tags) - cleanup
    assert all(p.prompt and "#" not in p.prompt for p in vocab.phrases)
    assert vocab.find("Receipts").tag == "receipts" and vocab.find("  SUNSET ").tag == "sunset"


def test_the_users_file_adds_replaces_and_drops_tags(tmp_path: Path) -> None:
    (tmp_path / "vocabulary.txt").write_text(
        "# mine\ngrandma's garden\n-dog\nsunset | the sun going down\n[clean-up]\nwifi passwords | a photo of a router label\n",
        encoding="utf-8")
    vocab = load_vocabulary(tmp_path)
    by_tag = {p.tag: p for p in vocab.phrases}
    assert "dog" not in by_tag
    assert by_tag["grandma's garden"].prompt == "a photo of grandma's garden" and not by_tag["grandma's garden"].cleanup
    assert by_tag["sunset"].prompt == "the sun going down"
    assert by_tag["wifi passwords"].cleanup
    assert vocab.digest != load_vocabulary().digest


def test_parse_keeps_order_and_ignores_comments_and_blank_lines() -> None:
    phrases = parse_vocabulary("a\n\n  # c\nb | prompt b  # note\n[everyday]\nA\n")
    assert [(p.tag, p.prompt) for p in phrases] == [("A", "a photo of A"), ("b", "prompt b")]


def test_a_vector_orthogonal_to_every_phrase_gets_no_tag() -> None:
    phrases = np.stack([basis(i) for i in range(1, 6)])
    neutral = basis(0)
    orthogonal = basis(9)[None]
    tags, scores = tag_vectors(orthogonal, phrases, neutral)
    assert (tags == -1).all() and np.isnan(scores).all()


def test_the_margin_over_a_photo_and_the_floor_decide() -> None:
    neutral = basis(0)
    phrases = np.stack([basis(1), basis(2), basis(3)])

    def photo(**weights: float) -> np.ndarray:
        v = sum(w * basis(int(k[1:])) for k, w in weights.items())
        return (v / np.linalg.norm(v)).astype(np.float32)

    clear = photo(d1=0.8, d0=0.3, d9=0.5)  # far above "a photo": tagged with phrase 0
    neutralish = photo(d0=0.8, d1=0.75, d9=0.2)  # nearer the neutral prompt than to the phrase: no tag
    weak = photo(d1=0.1, d9=1.0)  # above the neutral, under the floor: no tag
    two = photo(d2=0.7, d3=0.5, d9=0.5)  # two tags, best first
    tags, scores = tag_vectors(np.stack([clear, neutralish, weak, two]), phrases, neutral)
    assert tags[0].tolist()[0] == 0 and scores[0, 0] == pytest.approx(float(clear @ basis(1)))
    assert (tags[1] == -1).all() and (tags[2] == -1).all()
    assert tags[3].tolist()[:2] == [1, 2] and tags[3, 2] == -1
    # the thresholds are what passes
    assert 0.02 < MARGIN < 0.03 and FLOOR > 0
    loose, _ = tag_vectors(weak[None], phrases, neutral, margin=0.0, floor=0.0)
    assert loose[0, 0] == 0


def test_tags_come_from_the_vocabulary_and_cache_per_model(tmp_path: Path) -> None:
    vocab = load_vocabulary()
    rng = np.random.default_rng(3)
    table_of = {}
    calls: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        for t in texts:
            table_of.setdefault(t, unit_rows(rng, 1, DIM)[0])
        return np.stack([table_of[t] for t in texts])

    phrases = phrase_vectors(vocab, encode, "model-a", tmp_path)
    assert phrases.vectors.shape == (len(vocab.phrases), DIM) and (tmp_path / PHRASES_FILE).exists()
    assert max(calls) <= 64  # embedded in batches
    embedded = sum(calls)
    again = phrase_vectors(vocab, encode, "model-a", tmp_path)
    assert sum(calls) == embedded and np.array_equal(again.vectors, phrases.vectors)  # from the cache
    phrase_vectors(vocab, encode, "model-b", tmp_path)
    assert sum(calls) == 2 * embedded  # another model embeds again
    photos = unit_rows(rng, 300, DIM)
    tags, _ = tag_vectors(photos, phrases.vectors, phrases.neutral, margin=-1.0, floor=-1.0)
    assert (tags >= 0).all()  # loose rule: every photo tagged, and every tag is a vocabulary row
    assert {vocab.tags[t] for t in tags.ravel()} <= set(vocab.tags)


def test_the_tag_table_updates_only_what_changed(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    phrases_vectors = unit_rows(rng, 5, DIM)

    class P:
        vectors = phrases_vectors
        neutral = unit_rows(rng, 1, DIM)[0]

    ids = np.arange(1, 21, dtype=np.int64)
    vectors = np.stack([phrases_vectors[i % 5] for i in range(20)])
    table = TagTable.build(ids, vectors, P, 1, "k")  # type: ignore[arg-type]
    fetched: list[list[int]] = []

    def fetch(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fetched.append(wanted.tolist())
        return wanted, vectors[wanted - 1]

    # 3 removed, 5 re-embedded as phrase 0, 21 new (as phrase 4)
    ids_now = np.array([i for i in range(1, 22) if i != 3])
    new_vectors = (np.array([5, 21]), np.stack([phrases_vectors[0], phrases_vectors[4]]))
    updated = table.updated(ids_now, new_vectors, fetch, P, 2)  # type: ignore[arg-type]
    assert updated.ids.tolist() == ids_now.tolist() and fetched == []
    fresh = TagTable.build(ids_now, np.stack([vectors[i - 1] if i not in (5, 21) else new_vectors[1][int(i == 21)]
                                              for i in ids_now]), P, 2, "k")  # type: ignore[arg-type]
    assert np.array_equal(updated.tags, fresh.tags)
    updated.save(tmp_path / TAGS_FILE)
    loaded = TagTable.load(tmp_path / TAGS_FILE, "k")
    assert loaded is not None and np.array_equal(loaded.tags, updated.tags) and loaded.generation == 2
    assert TagTable.load(tmp_path / TAGS_FILE, "other") is None
    (tmp_path / TAGS_FILE).write_bytes(b"garbage")
    assert TagTable.load(tmp_path / TAGS_FILE, "k") is None


def _fake_library(lib: Library, rows: dict[str, np.ndarray]) -> None:
    """Photos with constructed vectors in a tiny-model catalog, and a text encoder that knows the
    built-in prompts as basis-like vectors: the tag rule's plumbing end to end."""
    dim = 32
    lib.catalog.bind_model(lib.spec.identity, dim, lib.spec.name, None)
    for i, (path, v) in enumerate(rows.items()):
        lib.catalog.put_photo(path, 100 + i, 1, f"h{i}", 10, 10, f"2020-0{i % 9 + 1}-01T12:00:00", v)


@pytest.fixture
def tagged_lib(lib: Library, monkeypatch: pytest.MonkeyPatch) -> Library:
    dim = 32
    vocab = load_vocabulary(lib.home)
    prompts = {p.prompt: i for i, p in enumerate(vocab.phrases)}
    index_of = {"screenshots": 1, "receipts": 2, "dog": 3, "beach": 4}
    fixed = {vocab.find(t).prompt: basis(i, dim) for t, i in index_of.items()}
    fixed["a photo"] = basis(0, dim)
    others = {p: basis(5 + prompts[p] % 20, dim) for p in prompts if p not in fixed}

    def encode(texts: list[str]) -> np.ndarray:
        return np.stack([fixed.get(t, others.get(t, basis(31, dim))) for t in texts]).astype(np.float32)

    monkeypatch.setattr(lib, "_encode_texts", encode)

    def v(**w: float) -> np.ndarray:
        x = sum(val * basis(int(k[1:]), dim) for k, val in w.items())
        return (x / np.linalg.norm(x)).astype(np.float32)

    _fake_library(lib, {
        "/p/shot1.png": v(d1=0.9, d0=0.3, d30=0.3),
        "/p/shot2.png": v(d1=0.8, d0=0.3, d31=0.5),
        "/p/receipt.jpg": v(d2=0.9, d0=0.2, d30=0.4),
        "/p/dog_beach.jpg": v(d3=0.6, d4=0.5, d31=0.6),
        "/p/nothing.jpg": v(d29=1.0),
    })
    return lib


def test_photo_tags_albums_and_the_tag_filter(tagged_lib: Library) -> None:
    lib = tagged_lib
    by_path = {t.photo.path: [s.tag for s in t.tags] for t in lib.photo_tags()}
    assert by_path == {"/p/shot1.png": ["screenshots"], "/p/shot2.png": ["screenshots"], "/p/receipt.jpg": ["receipts"],
                       "/p/dog_beach.jpg": ["dog", "beach"], "/p/nothing.jpg": []}
    vocab = set(lib.vocabulary())
    assert {s.tag for t in lib.photo_tags() for s in t.tags} <= vocab
    albums = lib.tag_albums()
    assert [(a.title, a.count, a.cleanup) for a in albums] == [
        ("Screenshots", 2, True), ("Receipts", 1, True), ("Beach", 1, False), ("Dog", 1, False)]
    assert [p.path for p in lib.tag_album("Screenshots")] == ["/p/shot1.png", "/p/shot2.png"]  # surest first
    from clipfind.library import build_query
    from clipfind.records import Filters

    # the album narrowed by a folder and dates, as a search is
    assert lib.tag_album("screenshots", Filters(folder="/q")) == []
    assert [p.path for p in lib.tag_album("screenshots", Filters(folder="/p"))] == ["/p/shot1.png", "/p/shot2.png"]
    january = Filters(date_from="2020-01-01T00:00:00", date_to="2020-01-31T23:59:59")  # shot1's; shot2 is February's
    assert [p.path for p in lib.tag_album("screenshots", january)] == ["/p/shot1.png"]

    hits = lib.search(build_query(["dog"]), 10, Filters(tag="screenshots"))
    assert {h.photo.path for h in hits} == {"/p/shot1.png", "/p/shot2.png"}
    with pytest.raises(Exception, match="unknown tag 'screenshot'.*screenshots"):
        lib.search(build_query(["dog"]), 10, Filters(tag="screenshot"))
    assert (lib.home / TAGS_FILE).exists() and (lib.home / PHRASES_FILE).exists()


def test_a_new_photo_is_tagged_without_tagging_the_others_again(tagged_lib: Library,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tagged_lib
    lib.photo_tags()
    import clipfind.tags

    tagged: list[int] = []
    real = clipfind.tags.tag_vectors
    monkeypatch.setattr(clipfind.tags, "tag_vectors", lambda v, *a, **k: tagged.append(len(v)) or real(v, *a, **k))
    lib.catalog.put_photo("/p/receipt2.jpg", 5, 1, "h9", 10, 10, None,
                          (basis(2, 32) * 0.9 + basis(0, 32) * 0.2) / np.linalg.norm([0.9, 0.2]))
    fresh = Library(lib.home, "clipfind-tiny", "none")  # from the saved table, brought up to date
    monkeypatch.setattr(fresh, "_encode_texts", lib._encode_texts)
    try:
        assert [p.path for p in fresh.tag_album("receipts")][:2] in (["/p/receipt.jpg", "/p/receipt2.jpg"],
                                                                     ["/p/receipt2.jpg", "/p/receipt.jpg"])
        assert tagged == [1]
    finally:
        fresh.close()
