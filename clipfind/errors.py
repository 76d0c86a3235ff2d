"""Errors a user can act on: each carries a one-line message fit for stderr or a dialog."""

from __future__ import annotations


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
