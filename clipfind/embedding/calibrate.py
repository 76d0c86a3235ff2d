"""Run the image tower the fastest way this machine allows without changing the vectors (torch).

The same open_clip weights can run several ways: torch eager fp32 (the reference, works
everywhere), the whole tower cast to bfloat16 (fast only on CPUs and GPUs with native bf16;
emulated elsewhere and then many times slower), int8 dynamic quantisation of its Linear layers,
or the tower exported once to ONNX Runtime. Which is fastest depends on the machine, and the
faster ones move the vectors a little, so clipfind measures instead of guessing: on the first
batch of the user's own photos it times every way this machine supports, compares each one's
vectors with fp32's, and keeps the fastest whose cosine to fp32 is at least FIDELITY for every
photo. The choice is cached in the home, keyed by model, weights, library versions and CPU, so
later runs start at once. `precision="fp32"` forces the plain path.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from clipfind.embedding.onnx import open_session
from clipfind.embedding.runtime import ONNX_OPSET, Choice, cpu_flags, quantised_path
from clipfind.embedding.spec import ONNX_MODES, PRECISIONS
from clipfind.errors import one_line
from clipfind.home import atomic_write

FIDELITY = 0.999  # minimum cosine to the fp32 vector, for every photo of the calibration batch
MIN_SPEEDUP = 1.1  # below this a faster mode is noise, not worth any change to the vectors
CALIBRATION_MIN_IMAGES = 8
# ONNX Runtime needs no torch in the indexing process (about 1 GB less memory, seconds less start-up),
# so it is preferred to a torch mode that is faster by less than this.
ONNX_PREFERENCE = 1.1

Tower = Callable[[torch.Tensor], torch.Tensor]
"""(n, 3, H, W) float32 images -> (n, dim) float32 features, not yet normalised."""


def native_bf16(device: torch.device) -> bool:
    """bf16 only pays where the hardware has it; emulated bf16 measured ~7x slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & flags)  # x86 flags, or an ARM "Features" line


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def supported_modes(device: torch.device) -> list[str]:
    """The modes worth trying here; fp32 first, as the reference."""
    modes = ["fp32"]
    if native_bf16(device):
        modes.append("bf16")
    if device.type == "cpu":
        modes.append("int8")  # dynamic quantisation kernels exist for CPUs only
        if onnx_available():
            modes += ["onnx", "onnx-int8"]
    return modes


def build_tower(mode: str, visual: torch.nn.Module, device: torch.device, onnx_path: Path | None = None) -> Tower:
    """The image tower `visual` (fp32, eval mode) run in `mode`; the original module is not changed."""
    if mode == "fp32":
        return visual
    if mode == "bf16":
        half = copy.deepcopy(visual).to(torch.bfloat16)
        return lambda x: half(x.to(torch.bfloat16)).float()
    if mode == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice for eager quantisation
            quantised = torch.ao.quantization.quantize_dynamic(copy.deepcopy(visual), {torch.nn.Linear}, torch.qint8)
        return quantised
    if mode in ONNX_MODES:
        if onnx_path is None:
            raise ValueError("the onnx modes need a file to export to")
        return _onnx_tower(visual, onnx_path, quantised=mode == "onnx-int8")
    raise ValueError(f"unknown precision {mode!r}; use one of {', '.join(PRECISIONS)}")


def _onnx_tower(visual: torch.nn.Module, path: Path, *, quantised: bool) -> Tower:
    if not path.is_file():
        _export_onnx(visual, path)
    target = quantised_path(path) if quantised else path
    try:
        if quantised and not target.is_file():
            quantise(path, target)
        session = open_session(target)
    except Exception:  # a damaged export (a disk error, a copy cut short): make it again
        _export_onnx(visual, path)
        if quantised:
            quantise(path, target)
        session = open_session(target)
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {name: x.detach().cpu().numpy().astype("float32", copy=False)})[0]
        return torch.from_numpy(out)

    return run


