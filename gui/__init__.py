"""The clipfind desktop app (PySide6): a thin front end over the clipfind core."""

from .compat import keep_bools_alive

keep_bools_alive()
