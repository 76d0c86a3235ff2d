"""open_clip's eval transform (resize, centre crop, normalise) done in Pillow and numpy.

The torchvision version spends ~20 ms per photo in ToTensor and Normalize on small tensors
(torch's per-op overhead, and its thread pool contending with the model's); the same
arithmetic in numpy takes about 1 ms, which matters when the model does ~100 photos a second.
The resize is Pillow's in both, so the tensors agree to float rounding. FastPreprocess needs no
torch, so an indexer running the tower in ONNX Runtime never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import PIL.Image

# Steps that only make sure of RGB / tensor form; the fast path does both itself.
_PASS_THROUGH = {"MaybeConvertMode", "MaybeToTensor", "ToTensor"}


class FastPreprocess:
    """Resize the shorter side to `size`, centre-crop `crop`, scale to 0..1 and normalise."""

    def __init__(self, size: int, crop: tuple[int, int], resample: PIL.Image.Resampling,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = size
        self.crop = crop
        self.resample = resample
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._scale = (1.0 / (255.0 * np.asarray(std, np.float32))).reshape(3, 1, 1)
        self._offset = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(3, 1, 1)

    def to_dict(self) -> dict[str, Any]:
        """Enough to build it again without torchvision (see clipfind.embedding.onnx)."""
        return {"size": self.size, "crop": list(self.crop), "resample": int(self.resample),
                "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FastPreprocess:
        crop = d["crop"]
        return cls(int(d["size"]), (int(crop[0]), int(crop[1])), PIL.Image.Resampling(int(d["resample"])),
                   d["mean"], d["std"])

    def __call__(self, image: PIL.Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        # torchvision's rule: the shorter side becomes `size`, the longer is truncated.
        if width <= height:
            new = (self.size, int(self.size * height / width))
        else:
            new = (int(self.size * width / height), self.size)
        if new != image.size:
            image = image.resize(new, self.resample)
        crop_h, crop_w = self.crop
        if image.width < crop_w or image.height < crop_h:
            return self._array(_pad_to(image, crop_w, crop_h))
        top = int(round((image.height - crop_h) / 2.0))
        left = int(round((image.width - crop_w) / 2.0))
        return self._array(image.crop((left, top, left + crop_w, top + crop_h)))

    def _array(self, image: PIL.Image.Image) -> np.ndarray:
        # Transposed while still bytes, then scaled into one preallocated array: ~10x faster than
        # converting first (the float transpose copy and temporaries dominated).
        pixels = np.asarray(image).transpose(2, 0, 1)
        out = np.empty(pixels.shape, dtype=np.float32)
        np.multiply(pixels, self._scale, out=out)
        out -= self._offset
        return out


def _pad_to(image: PIL.Image.Image, width: int, height: int) -> PIL.Image.Image:
    """CenterCrop pads with zeros when the image is smaller than the crop (tiny inputs)."""
    canvas = PIL.Image.new("RGB", (max(width, image.width), max(height, image.height)))
    canvas.paste(image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2))
    left, top = (canvas.width - width) // 2, (canvas.height - height) // 2
    return canvas.crop((left, top, left + width, top + height))


def fast_preprocess(transform: Callable[[PIL.Image.Image], Any]) -> FastPreprocess | None:
    """The fast equivalent of an open_clip eval transform, or None if it is of another shape."""
    from torchvision import transforms as T

    filters = {
        T.InterpolationMode.BICUBIC: PIL.Image.Resampling.BICUBIC,
        T.InterpolationMode.BILINEAR: PIL.Image.Resampling.BILINEAR,
        T.InterpolationMode.NEAREST: PIL.Image.Resampling.NEAREST,
        T.InterpolationMode.LANCZOS: PIL.Image.Resampling.LANCZOS,
    }
    steps = list(getattr(transform, "transforms", []))
    names = [type(step).__name__ for step in steps]
    core = [step for step, name in zip(steps, names) if name not in _PASS_THROUGH]
    if len(core) != 3 or not isinstance(core[0], T.Resize) or not isinstance(core[1], T.CenterCrop):
        return None
    resize, centre, normalize = core
    if not isinstance(normalize, T.Normalize) or resize.max_size is not None:
        return None
    size = resize.size if isinstance(resize.size, int) else (resize.size[0] if len(resize.size) == 1 else None)
    resample = filters.get(resize.interpolation)
    if size is None or resample is None:
        return None
    crop = tuple(int(c) for c in centre.size)
    return FastPreprocess(size, (crop[0], crop[-1]), resample, normalize.mean, normalize.std)
