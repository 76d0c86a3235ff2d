"""The GPU path, run on a CPU: fp16 on CUDA and MPS, its fidelity, the calibration's rule, the cache
key per device, the batch size that fills a GPU, and the refusals where there is none.

No GPU is needed: a "cuda" or "mps" device is a torch.device whose kind is all that these functions
read, with torch.cuda's answers monkeypatched; the towers themselves run on the CPU tensors they are
given (torch runs float16 on a CPU too, slowly, with the same rounding of the weights).
"""

from __future__ import annotations

import shutil
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from clipfind.embedding import calibrate, onnx, runtime
from clipfind.embedding.spec import GPU_MODES, ONNX_MODES, PRECISIONS, TINY_MODEL, ModelSpec, check_precision
from clipfind.embedding.torch_model import ClipModel, load_model
from clipfind.errors import ClipfindError, ModelLoadError
from clipfind.library import Library

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
MPS = torch.device("mps")
CPU_ONLY = ("int8", *ONNX_MODES)


def _load(precision: str = "fp32", home: Path | None = None) -> ClipModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_model(ModelSpec(TINY_MODEL, None), device="cpu", precision=precision, home=home)


@pytest.fixture(scope="module")
def visual() -> torch.nn.Module:
    return _load()._model.visual


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Normalised-image-like input, as in test_calibrate."""
    return torch.randn(12, 3, 64, 64, generator=torch.Generator().manual_seed(3))


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.cuda as on a machine with one bf16-capable GPU (what supported_modes and device_label ask)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "NVIDIA H100 80GB HBM3")


# -- which modes a GPU is offered -------------------------------------------------------------------------


def test_a_cuda_gpu_is_offered_fp16_and_none_of_the_cpu_only_modes(fake_cuda: None) -> None:
    modes = calibrate.supported_modes(CUDA)
    assert modes[0] == "fp32" and "fp16" in modes and "bf16" in modes
    assert not set(CPU_ONLY) & set(modes)


def test_an_mps_gpu_is_offered_fp16_but_not_bf16() -> None:
    modes = calibrate.supported_modes(MPS)
    assert modes == ["fp32", "fp16"]


def test_a_cpu_is_never_offered_fp16() -> None:
    assert not set(GPU_MODES) & set(calibrate.supported_modes(CPU))


def test_fp16_is_a_precision_the_user_can_ask_for() -> None:
    assert "fp16" in PRECISIONS


# -- fp16's fidelity -------------------------------------------------------------------------------------


def test_fp16_keeps_every_vector_within_the_rule_of_fp32(visual: torch.nn.Module, images: torch.Tensor) -> None:
    """The tower cast to float16 (built as for a GPU, run on this CPU): inputs cast in, float32 out,
    the fp32 tower untouched. Measured on clipfind-tiny: min cosine 0.9999997 (float16 keeps 11 bits
    of mantissa, bf16 8: its 0.99997 here)."""
    before = {k: v.clone() for k, v in visual.state_dict().items()}
    tower = calibrate.build_tower("fp16", visual, CUDA)
    with torch.inference_mode():
        reference = visual(images)
        features = tower(images)
    assert features.dtype == torch.float32 and features.shape == reference.shape
    assert calibrate.min_cosine(reference, features) >= calibrate.FIDELITY
    for key, value in visual.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, before[key])


# -- the calibration's rule on a GPU ----------------------------------------------------------------------


def _faster(monkeypatch: pytest.MonkeyPatch, mode: str, factor: float, tower: calibrate.Tower | None = None) -> None:
    """`mode`'s tower is timed `factor` times faster than it runs on this CPU (as fp16 runs on a GPU's
    tensor cores); `tower` replaces it where given."""
    real_build, real_time = calibrate.build_tower, calibrate.time_tower
    built: set[int] = set()

    def build(m: str, *args: object, **kwargs: object) -> calibrate.Tower:
        made = tower if m == mode and tower is not None else real_build(m, *args, **kwargs)  # type: ignore[arg-type]
        if m == mode:
            built.add(id(made))
        return made

    def time_tower(t: calibrate.Tower, batch: torch.Tensor, repeats: int = 1) -> tuple[float, torch.Tensor]:
        rate, features = real_time(t, batch, repeats)
        return (rate * factor if id(t) in built else rate), features

    monkeypatch.setattr(calibrate, "build_tower", build)
    monkeypatch.setattr(calibrate, "time_tower", time_tower)


def test_calibration_on_a_gpu_keeps_fp16_when_faster_and_faithful(
    fake_cuda: None, visual: torch.nn.Module, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _faster(monkeypatch, "fp16", 50.0)
    choice, reference, tower = calibrate.calibrate(visual, images, CUDA, tmp_path / "t.onnx")
    assert choice.mode == "fp16", choice
    assert set(choice.rates) == {"fp32", "fp16", "bf16"}  # only what a GPU is offered was tried
    assert choice.cosines["fp16"] >= calibrate.FIDELITY
    with torch.inference_mode():
        assert calibrate.min_cosine(reference, tower(images)) >= calibrate.FIDELITY
    assert not (tmp_path / "t.onnx").exists()  # nothing exported for a GPU


def test_calibration_on_a_gpu_refuses_a_fast_fp16_that_moves_the_vectors(
    fake_cuda: None, visual: torch.nn.Module, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As when a tower overflows float16 (activations beyond 65504): fast, and off on some photos."""
    real = calibrate.build_tower("fp16", visual, CUDA)

    def off(x: torch.Tensor) -> torch.Tensor:
        out = real(x)
        out[0] = torch.randn(out.shape[1], generator=torch.Generator().manual_seed(0))  # one photo wrong
        return out

    _faster(monkeypatch, "fp16", 50.0, tower=off)
    choice, _, tower = calibrate.calibrate(visual, images, CUDA, tmp_path / "t.onnx", ["fp32", "fp16"])
    assert choice.rates["fp16"] > choice.rates["fp32"]
    assert choice.cosines["fp16"] < calibrate.FIDELITY
    assert choice.mode == "fp32" and tower is visual


