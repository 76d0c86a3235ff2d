"""Recover from a damaged catalog: set it aside, start a new one with what can still be read.

The photos themselves are the source of truth, so the vectors are simply made again by the next
index pass; what only the catalog knew (the folders, the model, the user's "not duplicates"
marks with their tiers, the keeper rules) is copied over where SQLite can still read it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from clipfind.catalog import Catalog
from clipfind.home import CATALOG_FILE, INDEX_FILE, NEIGHBOURS_FILE, SAME_FILE, WriterLock

_KEPT_KEYS = ("model", "model_name", "model_pretrained", "dim", "keeper_rules")
Mark = tuple[int, str, int, str | None]  # (mark, content hash, files, tier: None = every tier)


def _salvage(path: Path) -> tuple[list[bytes], dict[str, str], list[Mark]]:
    """Folders, model, keeper rules and marks of a damaged catalog: each read on its own, as far as it goes."""
    folders: list[bytes] = []
    meta: dict[str, str] = {}
    marks: list[Mark] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return folders, meta, marks
    queries = {
        "folders": "SELECT path FROM folders",
        "meta": f"SELECT key, value FROM meta WHERE key IN ({','.join('?' * len(_KEPT_KEYS))})",
        "marks": "SELECT mark, content_hash, files, tier FROM not_duplicate_marks",
        "untiered": "SELECT mark, content_hash, files, NULL FROM not_duplicate_marks",  # schema 2 and 3
        "pairs": "SELECT hash_a, hash_b FROM not_duplicates",  # a catalog of schema 1
    }
    try:
        for name, sql in queries.items():
            try:
                if name == "untiered" and marks:
                    continue
                rows = db.execute(sql, _KEPT_KEYS if name == "meta" else ()).fetchall()
            except sqlite3.Error:
                continue
            if name == "folders":
                folders = [bytes(r[0]) if isinstance(r[0], (bytes, memoryview)) else str(r[0]).encode() for r in rows]
            elif name == "meta":
                meta = {k: v for k, v in rows}
            elif name in ("marks", "untiered"):
                marks += [(int(m), str(h), int(n), t if isinstance(t, str) else None) for m, h, n, t in rows]
            else:
                start = max((m[0] for m in marks), default=0) + 1
                for i, (a, b) in enumerate(rows, start=start):
                    marks += [(i, a, 2, None)] if a == b else [(i, a, 1, None), (i, b, 1, None)]
    finally:
        db.close()
    return folders, meta, marks


def rebuild_catalog(home: Path) -> list[str]:
    """Returns one-line notices for the user; the caller then indexes as usual."""
    path = home / CATALOG_FILE
    notices: list[str] = []
    with WriterLock(home):
        folders, meta, marks = _salvage(path) if path.exists() else ([], {}, [])
        if path.exists():
            aside = path.with_name(f"{CATALOG_FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                side = path.with_name(CATALOG_FILE + suffix)
                if side.exists():
                    side.rename(aside.with_name(aside.name + suffix))
            notices.append(f"the old catalog was kept as {aside}")
        for cache in (INDEX_FILE, INDEX_FILE + ".json", NEIGHBOURS_FILE, SAME_FILE):
            with contextlib.suppress(FileNotFoundError):
                (home / cache).unlink()
        catalog = Catalog(path)
        try:
            catalog.restore(folders, meta, marks)
        finally:
            catalog.close()
    n_marks = len({m[0] for m in marks})
    notices.append(f"new catalog: {len(folders)} folder{'s' if len(folders) != 1 else ''} and {n_marks} "
                   f"\"not duplicates\" mark{'s' if n_marks != 1 else ''} recovered; indexing the photos again")
    return notices