def quantise(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the transformer's matrix products only, per
    output channel and with 7-bit range (CPUs without VNNI can overflow with the full 8 bits):
    on random ViT-B-32 weights this kept a cosine of 0.9996 to fp32 where the full 8 bits or all
    operators went down to 0.987. The calibration checks it again on the real weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        with warnings.catch_warnings(), atomic_write(target) as tmp:
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                             op_types_to_quantize=["MatMul"])
    finally:
        root.removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """onnxruntime logs "Please consider to run pre-processing before quantization" on the root
    logger for every model: advice for its own users, noise on a clipfind user's first run."""
    return not record.getMessage().startswith("Please consider to run pre-processing")


def _export_onnx(visual: torch.nn.Module, path: Path) -> None:
    size = _input_size(visual)
    export_onnx(visual, torch.zeros(2, 3, size, size), path, "images")


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str) -> None:
    """Export once, through atomic_write: a killed export must not leave a half file behind.

    The weights go in a file beside the graph (`path` + ".data"), which ONNX Runtime maps into
    memory instead of parsing: opening ViT-B-32's text tower went from 0.9 s to 0.3 s, most of a
    cold text search. The weights file is put in place before the graph that names it.
    """
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.with_name(path.name + ".data")
    with atomic_write(weights, path) as (_, graph_tmp):
        # With gradients on, as when training: in no-grad mode torch's attention takes a fused fast
        # path that the ONNX exporter cannot translate.
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow in timm/open_clip
            torch.onnx.export(
                module, (example,), str(graph_tmp), input_names=[input_name], output_names=["features"],
                dynamic_axes={input_name: {0: "n"}, "features": {0: "n"}}, opset_version=ONNX_OPSET, dynamo=False,
            )
        # Saved again under the same temp name with the weights apart: they land beside it under
        # the final name, which is the name the graph records.
        model = onnx.load(str(graph_tmp))
        onnx.save_model(model, str(graph_tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=weights.name, size_threshold=1024)


class TextTower(torch.nn.Module):
    """encode_text as a module of its own, for the exporter: token ids -> features, not normalised."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)  # type: ignore[operator]


def _input_size(visual: torch.nn.Module) -> int:
    size = visual.preprocess_cfg["size"]  # type: ignore[index]
    return size if isinstance(size, int) else int(size[0])


def calibrate(
    visual: torch.nn.Module, batch: torch.Tensor, device: torch.device, onnx_path: Path,
    modes: list[str] | None = None,
) -> tuple[Choice, torch.Tensor, Tower]:
    """Time each mode on `batch` (real photos) and check its vectors against fp32's.

    Returns the choice, fp32's features for `batch` (so the batch is not encoded again) and the
    chosen tower. Only the best tower so far is kept while measuring, so that memory holds at
    most two extra copies of the weights.
    """
    choice = Choice("fp32")
    choice.rates["fp32"], reference = time_tower(visual, batch)
    choice.cosines["fp32"] = 1.0
    best: Tower = visual
    for mode in modes or supported_modes(device):
        if mode == "fp32":
            continue
        try:
            tower = build_tower(mode, visual, device, onnx_path)
            rate, features = time_tower(tower, batch)
        except Exception as exc:  # an exporter or kernel missing on this machine: that mode is out
            choice.errors[mode] = f"{type(exc).__name__}: {one_line(exc)}"
            continue
        choice.rates[mode] = rate
        choice.cosines[mode] = min_cosine(reference, features)
        good_enough = choice.cosines[mode] >= FIDELITY and rate >= MIN_SPEEDUP * choice.rates["fp32"]
        if good_enough and _better(mode, rate, choice.mode, choice.rates[choice.mode]):
            choice.mode, best = mode, tower
        del tower
    return choice, reference, best


def _better(mode: str, rate: float, than: str, than_rate: float) -> bool:
    if (mode in ONNX_MODES) == (than in ONNX_MODES):
        return rate > than_rate
    if mode in ONNX_MODES:
        return rate * ONNX_PREFERENCE > than_rate
    return rate > than_rate * ONNX_PREFERENCE


def time_tower(tower: Tower, batch: torch.Tensor, repeats: int = 1) -> tuple[float, torch.Tensor]:
    """(images per second, features) for `batch`, after a small warm-up call."""
    with torch.inference_mode():
        tower(batch[:2])
        start = time.perf_counter()
        for _ in range(repeats):
            features = tower(batch)
        seconds = time.perf_counter() - start
    return repeats * len(batch) / seconds, features.float()


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=1).min())
