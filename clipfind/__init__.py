"""clipfind: search your own photos by meaning, find duplicates, all on your machine."""

__version__ = "0.1.0"
