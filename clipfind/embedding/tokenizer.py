"""CLIP's byte-level BPE tokenizer without torch, so a text query can be answered without it.

open_clip's tokenizer module imports torch (2-3 s here) only to return its result as a tensor.
This one reads the same merges file and gives the same token ids as an int64 numpy array;
tests/embedding/test_tokenizer.py checks it against open_clip's on many strings.
"""

from __future__ import annotations

import gzip
import html
import warnings
from functools import lru_cache
from pathlib import Path

import ftfy
import numpy as np
import regex

SPECIALS = ("<start_of_text>", "<end_of_text>")
END_OF_WORD = "</w>"
# The vocabulary is 256 bytes, the same with END_OF_WORD, the merges, then the two specials:
# 49408 entries, so the merges file contributes its first 49152 - 256 - 2 lines after the header.
MERGE_COUNT = 49152 - 256 - 2
# A special token, a contraction, a run of letters, one digit, or a run of other non-space characters.
_WORDS = regex.compile(
    "|".join(regex.escape(s) for s in SPECIALS) + r"|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_SPACES = regex.compile(r"\s+")


class QueryCut(UserWarning):
    """A query longer than the model reads: only its start is searched."""


def warn_cut(text: str, context_length: int) -> None:
    """Say that `text` is cut: every CLIP tokenizer truncates to its context silently, and a user
    whose long description matches badly deserves to know why."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    warnings.warn(
        QueryCut(f"the query {shown!r} is longer than the model reads ({context_length - 2} tokens): "
                 "only its start is searched"),
        stacklevel=3,
    )


def byte_symbols() -> dict[int, str]:
    """A printable character for each byte value: bytes that are visible Latin-1 characters stand
    for themselves; the others (controls, space, soft hyphen...) take code points from 256 up, in
    byte order. The dict's order (visible bytes first) is also the vocabulary's."""
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols: dict[int, str] = {b: chr(b) for b in visible}
    spare = 256
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(spare)
            spare += 1
    return symbols


class BpeTokenizer:
    def __init__(self, merges_file: Path, context_length: int = 77) -> None:
        with gzip.open(merges_file, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")[1 : MERGE_COUNT + 1]
        merges = [tuple(line.split()) for line in lines]
        symbols = byte_symbols()
        self._symbols = [symbols[b] for b in range(256)]
        base = list(symbols.values())
        vocab = [*base, *(s + END_OF_WORD for s in base), *("".join(m) for m in merges), *SPECIALS]
        self._ids = {token: i for i, token in enumerate(vocab)}
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.context_length = context_length
        self.start_id, self.end_id = self._ids[SPECIALS[0]], self._ids[SPECIALS[1]]
        self._pieces = lru_cache(maxsize=10_000)(self._merge)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """(len(texts), context_length) int64 ids: start, the text, end, zero padding; a text that
        is too long is cut (with a QueryCut warning) and still ends with the end token."""
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.start_id, *self.encode(text), self.end_id]
            if len(ids) > self.context_length:
                warn_cut(text, self.context_length)
                ids = ids[: self.context_length]
                ids[-1] = self.end_id
            out[row, : len(ids)] = ids
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in _WORDS.findall(_clean(text)):
            if word in SPECIALS:
                ids.append(self._ids[word])
                continue
            symbols = "".join(self._symbols[b] for b in word.encode("utf-8"))
            ids.extend(self._ids[piece] for piece in self._pieces(symbols))
        return ids

    def _merge(self, word: str) -> tuple[str, ...]:
        """Apply the merges to one word, lowest rank first, until none applies."""
        parts = [*word[:-1], word[-1] + END_OF_WORD]
        while len(parts) > 1:
            ranked = [(self._ranks.get(pair, -1), i) for i, pair in enumerate(zip(parts, parts[1:]))]
            known = [(rank, i) for rank, i in ranked if rank >= 0]
            if not known:
                break
            best = parts[min(known)[1]], parts[min(known)[1] + 1]
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(parts)


def _clean(text: str) -> str:
    """Mend mojibake, undo HTML escapes (twice, as text is often escaped twice), one space between
    words, lower case: what CLIP's training captions went through."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _SPACES.sub(" ", text).strip().lower()
