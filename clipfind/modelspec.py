"""Which model and weights a catalog's vectors come from: light to import (no torch), so
commands that never run the model (status, dupes) start fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from clipfind import model_table
from clipfind.errors import ModelLoadError

DEFAULT_MODEL = "ViT-B-32"  # the first row of model_table.MODELS (tested)
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
HF_HUB_PREFIX = "hf-hub:"
# How the image tower runs (clipfind.runtime); "auto" measures once per machine and model.
MODES = ("fp32", "bf16", "int8", "onnx", "onnx-int8")
ONNX_MODES = ("onnx", "onnx-int8")  # run by ONNX Runtime: no torch needed once exported
PRECISIONS = ("auto", *MODES)
_CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz")


def is_checkpoint_path(pretrained: str) -> bool:
    """Tags are plain words like laion2b_s34b_b79k; anything path-like is a checkpoint file."""
    return (
        "/" in pretrained
        or os.sep in pretrained
        or pretrained.startswith(("~", "."))
        or pretrained.lower().endswith(_CHECKPOINT_SUFFIXES)
    )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which model and which weights; `identity` is what the catalog stores next to the vectors."""

    name: str  # open_clip architecture name, "clipfind-tiny", or "hf-hub:org/repo"
    pretrained: str | None  # open_clip tag, a checkpoint file path, or None for random weights

    @property
    def is_hub_repo(self) -> bool:
        return self.name.startswith(HF_HUB_PREFIX)

    @property
    def is_file(self) -> bool:
        return self.pretrained is not None and is_checkpoint_path(self.pretrained)

    @property
    def identity(self) -> str:
        """Stable across runs, so the catalog can refuse to mix vectors of different models."""
        if self.is_hub_repo:
            return self.name  # the repo carries its own weights
        if self.pretrained is None:
            return f"{self.name}/none"
        if self.is_file:
            return f"{self.name}/file:{os.path.abspath(os.path.expanduser(self.pretrained))}"
        return f"{self.name}/{self.pretrained}"

    @classmethod
    def parse(cls, name: str | None, pretrained: str | None) -> ModelSpec:
        """Build a spec from --model/--pretrained as typed.

        `pretrained` "none" or "" means random weights; None means the model's usual weights (the
        table's default tag, else open_clip's first tag, else random); paths get ~ expanded and
        are made absolute; tags are normalised the way open_clip matches them.
        """
        name = (name or "").strip() or DEFAULT_MODEL
        if name.startswith(HF_HUB_PREFIX):
            if pretrained and pretrained.strip().lower() != "none":
                raise ModelLoadError(
                    f"--pretrained cannot be used with {name}: the weights come from that repository."
                )
            return cls(name, None)
        name = name.replace("/", "-")  # open_clip accepts "ViT-B/32" for "ViT-B-32"
        if pretrained is None:
            import open_clip  # only here: the rest of this module must stay light to import

            tags = open_clip.list_pretrained_tags_by_model(name)
            return cls(name, model_table.default_tag(name) or (tags[0] if tags else None))
        pretrained = pretrained.strip()
        if pretrained.lower() in ("", "none"):
            return cls(name, None)
        if is_checkpoint_path(pretrained):
            return cls(name, os.path.abspath(os.path.expanduser(pretrained)))
        return cls(name, pretrained.lower().replace("-", "_"))
