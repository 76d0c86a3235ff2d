"""PySide6 6.12.0's Signal.emit drops a reference to True on every call: thousands of emits freed True and
aborted the interpreter at exit ("Fatal Python error: bool_dealloc"), the CI crash after the GUI suite."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

EMITS = """
import sys
{imports}
from PySide6.QtCore import QObject, Signal

class Source(QObject):
    ping = Signal(object)

source = Source()
for i in range(20_000):
    source.ping.emit(i)
print("emitted")
"""


def run(imports: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", EMITS.format(imports=imports)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_many_emits_do_not_crash_the_interpreter_once_gui_is_imported() -> None:
    proc = run("import gui")
    assert proc.returncode == 0 and "emitted" in proc.stdout, proc.stderr[-2000:]
    assert "bool_dealloc" not in proc.stderr


def test_the_guard_only_acts_where_emit_takes_a_reference() -> None:
    from gui.compat import keep_bools_alive

    before = sys.getrefcount(True)
    acted = keep_bools_alive()
    assert acted == (sys.getrefcount(True) > before + 1000)


VOID_CALLS = """
import sys
{imports}
from PySide6.QtCore import QPointF

point = QPointF()
for i in range(200_000):  # more than None's reference count at start
    point.setX(1.0)
print("called")
"""


def test_many_void_calls_do_not_free_none_once_gui_is_imported() -> None:
    """PySide6 6.12.0 takes a reference from None per call of a method that returns nothing (update(),
    setToolTip(), drawRect()...): a long session, or the map's frames, freed None ("none_dealloc")."""
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", VOID_CALLS.format(imports="import gui")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "called" in proc.stdout, proc.stderr[-2000:]
    assert "none_dealloc" not in proc.stderr


def test_the_none_guard_only_acts_where_a_void_call_takes_a_reference() -> None:
    from gui.compat import keep_none_alive

    before = sys.getrefcount(None)
    acted = keep_none_alive()
    assert acted == (sys.getrefcount(None) > before + 1000)
