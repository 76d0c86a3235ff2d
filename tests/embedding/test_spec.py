"""clipfind.embedding.spec: --model / --pretrained as typed become the spec the catalog records."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipfind.embedding.spec import DEFAULT_MODEL, DEFAULT_PRETRAINED, TINY_MODEL, ModelSpec
from clipfind.errors import ModelLoadError


def test_parse_defaults() -> None:
    assert ModelSpec.parse(None, None) == ModelSpec(DEFAULT_MODEL, DEFAULT_PRETRAINED)
    assert ModelSpec.parse("", None) == ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    assert ModelSpec.parse("ViT-L-14", None) == ModelSpec("ViT-L-14", "laion2b_s32b_b82k")  # the table's choice
    assert ModelSpec.parse("RN50", None) == ModelSpec("RN50", "openai")  # else open_clip's first tag
    assert ModelSpec.parse(TINY_MODEL, None) == ModelSpec(TINY_MODEL, None)  # no weights exist


@pytest.mark.parametrize("none", ["none", "None", "", "  "])
def test_parse_none_means_random_weights(none: str) -> None:
    spec = ModelSpec.parse("ViT-B-32", none)
    assert spec == ModelSpec("ViT-B-32", None)
    assert spec.identity == "ViT-B-32/none"


def test_parse_tags_are_normalised_like_open_clip_does() -> None:
    spec = ModelSpec.parse("ViT-B/32", "LAION2B-s34b-b79k")
    assert spec == ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    assert spec.identity == "ViT-B-32/laion2b_s34b_b79k"
    assert ModelSpec.parse("ViT-B-32", "openai").identity == "ViT-B-32/openai"


def test_parse_file_paths_expand_home_and_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = ModelSpec.parse("ViT-B-32", "~/weights/b32.safetensors")
    assert spec.pretrained == str(tmp_path / "weights" / "b32.safetensors")
    assert spec.identity == f"ViT-B-32/file:{tmp_path}/weights/b32.safetensors"
    monkeypatch.chdir(tmp_path)
    assert ModelSpec.parse("ViT-B-32", "b32.bin").pretrained == str(tmp_path / "b32.bin")
    assert ModelSpec("ViT-B-32", "~/x.pt").identity == f"ViT-B-32/file:{tmp_path}/x.pt"


def test_parse_hf_hub_names() -> None:
    spec = ModelSpec.parse("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None)
    assert spec == ModelSpec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None)
    assert spec.identity == "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert ModelSpec.parse("hf-hub:org/repo", "none") == ModelSpec("hf-hub:org/repo", None)
    with pytest.raises(ModelLoadError, match="weights come from that repository"):
        ModelSpec.parse("hf-hub:org/repo", "openai")
