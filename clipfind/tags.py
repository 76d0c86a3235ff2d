"""Automatic tags: a vocabulary of everyday photo concepts, embedded once per model, and each photo's
tags where the model is clearly surer of a concept than of a plain "a photo".

The vocabulary is data: ``assets/vocabulary.txt`` (a few hundred concepts; the ``[clean-up]``
section holds the categories people want to clean up: screenshots, documents, receipts...) plus
the user's own ``vocabulary.txt`` in the home (USER_VOCABULARY_FILE), in the same format: a line
is ``TAG`` or ``TAG | PROMPT`` (the text the model reads; default "a photo of TAG"), ``-TAG``
drops a built-in tag, ``#`` starts a comment.

The margin rule. For a photo vector v, each tag's score is cos(v, prompt) and the neutral score
is cos(v, "a photo"). A tag is kept when

    score - neutral >= MARGIN   and   score >= FLOOR,

the TOP_TAGS best by margin. CLIP turns scores into odds with its logit scale (100 for the
models here): in a two-way choice between the tag's prompt and "a photo", a margin m gives odds
exp(100 m). MARGIN = ln(9) / 100 (about 0.022) asks the model to find the tag at least 9 times
likelier than the neutral prompt, the same bar for every model whatever its range of scores;
FLOOR drops a photo that is a little closer to a tag than to "a photo" while unlike both. A photo
gets no tag rather than a wrong one: most photos of a library get none or one. With random
weights nothing here says anything about tag quality.

Cached in the home: the phrases' vectors (PHRASES_FILE), keyed by the model's identity and the
vocabulary's content, and every photo's tags (TAGS_FILE) with the catalog generation they match,
brought up to date from the catalog's change log (only photos whose vector changed are tagged again).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from clipfind.home import atomic_write
from clipfind.records import Ids, Vectors

__all__ = [
    "FLOOR", "MARGIN", "NEUTRAL_PROMPT", "TOP_TAGS", "USER_VOCABULARY_FILE", "Phrase", "PhraseVectors", "TagTable",
    "Vocabulary", "album_title", "load_vocabulary", "parse_vocabulary", "phrase_vectors", "tag_vectors",
]

USER_VOCABULARY_FILE = "vocabulary.txt"  # the user's additions, in the home
PHRASES_FILE = "tag_phrases.npz"  # the vocabulary's vectors for one model (a cache)
TAGS_FILE = "tags.npz"  # every photo's tags for one catalog generation (a cache)
NEUTRAL_PROMPT = "a photo"
PROMPT_TEMPLATE = "a photo of {}"
LOGIT_SCALE = 100.0  # CLIP's learned temperature, clamped at 100 in training
MIN_ODDS = 9.0  # how much likelier than "a photo" a tag must be
MARGIN = math.log(MIN_ODDS) / LOGIT_SCALE
FLOOR = 0.15  # least cosine to the tag's prompt
TOP_TAGS = 3  # tags per photo at most
ENCODE_BATCH = 64  # prompts per text-encoder call
TAG_CHUNK = 8192  # photos per product with the phrase matrix (8192 x 360 floats: 12 MB)

TextEncoder = Callable[[list[str]], Vectors]


@dataclass(frozen=True, slots=True)
class Phrase:
    """One vocabulary entry: the tag shown, the prompt the model reads, and whether it is a clean-up category."""

    tag: str
    prompt: str
    cleanup: bool = False


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The tags in use: built-in ones, then the user's."""

    phrases: tuple[Phrase, ...]

    @property
    def tags(self) -> list[str]:
        return [p.tag for p in self.phrases]

    @property
    def digest(self) -> str:
        """What the cached vectors depend on besides the model: every prompt, and the neutral one."""
        text = "\n".join([NEUTRAL_PROMPT, *(p.prompt for p in self.phrases)])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def find(self, name: str) -> Phrase | None:
        """The phrase with this tag, or whose album title this is, ignoring case and spacing."""
        key = _key(name)
        for phrase in self.phrases:
            if _key(phrase.tag) == key or _key(album_title(phrase.tag)) == key:
                return phrase
        return None


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def album_title(tag: str) -> str:
    """What a side list shows for a tag: "screenshots" -> "Screenshots"."""
    return tag[:1].upper() + tag[1:]


_SECTION = re.compile(r"^\[(?P<name>[^\]]*)\]$")


