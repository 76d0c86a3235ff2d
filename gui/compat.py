"""Work-arounds for defects of the Qt binding that the app would otherwise crash on.

PySide6 6.12.0 on Python < 3.12 returns two singletons without the new reference a caller owns:
``True`` from ``SignalInstance.emit`` and ``None`` from every wrapped method that returns nothing
(``QWidget.update()``, ``setToolTip()``, ``QPainter.drawRect()``, ``QPointF.setX()``...). Each call
takes one reference away; after enough of them Python frees the singleton and aborts ("Fatal Python
error: bool_dealloc" / "none_dealloc"), in a long session or at exit. Python 3.12+ makes both
immortal, so only older interpreters are hit. Where a call is seen to take a reference, the
singleton gets a reference count no run can use up, which is what 3.12 does for them anyway.
"""

from __future__ import annotations

import ctypes
import sys


def _immortal(*values: object) -> None:
    for value in values:
        ctypes.c_ssize_t.from_address(id(value)).value += 1 << 40  # ob_refcnt, the first field of every object


def keep_singletons_alive() -> tuple[bool, bool]:
    """Both guards (module docstring): (whether True/False were guarded, whether None was)."""
    return keep_bools_alive(), keep_none_alive()


def keep_none_alive() -> bool:
    """Guard None where a void Qt method is seen to take a reference from it. Returns whether it did."""
    if sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import QPointF

    point = QPointF()
    before = sys.getrefcount(None)
    point.setX(1.0)
    if sys.getrefcount(None) >= before:
        return False
    _immortal(None)
    return True


def keep_bools_alive() -> bool:
    """Guard True and False where ``signal.emit(...)`` is seen to take a reference. Returns whether it did."""
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
    _immortal(True, False)
    return True
