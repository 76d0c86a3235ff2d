"""The torch-free tokenizer gives exactly open_clip's token ids."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from open_clip.tokenizer import default_bpe

from clipfind.embedding.tokenizer import BpeTokenizer

REFERENCE = open_clip.get_tokenizer("ViT-B-32")
OURS = BpeTokenizer(default_bpe())

CASES = [
    "dog on a beach at sunset",
    "",
    "   lots   of\tspace\n",
    "DON'T Shout, it's the CAT's toy!!! I'll, we've, they're, I'm, he'd",
    "1999 photos, 3.14 pie, #hashtag @someone e-mail: a.b@c.de",
    "café naïve façade Ærø Straße",
    "東京の夜景 and 北京",
    "emoji 🐶🏖️🌅 family 👨‍👩‍👧",
    "&amp;lt;b&amp;gt; bold &quot;quoted&quot; &#39;apos&#39;",
    "mojibake: cafÃ©",
    "<start_of_text> inside <END_OF_TEXT> text",
    "word " * 120,  # longer than the context: cut, still ends with the end token
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "\u00ad soft hyphen, zero\u200bwidth, control \x07 bell",
]


@pytest.mark.parametrize("text", CASES)
def test_same_ids_as_open_clip(text: str) -> None:
    np.testing.assert_array_equal(OURS([text]), REFERENCE([text]).numpy())


def test_a_batch_is_rows_of_single_texts() -> None:
    np.testing.assert_array_equal(OURS(CASES), REFERENCE(CASES).numpy())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_same_ids_on_any_text(text: str) -> None:
    np.testing.assert_array_equal(OURS([text]), REFERENCE([text]).numpy())
