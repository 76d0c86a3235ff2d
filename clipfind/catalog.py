"""The catalog: the only module that speaks SQL. One row per file, with its embedding.

A photo recorded while the model could not be loaded (offline, before its weights are downloaded)
is an ok row without a vector: `vector` and `vec_gen` are NULL. Its stat, content hash and
fingerprint are there, so the identical and same tiers see it; every vector reader skips it, and
the next index run with the model embeds it (`KnownFile.waiting`).

Paths are stored as the OS's bytes (BLOB), so names that are not valid UTF-8 survive.
Every write that changes vectors bumps a `generation` counter; each vector row records the
generation it was written in, so a vector index saved at generation G can be brought up to
date by reading only the rows newer than G.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipfind.errors import CatalogError, ModelMismatchError
from clipfind.fingerprint import SIDE, Capture
from clipfind.phototable import PhotoTable
from clipfind.records import TIERS, Failure, Ids, KeeperRules, PhotoInfo, Tier, Vectors

SCHEMA_VERSION = 7

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (path BLOB PRIMARY KEY, added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids are labels in the vector index
    path BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT,
    width INTEGER,
    height INTEGER,
    taken_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    vec_gen INTEGER,  -- NULL exactly where an ok row has no vector yet (it waits for the model)
    vector BLOB,
    indexed_at REAL NOT NULL,
    dev INTEGER,  -- st_dev, st_ino: two paths with the same pair are one file (links, bind mounts)
    ino INTEGER,
    ctime_ns INTEGER,  -- st_ctime_ns: changes when content is swapped back to the same size and mtime
    thumb BLOB,  -- the pixel fingerprint of the same-photo tier (clipfind.fingerprint), NULL until computed
    capture TEXT  -- the camera's capture record (fingerprint.Capture.to_text), NULL when none
);
-- Covering index: diffing a folder against the catalog never reads the vectors.
CREATE INDEX IF NOT EXISTS files_stat ON files (path, size, mtime_ns, status, id);
CREATE INDEX IF NOT EXISTS files_hash ON files (content_hash);
CREATE INDEX IF NOT EXISTS files_vec_gen ON files (vec_gen);
-- Partial covering indexes: one row per content for the duplicates' graph and for the same-photo
-- search, read without the rows' vectors and thumbnails (0.53 and 0.54 s at 100k photos, 0.16 and 0.19 s
-- with them). SQLite 3.40 does not count the length(thumb) term as covered, but the plan still gains.
CREATE INDEX IF NOT EXISTS files_embedded ON files (content_hash, id, status, vec_gen)
    WHERE status = 'ok' AND vec_gen IS NOT NULL;
CREATE INDEX IF NOT EXISTS files_fingerprinted ON files (content_hash, id, capture, status, length(thumb))
    WHERE status = 'ok' AND length(thumb) = 1936;
-- The columns that group photos by content and file (clipfind.phototable), read without the rows:
-- 0.085 s at 100k photos against 0.59 s for every row made into a PhotoInfo (new in version 7).
CREATE INDEX IF NOT EXISTS files_identity ON files (id, content_hash, dev, ino) WHERE status = 'ok';
-- "Not duplicates" marks: one row per content of a marked set, so marking 1,000 photos writes
-- 1,000 rows, not 500k pairs. files = how many files of that content the user marked: 2 or
-- more means byte-identical copies of it are not to be shown as duplicates either.
-- tier: the tier the mark was made in, where alone it hides the pair, NULL (marks made before
-- tiers): every tier.
CREATE TABLE IF NOT EXISTS not_duplicate_marks (
    mark INTEGER NOT NULL, content_hash TEXT NOT NULL, files INTEGER NOT NULL, tier TEXT,
    PRIMARY KEY (mark, content_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS not_duplicate_marks_hash ON not_duplicate_marks (content_hash);
-- Folders that could not be listed on the last pass: their photos are kept, and status says why.
CREATE TABLE IF NOT EXISTS folder_problems (path BLOB PRIMARY KEY, error TEXT NOT NULL);
-- The user's ticks in the duplicate review (1: remove, 0: keep), only those they clicked, so a
-- restart, a crash or a failed trash does not lose a review of hundreds of groups.
CREATE TABLE IF NOT EXISTS choices (path BLOB PRIMARY KEY, ticked INTEGER NOT NULL);
-- Crop checks made (clipfind.cropcheck.find_crops), by content: a pair costs about 2 ms, so each
-- is made once, not again on every catalog change or app start. crop: the crop's hash, '' for none.
CREATE TABLE IF NOT EXISTS crop_checks (
    a TEXT NOT NULL, b TEXT NOT NULL, crop TEXT NOT NULL, PRIMARY KEY (a, b)
) WITHOUT ROWID;
-- The rows of the files the last clean-up moved to the trash, whole (vector, fingerprint, stat),
-- so an undo puts a photo back in search and duplicates without the model.
CREATE TABLE IF NOT EXISTS trashed (
    batch INTEGER NOT NULL, trashed_at REAL NOT NULL,
    id INTEGER NOT NULL, path BLOB NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    content_hash TEXT, width INTEGER, height INTEGER, taken_at TEXT, status TEXT NOT NULL, error TEXT,
    vec_gen INTEGER, vector BLOB, indexed_at REAL NOT NULL, dev INTEGER, ino INTEGER, ctime_ns INTEGER,
    thumb BLOB, capture TEXT,
    PRIMARY KEY (batch, path)
);
"""

# Version 1 had no file identity and stored "not duplicates" as pairs.
_FROM_V1 = """
ALTER TABLE files ADD COLUMN dev INTEGER;
ALTER TABLE files ADD COLUMN ino INTEGER;
ALTER TABLE files ADD COLUMN ctime_ns INTEGER;
"""

