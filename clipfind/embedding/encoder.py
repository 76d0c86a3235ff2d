"""What indexing needs from an image encoder, whichever way it runs (torch or ONNX Runtime)."""

from __future__ import annotations

from typing import Any, Protocol

import PIL.Image

from clipfind.embedding.spec import ModelSpec
from clipfind.records import Vectors


class ImageEncoder(Protocol):
    """The image side of a model: what the indexer calls. Implemented by
    clipfind.embedding.torch_model.ClipModel and clipfind.embedding.onnx.OnnxImageEncoder."""

    spec: ModelSpec
    dim: int
    image_size: int
    notices: list[str]

    def preprocess(self, image: PIL.Image.Image) -> Any: ...  # (3, H, W) float32, numpy or torch

    def encode_images(self, batch: Any) -> Vectors: ...  # (n, 3, H, W) -> (n, dim) unit rows
