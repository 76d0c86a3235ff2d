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

from clipfind.annindex import VectorIndex, sync_index, top_k
from clipfind.catalog import Catalog
from clipfind.errors import ClipfindError, ImageLoadError
from clipfind.records import Filters, Ids, Query, Scores, SearchHit, SearchResults, Term, Vectors
from clipfind.relevance import SAMPLE_SIZE, auto_cutoff, passed_share, sort_hits

__all__ = ["EXACT_LIMIT", "Filters", "Query", "SearchHit", "SearchResults", "Searcher", "Term", "build_query",
           "split_weight"]

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
TagIds = Callable[[str], Ids]  # a tag -> the ids of the photos that carry it (clipfind.tags)


class Searcher:
    """Answers queries over a catalog, keeping its in-memory index in step with the catalog."""

    def __init__(self, catalog: Catalog, index: VectorIndex, encode_texts: TextEncoder, encode_image: PathEncoder,
                 tag_ids: TagIds | None = None) -> None:
        self.catalog = catalog
        self.index = index
        self._encode_texts = encode_texts
        self._encode_image = encode_image
        self._tag_ids = tag_ids
        self._exact_cache: tuple[int, Ids, Vectors] | None = None
        self._sample_cache: tuple[int, Vectors] | None = None

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
        return list(self.search_results(query, k, filters).hits)

    def search_results(self, query: Query, k: int = 20, filters: Filters = Filters()) -> SearchResults:
        """The k best hits that pass the cut-off, in the filters' order, with how many passed."""
        if k <= 0:
            raise ClipfindError("k must be a positive number")
        vector, exclude = self.query_vector(query)
        return self.results_for_vector(vector, k, filters, exclude)

    def search_vector(
        self, vector: Vectors, k: int, filters: Filters = Filters(), exclude: set[int] = frozenset()  # type: ignore[assignment]
    ) -> list[SearchHit]:
        return list(self.results_for_vector(vector, k, filters, exclude).hits)

    def results_for_vector(
        self, vector: Vectors, k: int, filters: Filters = Filters(), exclude: set[int] = frozenset()  # type: ignore[assignment]
    ) -> SearchResults:
        """Search by a unit vector: the candidates (the filters' or every photo), the cut-off (the
        filters' min_score, else from this query's scores when auto_cutoff), the k best, sorted.

        The automatic cut-off costs no extra pass over the library: where search is exact every
        score is computed anyway, and a large library's approximate search scores a fixed sample.
        """
        sync_index(self.index, self.catalog)
        want = k + len(exclude)
        every: Scores | None = None  # every candidate's score, where search is exact
        candidates: Ids | None = None
        allowed = self._allowed(filters)
        if allowed is not None:
            if len(allowed) <= EXACT_LIMIT:
                candidates, vectors = self.catalog.vectors(ids=allowed.tolist())
                labels, sims, every = _exact(candidates, vectors, vector, want)
            else:
                labels, sims = self._approximate(vector, want, set(allowed.tolist()))
        elif len(self.index) <= EXACT_LIMIT:
            candidates, vectors = self._all_vectors()
            labels, sims, every = _exact(candidates, vectors, vector, want)
        else:
            labels, sims = self._approximate(vector, want, None)
        cutoff, automatic, sample = filters.min_score, False, None
        if cutoff is None and filters.auto_cutoff:
            # The bulk is the library's, not the filtered few: a folder of ten photos has no bulk.
            sample = every if every is not None and allowed is None else self._sample() @ vector
            cutoff, automatic = auto_cutoff(sample), True
        hits = self._hits(labels[0], sims[0], k, cutoff, exclude)
        passed, estimated = self._passed(vector, allowed, candidates, every, labels[0], sims[0], cutoff, sample,
                                         exclude)
        return SearchResults(tuple(sort_hits(hits, filters.sort)), passed, cutoff, automatic and cutoff is not None,
                             estimated)

    def _allowed(self, filters: Filters) -> Ids | None:
        """The candidates' ids where the filters restrict them (folder, dates, tag), else None: every photo."""
        if not filters.restricts_candidates:
            return None
        allowed: Ids | None = None
        if filters.folder is not None or filters.date_from is not None or filters.date_to is not None:
            allowed = self.catalog.ids_matching(filters.folder, filters.date_from, filters.date_to)
        if filters.tag is not None:
            if self._tag_ids is None:
                raise ClipfindError("tags are not available for this search")
            tagged = np.asarray(self._tag_ids(filters.tag), dtype=np.int64)
            allowed = tagged if allowed is None else np.intersect1d(allowed, tagged)
        return allowed

    def _passed(self, vector: Vectors, allowed: Ids | None, candidates: Ids | None, every: Scores | None,
                labels: Ids, sims: Scores, cutoff: float | None, sample: Scores | None,
                exclude: set[int]) -> tuple[int, bool]:
        """How many candidates pass the cut-off (query photos left out), and whether that is an estimate."""
        if every is not None and candidates is not None:  # exact: every candidate's score is known
            keep = every >= cutoff if cutoff is not None else np.ones(len(every), bool)
            left_out = int((keep & np.isin(candidates, list(exclude))).sum()) if exclude else 0
            return int(keep.sum()) - left_out, False
        total = len(allowed) if allowed is not None else len(self.index)
        fetched = [(int(i), float(s)) for i, s in zip(labels, sims) if int(i) not in exclude]
        if cutoff is None:
            left_out = (int(np.isin(list(exclude), allowed).sum()) if allowed is not None
                        else sum(1 for i in exclude if i in self.index)) if exclude else 0
            return total - left_out, False
        above = sum(1 for _, s in fetched if s >= cutoff)
        if above < len(fetched) or len(fetched) >= total:  # best first: every photo that passes was fetched
            return above, False
        share = passed_share(sample if sample is not None else self._sample() @ vector, cutoff)
        return max(above, round(share * total)), True

    def _sample(self) -> Vectors:
        """A fixed random sample of the library's vectors (SAMPLE_SIZE), once per catalog generation:
        the bulk of a query's scores where search is approximate."""
        generation = self.catalog.generation
        if self._sample_cache is None or self._sample_cache[0] != generation:
            labels = np.fromiter(self.index.labels, dtype=np.int64)
            labels.sort()
            if len(labels) > SAMPLE_SIZE:
                labels = np.sort(np.random.default_rng(0).choice(labels, SAMPLE_SIZE, replace=False))
            vectors = self.index.vectors_of(labels) if len(labels) else np.zeros((0, self.index.dim), np.float32)
            self._sample_cache = (generation, vectors)
        return self._sample_cache[1]

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


def _exact(ids: Ids, vectors: Vectors, vector: Vectors, k: int) -> tuple[Ids, Scores, Scores]:
    """exact_search for one query, also returning every candidate's score (one product, no second pass)."""
    every = (vectors @ np.asarray(vector, np.float32).ravel()).astype(np.float32, copy=False)
    labels, sims = top_k(ids, every[None], k)
    return labels, sims, every