def test_calibration_on_a_gpu_refuses_an_fp16_that_gives_nan(
    fake_cuda: None, visual: torch.nn.Module, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _faster(monkeypatch, "fp16", 50.0, tower=lambda x: torch.full((len(x), visual.output_dim), float("nan")))
    choice, _, _ = calibrate.calibrate(visual, images, CUDA, tmp_path / "t.onnx", ["fp32", "fp16"])
    assert choice.mode == "fp32"


def test_calibration_on_a_gpu_keeps_fp32_when_fp16_is_not_faster(
    fake_cuda: None, visual: torch.nn.Module, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _faster(monkeypatch, "fp16", 1e-3)
    choice, _, _ = calibrate.calibrate(visual, images, CUDA, tmp_path / "t.onnx", ["fp32", "fp16"])
    assert choice.cosines["fp16"] >= calibrate.FIDELITY and choice.mode == "fp32"


def test_gpu_timings_wait_for_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(device))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: waited.append("mps"))
    calibrate.synchronize(CUDA)
    calibrate.synchronize(MPS)
    calibrate.synchronize(CPU)
    assert waited == [CUDA, "mps"]


# -- what is asked for ------------------------------------------------------------------------------------


def test_fp16_on_a_cpu_is_refused_before_the_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the weights were looked for")

    monkeypatch.setattr("clipfind.embedding.torch_model.hub_weights", never)
    with pytest.raises(ClipfindError, match=r"--precision fp16 runs on a GPU only \(cuda or mps\).*on cpu here"):
        _load("fp16")


