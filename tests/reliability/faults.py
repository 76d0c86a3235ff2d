"""Fault injection at clipfind's write points, in this process (for tests and the soak script).

Each installer patches one write point and returns a `Fault` that counts the calls it let
through and the faults it raised. Errors are the ones the real failure gives: SQLite's "database
or disk is full" at COMMIT, and OSError(ENOSPC / EROFS) from file writes. hnswlib's own
save reports nothing on a full disk and leaves a short file, so its fault does the same.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import hnswlib
import numpy as np

import clipfind.annindex as annindex
from clipfind.catalog import Catalog

POINTS = ("commit", "index_save", "sidecar", "neighbours")


@dataclass
class Fault:
    point: str
    after: int  # let this many calls through, then fail every one
    code: int = errno.ENOSPC
    calls: int = 0
    raised: int = 0

    def hit(self) -> bool:
        self.calls += 1
        if self.calls > self.after:
            self.raised += 1
            return True
        return False

    def os_error(self, path: object = None) -> OSError:
        return OSError(self.code, os.strerror(self.code), None if path is None else os.fspath(path))  # type: ignore[arg-type]


class _FaultyConnection:
    """A sqlite3.Connection whose COMMIT fails like a full disk (the transaction stays open)."""

    def __init__(self, db: sqlite3.Connection, fault: Fault) -> None:
        self._db = db
        self._fault = fault

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.strip().upper() == "COMMIT" and self._fault.hit():
            full = self._fault.code == errno.ENOSPC
            message = "database or disk is full" if full else "attempt to write a readonly database"
            raise sqlite3.OperationalError(message)
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def install(point: str, after: int = 0, code: int = errno.ENOSPC) -> tuple[Fault, Callable[[], None]]:
    """Arm a fault at `point`; returns it and a function that disarms it."""
    fault = Fault(point, after, code)
    stack = ExitStack()
    if point == "commit":
        real_connect = Catalog._connect

        def connect(self: Catalog) -> Any:
            return _FaultyConnection(real_connect(self), fault)

        _patch(stack, Catalog, "_connect", connect)
    elif point == "index_save":
        real_save = hnswlib.Index.save_index

        def save_index(self: hnswlib.Index, path: str) -> None:
            real_save(self, path)
            if fault.hit():  # what hnswlib really does on a full disk: a short file, no error
                size = os.path.getsize(path)
                with open(path, "r+b") as fh:
                    fh.truncate(size // 2)

        _patch(stack, hnswlib.Index, "save_index", save_index)
    elif point == "sidecar":
        real_write = annindex._write_synced

        def write_synced(path: Any, data: bytes) -> None:
            if fault.hit():
                with open(path, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                raise fault.os_error(path)
            real_write(path, data)

        _patch(stack, annindex, "_write_synced", write_synced)
    elif point == "neighbours":
        real_savez = np.savez

        def savez(file: Any, *args: Any, **kwargs: Any) -> None:
            if fault.hit():
                if hasattr(file, "write"):
                    file.write(b"PK\x03\x04 half a zip")
                raise fault.os_error()
            real_savez(file, *args, **kwargs)

        _patch(stack, np, "savez", savez)
    else:
        raise ValueError(f"unknown write point {point!r}; one of {POINTS}")
    return fault, stack.close


def _patch(stack: ExitStack, owner: object, name: str, value: object) -> None:
    old = getattr(owner, name)
    setattr(owner, name, value)
    stack.callback(setattr, owner, name, old)
