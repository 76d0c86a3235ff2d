from __future__ import annotations

import numpy as np
import open_clip
import PIL.Image
import pytest

from clipfind.embedding.preprocess import FastPreprocess, fast_preprocess


def images() -> list[PIL.Image.Image]:
    rng = np.random.default_rng(0)
    shapes = [(500, 375), (375, 500), (224, 224), (1000, 230), (300, 1200), (100, 60), (225, 224)]
    return [PIL.Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in shapes] + [
        PIL.Image.new("L", (320, 240), 90), PIL.Image.new("RGBA", (320, 240), (10, 20, 30, 255))]


@pytest.mark.parametrize("name", ["ViT-B-32", "ViT-B-32-256", "MobileCLIP2-S0", "clipfind-tiny"])
def test_matches_open_clip_transform(name: str) -> None:
    from clipfind.embedding.torch_model import register_tiny_model

    register_tiny_model()
    _, _, transform = open_clip.create_model_and_transforms(name, pretrained=None)
    fast = fast_preprocess(transform)
    assert isinstance(fast, FastPreprocess)
    for image in images():
        want = transform(image).numpy()
        got = fast(image)
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-5


def test_other_transform_shapes_fall_back() -> None:
    from torchvision import transforms as T

    assert fast_preprocess(T.Compose([T.Resize((224, 224)), T.ToTensor()])) is None
    assert fast_preprocess(lambda image: image) is None


def test_round_trips_through_a_dict_without_torchvision() -> None:
    _, _, transform = open_clip.create_model_and_transforms("ViT-B-32-256", pretrained=None)
    fast = fast_preprocess(transform)
    assert fast is not None
    again = FastPreprocess.from_dict(fast.to_dict())
    for image in images():
        np.testing.assert_array_equal(again(image), fast(image))
