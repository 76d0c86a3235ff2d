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