# Version 2 had no pixel fingerprint: an existing catalog gains them on its next index run,
# from the files, without embedding again.
_FROM_V2 = """
ALTER TABLE files ADD COLUMN thumb BLOB;
ALTER TABLE files ADD COLUMN capture TEXT;
"""

# Version 3 had marks for every tier, no saved choices and no record of trashed files.
_FROM_V3 = """
ALTER TABLE not_duplicate_marks ADD COLUMN tier TEXT;
"""

_PHOTO_COLUMNS = "id, path, size, mtime_ns, content_hash, width, height, taken_at, dev, ino, capture"
# Every column of a files row, as the trashed table keeps it for an undo.
_FILE_COLUMNS = ("id, path, size, mtime_ns, content_hash, width, height, taken_at, status, error, vec_gen, vector, "
                 "indexed_at, dev, ino, ctime_ns, thumb, capture")
_RULES_KEY = "keeper_rules"
# The rows that have been through the model, and those recorded without it (vec_gen is NULL exactly
# where an ok row has no vector; the files_vec_gen index finds either kind without reading vectors).
_OK = "status = 'ok'"
_EMBEDDED = "status = 'ok' AND vec_gen IS NOT NULL"
_WAITING = "status = 'ok' AND vec_gen IS NULL"
# When a photo was taken: its EXIF capture date, else its file's modification time in local time (ISO).
_WHEN = "COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1e9, 'unixepoch', 'localtime'))"


def to_db(path: str) -> bytes:
    return os.fsencode(path)


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def from_db(raw: bytes | str) -> str:
    """os.fsdecode, with less work per call (a tenth of a second per 100k rows read)."""
    return raw if isinstance(raw, str) else raw.decode(_FS_ENCODING, _FS_ERRORS)


def folder_prefix(folder: str) -> bytes:
    """Bytes prefix matching files inside `folder` but not a sibling like `folder-old`."""
    raw = to_db(os.path.abspath(folder))
    return raw if raw.endswith(os.sep.encode()) else raw + os.sep.encode()


def _path_range(folder: str) -> tuple[bytes, bytes]:
    """A range over the path index, not a scan of every row: paths inside the folder sort between
    its prefix and the prefix with its last byte (the separator) raised by one."""
    prefix = folder_prefix(folder)
    return prefix, prefix[:-1] + bytes([prefix[-1] + 1])


def _filter_clauses(folder: str | None, date_from: str | None, date_to: str | None) -> tuple[list[str], list[object]]:
    """WHERE clauses and their arguments for indexed photos inside a folder (a range over the path
    index) and taken (else modified) within [date_from, date_to]: what search filters and the timeline share."""
    clauses: list[str] = [_OK]
    args: list[object] = []
    if folder is not None:
        clauses.append("path >= ? AND path < ?")
        args += _path_range(folder)
    if date_from is not None:
        clauses.append(f"{_WHEN} >= ?")
        args.append(date_from)
    if date_to is not None:
        clauses.append(f"{_WHEN} <= ?")
        args.append(date_to)
    return clauses, args


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What stat says of a file besides size and mtime: which file it is, and when its inode changed."""

    dev: int | None = None
    ino: int | None = None
    ctime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class KnownFile:
    id: int
    size: int
    mtime_ns: int
    status: str
    ino: int | None = None
    ctime_ns: int | None = None
    embedded: bool = True  # False for a photo recorded without the model: a run with it embeds it

    @property
    def waiting(self) -> bool:
        """Recorded while the model could not be loaded: to embed, though unchanged on disk."""
        return self.status == "ok" and not self.embedded


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A known file's id, pixel size, capture date and vector (None: it waits for the model): what a
    copy of it can reuse."""

    id: int
    width: int | None
    height: int | None
    taken_at: str | None
    vector: bytes | None
    thumb: bytes | None = None
    capture: str | None = None


