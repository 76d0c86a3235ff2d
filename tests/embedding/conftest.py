"""Shared by the tests of clipfind.embedding: a tiny model with known weights, and no network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import pytest
import safetensors.torch
import torch
from huggingface_hub import constants as hf_constants

from clipfind.embedding.spec import TINY_MODEL
from clipfind.embedding.torch_model import register_tiny_model

TEXTS = ["a photo of a dog", "sunset over the sea", "birthday cake with candles"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process nothing may reach the Hub, whatever a test does."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(7))


@dataclass(frozen=True)
class Saved:
    """A tiny model with known weights, saved the ways users and the Hub store them."""

    safetensors: Path
    bin: Path
    image_vectors: np.ndarray
    text_vectors: np.ndarray
    images: Path  # the input images, for subprocesses


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, images: torch.Tensor) -> Saved:
    register_tiny_model()
    torch.manual_seed(1234)
    reference = open_clip.create_model(TINY_MODEL).eval()
    folder = tmp_path_factory.mktemp("saved")
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    safetensors.torch.save_file(state, folder / "tiny.safetensors")
    torch.save(state, folder / "tiny.bin")
    torch.save(images, folder / "images.pt")
    tokens = open_clip.get_tokenizer(TINY_MODEL)(TEXTS)
    with torch.inference_mode():
        image_vectors = reference.encode_image(images, normalize=True).numpy()
        text_vectors = reference.encode_text(tokens, normalize=True).numpy()
    return Saved(folder / "tiny.safetensors", folder / "tiny.bin", image_vectors, text_vectors, folder / "images.pt")
