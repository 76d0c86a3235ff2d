"""The light part of clipfind.embedding never imports torch or open_clip (see its __init__).

A process that runs the model through ONNX Runtime, or never runs it (status, dupes, a text
search with the text tower exported), must not pay their seconds of import and ~750 MB. Each
light module is imported alone in a fresh interpreter, so nothing another test imported hides a
new `import torch`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import clipfind.embedding as embedding
from tests.helpers import ROOT

HEAVY = ("torch", "open_clip", "torchvision", "timm", "transformers")
PROBE = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"


def _modules_after_importing(module: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=True)
    return set(json.loads(proc.stdout))


@pytest.mark.parametrize("name", embedding.LIGHT_MODULES)
def test_a_light_module_imports_neither_torch_nor_open_clip(name: str) -> None:
    loaded = _modules_after_importing(f"clipfind.embedding.{name}")
    assert f"clipfind.embedding.{name}" in loaded
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY), f"clipfind.embedding.{name} imports {HEAVY}"


def test_every_module_is_on_one_side_of_the_boundary() -> None:
    """A new module must be declared light (and so tested here) or torch."""
    found = {p.stem for p in (ROOT / "clipfind" / "embedding").glob("*.py")} - {"__init__"}
    assert found == set(embedding.LIGHT_MODULES) | set(embedding.TORCH_MODULES)
    assert not set(embedding.LIGHT_MODULES) & set(embedding.TORCH_MODULES)
    for name in (*embedding.LIGHT_MODULES, *embedding.TORCH_MODULES):
        assert f"\n    {name} " in embedding.__doc__, f"{name} is missing from clipfind.embedding's docstring"


def test_the_torch_side_is_where_torch_is() -> None:
    """The boundary is where the docstring says: the torch modules do need torch."""
    loaded = _modules_after_importing("clipfind.embedding.torch_model")
    assert {"torch", "open_clip"} <= loaded
