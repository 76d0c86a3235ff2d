"""How the image tower runs: every mode agrees with fp32, auto measures once and remembers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from clipfind.embedding import calibrate, runtime
from clipfind.embedding.spec import GPU_MODES, MODES, TINY_MODEL, ModelSpec
from clipfind.embedding.torch_model import ClipModel, load_model
from clipfind.errors import ClipfindError, ModelLoadError
from clipfind.library import Library

CPU = torch.device("cpu")


def _load(precision: str = "auto", home: Path | None = None) -> ClipModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_model(ModelSpec(TINY_MODEL, None), device="cpu", precision=precision, home=home)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Normalised-image-like input: the model sees values around zero, a few units wide."""
    return torch.randn(12, 3, 64, 64, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def reference(images: torch.Tensor) -> np.ndarray:
    model = _load("fp32")
    with torch.inference_mode():
        expected = model._model.encode_image(images, normalize=True).numpy()
    np.testing.assert_allclose(model.encode_images(images), expected, atol=1e-6)  # fp32 is open_clip itself
    return expected


def _pretend_bf16(monkeypatch: pytest.MonkeyPatch, *, native: bool) -> None:
    """Run the path of the other kind of CPU: with or without native bf16, whatever this one has."""
    flags = calibrate.cpu_flags() - {"avx512_bf16", "amx_bf16", "bf16"}
    monkeypatch.setattr(calibrate, "cpu_flags", lambda: flags | {"avx512_bf16"} if native else flags)


# Floors follow the product's rule (calibrate.FIDELITY) and each mode's nature, not one machine's
# numbers: bf16 keeps 8 bits of mantissa (a cosine of 0.99997 was seen on an AVX-512-bf16 EPYC),
# fp32 paths only differ by summation order.
FLOORS = {"fp32": 0.99999, "onnx": 0.99999, "bf16": calibrate.FIDELITY, "int8": 0.99, "onnx-int8": 0.99}


@pytest.mark.parametrize("mode", [m for m in MODES if m not in GPU_MODES])  # fp16: test_gpu_path.py
def test_every_mode_keeps_vectors_close_to_fp32(
    mode: str, tmp_path: Path, images: torch.Tensor, reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every mode on every CPU: bf16 is forced where the CPU lacks it natively (torch then emulates it,
    slowly but with the same rounding), so both kinds of machine run the same checks."""
    if mode == "bf16":
        _pretend_bf16(monkeypatch, native=True)
    assert mode in calibrate.supported_modes(CPU)
    model = _load(mode, tmp_path)
    vectors = model.encode_images(images)
    assert model.mode == mode
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Quantised modes may move vectors beyond FIDELITY on some weights (calibrate keeps them out
    # then); on these they must at least point the same way.
    assert float((vectors * reference).sum(axis=1).min()) >= FLOORS[mode]


@pytest.mark.parametrize("native_bf16", [True, False], ids=["bf16-cpu", "avx2-cpu"])
def test_auto_measures_on_the_first_full_batch_then_remembers(
    tmp_path: Path, images: torch.Tensor, reference: np.ndarray, monkeypatch: pytest.MonkeyPatch, native_bf16: bool
) -> None:
    _pretend_bf16(monkeypatch, native=native_bf16)
    assert ("bf16" in calibrate.supported_modes(CPU)) == native_bf16
    model = _load("auto", tmp_path)
    few = model.encode_images(images[:3])  # too few to measure on: fp32, nothing decided
    np.testing.assert_allclose(few, reference[:3], atol=1e-6)
    assert model.mode is None and not (tmp_path / runtime.CHOICE_FILE).exists()

    first = model.encode_images(images)
    np.testing.assert_allclose(first, reference, atol=1e-6)  # the calibration batch gets fp32's vectors
    assert model.mode in calibrate.supported_modes(CPU)
    assert model.notices and model.mode in model.notices[0]
    table = json.loads((tmp_path / runtime.CHOICE_FILE).read_text())
    (entry,) = table.values()
    assert entry["mode"] == model.mode
    assert set(entry["rates"]) | set(entry["errors"]) == set(calibrate.supported_modes(CPU))
    assert all(rate > 0 for rate in entry["rates"].values())
    assert entry["cosines"][model.mode] >= calibrate.FIDELITY

    def no_second_measurement(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again")

    monkeypatch.setattr(calibrate, "calibrate", no_second_measurement)
    again = _load("auto", tmp_path)
    vectors = again.encode_images(images)
    assert again.mode == model.mode and not again.notices
    assert float((vectors * reference).sum(axis=1).min()) >= calibrate.FIDELITY


def test_a_fast_mode_that_changes_the_vectors_is_not_chosen(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    visual = _load("fp32")._model.visual
    real_build = calibrate.build_tower

    def build(mode: str, *args: object, **kwargs: object) -> calibrate.Tower:
        if mode == "int8":  # instant, and wrong
            return lambda x: torch.randn(len(x), visual.output_dim)
        return real_build(mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calibrate, "build_tower", build)
    choice, _, _ = calibrate.calibrate(visual, images, CPU, tmp_path / "t.onnx", ["fp32", "int8"])
    assert choice.rates["int8"] > choice.rates["fp32"]
    assert choice.cosines["int8"] < calibrate.FIDELITY
    assert choice.mode == "fp32"


def test_a_mode_that_fails_to_build_is_recorded_and_skipped(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    visual = _load("fp32")._model.visual
    real_build = calibrate.build_tower

    def build(mode: str, *args: object, **kwargs: object) -> calibrate.Tower:
        if mode == "onnx":
            raise RuntimeError("exporter missing")
        return real_build(mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calibrate, "build_tower", build)
    choice, _, tower = calibrate.calibrate(visual, images, CPU, tmp_path / "t.onnx", ["fp32", "onnx"])
    assert choice.errors == {"onnx": "RuntimeError: exporter missing"}
    assert choice.mode == "fp32" and tower is visual


def test_damaged_choice_file_means_measuring_again(tmp_path: Path, images: torch.Tensor) -> None:
    (tmp_path / runtime.CHOICE_FILE).write_text("{not json")
    model = _load("auto", tmp_path)
    model.encode_images(images)
    assert model.notices  # measured
    assert json.loads((tmp_path / runtime.CHOICE_FILE).read_text())  # and rewritten whole


def test_onnx_export_is_cached_and_reused(tmp_path: Path, images: torch.Tensor) -> None:
    if "onnx" not in calibrate.supported_modes(CPU):
        pytest.fail("onnxruntime is a dependency; it must be importable here")
    _load("onnx", tmp_path).encode_images(images)
    exported = runtime.onnx_path(tmp_path, ModelSpec(TINY_MODEL, None))
    stamp = exported.stat().st_mtime_ns
    _load("onnx", tmp_path).encode_images(images)
    assert exported.stat().st_mtime_ns == stamp
    assert not list((tmp_path / runtime.ONNX_FOLDER).glob("*.tmp"))


def test_a_precision_that_cannot_run_is_a_clear_error(
    tmp_path: Path, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> calibrate.Tower:
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(calibrate, "build_tower", broken)
    model = _load("onnx", tmp_path)
    with pytest.raises(ModelLoadError, match="cannot run in onnx here .*--precision auto"):
        model.encode_images(images)


def test_unknown_precision_is_refused_before_loading(tiny_env: Path) -> None:
    with pytest.raises(ClipfindError, match="unknown precision 'fp8'"):
        Library(precision="fp8")


def test_cache_key_changes_with_what_the_choice_depends_on(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec("ViT-B-32", None)
    a = runtime.machine_key(spec, None)
    assert a == runtime.machine_key(spec, None)
    assert a != runtime.machine_key(ModelSpec("ViT-B-32-256", None), None)
    assert a != runtime.machine_key(spec, "cuda")
    monkeypatch.setenv("OMP_NUM_THREADS", str(runtime.cpu_threads() + 1))
    assert a != runtime.machine_key(spec, None)
    # The export does not depend on the machine, only on the weights and the exporter.
    assert runtime.export_key(spec) != runtime.export_key(ModelSpec("ViT-B-32", "laion2b_s34b_b79k"))


def test_bf16_is_offered_only_with_native_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate, "cpu_flags", lambda: {"avx2", "fma"})
    assert not calibrate.native_bf16(CPU) and "bf16" not in calibrate.supported_modes(CPU)
    monkeypatch.setattr(calibrate, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert calibrate.native_bf16(CPU) and "bf16" in calibrate.supported_modes(CPU)