class NotDuplicates:
    """The "not duplicates" marks, asked pair by pair: ``(a, b) in marks``.

    Two contents are not duplicates when one mark holds both; a content is not a duplicate of
    its own byte-identical copies when a mark holds two or more of its files.
    """

    def __init__(self, rows: Iterable[tuple[int, str, int]] = ()) -> None:
        self._marks: dict[str, set[int]] = {}
        self._own: set[str] = set()
        for mark, content_hash, files in rows:
            self._marks.setdefault(content_hash, set()).add(mark)
            if files >= 2:
                self._own.add(content_hash)

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return False
        a, b = pair
        if a == b:
            return a in self._own
        return not self._marks.get(a, set()).isdisjoint(self._marks.get(b, ()))

    def __bool__(self) -> bool:
        return bool(self._marks)


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """executescript would commit the open transaction; statements one by one stay inside it."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _photo(row: sqlite3.Row | tuple) -> PhotoInfo:
    """A PhotoInfo from the columns of _PHOTO_COLUMNS; the capture record is parsed only where there is one
    (most rows of a 100k library from phones have one, scans and exports do not)."""
    text = row[10]
    if text is None:
        return PhotoInfo(row[0], from_db(row[1]), row[2], row[3], row[4] or "", row[5], row[6], row[7], row[8], row[9])
    camera, gps = _camera_gps(text)
    return PhotoInfo(row[0], from_db(row[1]), row[2], row[3], row[4] or "", row[5], row[6], row[7], row[8], row[9],
                     camera, gps)


def _camera_gps(text: str) -> tuple[str | None, bool]:
    """Capture.from_text(text)'s camera and gps, read without building a Capture (photos() reads
    100k of them on every catalog change)."""
    parts = text.split("\t")
    if len(parts) == 3:
        return parts[0] or None, False
    if len(parts) == 4:
        return parts[0] or None, parts[3] == "1"
    capture = Capture.from_text(text)  # what it makes of anything else
    return capture.camera, capture.gps


class Catalog:
    """One SQLite connection; use one Catalog per thread."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise CatalogError(f"no catalog at {self.path}; run `clipfind index FOLDER` first")
        try:
            self._db = self._connect()
            try:
                self._migrate()
            except BaseException:
                self._db.close()  # a refused catalog keeps no -wal/-shm files beside it
                raise
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"cannot open the catalog {self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            return db
        except sqlite3.DatabaseError as exc:
            db.close()
            read_only = isinstance(exc, sqlite3.OperationalError) and not os.access(self.path.parent, os.W_OK)
            if not (read_only and self.path.is_file()):
                raise
        # A read-only home (a mounted backup, a write-protected share) can still be searched. With
        # nowhere to put SQLite's -shm file only an immutable open works, and on a read-only
        # disk nothing can change the catalog meanwhile anyway.
        uri = "file:" + urllib.parse.quote(os.fsencode(self.path.absolute()))
        for options in ("?mode=ro", "?mode=ro&immutable=1"):
            db = sqlite3.connect(uri + options, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
        raise sqlite3.OperationalError("the catalog is on a read-only disk and cannot be opened")

    def close(self) -> None:
        self._db.close()

    # -- schema and metadata -------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"the catalog {self.path} was written by a newer clipfind (schema {version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade clipfind or use another --home"
            )
        if version < SCHEMA_VERSION:
            with self.transaction():
                upgrade = version == 1
                if upgrade:
                    _run_script(self._db, _FROM_V1)
                if version in (1, 2):
                    _run_script(self._db, _FROM_V2)
                if version in (2, 3) and "tier" not in self._columns("not_duplicate_marks"):
                    _run_script(self._db, _FROM_V3)  # version 1 had no marks table: _SCHEMA makes it
                _run_script(self._db, _SCHEMA)
                if upgrade:
                    self._marks_from_pairs()
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}

    def _marks_from_pairs(self) -> None:
        """Version 1 kept one row per pair; each becomes a mark of its own (nothing is lost)."""
        pairs = self._db.execute("SELECT hash_a, hash_b FROM not_duplicates").fetchall()
        for mark, (a, b) in enumerate(pairs, start=1):
            if a == b:
                self._db.execute("INSERT INTO not_duplicate_marks (mark, content_hash, files) VALUES (?, ?, 2)",
                                 (mark, a))
            else:
                self._db.executemany("INSERT INTO not_duplicate_marks (mark, content_hash, files) VALUES (?, ?, 1)",
                                     ((mark, a), (mark, b)))
        self._db.execute("DROP TABLE not_duplicates")

    def transaction(self) -> AbstractContextManager[None]:
        """BEGIN IMMEDIATE so a writer takes the lock up front instead of failing mid-way."""
        return self._within("BEGIN IMMEDIATE")

    def snapshot(self) -> AbstractContextManager[None]:
        """A read transaction: several reads see one consistent state while a writer commits."""
        return self._within("BEGIN")

    @contextmanager
    def _within(self, begin: str) -> Iterator[None]:
        if self._db.in_transaction:  # nested: the outer block commits
            yield
            return
        self._db.execute(begin)
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # Also when COMMIT itself fails (a full disk): a transaction left open would make
            # every later block look nested, and nothing this connection writes would be saved.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self._get_meta("generation") or 0)

    @property
    def fingerprinted(self) -> int:
        """Moves on when fingerprints are added to photos already in the catalog (set_fingerprints)."""
        return int(self._get_meta("fingerprinted") or 0)

    def _bump_generation(self) -> int:
        gen = self.generation + 1
        self._set_meta("generation", str(gen))
        return gen

    @property
    def model_identity(self) -> str | None:
        return self._get_meta("model")

    @property
    def dim(self) -> int | None:
        value = self._get_meta("dim")
        return int(value) if value else None

    @property
    def model_name(self) -> str | None:
        return self._get_meta("model_name")

    @property
    def model_pretrained(self) -> str | None:
        value = self._get_meta("model_pretrained")
        return None if value in (None, "none") else value

    def check_model(self, identity: str) -> None:
        """Refuse to mix vectors of two models in one catalog."""
        current = self.model_identity
        if current not in (None, identity) and self.has_vectors():
            raise ModelMismatchError(
                f"this catalog holds vectors from {current}, not {identity}; pass --model/--pretrained "
                f"to match it, or run `clipfind index --reembed` to re-embed every photo with {identity}"
            )

    def bind_model(self, identity: str, dim: int, name: str, pretrained: str | None, *, reembed: bool = False) -> None:
        """Record the model of this catalog's vectors; with reembed, drop the old vectors first
        (also for the same model: the user asked for every photo to be embedded again)."""
        if self.model_identity == identity and self.dim == dim and not reembed:
            return
        if not reembed:
            self.check_model(identity)
        with self.transaction():
            # Forget embedded rows entirely: the next index pass embeds them again with the new model.
            # Rows recorded without a model hold nothing of one: they stay, and wait for this one.
            self._db.execute(f"DELETE FROM files WHERE {_EMBEDDED}")
            self._set_meta("model", identity)
            self._set_meta("model_name", name)
            self._set_meta("model_pretrained", pretrained or "none")
            self._set_meta("dim", str(dim))
            self._bump_generation()

    def restore(self, folders: Iterable[bytes], meta: dict[str, str], marks: Iterable[tuple]) -> None:
        """Fill a new catalog with what was saved from a damaged one (clipfind.rebuild).

        marks: (mark, content hash, files) rows, or (mark, content hash, files, tier) ones.
        """
        with self.transaction():
            self._db.executemany("INSERT OR IGNORE INTO folders VALUES (?, ?)", ((f, time.time()) for f in folders))
            for key, value in meta.items():
                self._set_meta(key, value)
            self._db.executemany(
                "INSERT OR IGNORE INTO not_duplicate_marks (mark, content_hash, files, tier) VALUES (?, ?, ?, ?)",
                ((*m[:3], m[3] if len(m) > 3 else None) for m in marks))

    # -- folders ------------------------------------------------------------------------
    def add_folder(self, folder: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO folders VALUES (?, ?)", (to_db(os.path.abspath(folder)), time.time())
            )

    def remove_folder(self, folder: str) -> int:
        """Forget a folder and the files under it that no other indexed folder covers.

        Returns how many files were dropped. A parent folder that stays indexed keeps every
        file; a subfolder that stays indexed keeps its own.
        """
        folder = os.path.abspath(folder)
        prefix = folder_prefix(folder)
        with self.transaction():
            self._db.execute("DELETE FROM folders WHERE path = ?", (to_db(folder),))
            others = [to_db(f) for f in self.folders()]
            if any(prefix.startswith(folder_prefix(from_db(o))) for o in others):
                return 0  # a parent still covers all of it
            sql = "DELETE FROM files WHERE substr(path, 1, ?) = ?"
            args: list[object] = [len(prefix), prefix]
            for other in others:
                inner = folder_prefix(from_db(other))
                if inner.startswith(prefix):  # an indexed subfolder keeps its photos
                    sql += " AND substr(path, 1, ?) != ?"
                    args += [len(inner), inner]
            cur = self._db.execute(sql, args)
            if cur.rowcount:
                self._bump_generation()
            return cur.rowcount

    def covering_folder(self, path: str) -> str | None:
        """The indexed folder that holds `path`, if any (the innermost one)."""
        raw = to_db(os.path.abspath(path))
        best = None
        for folder in self.folders():
            if raw.startswith(folder_prefix(folder)) and (best is None or len(folder) > len(best)):
                best = folder
        return best

    # -- folders that could not be listed ----------------------------------------------------
    def set_folder_problems(self, problems: dict[str, str], under: Iterable[str]) -> None:
        """Replace the problems recorded under the folders just scanned with what this pass found."""
        with self.transaction():
            for root in under:
                prefix = folder_prefix(root)
                self._db.execute(
                    "DELETE FROM folder_problems WHERE path = ? OR substr(path, 1, ?) = ?",
                    (to_db(os.path.abspath(root)), len(prefix), prefix),
                )
            self._db.executemany(
                "INSERT OR REPLACE INTO folder_problems VALUES (?, ?)",
                ((to_db(p), e) for p, e in problems.items()),
            )

    def folder_problems(self) -> list[Failure]:
        rows = self._db.execute("SELECT path, error FROM folder_problems ORDER BY path")
        return [Failure(from_db(p), e) for p, e in rows]

    def folders(self) -> list[str]:
        return [from_db(r[0]) for r in self._db.execute("SELECT path FROM folders ORDER BY path")]

    # -- files: reading -----------------------------------------------------------------
    def known_files(self, folder: str | None = None, *, paths: Iterable[str] | None = None) -> dict[str, KnownFile]:
        """What the catalog knows of the files in ``folder`` (all files when None), or of exactly
        these ``paths`` (a watcher's batch: a few rows, however large their folder)."""
        sql = "SELECT path, id, size, mtime_ns, status, ino, ctime_ns, status != 'ok' OR vec_gen IS NOT NULL FROM files"
        if paths is not None:
            rows: Iterable[tuple] = self._rows_in(sql + " WHERE path IN ({marks})", [to_db(p) for p in paths])
        elif folder is not None:
            rows = self._db.execute(sql + " WHERE path >= ? AND path < ?", _path_range(folder))
        else:
            rows = self._db.execute(sql)
        return {from_db(row[0]): KnownFile(*row[1:7], bool(row[7])) for row in rows}

    def _rows_in(self, sql: str, values: Sequence[object], *after: object) -> Iterator[tuple]:
        """The rows of ``sql`` for every value, its ``{marks}`` an IN list asked in chunks that stay
        under SQLite's limit on parameters; ``after``: the parameters that follow the list."""
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            yield from self._db.execute(sql.replace("{marks}", ",".join("?" * len(chunk))), (*chunk, *after))

    def files_in(self, folder: str) -> int:
        """How many files the catalog holds inside ``folder`` (counted in the path index)."""
        return self._db.execute("SELECT count(*) FROM files WHERE path >= ? AND path < ?", _path_range(folder)).fetchone()[0]

    def photos(self, ids: Iterable[int] | None = None) -> list[PhotoInfo]:
        """Successfully indexed photos (all, or those of `ids` that still exist)."""
        if ids is None:
            rows = self._db.execute(f"SELECT {_PHOTO_COLUMNS} FROM files WHERE status = 'ok' ORDER BY id")
            return [_photo(r) for r in rows]
        return [_photo(r) for r in self._rows_in(
            f"SELECT {_PHOTO_COLUMNS} FROM files WHERE status = 'ok' AND id IN ({{marks}})", list(ids))]

    def photo_table(self, leave_out: Sequence[str] = ()) -> PhotoTable:
        """Every indexed photo as a :class:`PhotoTable`, by id: ids, content hashes and file identities
        read now, each whole row when asked for (read it within one catalog state: :meth:`snapshot`).

        Args:
            leave_out: folders whose photos are not listed (those that cannot be reached now).
        """
        sql = f"SELECT id, COALESCE(content_hash, ''), COALESCE(dev, -1), COALESCE(ino, -1) FROM files WHERE {_OK}"
        args: list[object] = []
        for folder in leave_out:
            sql += " AND NOT (path >= ? AND path < ?)"
            args.extend(_path_range(folder))
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        ids, hashes, devices, inodes = zip(*rows) if rows else ((), (), (), ())
        return PhotoTable(np.array(ids, dtype=np.int64), hashes, np.array(devices, dtype=np.int64),
                          np.array(inodes, dtype=np.int64), self.photos)

    def photo_by_path(self, path: str) -> tuple[PhotoInfo, Vectors] | None:
        """The embedded photo at a path and its vector; None also for one that waits for the model
        (a search by it encodes the file instead). :meth:`photo_at` finds either."""
        row = self._db.execute(
            f"SELECT {_PHOTO_COLUMNS}, vector FROM files WHERE path = ? AND {_EMBEDDED} AND vector IS NOT NULL",
            (to_db(os.path.abspath(path)),),
        ).fetchone()
        if row is None:
            return None
        return _photo(row), np.frombuffer(row[11], dtype=np.float32).copy()

    def photo_at(self, path: str) -> PhotoInfo | None:
        """The indexed photo at a path, with or without a vector (commands that take photo paths)."""
        row = self._db.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM files WHERE path = ? AND status = 'ok'", (to_db(os.path.abspath(path)),)
        ).fetchone()
        return _photo(row) if row is not None else None

    def photos_with_hashes(self, hashes: Iterable[str]) -> list[PhotoInfo]:
        """The photos holding any of these contents (the ignore-list manager shows a mark's photos)."""
        return [_photo(r) for r in self._rows_in(
            f"SELECT {_PHOTO_COLUMNS} FROM files WHERE status = 'ok' AND content_hash IN ({{marks}}) ORDER BY id",
            sorted(set(hashes)))]

    def failure_by_path(self, path: str) -> Failure | None:
        row = self._db.execute(
            "SELECT path, error FROM files WHERE path = ? AND status = 'failed'", (to_db(os.path.abspath(path)),)
        ).fetchone()
        return Failure(from_db(row[0]), row[1] or "") if row else None

    def vector_by_hash(self, content_hash: str, *, embedded: bool = True) -> StoredContent | None:
        """What the catalog knows of an embedded file with this content, if any; with embedded=False,
        of any photo with it (an embedded one first), for a run without the model."""
        where = _EMBEDDED if embedded else _OK
        row = self._db.execute(
            "SELECT id, width, height, taken_at, vector, thumb, capture FROM files "
            f"WHERE content_hash = ? AND {where} ORDER BY vec_gen IS NULL LIMIT 1",
            (content_hash,),
        ).fetchone()
        return StoredContent(*row) if row else None

    def fingerprints(self) -> tuple[Ids, list[bytes], list[str | None]]:
        """(ids, thumbnails, capture records) of the photos fingerprinted so far, for the same tier."""
        rows = self._db.execute(
            "SELECT id, thumb, capture FROM files WHERE status = 'ok' AND thumb IS NOT NULL ORDER BY id"
        ).fetchall()
        return np.fromiter((r[0] for r in rows), np.int64, len(rows)), [r[1] for r in rows], [r[2] for r in rows]

    def fingerprint_rows(self) -> tuple[Ids, list[str], list[str | None]]:
        """(ids, content hashes, capture records) of one fingerprinted photo per content (the lowest
        id), ascending: what the same-photo search keeps, without reading the thumbnails."""
        rows = self._db.execute(
            # SQLite takes the bare columns from the row that gives MIN(id)
            # The literal, as the partial index files_fingerprinted says it, so that the index is used.
            f"SELECT MIN(id), content_hash, capture FROM files WHERE status = 'ok' AND length(thumb) = {SIDE * SIDE} "
            "GROUP BY content_hash ORDER BY 1"
        ).fetchall()
        return np.fromiter((r[0] for r in rows), np.int64, len(rows)), [r[1] for r in rows], [r[2] for r in rows]

    def thumbs(self, ids: Ids) -> np.ndarray:
        """The fingerprints' thumbnails of these ids (m, SIDE, SIDE), in their order. KeyError for an
        id without one."""
        wanted = [int(i) for i in ids]
        got = dict(self._rows_in("SELECT id, thumb FROM files WHERE id IN ({marks}) AND length(thumb) = ?", wanted,
                                 SIDE * SIDE))
        return np.frombuffer(b"".join(got[i] for i in wanted), np.uint8).reshape(len(wanted), SIDE, SIDE)

    def unfingerprinted(self) -> list[tuple[int, str, str]]:
        """(id, path, content hash) of the photos embedded before fingerprints existed, or whose capture
        record predates GPS (three tab-separated fields: schema 3): an index run fingerprints them
        from the files, without embedding them again."""
        rows = self._db.execute(
            "SELECT id, path, content_hash FROM files WHERE status = 'ok' AND (thumb IS NULL OR "
            "(capture IS NOT NULL AND length(capture) - length(replace(capture, char(9), '')) = 2))")
        return [(i, from_db(p), h) for i, p, h in rows]

    def set_fingerprints(self, rows: Sequence[tuple[int, bytes, str | None]]) -> None:
        """Store (id, thumbnail, capture record) of photos already in the catalog. Not a new
        generation (no vector changed, so the neighbour graph stays valid): a count of its own."""
        if not rows:
            return
        with self.transaction():
            self._set_meta("fingerprinted", str(self.fingerprinted + 1))
            self._db.executemany("UPDATE files SET thumb = ?, capture = ? WHERE id = ?",
                                 [(t, c, i) for i, t, c in rows])

    def crop_checks(self) -> dict[tuple[str, str], str]:
        """The crop checks made so far: (hash, hash) sorted -> the crop's hash, "" when neither is."""
        try:
            return {(a, b): crop for a, b, crop in self._db.execute("SELECT a, b, crop FROM crop_checks")}
        except sqlite3.OperationalError:  # a read-only catalog of schema 4 or older: none made yet
            return {}

    def add_crop_checks(self, checks: Iterable[tuple[tuple[str, str], str]]) -> None:
        """Keep these crop checks (a cache: not a new generation, nothing a group is read from)."""
        rows = [(a, b, crop) for (a, b), crop in checks]
        if rows:
            try:
                with self.transaction():
                    self._db.executemany("INSERT OR REPLACE INTO crop_checks (a, b, crop) VALUES (?, ?, ?)", rows)
            except sqlite3.OperationalError:  # a read-only home: checked again next time, nothing lost
                pass

    def ids_with_hash(self, content_hash: str, *, embedded: bool = False) -> list[tuple[int, str]]:
        """(id, path) of the photos with this content; with embedded, only those with a vector."""
        rows = self._db.execute(
            f"SELECT id, path FROM files WHERE content_hash = ? AND {_EMBEDDED if embedded else _OK}",
            (content_hash,),
        )
        return [(i, from_db(p)) for i, p in rows]

    def vectors(
        self, *, since_generation: int | None = None, ids: Sequence[int] | None = None
    ) -> tuple[Ids, Vectors]:
        """(ids (n,), vectors (n, dim)) of the rows with a vector (never one that waits for the model),
        optionally only newer ones or only these ids."""
        dim = self.dim or 0
        if ids is not None:
            photos_ids: list[int] = []
            blobs: list[bytes] = []
            for i, v in self._rows_in(
                    f"SELECT id, vector FROM files WHERE {_EMBEDDED} AND vector IS NOT NULL AND id IN ({{marks}})", list(ids)):
                photos_ids.append(i)
                blobs.append(v)
        else:
            sql = f"SELECT id, vector FROM files WHERE {_EMBEDDED} AND vector IS NOT NULL"
            args: tuple = ()
            if since_generation is not None:
                sql += " AND vec_gen > ?"
                args = (since_generation,)
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
            photos_ids = [r[0] for r in rows]
            blobs = [r[1] for r in rows]
        out_ids = np.asarray(photos_ids, dtype=np.int64)
        if not blobs:
            return out_ids, np.zeros((0, dim), dtype=np.float32)
        return out_ids, np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()

    def one_per_content(self) -> Ids:
        """The lowest id of each content among the rows with a vector, ascending: the duplicates
        graph's rows (byte-identical copies share one), without reading a vector."""
        rows = self._db.execute(
            f"SELECT MIN(id) FROM files WHERE {_EMBEDDED} GROUP BY content_hash ORDER BY 1")  # files_embedded
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def ids_matching(
        self, folder: str | None = None, date_from: str | None = None, date_to: str | None = None
    ) -> Ids:
        """Ids of photos inside `folder` and taken (else modified) within [date_from, date_to]."""
        clauses, args = _filter_clauses(folder, date_from, date_to)
        rows = self._db.execute(f"SELECT id FROM files WHERE {' AND '.join(clauses)}", args)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def timeline(
        self, folder: str | None = None, date_from: str | None = None, date_to: str | None = None
    ) -> list[tuple[PhotoInfo, str]]:
        """Every photo with its date (capture date, else the file's local time), newest first, ties by
        id: the "All photos" view. A folder is a range over the path index; the sort is SQLite's own
        (about 0.3 s at 100k photos with the PhotoInfo built, measured in tests/test_catalog.py)."""
        clauses, args = _filter_clauses(folder, date_from, date_to)
        rows = self._db.execute(
            f"SELECT {_PHOTO_COLUMNS}, {_WHEN} AS taken FROM files WHERE {' AND '.join(clauses)} "
            "ORDER BY taken DESC, id DESC", args)
        return [(_photo(r), r[11]) for r in rows]

    def photo_folders(self) -> dict[str, int]:
        """How many photos each folder holds directly (not counting its subfolders), by the folder's
        path: the folder tree's counts, one pass over the path index without reading a vector."""
        counts: dict[str, int] = {}
        sep = os.sep.encode()
        for (raw,) in self._db.execute("SELECT path FROM files WHERE status = 'ok'"):
            cut = raw.rfind(sep)
            parent = raw[:cut] if cut > 0 else raw[: cut + 1]
            counts[parent] = counts.get(parent, 0) + 1
        return {from_db(k): v for k, v in counts.items()}

    def ok_ids(self) -> set[int]:
        return {r[0] for r in self._db.execute("SELECT id FROM files WHERE status = 'ok'")}

    def embedded_ids(self) -> set[int]:
        """The ids with a vector: exactly the labels the vector index should hold."""
        return {r[0] for r in self._db.execute(f"SELECT id FROM files WHERE {_EMBEDDED}")}

    def failures(self) -> list[Failure]:
        rows = self._db.execute("SELECT path, error FROM files WHERE status = 'failed' ORDER BY path")
        return [Failure(from_db(p), e or "") for p, e in rows]

    def count(self, status: str) -> int:
        return self._db.execute("SELECT count(*) FROM files WHERE status = ?", (status,)).fetchone()[0]

    def has_vectors(self) -> bool:
        """Whether any photo is embedded; unlike count("ok") it stops at the first (a count
        scans the whole table: 10-35 ms at 100k photos, most of an image query)."""
        return bool(self._db.execute(f"SELECT EXISTS (SELECT 1 FROM files WHERE {_EMBEDDED})").fetchone()[0])

    def waiting(self) -> int:
        """How many photos were recorded without the model and wait for it (in duplicates, not in search)."""
        return self._db.execute(f"SELECT count(*) FROM files WHERE {_WAITING}").fetchone()[0]

    # -- files: writing -----------------------------------------------------------------
    def put_photo(
        self,
        path: str,
        size: int,
        mtime_ns: int,
        content_hash: str,
        width: int | None,
        height: int | None,
        taken_at: str | None,
        vector: Vectors | bytes | None,
        stamp: FileStamp = FileStamp(),
        *,
        thumb: bytes | None = None,
        capture: str | None = None,
    ) -> int:
        """Insert or replace the row for `path`; a changed file keeps its id (its index label).
        vector None: recorded without the model (vec_gen NULL), it waits for the next run with it."""
        if vector is None:
            blob = None
        else:
            blob = vector if isinstance(vector, bytes) else np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        with self.transaction():
            gen = self._bump_generation()  # also without a vector: the photos the duplicates read changed
            return self._upsert(path, size, mtime_ns, content_hash, width, height, taken_at, "ok", None,
                                gen if blob is not None else None, blob, stamp, thumb, capture)

    def put_failure(self, path: str, size: int, mtime_ns: int, content_hash: str | None, error: str,
                    stamp: FileStamp = FileStamp()) -> int:
        with self.transaction():
            gen = self._bump_generation()  # a failed row may replace an indexed one
            return self._upsert(path, size, mtime_ns, content_hash, None, None, None, "failed", error, gen, None,
                                stamp, None, None)

    def _upsert(self, path: str, size: int, mtime_ns: int, content_hash: str | None, width: int | None,
                height: int | None, taken_at: str | None, status: str, error: str | None,
                gen: int | None, blob: bytes | None, stamp: FileStamp, thumb: bytes | None, capture: str | None) -> int:
        raw = to_db(path)
        row = self._db.execute("SELECT id FROM files WHERE path = ?", (raw,)).fetchone()
        values = (size, mtime_ns, content_hash, width, height, taken_at, status, error, gen, blob, time.time(),
                  stamp.dev, stamp.ino, stamp.ctime_ns, thumb, capture)
        if row:
            self._db.execute(
                "UPDATE files SET size=?, mtime_ns=?, content_hash=?, width=?, height=?, taken_at=?, "
                "status=?, error=?, vec_gen=?, vector=?, indexed_at=?, dev=?, ino=?, ctime_ns=?, thumb=?, capture=? "
                "WHERE id=?",
                (*values, row[0]),
            )
            return int(row[0])
        cur = self._db.execute(
            "INSERT INTO files (path, size, mtime_ns, content_hash, width, height, taken_at, status, error, vec_gen, "
            f"vector, indexed_at, dev, ino, ctime_ns, thumb, capture) VALUES ({','.join('?' * 17)})",
            (raw, *values),
        )
        return int(cur.lastrowid or 0)

    def move(self, file_id: int, new_path: str, size: int, mtime_ns: int,
             stamp: FileStamp = FileStamp()) -> int | None:
        """A renamed or moved file keeps its id and vector; only its path changes.

        Returns the id of the row the move replaced (a file renamed over another), if any: a
        label to delete from the index.
        """
        with self.transaction():
            replaced = self._db.execute(
                "DELETE FROM files WHERE path = ? AND id != ? RETURNING id", (to_db(new_path), file_id)
            ).fetchall()
            old = self._db.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
            self._db.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ?, dev = ?, ino = ?, ctime_ns = ? WHERE id = ?",
                (to_db(new_path), size, mtime_ns, stamp.dev, stamp.ino, stamp.ctime_ns, file_id),
            )
            if old is not None:  # the user's tick follows the photo to its new name
                self._db.execute("UPDATE OR REPLACE choices SET path = ? WHERE path = ?", (to_db(new_path), old[0]))
            self._bump_generation()
        return int(replaced[0][0]) if replaced else None

    def remove_paths(self, paths: Iterable[str]) -> list[int]:
        """Drop rows for files gone from disk; returns their ids (labels to delete from the index)."""
        removed: list[int] = []
        with self.transaction():
            for path in paths:
                row = self._db.execute("DELETE FROM files WHERE path = ? RETURNING id", (to_db(path),)).fetchone()
                self._db.execute("DELETE FROM choices WHERE path = ?", (to_db(path),))
                if row:
                    removed.append(int(row[0]))
            if removed:
                self._bump_generation()
        return removed

    # -- duplicates the user rejected -----------------------------------------------------
    def add_mark(self, files_per_hash: dict[str, int], tier: Tier | None = None) -> int:
        """Record one "not duplicates" mark over these contents, in one tier (None: every tier);
        returns its number."""
        with self.transaction():
            mark = 1 + (self._db.execute("SELECT max(mark) FROM not_duplicate_marks").fetchone()[0] or 0)
            self._db.executemany(
                "INSERT INTO not_duplicate_marks (mark, content_hash, files, tier) VALUES (?, ?, ?, ?)",
                ((mark, h, n, tier) for h, n in files_per_hash.items()),
            )
        return mark

    def remove_mark(self, mark: int) -> bool:
        """Take back one mark by its number; False when there is no such mark."""
        with self.transaction():
            return self._db.execute("DELETE FROM not_duplicate_marks WHERE mark = ?", (mark,)).rowcount > 0

    def remove_marks(self, hashes: Iterable[str]) -> int:
        """Take back every mark that holds all of these contents; returns how many."""
        wanted = sorted(set(hashes))
        if not wanted:
            return 0
        marks = ",".join("?" * len(wanted))
        with self.transaction():
            found = [r[0] for r in self._db.execute(
                f"SELECT mark FROM not_duplicate_marks WHERE content_hash IN ({marks}) "
                "GROUP BY mark HAVING count(*) = ?", (*wanted, len(wanted)))]
            self._db.executemany("DELETE FROM not_duplicate_marks WHERE mark = ?", ((m,) for m in found))
        return len(found)

    def marks(self) -> list[tuple[int, str, int]]:
        """Every (mark, content hash, files) row."""
        return self._db.execute("SELECT mark, content_hash, files FROM not_duplicate_marks ORDER BY mark").fetchall()

    def mark_rows(self) -> list[tuple[int, Tier | None, str, int]]:
        """Every (mark, tier, content hash, files) row, by mark: what the ignore-list manager lists."""
        return self._db.execute(
            "SELECT mark, tier, content_hash, files FROM not_duplicate_marks ORDER BY mark, content_hash").fetchall()

    def ignored_pairs(self) -> dict[Tier, NotDuplicates]:
        """The marks as each tier asks them (dupes.find_duplicates' ``ignored``): a mark made in a tier
        hides its pairs there only, a mark without a tier (made before tiers) in every tier."""
        rows = self.mark_rows()
        return {t: NotDuplicates((m, h, n) for m, tier, h, n in rows if tier is None or tier == t) for t in TIERS}

    # -- the user's review: ticks and keeper rules ---------------------------------------------
    def choices(self) -> dict[str, bool]:
        """path -> ticked for removal, for the photos whose tick the user set."""
        return {from_db(p): bool(t) for p, t in self._db.execute("SELECT path, ticked FROM choices")}

    def save_choices(self, changes: Mapping[str, bool]) -> None:
        """Record these ticks (upsert): cheap enough to call after every click."""
        if not changes:
            return
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO choices VALUES (?, ?)",
                                 ((to_db(p), int(bool(t))) for p, t in changes.items()))

    def clear_choices(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM choices")

    def keeper_rules(self) -> KeeperRules:
        """The saved keeper rules (the default rules when none were saved, or they cannot be read)."""
        text = self._get_meta(_RULES_KEY)
        if text is None:
            return KeeperRules()
        try:
            return KeeperRules.from_json(json.loads(text))
        except ValueError:
            return KeeperRules()

    def set_keeper_rules(self, rules: KeeperRules) -> None:
        with self.transaction():
            self._set_meta(_RULES_KEY, json.dumps(rules.to_json()))

    # -- the last batch moved to the trash, for an undo ------------------------------------------
    def forget_trashed(self, path: str, batch: int, when: float) -> int | None:
        """Drop the row of a file just moved to the trash, keeping it whole in batch `batch` of the
        trashed table; a batch other than the kept one's replaces it (only the last trash is undone).
        Returns the id removed, as remove_paths does."""
        raw = to_db(path)
        with self.transaction():
            self._db.execute("DELETE FROM trashed WHERE batch != ?", (batch,))
            self._db.execute(
                f"INSERT OR REPLACE INTO trashed (batch, trashed_at, {_FILE_COLUMNS}) "
                f"SELECT ?, ?, {_FILE_COLUMNS} FROM files WHERE path = ? AND status = 'ok'", (batch, when, raw))
            removed = self.remove_paths([path])
        return removed[0] if removed else None

    def next_trash_batch(self) -> int:
        """The number for a new batch of moves to the trash."""
        row = self._db.execute("SELECT max(batch) FROM trashed").fetchone()
        return 1 + (row[0] or 0)

    def trashed(self) -> tuple[float, list[PhotoInfo]] | None:
        """(when, photos) of the last batch moved to the trash that is not back yet, or None."""
        rows = self._db.execute(
            f"SELECT trashed_at, {_PHOTO_COLUMNS} FROM trashed WHERE batch = (SELECT max(batch) FROM trashed) "
            "ORDER BY id").fetchall()
        if not rows:
            return None
        return max(r[0] for r in rows), [_photo(r[1:]) for r in rows]

    def put_back_trashed(self, items: Sequence[tuple[str, FileStamp]]) -> list[int]:
        """Put the saved rows of these files, back from the trash, into the catalog under their old ids,
        with the stat of the file as it is now (a rename changes its ctime); a path the catalog meanwhile
        knows again keeps that row. All in one new generation. Returns the ids put back."""
        back: list[int] = []
        if not items:
            return back
        with self.transaction():
            gen = self._bump_generation()
            for path, stamp in items:
                raw = to_db(path)
                if self._db.execute("SELECT 1 FROM files WHERE path = ?", (raw,)).fetchone():
                    self._db.execute("DELETE FROM trashed WHERE path = ?", (raw,))
                    continue
                row = self._db.execute(
                    f"INSERT OR IGNORE INTO files ({_FILE_COLUMNS}) SELECT {_FILE_COLUMNS} FROM trashed "
                    "WHERE path = ? ORDER BY batch DESC LIMIT 1 RETURNING id", (raw,)).fetchone()
                if row is not None:
                    # A row without a vector stays without one (vec_gen NULL: it waits for the model).
                    self._db.execute("UPDATE files SET vec_gen = CASE WHEN vector IS NULL THEN NULL ELSE ? END, "
                                     "dev = ?, ino = ?, ctime_ns = ? WHERE id = ?",
                                     (gen, stamp.dev, stamp.ino, stamp.ctime_ns, row[0]))
                    back.append(int(row[0]))
                self._db.execute("DELETE FROM trashed WHERE path = ?", (raw,))
        return back

    def drop_trashed(self, paths: Iterable[str]) -> None:
        """Forget the saved rows of these files (back on disk but changed: the next index run reads them)."""
        with self.transaction():
            self._db.executemany("DELETE FROM trashed WHERE path = ?", ((to_db(p),) for p in paths))

    # -- moves to the trash in flight -----------------------------------------------------------
    def trash_pending(self) -> list[str]:
        """Files whose move to the trash began but was not recorded as done (the mover was killed)."""
        rows = self._db.execute("SELECT value FROM meta WHERE key LIKE 'trash_pending:%'")
        return [from_db(bytes.fromhex(r[0])) for r in rows]

    def set_trash_pending(self, path: str, pending: bool) -> None:
        raw = to_db(path)
        key = "trash_pending:" + hashlib.blake2b(raw, digest_size=16).hexdigest()
        with self.transaction():
            if pending:
                self._set_meta(key, raw.hex())
            else:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"

    def check_intact(self) -> None:
        """Writing into a damaged catalog could make it worse: refuse, and say how to recover."""
        try:
            intact = self.integrity_ok()
        except sqlite3.DatabaseError:
            intact = False
        if not intact:
            raise CatalogError(
                f"the catalog {self.path} is damaged; run `clipfind index --rebuild` to rebuild it from your "
                'photos (the "not duplicates" marks are kept where they can be read)'
            )

