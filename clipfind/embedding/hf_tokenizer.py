"""open_clip's HFTokenizer without torch or transformers, so a multilingual query can be answered
through an exported text tower alone.

open_clip's HFTokenizer (xlm-roberta-base-ViT-B-32 and other models whose text tower is a Hugging
Face model) cleans the text, then runs transformers' tokenizer, which imports torch. The tokenizer
itself is Rust code in Hugging Face's `tokenizers` package (no torch): this module runs the same
tokenizer.json through it, with the same cleaning, truncation and padding, and returns the ids as an
int64 numpy array. tests/embedding/test_hf_tokenizer.py checks it against open_clip's on
non-English text.

Which tokenizer.json: transformers 5 rebuilds XLM-R's pipeline from the hub's file (its vocabulary
and normalizer) rather than running the file as it is. clipfind.embedding.torch_model therefore
saves the tokenizer transformers actually built (`backend_tokenizer`) beside the exported text
tower, and this class reads that file, so both paths tokenize alike whatever the transformers
version; the export is kept only if its vectors match torch's.

`tokenizers` comes with the `multilingual` extra (pip install 'clipfind[multilingual]').
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import ftfy
import numpy as np

from clipfind.embedding.tokenizer import warn_cut
from clipfind.errors import ModelLoadError

EXTRA = "multilingual"
INSTALL_EXTRA = f"pip install 'clipfind[{EXTRA}]'"
DEFAULT_CONTEXT_LENGTH = 77  # open_clip's, when a model's text_cfg names none (xlm-roberta-base-ViT-B-32)


def missing_extra(what: str, package: str) -> ModelLoadError:
    """The one-line error for a model whose text side needs a package of the multilingual extra."""
    return ModelLoadError(f"{what} needs the `{package}` package, which is not installed: {INSTALL_EXTRA}")


class HfTokenizer:
    """Text -> (n, context_length) int64 ids like open_clip's HFTokenizer in its default setting
    ("whitespace" cleaning, no tokenizer mode, separator kept): the tokenizer's own special tokens
    around the text (XLM-R: <s> ... </s>), cut to the context, padded with `pad_id`."""

    def __init__(self, tokenizer_file: Path | str, context_length: int = DEFAULT_CONTEXT_LENGTH,
                 pad_id: int | None = None) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise missing_extra("This model's text tokenizer", "tokenizers") from e
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        if pad_id is None:
            pad_id = tokenizer.token_to_id("<pad>")
            if pad_id is None:
                raise ValueError(f"{tokenizer_file} has no <pad> token; pass pad_id")
        pad_token = tokenizer.id_to_token(pad_id)
        if pad_token is None:
            raise ValueError(f"{tokenizer_file} has no token {pad_id} to pad with")
        # What transformers sets for padding="max_length", truncation=True, max_length=context_length;
        # a file saved from a tokenizer in use may carry settings of its own, which go.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=context_length, stride=0, strategy="longest_first", direction="right")
        tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_type_id=0, pad_token=pad_token,
                                 length=context_length)
        self._tokenizer = tokenizer
        self.context_length = context_length
        self.pad_id = pad_id

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """A text that is too long is cut (with a QueryCut warning) and still ends with the end token."""
        encodings = self._tokenizer.encode_batch([clean(text) for text in texts])
        for text, encoding in zip(texts, encodings, strict=True):
            if encoding.overflowing:
                warn_cut(text, self.context_length)
        out = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        return out.reshape(len(texts), self.context_length)


def clean(text: str) -> str:
    """open_clip's "whitespace" cleaning: mend mojibake, undo HTML escapes twice, one space between
    words. No lower-casing: XLM-R's vocabulary has cases."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip()