def parse_vocabulary(text: str, base: Sequence[Phrase] = ()) -> list[Phrase]:
    """Vocabulary lines on top of ``base``: a tag given again replaces the earlier one (its prompt),
    "-TAG" drops one. Tags are unique ignoring case; order is kept (new tags after the base)."""
    phrases: dict[str, Phrase] = {_key(p.tag): p for p in base}
    cleanup = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        section = _SECTION.match(line)
        if section:
            cleanup = section["name"].strip().lower().replace("-", "") == "cleanup"
            continue
        if line.startswith("-"):
            phrases.pop(_key(line[1:]), None)
            continue
        tag, _, prompt = (part.strip() for part in line.partition("|"))
        tag = " ".join(tag.split())
        if not tag:
            continue
        phrases[_key(tag)] = Phrase(tag, " ".join(prompt.split()) or PROMPT_TEMPLATE.format(tag), cleanup)
    return list(phrases.values())


def load_vocabulary(home: Path | None = None) -> Vocabulary:
    """The built-in vocabulary, with the user's file in ``home`` applied when there is one (a file
    that cannot be read is skipped: tags are a convenience, never a reason to fail)."""
    builtin = (files("clipfind.assets") / "vocabulary.txt").read_text(encoding="utf-8")
    phrases = parse_vocabulary(builtin)
    if home is not None:
        with contextlib.suppress(OSError):
            user = (home / USER_VOCABULARY_FILE).read_text(encoding="utf-8", errors="replace")
            phrases = parse_vocabulary(user, phrases)
    return Vocabulary(tuple(phrases))


@dataclass(frozen=True)
class PhraseVectors:
    """The vocabulary's prompts embedded by one model, and the neutral prompt's vector."""

    vocabulary: Vocabulary
    vectors: Vectors  # (len(vocabulary.phrases), dim)
    neutral: Vectors  # (dim,)
    key: str  # model identity and vocabulary digest


def phrase_vectors(vocabulary: Vocabulary, encode_texts: TextEncoder, model: str, home: Path | None) -> PhraseVectors:
    """The vocabulary's vectors, embedded once per model and vocabulary and kept in the home."""
    key = hashlib.sha256(f"{model}\n{vocabulary.digest}".encode()).hexdigest()[:32]
    path = home / PHRASES_FILE if home is not None else None
    if path is not None:
        with contextlib.suppress(Exception), np.load(path, allow_pickle=False) as data:  # a damaged cache: embed again
            if str(data["key"]) == key and data["vectors"].shape[0] == len(vocabulary.phrases):
                return PhraseVectors(vocabulary, data["vectors"].astype(np.float32), data["neutral"].astype(np.float32),
                                     key)
    prompts = [NEUTRAL_PROMPT, *(p.prompt for p in vocabulary.phrases)]
    parts = [np.asarray(encode_texts(prompts[i:i + ENCODE_BATCH]), np.float32)
             for i in range(0, len(prompts), ENCODE_BATCH)]
    encoded = np.concatenate(parts)
    encoded /= np.maximum(np.linalg.norm(encoded, axis=1, keepdims=True), 1e-12)
    out = PhraseVectors(vocabulary, encoded[1:], encoded[0], key)
    if path is not None:
        with contextlib.suppress(OSError), atomic_write(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, key=np.str_(key), vectors=out.vectors, neutral=out.neutral)
    return out


