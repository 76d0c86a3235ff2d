"""The clipfind desktop app (PySide6): a thin front end over the clipfind core."""

from .compat import keep_singletons_alive

keep_singletons_alive()
