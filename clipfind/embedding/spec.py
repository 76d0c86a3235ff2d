"""Which model and weights a catalog's vectors come from, and what the user is told about a model
whichever path runs it (unknown name, random weights). Light to import (no torch), so commands
that never run the model (status, dupes) start fast.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING

from clipfind.embedding import table
from clipfind.errors import ClipfindError, ModelLoadError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # Python 3.11+; only a type here

DEFAULT_MODEL = "ViT-B-32"  # the first row of table.MODELS (tested)
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
HF_HUB_PREFIX = "hf-hub:"
TINY_MODEL = "clipfind-tiny"  # a few-MB architecture for tests and benchmarks, config shipped with clipfind
# How the image tower runs (clipfind.embedding.calibrate); "auto" measures once per machine and model.
MODES = ("fp32", "bf16", "fp16", "int8", "onnx", "onnx-int8")
ONNX_MODES = ("onnx", "onnx-int8")  # run by ONNX Runtime: no torch needed once exported
GPU_MODES = ("fp16",)  # on a CUDA or MPS device only: a CPU emulates half precision, many times slower
GPU_KINDS = ("cuda", "mps")  # torch device types that are a GPU
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
            return cls(name, table.default_tag(name) or (tags[0] if tags else None))
        pretrained = pretrained.strip()
        if pretrained.lower() in ("", "none"):
            return cls(name, None)
        if is_checkpoint_path(pretrained):
            return cls(name, os.path.abspath(os.path.expanduser(pretrained)))
        return cls(name, pretrained.lower().replace("-", "_"))


def check_precision(precision: str, device_kind: str) -> None:
    """Refuse, before anything is loaded, a precision that the device cannot run (`device_kind`: a
    torch device type, "cpu", "cuda" or "mps"). A ClipfindError, not a ModelLoadError: the indexer
    goes on without a model that cannot be loaded (no weights yet), not without one asked for wrong."""
    if precision in GPU_MODES and device_kind not in GPU_KINDS:
        raise ClipfindError(
            f"--precision {precision} runs on a GPU only (cuda or mps), and the model runs on {device_kind} here; "
            "use --precision auto (measures what is fastest here) or fp32."
        )


def model_configs() -> Traversable:
    """clipfind's own open_clip model configs (clipfind-tiny), installed as package data."""
    return files("clipfind.assets") / "model_configs"


def unknown_model(name: str) -> ModelLoadError:
    return ModelLoadError(
        f"Unknown model '{name}'. Run `clipfind models` to see the supported models "
        "(any open_clip architecture name or hf-hub:org/repo works too)."
    )


def check_model_name(name: str) -> None:
    """Refuse an architecture name that neither open_clip nor clipfind has a config for, from the
    config files alone: importing open_clip costs seconds, and a catalog of another model would
    otherwise answer an unknown name by advising to re-embed with it."""
    if ":" in name:  # hf-hub:ORG/REPO and the like: only the hub can tell
        return
    found = importlib.util.find_spec("open_clip")
    if found is None or found.origin is None:  # an install without it: the model load says why
        return
    config = f"{name.replace('/', '-')}.json"
    if not (os.path.isfile(os.path.join(os.path.dirname(found.origin), "model_configs", config))
            or (model_configs() / config).is_file()):
        raise unknown_model(name)


def warn_if_random(spec: ModelSpec) -> None:
    """Random weights are for tests and benchmarks: say so whichever path (torch or ONNX Runtime)
    runs the model. One line attributed here, so a process that opens both says it once."""
    if spec.pretrained is None and not spec.is_hub_repo:
        warnings.warn(
            f"{spec.name} is loaded with random weights (--pretrained none): search results are meaningless.",
            UserWarning,
            stacklevel=1,  # attributed here, whoever calls
        )
