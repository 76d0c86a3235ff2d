"""clipfind.embedding.hf_tokenizer: the torch-free tokenizer gives exactly open_clip's HFTokenizer ids.

No download: a tiny Unigram tokenizer in XLM-R's layout is trained here (tests/embedding/conftest.py),
and open_clip's HFTokenizer (transformers' AutoTokenizer) reads the same local folder.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import open_clip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipfind.embedding.download import TOKENIZER_FILE, HubFile, hub_text_files
from clipfind.embedding.hf_tokenizer import INSTALL_EXTRA, HfTokenizer
from clipfind.embedding.tokenizer import QueryCut
from clipfind.errors import ModelLoadError
from tests.embedding.conftest import TinyMultilingual

pytest.importorskip("transformers", reason="the multilingual extra is not installed")

CASES = [
    "a photo of a dog on the beach",
    "",
    "   lots   of\tspace\n and\u3000ideographic space ",
    "собака на пляже на закате",
    "ДЕНЬ РОЖДЕНИЯ бабушки",  # upper case: XLM-R keeps case, so mostly unknown pieces here
    "東京の夜景と北京の街並み",
    "生日蛋糕和蜡烛 猫が寝ている",
    "café naïve façade Ærø Straße",
    "cafe\u0301 decomposed accent",
    "κύων στην παραλία, كلب على الشاطئ, कुत्ता समुद्र तट पर",
    "emoji 🐶🏖️🌅 family 👨‍👩‍👧",
    "&amp;lt;b&amp;gt; bold &quot;quoted&quot;",
    "mojibake: cafÃ©",
    "<s> inside </s> and <pad> <mask> text",
    "собака " * 100,  # longer than the context: cut, still ends with </s>
    "\u00ad soft hyphen, zero\u200bwidth, control \x07 bell",
]


@pytest.fixture(scope="module")
def reference(tiny_multilingual: TinyMultilingual) -> open_clip.tokenizer.HFTokenizer:
    tokenizer = open_clip.get_tokenizer(tiny_multilingual.name)
    assert isinstance(tokenizer, open_clip.tokenizer.HFTokenizer) and tokenizer.context_length == 77
    return tokenizer


@pytest.fixture(scope="module")
def ours(tiny_multilingual: TinyMultilingual) -> HfTokenizer:
    return HfTokenizer(tiny_multilingual.tokenizer_file)


@pytest.fixture(scope="module")
def from_transformers(
    reference: open_clip.tokenizer.HFTokenizer, tmp_path_factory: pytest.TempPathFactory
) -> HfTokenizer:
    """What torch_model saves beside an exported text tower: the tokenizer transformers built."""
    path = tmp_path_factory.mktemp("saved") / TOKENIZER_FILE
    reference.tokenizer.backend_tokenizer.save(str(path))
    return HfTokenizer(path, reference.context_length, reference.tokenizer.pad_token_id)


def _same(ours: HfTokenizer, reference: open_clip.tokenizer.HFTokenizer, texts: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QueryCut)
        np.testing.assert_array_equal(ours(texts), reference(texts).numpy())


@pytest.mark.parametrize("text", CASES)
def test_same_ids_as_open_clip(text: str, ours: HfTokenizer, from_transformers: HfTokenizer,
                               reference: open_clip.tokenizer.HFTokenizer) -> None:
    _same(ours, reference, [text])
    _same(from_transformers, reference, [text])


def test_a_batch_is_rows_of_single_texts(ours: HfTokenizer, reference: open_clip.tokenizer.HFTokenizer) -> None:
    _same(ours, reference, CASES)
    assert ours([]).shape == (0, 77) and ours([]).dtype == np.int64


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100))
def test_same_ids_on_any_text(tiny_multilingual: TinyMultilingual, text: str) -> None:
    reference = open_clip.get_tokenizer(tiny_multilingual.name)
    _same(HfTokenizer(tiny_multilingual.tokenizer_file), reference, [text])


def test_padding_and_special_tokens(ours: HfTokenizer) -> None:
    row = ours(["собака"])[0]
    length = int((row != 1).sum())
    assert row[0] == 0 and row[length - 1] == 2  # <s> ... </s>
    assert (row[length:] == 1).all() and ours.pad_id == 1  # XLM-R pads with 1, not 0


def test_a_long_query_is_cut_with_a_warning(ours: HfTokenizer) -> None:
    with pytest.warns(QueryCut, match="longer than the model reads"):
        row = ours(["собака " * 100])[0]
    assert len(row) == 77 and row[0] == 0 and row[-1] == 2 and 1 not in row
    with warnings.catch_warnings():
        warnings.simplefilter("error", QueryCut)
        ours(["собака на пляже"])  # a short one is not


def test_context_length_and_pad_id_are_the_models(tiny_multilingual: TinyMultilingual) -> None:
    short = HfTokenizer(tiny_multilingual.tokenizer_file, context_length=8, pad_id=1)
    with pytest.warns(QueryCut):
        assert short(["a photo of a dog on the beach at sunset"]).shape == (1, 8)


def test_without_the_tokenizers_package_the_error_says_what_to_install(
    tiny_multilingual: TinyMultilingual, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers -> ImportError
    with pytest.raises(ModelLoadError, match=INSTALL_EXTRA.replace("[", r"\[").replace("]", r"\]")):
        HfTokenizer(tiny_multilingual.tokenizer_file)


def test_the_real_models_tokenizer_setting_is_the_reproduced_one() -> None:
    """xlm-roberta-base-ViT-B-32: HFTokenizer from the Hub's xlm-roberta-base, open_clip's default
    context (77), default cleaning and mode; its text files are fetched with the weights."""
    text_cfg = open_clip.get_model_config("xlm-roberta-base-ViT-B-32")["text_cfg"]
    assert text_cfg["hf_tokenizer_name"] == text_cfg["hf_model_name"] == "xlm-roberta-base"
    assert "context_length" not in text_cfg and "tokenizer_mode" not in text_cfg
    assert "tokenizer_kwargs" not in text_cfg
    assert hub_text_files(text_cfg) == [
        HubFile("xlm-roberta-base", ("config.json",)), HubFile("xlm-roberta-base", (TOKENIZER_FILE,)),
    ]


def test_a_local_text_model_needs_nothing_from_the_hub(tiny_multilingual: TinyMultilingual) -> None:
    text_cfg = open_clip.get_model_config(tiny_multilingual.name)["text_cfg"]
    assert hub_text_files(text_cfg) == []
