"""Shared by the tests of clipfind.embedding: a tiny model with known weights, and no network."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
import safetensors.torch
import torch
from huggingface_hub import constants as hf_constants

from clipfind.embedding.spec import TINY_MODEL, model_configs
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


# -- a tiny multilingual model: XLM-R's text tower and tokenizer, in miniature -------------------------------

MULTILINGUAL_CORPUS = [
    "a photo of a dog on the beach at sunset", "my grandmother's birthday party with cake and candles",
    "собака на пляже на закате", "день рождения бабушки с тортом и свечами",
    "東京の夜景と北京の街並み", "海辺の犬と夕日", "猫が寝ている", "生日蛋糕和蜡烛",
    "café naïve façade Ærø Straße über Öl", "Ein Hund am Strand bei Sonnenuntergang",
    "un perro en la playa al atardecer", "une fête d'anniversaire chez mamie",
    "κύων στην παραλία", "كلب على الشاطئ", "कुत्ता समुद्र तट पर", "🐶 🏖️ 🌅 👨‍👩‍👧 family",
]


@dataclass(frozen=True)
class TinyMultilingual:
    """An open_clip model like xlm-roberta-base-ViT-B-32 (Hugging Face XLM-R text tower, mean pooling,
    XLM-R's tokenizer layout) with a few-MB config, random but known weights, all in a local folder."""

    name: str  # registered with open_clip in this process
    folder: Path  # the "Hub repo" of its text model: config.json and tokenizer.json
    tokenizer_file: Path
    checkpoint: Path  # the whole model's weights, as --pretrained FILE
    text_vectors: np.ndarray  # TEXTS through the reference model


def xlmr_tokenizer(vocab_size: int = 400) -> Any:
    """A Unigram tokenizer trained here, laid out like xlm-roberta-base's tokenizer.json (and as
    transformers 5 rebuilds it): <s> <pad> </s> <unk> first, whitespace split then Metaspace
    ("▁", prepended), <s> $A </s> around the text, <mask> last."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tokenizer.train_from_iterator(MULTILINGUAL_CORPUS * 5, trainer)
    tokenizer.add_special_tokens(["<mask>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return tokenizer


@pytest.fixture(scope="session")
def tiny_multilingual(tmp_path_factory: pytest.TempPathFactory) -> TinyMultilingual:
    pytest.importorskip("transformers", reason="the multilingual extra is not installed")
    from transformers import XLMRobertaConfig

    folder = tmp_path_factory.mktemp("xlm-roberta-tiny")
    tokenizer = xlmr_tokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=80, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    ).save_pretrained(folder)
    tiny = json.loads((model_configs() / f"{TINY_MODEL}.json").read_text(encoding="utf-8"))
    name = "clipfind-tiny-multilingual"
    config = {
        "embed_dim": tiny["embed_dim"], "vision_cfg": tiny["vision_cfg"],
        "text_cfg": {"hf_model_name": str(folder), "hf_tokenizer_name": str(folder), "hf_pooler_type": "mean_pooler"},
    }
    (folder / f"{name}.json").write_text(json.dumps(config), encoding="utf-8")
    if name not in open_clip.list_models():
        open_clip.add_model_config(folder / f"{name}.json")
    torch.manual_seed(4321)
    reference = open_clip.create_model(name, pretrained_text=False).eval()
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    safetensors.torch.save_file(state, folder / "tiny-multilingual.safetensors")
    tokens = open_clip.get_tokenizer(name)(MULTILINGUAL_TEXTS)
    with torch.inference_mode():
        text_vectors = reference.encode_text(tokens, normalize=True).numpy()
    return TinyMultilingual(name, folder, folder / "tokenizer.json", folder / "tiny-multilingual.safetensors",
                            text_vectors)


MULTILINGUAL_TEXTS = ["a photo of a dog", "собака на пляже", "東京の夜景", "café naïve", "🐶 family", ""]
