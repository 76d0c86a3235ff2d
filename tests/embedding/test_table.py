"""clipfind.embedding.table: every advertised model exists in the installed open_clip as described.

No weights are needed: names, tags and sizes are checked against open_clip's registry and configs.
"""

from __future__ import annotations

import re

import open_clip
import pytest
import timm
import tomllib

from clipfind.embedding import table as model_table
from clipfind.embedding.spec import DEFAULT_MODEL, DEFAULT_PRETRAINED, ModelSpec
from clipfind.embedding.table import MODELS, ModelRow, default_tag, lookup, table_markdown
from tests.helpers import ROOT

ROW_IDS = [f"{row.name}/{row.pretrained}" for row in MODELS]


@pytest.mark.parametrize("row", MODELS, ids=ROW_IDS)
def test_row_is_a_pretrained_pair_of_open_clip(row: ModelRow) -> None:
    assert (row.name, row.pretrained) in open_clip.list_pretrained()
    assert open_clip.get_pretrained_cfg(row.name, row.pretrained)["hf_hub"]  # downloadable through the Hub


@pytest.mark.parametrize("row", MODELS, ids=ROW_IDS)
def test_row_dim_and_image_size_match_the_config(row: ModelRow) -> None:
    config = open_clip.get_model_config(row.name)
    assert config["embed_dim"] == row.dim
    assert config["vision_cfg"]["image_size"] == row.image_size
    timm_name = config["vision_cfg"].get("timm_model_name")
    assert timm_name is None or timm_name in timm.list_models()  # MobileCLIP's FastViT is in this timm


@pytest.mark.parametrize("row", MODELS, ids=ROW_IDS)
def test_row_names_the_extra_it_needs(row: ModelRow) -> None:
    """A model whose text tower and tokenizer come from `transformers` (xlm-roberta-base-ViT-B-32) is
    listed with the `multilingual` extra, which installs it; the others need no extra. SigLIP
    models, whose tokenizers open_clip picks by name, are not listed at all."""
    text_cfg = open_clip.get_model_config(row.name)["text_cfg"]
    hf = "hf_tokenizer_name" in text_cfg or "hf_model_name" in text_cfg
    assert row.extra == ("multilingual" if hf else "")
    assert "siglip" not in row.name.lower()
    if row.extra:
        assert f"pip install 'clipfind[{row.extra}]'" in row.note


def test_the_extras_are_in_pyproject() -> None:
    """pip install 'clipfind[multilingual]' installs what the torch path (transformers) and the
    torch-free tokenizer (tokenizers) need."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for extra in {row.extra for row in MODELS if row.extra}:
        names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in extras[extra]}
        assert {"transformers", "tokenizers"} <= names, extras[extra]


def test_the_multilingual_row() -> None:
    row = lookup("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k")
    assert row is not None and row.dim == 512 and row.download_text == "1.5 GB"
    assert open_clip.get_model_config(row.name)["text_cfg"]["hf_tokenizer_name"] == "xlm-roberta-base"
    assert default_tag("xlm-roberta-base-ViT-B-32") == "laion5b_s13b_b90k"


def test_rows_are_unique_and_described() -> None:
    assert len({(row.name, row.pretrained) for row in MODELS}) == len(MODELS)
    for row in MODELS:
        assert row.licence and row.note and row.download_mb > 0


def test_default_model_is_the_first_row() -> None:
    assert (MODELS[0].name, MODELS[0].pretrained) == (DEFAULT_MODEL, DEFAULT_PRETRAINED)
    assert model_table.DEFAULT_ROW is MODELS[0]
    assert "default" in MODELS[0].note


def test_default_tag() -> None:
    assert default_tag("ViT-B-32") == "laion2b_s34b_b79k"  # the first ViT-B-32 row, not openai
    assert default_tag("ViT-L-14") == "laion2b_s32b_b82k"
    assert default_tag("RN50") is None
    assert default_tag("hf-hub:org/repo") is None


def test_lookup() -> None:
    assert lookup("ViT-B-32", "openai") is MODELS[1]
    assert lookup("ViT-B-32", None) is None
    assert lookup("ViT-B-32", "nope") is None


def test_download_text() -> None:
    assert lookup("ViT-B-32", "laion2b_s34b_b79k").download_text == "600 MB"
    assert lookup("ViT-L-14", "laion2b_s32b_b82k").download_text == "1.7 GB"


def test_table_markdown_lists_every_row() -> None:
    text = table_markdown()
    lines = text.strip().splitlines()
    assert lines[0].startswith("| --model | --pretrained |")
    assert len(lines) == 2 + len(MODELS)
    for row, line in zip(MODELS, lines[2:], strict=True):
        assert line.startswith(f"| `{row.name}` | `{row.pretrained}` | {row.dim} | {row.image_size} px |")
        assert line.count("|") == 8


@pytest.mark.parametrize("row", MODELS, ids=ROW_IDS)
def test_spec_from_row(row: ModelRow) -> None:
    spec = ModelSpec.parse(row.name, row.pretrained)
    assert spec.identity == f"{row.name}/{row.pretrained}"


def test_the_readme_shows_this_table() -> None:
    """README's table is this one, word for word: regenerate it with `clipfind models`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n", readme.index("<!-- models table:")) + 1
    end = readme.index("<!-- end of models table -->")
    assert readme[start:end] == table_markdown(), "README.md's models table differs from clipfind/embedding/table.py"
