"""Errors a user can act on: each carries a one-line message fit for stderr or a dialog."""

from __future__ import annotations

import os


class ClipfindError(Exception):
    """Base for errors shown to the user as-is (one line, says what to do)."""


class ImageLoadError(ClipfindError):
    """A photo that cannot be decoded; recorded in the catalog and skipped."""


class ModelLoadError(ClipfindError):
    """Model weights or architecture could not be loaded."""


class ModelMismatchError(ClipfindError):
    """The catalog's vectors come from another model than the one requested."""


class CatalogError(ClipfindError):
    """The catalog is unusable (newer schema, corrupt, not writable)."""


class LockedError(ClipfindError):
    """Another indexer holds the write lock on this home."""


class StorageError(ClipfindError):
    """The home folder cannot be written (disk full, read-only, I/O error); nothing is lost."""


def one_line(exc: BaseException, *, names: bool = True, limit: int = 200) -> str:
    """An exception as one short line for a message the user reads (stderr, a dialog, a report).

    An OSError reads as its reason followed by the files it concerns ("No space left on device:
    /photos/a.jpg"); file names are shown as text even where a library gives them as bytes
    (send2trash does), and are never cut. Anything else reads as its first non-blank line with
    its spaces collapsed (Pillow and torch messages can span lines), or as its type name when it
    has no text.

    Args:
        exc: the exception to describe.
        names: False leaves an OSError's file names out, for a message that names the file already.
        limit: the most characters of the reason kept (the file names come on top).
    """
    shown: list[str] = []
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if names:
            shown = [_as_text(n) for n in (exc.filename, exc.filename2) if n is not None]
    else:
        text = next((" ".join(line.split()) for line in str(exc).splitlines() if line.strip()), "")
        text = text or type(exc).__name__
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text + (": " + " -> ".join(shown) if shown else "")


def _as_text(name: object) -> str:
    """A file name as text: bytes are decoded the way the OS does (undecodable bytes escaped)."""
    if isinstance(name, (bytes, bytearray)):
        return os.fsdecode(bytes(name))
    return str(name)
