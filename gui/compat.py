"""Work-arounds for defects of the Qt binding that the app would otherwise crash on."""

from __future__ import annotations

import ctypes
import sys


def keep_bools_alive() -> bool:
    """Guard against PySide6 6.12.0's ``SignalInstance.emit``, which returns True without a new reference.

    Each ``signal.emit(...)`` made from Python then takes one reference from ``True``; after a few
    thousand emits (progress, thumbnails, tasks) the interpreter frees ``True`` and aborts with "Fatal
    Python error: bool_dealloc", usually at exit. Python 3.12+ makes ``True`` immortal, so only older
    interpreters are hit. Where one emit is seen to take a reference, ``True`` and ``False`` get a
    reference count no run can use up, which is what 3.12 does for them anyway. Returns whether it did.
    """
    if sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    probe.ping.emit()
    if sys.getrefcount(True) >= before:
        return False
    for value in (True, False):
        ctypes.c_ssize_t.from_address(id(value)).value += 1 << 40  # ob_refcnt, the first field of every object
    return True
