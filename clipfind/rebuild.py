"""Recover from a damaged catalog: set it aside, start a new one with what can still be read.

The photos themselves are the source of truth, so the vectors are simply made again by the next
index pass; what only the catalog knew (the folders, the model, the user's "not duplicates"
marks) is copied over where SQLite can still read it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from clipfind.catalog import Catalog
from clipfind.home import CATALOG_FILE, INDEX_FILE, NEIGHBOURS_FILE, WriterLock

_MODEL_KEYS = ("model", "model_name", "model_pretrained", "dim")


def _salvage(path: Path) -> tuple[list[bytes], dict[str, str], list[tuple[int, str, int]]]:
    """Folders, model and marks of a damaged catalog: each read on its own, as far as it goes."""
    folders: list[bytes] = []
    meta: dict[str, str] = {}
    marks: list[tuple[int, str, int]] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return folders, meta, marks
    queries = {
        "folders": "SELECT path FROM folders",
        "meta": f"SELECT key, value FROM meta WHERE key IN ({','.join('?' * len(_MODEL_KEYS))})",
        "marks": "SELECT mark, content_hash, files FROM not_duplicate_marks",
        "pairs": "SELECT hash_a, hash_b FROM not_duplicates",  # a catalog of schema 1
    }
    try:
        for name, sql in queries.items():
            try:
                rows = db.execute(sql, _MODEL_KEYS if name == "meta" else ()).fetchall()
            except sqlite3.Error:
                continue
            if name == "folders":
                folders = [bytes(r[0]) if isinstance(r[0], (bytes, memoryview)) else str(r[0]).encode() for r in rows]
            elif name == "meta":
                meta = {k: v for k, v in rows}
            elif name == "marks":
                marks += [(int(m), str(h), int(n)) for m, h, n in rows]
            else:
                start = max((m for m, _, _ in marks), default=0) + 1
                for i, (a, b) in enumerate(rows, start=start):
                    marks += [(i, a, 2)] if a == b else [(i, a, 1), (i, b, 1)]
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
        for cache in (INDEX_FILE, INDEX_FILE + ".json", NEIGHBOURS_FILE):
            with contextlib.suppress(FileNotFoundError):
                (home / cache).unlink()
        catalog = Catalog(path)
        try:
            catalog.restore(folders, meta, marks)
        finally:
            catalog.close()
    n_marks = len({m for m, _, _ in marks})
    notices.append(f"new catalog: {len(folders)} folder{'s' if len(folders) != 1 else ''} and {n_marks} "
                   f"\"not duplicates\" mark{'s' if n_marks != 1 else ''} recovered; indexing the photos again")
    return notices
