"""The front ends reach the core through one facade (issue 10, "One facade").

`gui/**.py` and `clipfind/cli.py` import from clipfind only `clipfind.library`, `clipfind.records`
and `clipfind.errors`: every result type a front end sees lives in records, every capability is a
Library method, so locking, folder and model policy are decided once, in the core. Imports inside
functions count, and `from clipfind import x` counts as importing `clipfind.x`. The core, in
turn, never imports Qt.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACADE = {"clipfind.library", "clipfind.records", "clipfind.errors"}
FRONT_ENDS = sorted((ROOT / "gui").rglob("*.py")) + [ROOT / "clipfind" / "cli.py"]
CORE = sorted((ROOT / "clipfind").rglob("*.py"))


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a file, at any depth; `from clipfind import x` gives
    clipfind.x, as x may be a module. Relative imports (a gui module importing its neighbours)
    are skipped."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "clipfind":
                for alias in node.names:
                    yield node.lineno, f"clipfind.{alias.name}"
            else:
                yield node.lineno, node.module


def _facade_breaches(path: Path) -> list[str]:
    breaches = []
    for line, module in imported_modules(path):
        if module != "clipfind" and not module.startswith("clipfind."):
            continue
        parts = module.split(".")
        if module == "clipfind":  # `import clipfind` gives the whole package
            breaches.append(f"{path.relative_to(ROOT)}:{line}: import clipfind")
        elif ".".join(parts[:2]) not in FACADE:
            breaches.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    return breaches


def test_the_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nfrom . import dialogs\nfrom clipfind.library import Library\nfrom clipfind.records import Query\n"
        "from clipfind import __version__\nimport clipfind.search as s\n"
        "def f():\n    from clipfind.catalog import Catalog\n    from clipfind import library\n"
        "class C:\n    def m(self):\n        import clipfind\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        breaches = _facade_breaches(probe)
    finally:
        ROOT = saved
    assert breaches == ["probe.py:5: clipfind.__version__", "probe.py:6: clipfind.search",
                        "probe.py:8: clipfind.catalog", "probe.py:12: import clipfind"]


@pytest.mark.parametrize("path", FRONT_ENDS, ids=lambda p: str(p.relative_to(ROOT)))
def test_front_ends_import_only_the_facade(path: Path) -> None:
    breaches = _facade_breaches(path)
    assert not breaches, "front ends import only " + ", ".join(sorted(FACADE)) + ":\n" + "\n".join(breaches)


def test_front_ends_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in FRONT_ENDS}
    assert {"clipfind/cli.py", "gui/app.py", "gui/main_window.py"} <= names


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_never_imports_qt(path: Path) -> None:
    qt = [f"{line}: {module}" for line, module in imported_modules(path)
          if module.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6")]
    assert not qt, f"{path.relative_to(ROOT)} imports Qt: {qt}"