def tag_vectors(
    vectors: Vectors, phrases: Vectors, neutral: Vectors, *, margin: float | None = None, floor: float | None = None,
    top: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's tags by the margin rule (module docstring).

    Args:
        vectors: (n, dim) unit photo vectors.
        phrases: (m, dim) unit prompt vectors.
        neutral: (dim,) the neutral prompt's vector.
        margin, floor, top: the rule's parameters (default MARGIN, FLOOR, TOP_TAGS).

    Returns (tags (n, top) int32: phrase rows best first, -1 where no more tag passes;
    scores (n, top) float32: the photo's cosine to each tag's prompt, NaN where there is no tag).
    """
    vectors = np.asarray(vectors, np.float32).reshape(-1, phrases.shape[1] if phrases.ndim == 2 else 0)
    margin = MARGIN if margin is None else margin
    floor = FLOOR if floor is None else floor
    n, m = len(vectors), len(phrases)
    top = min(TOP_TAGS if top is None else top, m)
    tags = np.full((n, top), -1, np.int32)
    scores = np.full((n, top), np.nan, np.float32)
    if n == 0 or top == 0:
        return tags, scores
    for start in range(0, n, TAG_CHUNK):
        chunk = vectors[start:start + TAG_CHUNK]
        sims = chunk @ phrases.T
        margins = sims - (chunk @ neutral)[:, None]
        margins[(margins < margin) | (sims < floor)] = -np.inf
        best = np.argpartition(-margins, top - 1, axis=1)[:, :top]
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(margins, best, 1), axis=1, kind="stable"), 1)
        ok = np.isfinite(np.take_along_axis(margins, best, 1))
        tags[start:start + len(chunk)] = np.where(ok, best, -1)
        scores[start:start + len(chunk)] = np.where(ok, np.take_along_axis(sims, best, 1), np.nan)
    return tags, scores


@dataclass(frozen=True)
class TagTable:
    """Every embedded photo's tags for one catalog generation: ids ascending, rows of tag_vectors."""

    ids: Ids
    tags: np.ndarray  # (n, top) int32, -1: none
    scores: np.ndarray  # (n, top) float32
    generation: int
    key: str  # phrase vectors' key and the rule's parameters

    @classmethod
    def build(cls, ids: Ids, vectors: Vectors, phrases: PhraseVectors, generation: int, key: str) -> TagTable:
        order = np.argsort(ids, kind="stable")
        tags, scores = tag_vectors(vectors[order], phrases.vectors, phrases.neutral)
        return cls(np.asarray(ids, np.int64)[order], tags, scores, generation, key)

    def updated(self, ids_now: Ids, changed: tuple[Ids, Vectors], fetch: Callable[[Ids], tuple[Ids, Vectors]],
                phrases: PhraseVectors, generation: int) -> TagTable:
        """Brought to the catalog's state: rows gone are dropped, rows whose vector changed (the
        catalog's change log) and rows this table lacks are tagged again."""
        ids_now = np.unique(np.asarray(ids_now, np.int64))
        changed_ids = np.asarray(changed[0], np.int64)
        keep = np.isin(self.ids, ids_now) & ~np.isin(self.ids, changed_ids)
        missing = ids_now[~np.isin(ids_now, self.ids[keep]) & ~np.isin(ids_now, changed_ids)]
        new_ids, new_vectors = [changed_ids[np.isin(changed_ids, ids_now)]], [changed[1][np.isin(changed_ids, ids_now)]]
        if len(missing):
            got = fetch(missing)
            new_ids.append(np.asarray(got[0], np.int64))
            new_vectors.append(got[1])
        ids = np.concatenate(new_ids)
        vectors = np.concatenate(new_vectors) if ids.size else np.zeros((0, phrases.vectors.shape[1]), np.float32)
        fresh = TagTable.build(ids, vectors, phrases, generation, self.key)
        all_ids = np.concatenate([self.ids[keep], fresh.ids])
        order = np.argsort(all_ids, kind="stable")
        return TagTable(all_ids[order], np.concatenate([self.tags[keep], fresh.tags])[order],
                        np.concatenate([self.scores[keep], fresh.scores])[order], generation, self.key)

    def ids_with(self, row: int) -> Ids:
        """The photos carrying the phrase at this row, ascending."""
        return self.ids[(self.tags == row).any(axis=1)]

    def counts(self, phrases: int) -> np.ndarray:
        """How many photos carry each phrase row."""
        used = self.tags[self.tags >= 0]
        return np.bincount(used, minlength=phrases)[:phrases]

    def save(self, path: Path) -> None:
        """A cache: written whole or not at all; a failure costs tagging again next time."""
        with contextlib.suppress(OSError), atomic_write(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ids=self.ids, tags=self.tags, scores=self.scores, generation=np.int64(self.generation),
                     key=np.str_(self.key))

    @classmethod
    def load(cls, path: Path, key: str) -> TagTable | None:
        """The saved table when it was made with this key (model, vocabulary, rule); None otherwise."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None
                table = cls(data["ids"].astype(np.int64), data["tags"].astype(np.int32),
                            data["scores"].astype(np.float32), int(data["generation"]), key)
        except Exception:  # missing or damaged in any way: it is a cache
            return None
        n = len(table.ids)
        if table.tags.shape != table.scores.shape or table.tags.shape[0] != n:
            return None
        return table


def table_key(phrases: PhraseVectors) -> str:
    """What a saved tag table must match: the phrase vectors' key and the margin rule's parameters."""
    return f"{phrases.key}:{MARGIN:.6f}:{FLOOR:.6f}:{TOP_TAGS}"
