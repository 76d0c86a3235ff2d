"""Saved searches: a query with its least score, kept by name in the home (SAVED_FILE), so that the
user's own searches become albums beside the tag albums.

The file is JSON, written whole or not at all; one that cannot be read is set aside (renamed
with a ".damaged" suffix) rather than overwritten by the next save, so nothing the user saved is
lost silently.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from clipfind.errors import ClipfindError
from clipfind.home import atomic_write
from clipfind.records import Query, SavedSearch, Term

__all__ = ["SAVED_FILE", "SavedSearches"]

SAVED_FILE = "saved_searches.json"
FORMAT = 1


class SavedSearches:
    """The saved searches of one home, by name (names are unique ignoring case; order of saving)."""

    def __init__(self, home: Path) -> None:
        self.path = home / SAVED_FILE

    def all(self) -> list[SavedSearch]:
        """Every saved search, oldest first."""
        return list(self._read().values())

    def get(self, name: str) -> SavedSearch:
        """The saved search of this name; ClipfindError naming the saved ones when there is none."""
        found = self._read().get(_key(name))
        if found is None:
            names = ", ".join(s.name for s in self.all()) or "none yet"
            raise ClipfindError(f"no saved search named {name!r} (saved: {names})")
        return found

    def save(self, name: str, query: Query, min_score: float | None = None) -> SavedSearch:
        """Save (or replace) a search under a name.

        Raises ClipfindError for an empty name, a query with nothing to look for, or a least score
        outside -1..1.
        """
        name = " ".join(name.split())
        if not name:
            raise ClipfindError("give the saved search a name")
        if not any(t.weight > 0 for t in query.terms):
            raise ClipfindError("nothing to search for: give a phrase or a photo")
        if min_score is not None and not (math.isfinite(min_score) and -1.0 <= min_score <= 1.0):
            raise ClipfindError(f"the least score must be between -1 and 1, got {min_score}")
        saved = self._read()
        search = SavedSearch(name, query, min_score)
        saved.pop(_key(name), None)
        saved[_key(name)] = search
        self._write(saved)
        return search

    def delete(self, name: str) -> None:
        """Forget a saved search; ClipfindError when there is none of that name."""
        saved = self._read()
        if saved.pop(_key(name), None) is None:
            raise ClipfindError(f"no saved search named {name!r}")
        self._write(saved)

    def _read(self) -> dict[str, SavedSearch]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            searches = [_from_json(item) for item in data["searches"]]
        except (ValueError, KeyError, TypeError) as exc:
            damaged = self.path.with_name(self.path.name + ".damaged")
            with contextlib.suppress(OSError):
                os.replace(self.path, damaged)
            raise ClipfindError(f"the saved searches could not be read ({exc}); the file was set aside as "
                                f"{damaged.name}") from None
        return {_key(s.name): s for s in searches}

    def _write(self, saved: dict[str, SavedSearch]) -> None:
        data = {"format": FORMAT, "searches": [_to_json(s) for s in saved.values()]}
        with atomic_write(self.path, durable=True) as tmp:
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _to_json(search: SavedSearch) -> dict[str, Any]:
    return {"name": search.name, "min_score": search.min_score,
            "terms": [{"kind": t.kind, "value": t.value, "weight": t.weight} for t in search.query.terms]}


def _from_json(item: dict[str, Any]) -> SavedSearch:
    terms = tuple(Term(t["kind"], str(t["value"]), float(t["weight"])) for t in item["terms"])
    if any(t.kind not in ("text", "image") for t in terms) or not item["name"]:
        raise ValueError("a saved search with an unknown term or no name")
    min_score = item.get("min_score")
    return SavedSearch(str(item["name"]), Query(terms), None if min_score is None else float(min_score))
