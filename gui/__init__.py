"""The clipfind desktop app (PySide6): a thin front end over the clipfind core."""
