"""The supported models as data, so the code, `clipfind models` and the README show one table.

Every row is an open_clip (architecture, pretrained tag) pair that tests/embedding/test_table.py checks
against the installed open_clip. Download sizes are the fp32 checkpoints (parameters x 4 bytes).
Licences are those the weights are published under; read them before commercial use. Speeds in
the notes are bench/inference.py's image-tower rates in the mode clipfind picks on that machine.

Rows with an `extra` need that optional install of clipfind; their download adds the text model's
tokenizer and config (a few MB) to the checkpoint's size. The multilingual row's text tower is a
Hugging Face model (xlm-roberta-base), which open_clip builds with `transformers`: hence
`pip install 'clipfind[multilingual]'`. Its tokenizer runs without torch (clipfind.embedding.hf_tokenizer),
so once the text tower is exported to ONNX a query needs neither torch nor transformers.
Left out: xlm-roberta-large-ViT-H-14 (about 1.2 billion parameters, a 4.8 GB download: for a GPU,
not a desktop CPU), the nllb-clip models (NLLB's tokenizer prefixes a language code the user would
have to pick; weights CC-BY-NC), and SigLIP models (their tokenizers are not in clipfind's extras).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One supported model: what to pass to --model/--pretrained and what the user should know."""

    name: str  # open_clip architecture name (--model)
    pretrained: str  # open_clip pretrained tag (--pretrained)
    dim: int  # embedding dimension stored in the catalog
    image_size: int  # square input side in pixels
    licence: str  # licence of the published weights
    download_mb: int  # approximate size of the weights download
    note: str
    extra: str = ""  # the optional install it needs: pip install 'clipfind[extra]'

    @property
    def download_text(self) -> str:
        """Size as people read it ("600 MB", "1.7 GB"); a rough figure is all a user needs."""
        if self.download_mb >= 1000:
            return f"{self.download_mb / 1000:.1f} GB"
        return f"{round(self.download_mb, -1)} MB"


# The first row is the default model; the first row of each name gives that name's default tag.
MODELS: tuple[ModelRow, ...] = (
    ModelRow(
        "ViT-B-32", "laion2b_s34b_b79k", 512, 224, "MIT (LAION)", 605,
        "default: good balance of speed and quality; image tower 26 img/s on a 2-core AVX2 CPU (onnx-int8)",
    ),
    ModelRow(
        "ViT-B-32", "openai", 512, 224, "MIT (OpenAI CLIP)", 605,
        "the original CLIP; same speed as the default",
    ),
    ModelRow(
        "ViT-B-32-256", "datacomp_s34b_b86k", 512, 256, "MIT (LAION)", 605,
        "better than the default; image tower 24 img/s on a 2-core AVX2 CPU (onnx-int8)",
    ),
    ModelRow(
        "ViT-B-16", "laion2b_s34b_b88k", 512, 224, "MIT (LAION)", 599,
        "finer detail, about 4.5x slower than ViT-B-32",
    ),
    ModelRow(
        "ViT-L-14", "laion2b_s32b_b82k", 768, 224, "MIT (LAION)", 1710,
        "best quality here; about 20x slower than ViT-B-32: for a GPU",
    ),
    ModelRow(
        "MobileCLIP2-S0", "dfndr2b", 512, 256, "Apple AMLR (research use; read it first)", 300,
        "better published quality than ViT-B-32 at about its speed (24 img/s on a 2-core AVX2 CPU, "
        "ONNX Runtime), smallest download",
    ),
    ModelRow(
        "MobileCLIP-S2", "datacompdr", 512, 256, "Apple AMLR (research use; read it first)", 397,
        "quality above ViT-B-16 and a little faster; 3x slower than ViT-B-32",
    ),
    ModelRow(
        "xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k", 512, 224, "MIT (LAION)", 1465,
        "multilingual: queries in the 100 languages of its text tower, xlm-roberta-base; the image tower "
        "has ViT-B-32's architecture (so about its indexing speed); not measured here; "
        "needs `pip install 'clipfind[multilingual]'`",
        extra="multilingual",
    ),
)

DEFAULT_ROW = MODELS[0]


def default_tag(name: str) -> str | None:
    """The tag to use when only --model is given, so a table model never loads random weights."""
    return next((row.pretrained for row in MODELS if row.name == name), None)


def lookup(name: str, pretrained: str | None) -> ModelRow | None:
    """The row for a (name, tag) pair, e.g. to tell the download size in an error message."""
    return next((row for row in MODELS if row.name == name and row.pretrained == pretrained), None)


def table_markdown() -> str:
    """The table as Markdown, for the README and `clipfind models`."""
    lines = [
        "| --model | --pretrained | Dim | Input | Download | Weights licence | Notes |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in MODELS:
        lines.append(
            f"| `{row.name}` | `{row.pretrained}` | {row.dim} | {row.image_size} px | {row.download_text}"
            f" | {row.licence} | {row.note} |"
        )
    return "\n".join(lines) + "\n"