def test_indexing_with_fp16_on_a_cpu_stops_with_the_reason(tiny_env: Path, photo_folder: Path) -> None:
    """Not a run without vectors, as when the weights cannot be had: the user asked for what cannot be."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lib = Library(precision="fp16", device="cpu")
        try:
            with pytest.raises(ClipfindError, match="--precision fp16 runs on a GPU only") as refused:
                lib.index_folders([str(photo_folder)])
            assert not isinstance(refused.value, ModelLoadError)
            assert lib.catalog.folders() == []  # refused before the folder joined the catalog
        finally:
            lib.close()


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_fp16_is_accepted_on_a_gpu(kind: str) -> None:
    check_precision("fp16", kind)
    check_precision("auto", "cpu")
    check_precision("fp32", "cpu")


# -- the cache key ----------------------------------------------------------------------------------------


def test_a_choice_is_kept_per_device_and_per_gpu(fake_cuda: None) -> None:
    spec = ModelSpec("ViT-B-32", None)
    on_cpu = runtime.machine_key(spec, None, calibrate.device_label(CPU))
    assert on_cpu == runtime.machine_key(spec, None)  # a CPU's key is the one it always was
    on_h100 = runtime.machine_key(spec, None, calibrate.device_label(CUDA))
    assert calibrate.device_label(CUDA) == "cuda:NVIDIA H100 80GB HBM3"
    assert on_h100 not in (on_cpu, runtime.machine_key(spec, None, "cuda:NVIDIA GeForce RTX 4090"))
    assert runtime.machine_key(spec, None, "mps:Apple M2 Pro") not in (on_cpu, on_h100)
    assert calibrate.device_label(MPS).startswith("mps:")


def test_a_cpu_choice_is_not_reused_on_a_gpu(
    fake_cuda: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The torch side looks the choice up under the device that runs the model; the torch-free side
    (ONNX Runtime) takes no CPU choice where torch would find a CUDA GPU."""
    spec = ModelSpec(TINY_MODEL, None)
    runtime.save_choice(tmp_path, runtime.machine_key(spec, None), runtime.Choice("onnx"))
    assert onnx.onnx_mode(spec, tmp_path, None, "auto") == "onnx"
    assert runtime.load_choice(tmp_path, runtime.machine_key(spec, None, calibrate.device_label(CUDA))) is None
    monkeypatch.setattr(onnx, "cuda_likely", lambda: True)
    assert onnx.onnx_mode(spec, tmp_path, None, "auto") is None
    runtime.save_choice(tmp_path, runtime.machine_key(spec, "cpu"), runtime.Choice("onnx-int8"))
    assert onnx.onnx_mode(spec, tmp_path, "cpu", "auto") == "onnx-int8"  # asked for the CPU: its choice holds


def test_an_fp16_choice_is_read_back() -> None:
    assert runtime.Choice("fp16").mode in runtime.MODES


def test_cuda_likely_needs_a_driver_and_a_cuda_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gpus = tmp_path / "gpus"
    gpus.mkdir()
    monkeypatch.setattr(runtime, "NVIDIA_GPUS", gpus)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    versions = {"torch": "2.5.1+cu124"}
    monkeypatch.setattr(runtime, "package_version", lambda name: versions.get(name, ""))
    assert not runtime.cuda_likely()  # no GPU shown by the driver
    (gpus / "0000:01:00.0").mkdir()
    assert runtime.cuda_likely()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not runtime.cuda_likely()  # hidden
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    versions["torch"] = "2.5.1+cpu"
    assert not runtime.cuda_likely()  # a CPU-only torch
    versions["nvidia-cuda-runtime-cu12"] = "12.4.127"
    versions["torch"] = "2.5.1"
    assert runtime.cuda_likely()  # PyPI's Linux torch: CUDA in wheels beside it
    monkeypatch.setattr(runtime, "NVIDIA_GPUS", tmp_path / "none")
    assert runtime.cuda_likely() == (sys.platform == "win32" and shutil.which("nvidia-smi") is not None)


# -- the batch size on a GPU ------------------------------------------------------------------------------

GIB = 2**30


def _vit(width: int, heads: int, patch: int, grid: int) -> object:
    """What per_image_bytes reads of an open_clip VisionTransformer, without its weights."""
    block = types.SimpleNamespace(attn=types.SimpleNamespace(num_heads=heads))
    return types.SimpleNamespace(transformer=types.SimpleNamespace(width=width, resblocks=[block]),
                                 patch_size=(patch, patch), grid_size=(grid, grid))


VIT_B_32 = _vit(768, 12, 32, 7)
VIT_L_14 = _vit(1024, 16, 14, 16)


def test_a_cpu_batch_is_the_one_asked_for() -> None:
    assert runtime.batch_size_for("cpu", requested=32, free_bytes=80 * GIB) == 32
    assert _load().batch_size_for(32) == 32


