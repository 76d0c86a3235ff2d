"""What a query means and how it is answered: weighted text and image terms, filters, top-k.

A query is a weighted sum of unit vectors: text phrases and photos add, "minus" phrases
subtract; the sum is normalised and compared by cosine with every photo. Weights use the
`term^weight` suffix (Lucene's boost syntax), e.g. `beach^2` or `--minus "people^0.5"`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

from clipfind.annindex import VectorIndex, exact_search, sync_index
from clipfind.catalog import Catalog
from clipfind.errors import ClipfindError, ImageLoadError
from clipfind.records import Filters, Ids, Query, Scores, SearchHit, Term, Vectors

__all__ = ["EXACT_LIMIT", "Filters", "Query", "SearchHit", "Searcher", "Term", "build_query", "split_weight"]

# Below this many candidates, brute force is both exact and faster than a graph walk.
EXACT_LIMIT = 20_000
# A trailing ^WEIGHT: whatever follows the last caret up to the end, when it is meant as a number
# (a digit, a sign or a dot first, or nothing); "x^y" stays literal text.
_WEIGHT = re.compile(r"^(?P<term>.*?)\s*\^(?P<weight>(?:[0-9+\-.][^\s^]*)?)$", re.S)


def split_weight(text: str) -> tuple[str, float]:
    """'beach^2' -> ('beach', 2.0); text without a weight keeps weight 1 and its text unchanged.

    A weight that is not a number above 0 is refused rather than searched as literal text
    ("beach^-1" would otherwise look for the characters "^-1"): --minus is how to push away.
    """
    match = _WEIGHT.match(text)
    if match is None:
        return text, 1.0
    term, raw = match["term"], match["weight"]
    try:
        weight = float(raw)
    except ValueError:
        weight = math.nan
    if not term.strip():
        raise ClipfindError(f"a weight needs a phrase before it: {text!r} (e.g. beach^2)")
    if not (math.isfinite(weight) and weight > 0):
        raise ClipfindError(
            f"bad weight in {text!r}: use a number above 0 after ^ (e.g. beach^2); "
            "to push results away from a phrase, use --minus"
        )
    return term, weight


def build_query(
    texts: Sequence[str] = (), images: Sequence[str] = (), minus: Sequence[str] = ()
) -> Query:
    """Turn the user's words into a Query, or say what is wrong with them."""
    terms: list[Term] = []
    for raw in texts:
        phrase, weight = split_weight(raw.strip())
        if phrase.strip():
            terms.append(Term("text", phrase.strip(), weight))
    for raw in images:
        path, weight = (raw, 1.0) if os.path.exists(raw) else split_weight(raw)
        terms.append(Term("image", os.path.abspath(os.path.expanduser(path)), weight))
    for raw in minus:
        phrase, weight = split_weight(raw.strip())
        if phrase.strip():
            terms.append(Term("text", phrase.strip(), -weight))
    if not any(t.weight > 0 for t in terms):
        raise ClipfindError("nothing to search for: give a phrase or --image PHOTO")
    return Query(tuple(terms))


TextEncoder = Callable[[list[str]], Vectors]  # phrases -> (n, dim) unit vectors
PathEncoder = Callable[[str], Vectors]  # a photo's path -> its (dim,) unit vector


