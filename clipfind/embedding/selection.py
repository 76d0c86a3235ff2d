"""Which measured way to run the image tower is kept: the rules shared by the calibration in one
process (clipfind.embedding.calibrate) and a first run's measuring in child processes
(clipfind.embedding.first_run), on numpy arrays. Light to import (no torch), so the indexing
process of a first run can choose without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from clipfind.embedding.runtime import Choice
from clipfind.embedding.spec import ONNX_MODES

FIDELITY = 0.999  # minimum cosine to the fp32 vector, for every photo of the calibration batch
MIN_SPEEDUP = 1.1  # below this a faster mode is noise, not worth any change to the vectors
CALIBRATION_MIN_IMAGES = 8
# ONNX Runtime needs no torch in the indexing process (about 1 GB less memory, seconds less start-up),
# so it is preferred to a torch mode that is faster by less than this.
ONNX_PREFERENCE = 1.1
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # a CPU with native bf16: x86 flags, or ARM "Features"


def cpu_modes(bf16: bool, onnx: bool) -> list[str]:
    """The modes worth trying on a CPU, fp32 first (the reference): bf16 where the CPU has it
    natively (`bf16`: emulated it measured ~7x slower than fp32), int8 (dynamic quantisation
    kernels exist for CPUs), and ONNX Runtime's where it is installed (`onnx`)."""
    return ["fp32", *(["bf16"] if bf16 else []), "int8", *(ONNX_MODES if onnx else ())]


def better(mode: str, rate: float, than: str, than_rate: float) -> bool:
    """Whether `mode` at `rate` beats `than` at `than_rate` (ONNX Runtime wins near-ties with torch)."""
    if (mode in ONNX_MODES) == (than in ONNX_MODES):
        return rate > than_rate
    if mode in ONNX_MODES:
        return rate * ONNX_PREFERENCE > than_rate
    return rate > than_rate * ONNX_PREFERENCE


def pick(choice: Choice, order: Sequence[str]) -> str:
    """The mode to keep from what `choice` measured, trying `order` as calibrate.calibrate does: the
    fastest whose vectors stay within FIDELITY of fp32's and that beats fp32 by MIN_SPEEDUP."""
    best = "fp32"
    for mode in order:
        if mode == "fp32" or mode not in choice.rates:
            continue
        rate = choice.rates[mode]
        good_enough = choice.cosines[mode] >= FIDELITY and rate >= MIN_SPEEDUP * choice.rates["fp32"]
        if good_enough and better(mode, rate, best, choice.rates[best]):
            best = mode
    return best


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest cosine between matching rows of `a` and `b`, in float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dots = (a * b).sum(axis=1)
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)
    return float((dots / norms).min())


def time_run(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> tuple[float, np.ndarray]:
    """(images per second, float32 features) of `run` on `batch` after a small warm-up call, as
    calibrate.time_tower times a tower on a CPU."""
    run(batch[:2])
    start = time.perf_counter()
    features = run(batch)
    return len(batch) / (time.perf_counter() - start), np.asarray(features, dtype=np.float32)


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Features as the unit float32 rows the catalog stores."""
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