def test_a_gpu_batch_fills_the_gpu_by_its_free_memory() -> None:
    b32 = calibrate.per_image_bytes(VIT_B_32, 224)  # type: ignore[arg-type]
    l14 = calibrate.per_image_bytes(VIT_L_14, 224)  # type: ignore[arg-type]
    assert 0 < b32 < l14
    assert runtime.batch_size_for("cuda", free_bytes=70 * GIB, per_image_bytes=b32) == 256
    assert runtime.batch_size_for("cuda", free_bytes=70 * GIB, per_image_bytes=l14) == 256
    assert runtime.batch_size_for("mps", free_bytes=6 * GIB, per_image_bytes=b32) == 256
    small = runtime.batch_size_for("cuda", free_bytes=3 * GIB, per_image_bytes=l14)
    assert 32 <= small < 256 and small & (small - 1) == 0  # a power of two
    assert small * l14 <= 0.5 * 3 * GIB
    assert runtime.batch_size_for("cuda", free_bytes=GIB // 4, per_image_bytes=l14) == 32  # never below the ask
    assert runtime.batch_size_for("cuda", free_bytes=None) == 128  # a GPU that cannot say
    assert runtime.batch_size_for("cuda", requested=512, free_bytes=70 * GIB, per_image_bytes=b32) == 512


def test_the_model_asks_its_gpu_for_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _load()
    model.device = CUDA  # the fake GPU: only its kind and free memory are read
    monkeypatch.setattr(calibrate, "gpu_free_bytes", lambda device: 20 * GIB if device.type == "cuda" else None)
    assert model.batch_size_for(32) == 256
    monkeypatch.setattr(calibrate, "gpu_free_bytes", lambda device: 64 * model._per_image_bytes)
    assert model.batch_size_for(16) == 32  # half of what is free, to a power of two


def test_a_gpu_is_fed_by_every_core_but_one() -> None:
    assert runtime.decode_workers_for("cpu", 16) == 4 and runtime.decode_workers_for("cpu", 2) == 2
    assert runtime.decode_workers_for("cuda", 16) == 15 and runtime.decode_workers_for("mps", 1) == 1


def test_the_free_memory_is_asked_of_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40 * GIB, 80 * GIB))
    assert calibrate.gpu_free_bytes(CUDA) == 40 * GIB
    assert calibrate.gpu_free_bytes(CPU) is None


def test_a_tower_that_is_not_a_vit_gets_a_flat_figure() -> None:
    assert calibrate.per_image_bytes(torch.nn.Linear(2, 2), 256) == 32 * 2**20


def test_the_tiny_model_reads_as_a_vit(visual: torch.nn.Module) -> None:
    assert calibrate.per_image_bytes(visual, 64) < 32 * 2**20
    assert np.isfinite(calibrate.per_image_bytes(visual, 64))


def test_the_model_keeps_its_choice_under_the_device_that_runs_it(
    tmp_path: Path, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ClipModel looks up and saves the measured choice under calibrate.device_label of its device."""
    spec = ModelSpec(TINY_MODEL, None)
    monkeypatch.setattr(calibrate, "device_label", lambda device: "cuda:Fake GPU")
    model = _load("auto", tmp_path)
    model.encode_images(images)
    assert model.notices  # measured
    assert runtime.load_choice(tmp_path, runtime.machine_key(spec, "cpu", "cuda:Fake GPU")) is not None
    assert runtime.load_choice(tmp_path, runtime.machine_key(spec, "cpu")) is None


# -- the benches' GPU path --------------------------------------------------------------------------------


@pytest.mark.parametrize("bench", ["inference", "indexing"])
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_bench_without_the_gpu_says_so_in_one_line(
    bench: str, device: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    module = importlib.import_module(f"bench.{bench}")
    assert module.main(["--device", device]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and f"--device {device} asked for" in out[0] and "nothing measured" in out[0]


def test_the_inference_bench_gpu_table_runs_every_mode_it_is_offered(
    fake_cuda: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench.inference's GPU table on the fake "cuda" device (the tower and photos stay on the CPU)."""
    from bench import common, inference

    try:
        common.real_photos()
    except SystemExit:
        pytest.skip("the real photos (../shared/data/photos) are not here")
    real_load = load_model

    def on_cpu(spec: ModelSpec, device: str | None = None, *args: object, **kwargs: object) -> ClipModel:
        return real_load(spec, "cpu", *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("clipfind.embedding.torch_model.load_model", on_cpu)
    real_to = torch.Tensor.to

    def to(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if args and isinstance(args[0], torch.device) and args[0].type == "cuda":
            return self  # moved to the fake GPU: stays here
        return real_to(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(calibrate, "gpu_free_bytes", lambda device: 4 * GIB)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        inference._gpu_table(TINY_MODEL, CUDA, 8, tmp_path)
    out = capsys.readouterr().out
    assert "on cuda (cuda:NVIDIA H100 80GB HBM3, 4.0 GiB free), batch 8" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  fp") or
            line.startswith("  bf")}
    assert set(rows) == {"fp32", "fp16", "bf16"}
    assert float(rows["fp16"][3]) >= calibrate.FIDELITY and rows["fp16"][4] == "yes"  # min cosine, eligible
    assert rows["fp16"][-1] == "8"  # the batch it ran at
    assert "clipfind auto on this GPU:" in out