class Searcher:
    """Answers queries over a catalog, keeping its in-memory index in step with the catalog."""

    def __init__(self, catalog: Catalog, index: VectorIndex, encode_texts: TextEncoder, encode_image: PathEncoder) -> None:
        self.catalog = catalog
        self.index = index
        self._encode_texts = encode_texts
        self._encode_image = encode_image
        self._exact_cache: tuple[int, Ids, Vectors] | None = None

    def query_vector(self, query: Query) -> tuple[Vectors, set[int]]:
        """(unit query vector, catalog ids to leave out: the query photos themselves)."""
        parts: list[Vectors] = []
        weights: list[float] = []
        exclude: set[int] = set()
        texts = [t for t in query.terms if t.kind == "text"]
        if texts:
            encoded = self._encode_texts([t.value for t in texts])
            parts.extend(encoded)
            weights.extend(t.weight for t in texts)
        for term in query.terms:
            if term.kind != "image":
                continue
            stored = self.catalog.photo_by_path(term.value)
            if stored is not None:
                exclude.add(stored[0].id)
                parts.append(stored[1])
            else:
                if os.path.isdir(term.value):
                    raise ClipfindError(f"not a photo file: {term.value} (a folder)")
                if not os.path.isfile(term.value):
                    raise ClipfindError(f"query photo not found: {term.value}")
                try:
                    parts.append(self._encode_image(term.value))
                except ImageLoadError as exc:
                    raise ClipfindError(f"cannot use {term.value} as a query photo: {exc}") from None
            weights.append(term.weight)
        # Relative weights, in float64: "beach^1e39" must not overflow float32 into a NaN query.
        scale = max((abs(w) for w in weights), default=0.0)
        if not 0.0 < scale < math.inf:
            raise ClipfindError("nothing to search for: give a phrase or --image PHOTO")
        vector = np.sum([(w / scale) * np.asarray(p, np.float64) for w, p in zip(weights, parts)], axis=0)
        norm = float(np.linalg.norm(vector))
        if not norm >= 1e-6:  # also NaN
            raise ClipfindError("the query terms cancel each other out; change the weights")
        return (vector / norm).astype(np.float32), exclude

    def search(self, query: Query, k: int = 20, filters: Filters = Filters()) -> list[SearchHit]:
        if k <= 0:
            raise ClipfindError("k must be a positive number")
        vector, exclude = self.query_vector(query)
        return self.search_vector(vector, k, filters, exclude)

    def search_vector(
        self, vector: Vectors, k: int, filters: Filters = Filters(), exclude: set[int] = frozenset()  # type: ignore[assignment]
    ) -> list[SearchHit]:
        sync_index(self.index, self.catalog)
        want = k + len(exclude)
        if filters.restricts_candidates:
            allowed = self.catalog.ids_matching(filters.folder, filters.date_from, filters.date_to)
            if len(allowed) <= EXACT_LIMIT:
                ids, vectors = self.catalog.vectors(ids=allowed.tolist())
                labels, sims = exact_search(ids, vectors, vector, want)
            else:
                labels, sims = self._approximate(vector, want, set(allowed.tolist()))
        elif len(self.index) <= EXACT_LIMIT:
            ids, vectors = self._all_vectors()
            labels, sims = exact_search(ids, vectors, vector, want)
        else:
            labels, sims = self._approximate(vector, want, None)
        return self._hits(labels[0], sims[0], k, filters.min_score, exclude)

    def _approximate(self, vector: Vectors, want: int, allowed: set[int] | None) -> tuple[Ids, Scores]:
        fetch = want if allowed is None else want * 4
        while True:
            labels, sims = self.index.search(vector, fetch)
            if allowed is None:
                return labels, sims
            keep = np.isin(labels[0], np.fromiter(allowed, dtype=np.int64))
            if keep.sum() >= want or fetch >= len(self.index):
                return labels[:, keep], sims[:, keep]
            fetch *= 4

    def _all_vectors(self) -> tuple[Ids, Vectors]:
        generation = self.catalog.generation
        if self._exact_cache is None or self._exact_cache[0] != generation:
            ids, vectors = self.catalog.vectors()
            self._exact_cache = (generation, ids, vectors)
        return self._exact_cache[1], self._exact_cache[2]

    def _hits(
        self, labels: Ids, sims: Scores, k: int, min_score: float | None, exclude: set[int]
    ) -> list[SearchHit]:
        ranked = [(int(label), float(sim)) for label, sim in zip(labels, sims) if int(label) not in exclude]
        if min_score is not None:
            ranked = [(label, sim) for label, sim in ranked if sim >= min_score]
        ranked = ranked[:k]
        photos = {p.id: p for p in self.catalog.photos([label for label, _ in ranked])}
        # A photo deleted since the index last synced simply drops out.
        return [SearchHit(photos[label], sim) for label, sim in ranked if label in photos]
