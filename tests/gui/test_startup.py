"""The installed `clipfind-gui` starts, shows its window and quits through the CLIPFIND_STARTUP_PROBE hook.

bench/startup.py times app start with this hook; these tests only prove it works (no timing asserted):
the probe file gets a "window" line (window shown, event loop running), then a "model" line (background
model load ended), and the app exits 0, with the tiny random-weight model, offscreen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(sys.executable).parent / "clipfind-gui"  # the console script users launch
TIMEOUT = 60  # s: torch import and the tiny model's load on a busy 2-core machine


def start_with_probe(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    assert APP.exists(), f"the clipfind-gui entry point is not installed at {APP} (pip install -e .)"
    probe = tmp_path / "probe"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "CLIPFIND_STARTUP_PROBE": str(probe)}
    proc = subprocess.run([str(APP)], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return proc, probe.read_text().splitlines() if probe.exists() else []


def check(proc: subprocess.CompletedProcess[str], lines: list[str]) -> None:
    assert proc.returncode == 0, f"clipfind-gui exited {proc.returncode}:\n{proc.stderr}"
    assert [line.split()[0] for line in lines] == ["window", "model"], lines
    window, model = (float(line.split()[1]) for line in lines)
    assert window <= model


@pytest.mark.slow
def test_first_run_window_then_model(tiny_env: Path, trash_home: Path, tmp_path: Path) -> None:
    check(*start_with_probe(tmp_path))


@pytest.mark.slow
def test_library_window_then_model(tiny_env: Path, trash_home: Path, photo_folder: Path, tmp_path: Path) -> None:
    """A home with indexed photos: once the model is loaded the app catches up on the folder, and still quits."""
    subprocess.run([sys.executable, "-m", "clipfind.cli", "index", str(photo_folder)], check=True,
                   capture_output=True, timeout=TIMEOUT * 5)
    check(*start_with_probe(tmp_path))
