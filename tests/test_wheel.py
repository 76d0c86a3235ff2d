"""The wheel is complete on its own: built, installed without -e into a fresh venv, run elsewhere.

The venv reuses this test venv's packages (torch, open_clip, PySide6...) through a .pth line, so
nothing is downloaded; clipfind itself comes only from the wheel. Everything runs from a folder
outside the repository, so nothing is found there by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "README.md", "clipfind", "gui", "assets")
ICONS = sorted(p.name for p in (ROOT / "assets" / "icons").glob("*.svg"))
CHECK = r"""
import importlib.util, sys
from pathlib import Path

import clipfind, clipfind_gui
for package in (clipfind, clipfind_gui):
    assert "site-packages" in package.__file__, package.__file__
assert importlib.util.find_spec("gui") is None, "the wheel must not install a top-level gui"

from PySide6.QtWidgets import QApplication
app = QApplication([])
from clipfind_gui.icons import icon
for name in ("clipfind", "search", "trash"):
    assert not icon(name).isNull() and not icon(name).pixmap(32, 32).isNull(), name
assert icon("no-such-icon").isNull()

import open_clip
from clipfind.embedding.spec import TINY_MODEL, ModelSpec, check_model_name
from clipfind.embedding.torch_model import register_tiny_model
check_model_name(TINY_MODEL)  # from the config files alone
register_tiny_model()
assert open_clip.get_model_config(TINY_MODEL)["embed_dim"] == 64
assert ModelSpec.parse(TINY_MODEL, None) == ModelSpec(TINY_MODEL, None)
print("ok")
"""


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run(args, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so the build leaves nothing in the working tree."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(out)], cwd=source)
    (built,) = out.glob("clipfind-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with only the wheel installed, and this venv's packages on its path."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    elsewhere = root.parent
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=elsewhere)
    python = root / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=elsewhere).stdout.strip())
    # A plain path line: the test venv's own .pth files (its editable clipfind) are not run.
    (site / "test-venv-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=elsewhere)
    return root


def test_the_wheel_holds_the_assets_and_no_top_level_gui(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"clipfind/assets/icons/{icon}" for icon in ICONS} <= set(names)
    assert "clipfind/assets/model_configs/clipfind-tiny.json" in names
    assert {"clipfind/embedding/spec.py", "clipfind/embedding/torch_model.py", "clipfind_gui/app.py",
            "clipfind_gui/icons.py"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("gui", "tests", "bench", "assets")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "clipfind-gui = clipfind_gui.app:main" in text and "clipfind = clipfind.cli:run" in text


def test_the_installed_commands_run_outside_the_repository(venv: Path, tmp_path: Path) -> None:
    models = _run([str(venv / "bin" / "clipfind"), "models"], cwd=tmp_path, CLIPFIND_HOME=str(tmp_path / "home"))
    assert "ViT-B-32" in models.stdout
    gui_help = _run([str(venv / "bin" / "clipfind-gui"), "--help"], cwd=tmp_path, QT_QPA_PLATFORM="offscreen")
    assert "usage" in gui_help.stdout.lower()


def test_icons_and_the_tiny_model_load_from_the_installed_package(venv: Path, tmp_path: Path) -> None:
    check = _run([str(venv / "bin" / "python"), "-c", CHECK], cwd=tmp_path, QT_QPA_PLATFORM="offscreen",
                 HF_HUB_OFFLINE="1")
    assert check.stdout.strip().endswith("ok")
