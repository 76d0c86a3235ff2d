"""Run the image tower the fastest way this machine allows without changing the vectors (torch).

The same open_clip weights can run several ways: torch eager fp32 (the reference, works
everywhere), the whole tower cast to bfloat16 (fast only on CPUs and GPUs with native bf16;
emulated elsewhere and then many times slower), the whole tower cast to float16 (on a CUDA or
MPS GPU only, where half precision runs on its tensor cores), int8 dynamic quantisation of its
Linear layers, or the tower exported once to ONNX Runtime (the last two on a CPU only). Which is
fastest depends on the machine, and the faster ones move the vectors a little, so clipfind
measures instead of guessing: on the first batch of the user's own photos it times every way this
machine supports, compares each one's vectors with fp32's, and keeps the fastest whose cosine to
fp32 is at least FIDELITY for every photo. The choice is cached in the home, keyed by model,
weights, library versions, CPU and the device that runs it (a GPU by its name, see device_label),
so later runs start at once and a CPU's choice is never taken for a GPU's. `precision="fp32"`
forces the plain path. The first `clipfind index` of a large model on a CPU measures with these
same pieces and rules in child processes instead (clipfind.embedding.first_run), so that the
indexing process never holds torch while it measures.

On a GPU the timings wait for the device (its kernels run asynchronously) and warm up on the whole
batch, whose first run picks the kernels; gpu_free_bytes and per_image_bytes tell how many photos
fill one (runtime.batch_size_for, asked through torch_model.ClipModel.batch_size_for).
"""

from __future__ import annotations

import copy
import ctypes
import gc
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from clipfind.embedding.onnx import EXTERNAL_THRESHOLD, open_session
from clipfind.embedding.quantise import quantise
from clipfind.embedding.runtime import ONNX_OPSET, Choice, apple_chip, cpu_flags, quantised_path
from clipfind.embedding.selection import (  # noqa: F401  (the rules, shared with a first run's child processes)
    BF16_FLAGS,
    CALIBRATION_MIN_IMAGES,
    FIDELITY,
    MIN_SPEEDUP,
    ONNX_PREFERENCE,
    cpu_modes,
    pick,
)
from clipfind.embedding.spec import GPU_KINDS, ONNX_MODES, PRECISIONS
from clipfind.errors import one_line
from clipfind.home import atomic_write

Tower = Callable[[torch.Tensor], torch.Tensor]
"""(n, 3, H, W) float32 images -> (n, dim) float32 features, not yet normalised."""


def native_bf16(device: torch.device) -> bool:
    """bf16 only pays where the hardware has it; emulated bf16 measured ~7x slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return bool(BF16_FLAGS & cpu_flags())


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def supported_modes(device: torch.device) -> list[str]:
    """The modes worth trying here; fp32 first, as the reference. fp16 on a GPU only: CUDA and
    MPS run it natively (tensor cores), a CPU emulates most of it."""
    if device.type == "cpu":
        return cpu_modes(native_bf16(device), onnx_available())
    modes = ["fp32"]
    if device.type in GPU_KINDS:
        modes.append("fp16")
    if native_bf16(device):
        modes.append("bf16")
    return modes


def build_tower(mode: str, visual: torch.nn.Module, device: torch.device, onnx_path: Path | None = None) -> Tower:
    """The image tower `visual` (fp32, eval mode) run in `mode`; the original module is not changed."""
    if mode == "fp32":
        return visual
    if mode in ("bf16", "fp16"):
        return _cast_tower(visual, torch.bfloat16 if mode == "bf16" else torch.float16)
    if mode == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice for eager quantisation
            quantised = torch.ao.quantization.quantize_dynamic(
                _copy_structure(visual, lambda t: t), {torch.nn.Linear}, torch.qint8, inplace=True
            )
        return quantised
    if mode in ONNX_MODES:
        if onnx_path is None:
            raise ValueError("the onnx modes need a file to export to")
        return _onnx_tower(visual, onnx_path, quantised=mode == "onnx-int8")
    raise ValueError(f"unknown precision {mode!r}; use one of {', '.join(PRECISIONS)}")


def _cast_tower(visual: torch.nn.Module, dtype: torch.dtype) -> Tower:
    """The whole tower in `dtype` (a copy on the same device); images cast in, features out as float32."""
    half = _copy_structure(visual, lambda t: t.to(dtype)).to(dtype)
    return lambda x: half(x.to(dtype)).float()


def build_tower_in_place(mode: str, visual: torch.nn.Module) -> Tower:
    """The tower build_tower makes for `mode`, made of `visual` itself, one tensor at a time, so
    that the weights are never held in two types at once: for a process that needs the fp32 tower
    no more (it is changed: bf16 and fp16 cast it, int8 replaces its Linear layers)."""
    if mode in ("bf16", "fp16"):
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        half = visual.to(dtype)
        return lambda x: half(x.to(dtype)).float()
    if mode == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice for eager quantisation
            return torch.ao.quantization.quantize_dynamic(visual, {torch.nn.Linear}, torch.qint8, inplace=True)
    if mode == "fp32":
        return visual
    raise ValueError(f"{mode!r} is not made in place; use build_tower")


def device_label(device: torch.device) -> str:
    """What a measured choice depends on besides the CPU: the kind of device, and a GPU by its name
    (runtime.machine_key): "cpu", "cuda:NVIDIA H100 80GB HBM3", "mps:Apple M2 Pro"."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"mps:{apple_chip()}"
    return device.type


def gpu_free_bytes(device: torch.device) -> int | None:
    """Memory free on the GPU `device` now, or None on a CPU (or a GPU that cannot say)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "mps":
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    except (RuntimeError, AttributeError):  # an older torch, a driver that will not say
        pass
    return None


def per_image_bytes(visual: torch.nn.Module, image_size: int) -> int:
    """A generous bound on the memory one more photo in a batch takes while the tower runs (no
    gradients: one block's activations at a time). For open_clip's ViTs from its shape: tokens x
    (the MLP's and the projections' rows + the attention map), 4 bytes each, twice over for what the
    kernels keep beside them. Other towers (ConvNeXt, MobileCLIP) get a flat 32 MiB."""
    transformer = getattr(visual, "transformer", None)
    width = getattr(transformer, "width", None)
    patch = getattr(visual, "patch_size", None)
    if not isinstance(width, int) or patch is None:
        return 32 * 2**20
    patch = patch if isinstance(patch, int) else int(patch[0])
    blocks = getattr(transformer, "resblocks", None)
    heads = getattr(getattr(blocks[0], "attn", None), "num_heads", 16) if blocks else 16
    grid = getattr(visual, "grid_size", None)
    tokens = (int(grid[0]) * int(grid[1]) if grid else (image_size // patch) ** 2) + 1
    return 2 * 4 * tokens * (12 * width + heads * tokens)


def _copy_structure(visual: torch.nn.Module, convert: Callable[[torch.Tensor], torch.Tensor]) -> torch.nn.Module:
    """A copy of `visual` whose floating-point weights are `convert`ed straight from the original's:
    no full fp32 copy of the weights on the way (a deepcopy then a cast or a quantisation held one,
    ~350 MB for ViT-B-32). With `convert` the identity the copy shares the original's tensors, which
    suits what replaces the modules that hold them (quantize_dynamic in place) and never writes them."""
    memo: dict[int, object] = {}
    for module in visual.modules():
        for param in module._parameters.values():
            if param is not None and id(param) not in memo and param.is_floating_point():
                memo[id(param)] = torch.nn.Parameter(convert(param.detach()), requires_grad=param.requires_grad)
        for buffer in module._buffers.values():
            if buffer is not None and id(buffer) not in memo and buffer.is_floating_point():
                memo[id(buffer)] = convert(buffer)
    return copy.deepcopy(visual, memo)


def _onnx_tower(visual: torch.nn.Module, path: Path, *, quantised: bool) -> Tower:
    if not path.is_file():
        export_image_tower(visual, path)
    target = quantised_path(path) if quantised else path
    try:
        if quantised and not target.is_file():
            quantise(path, target)
        session = open_session(target)
    except Exception:  # a damaged export (a disk error, a copy cut short): make it again
        export_image_tower(visual, path)
        if quantised:
            quantise(path, target)
        session = open_session(target)
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {name: x.detach().cpu().numpy().astype("float32", copy=False)})[0]
        return torch.from_numpy(out)

    return run


def export_image_tower(visual: torch.nn.Module, path: Path) -> None:
    """The image tower exported to `path` (and its weights beside it), for a batch of any size."""
    size = _input_size(visual)
    export_onnx(visual, torch.zeros(2, 3, size, size), path, "images")


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str) -> None:
    """Export once, through atomic_write: a killed export must not leave a half file behind.

    The weights go in a file beside the graph (`path` + ".data"), which ONNX Runtime maps into
    memory instead of parsing: opening ViT-B-32's text tower went from 0.9 s to 0.3 s, most of a
    cold text search. The weights file is put in place before the graph that names it.

    The weights are written to that file one tensor at a time, straight from torch: the exporter
    is handed no weights to embed (see _WeightsApart), so it never builds the graph with them
    (twice: as a protobuf and as the bytes of one) and onnx never loads them back to move them
    out. Exporting ViT-B-32's image tower peaked at +780 MB that way, +375 MB now (the transposed
    weights that the exporter's constant folding makes); the files are the same, byte for byte.
    """
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.with_name(path.name + ".data")
    with atomic_write(weights, path) as (weights_tmp, graph_tmp), _WeightsApart() as apart:
        # With gradients on, as when training: in no-grad mode torch's attention takes a fused fast
        # path that the ONNX exporter cannot translate.
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow in timm/open_clip
            torch.onnx.export(
                module, (example,), str(graph_tmp), input_names=[input_name], output_names=["features"],
                dynamic_axes={input_name: {0: "n"}, "features": {0: "n"}}, opset_version=ONNX_OPSET, dynamo=False,
            )
        model = onnx.load(str(graph_tmp))
        apart.add_initializers(model, weights_tmp, weights.name)
        # Saved again under the same temp name with the weights apart: they land beside it under
        # the final name, which is the name the graph records. (Had the exporter embedded any,
        # onnx moves those out here.)
        onnx.save_model(model, str(graph_tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=weights.name, size_threshold=EXTERNAL_THRESHOLD)


_EXPORT_LOCK = threading.Lock()


class _WeightsApart:
    """While exporting, keep the weights out of the exporter's graph and write them apart.

    torch's TorchScript exporter gives the graph's weights (after constant folding) to its C++
    encoder, which embeds them, through `torch._C._jit_pass_onnx_deduplicate_initializers`. Here
    that pass hands the encoder none (they stay graph inputs, without data) and keeps them; then
    add_initializers turns those inputs back into initializers, in the order and with the external
    data layout that onnx.save_model gives embedded ones (each tensor of EXTERNAL_THRESHOLD bytes or
    more appended to the weights file, the smaller ones kept inline), so the files do not change.
    Where torch has no such pass (another version), the exporter embeds the weights as before.
    """

    _PASS = "_jit_pass_onnx_deduplicate_initializers"

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] = {}

    def __enter__(self) -> _WeightsApart:
        _EXPORT_LOCK.acquire()  # the pass is patched for the whole process: one export at a time
        self._real = getattr(torch._C, self._PASS, None)
        if self._real is not None:
            real = self._real

            def keep(graph: object, params: dict[str, torch.Tensor], training: bool) -> dict[str, torch.Tensor]:
                self.weights.update(real(graph, params, training))
                return {}

            setattr(torch._C, self._PASS, keep)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._real is not None:
                setattr(torch._C, self._PASS, self._real)
            self.weights.clear()
        finally:
            _EXPORT_LOCK.release()

    def add_initializers(self, model: Any, weights_file: Path, location: str) -> None:
        import onnx

        if not self.weights:
            return
        inputs = [i for i in model.graph.input if i.name not in self.weights]
        order = [i.name for i in model.graph.input if i.name in self.weights]
        order += [name for name in self.weights if name not in set(order)]
        del model.graph.input[:]
        model.graph.input.extend(inputs)
        fd = os.open(weights_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            for name in order:
                array = self.weights.pop(name).detach().contiguous().cpu().numpy()
                tensor = onnx.TensorProto()
                tensor.name = name
                tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
                tensor.dims.extend(array.shape)
                data = array.tobytes()
                if sys.getsizeof(data) >= EXTERNAL_THRESHOLD:  # onnx's own test, on the same bytes object
                    tensor.data_location = onnx.TensorProto.EXTERNAL
                    for key, value in (("location", location), ("offset", f.tell()), ("length", len(data))):
                        entry = tensor.external_data.add()
                        entry.key, entry.value = key, str(value)
                    f.write(data)
                else:
                    tensor.raw_data = data
                model.graph.initializer.append(tensor)
                del array, data


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
    chosen tower. One mode at a time: each tower is freed once measured and the chosen one is built
    again at the end (the same weights give the same tower), so that memory holds at most one extra
    tower at any time, and the memory of each is given back before the next (the first run on a
    machine peaked at 3 GB for ViT-B-32 while it kept the best so far).
    """
    choice = Choice("fp32")
    choice.rates["fp32"], reference = time_tower(visual, batch)
    choice.cosines["fp32"] = 1.0
    order = modes or supported_modes(device)
    for mode in order:
        if mode == "fp32":
            continue
        try:
            tower = build_tower(mode, visual, device, onnx_path)
            rate, features = time_tower(tower, batch)
        except Exception as exc:  # an exporter or kernel missing on this machine: that mode is out
            choice.errors[mode] = f"{type(exc).__name__}: {one_line(exc)}"
            continue
        finally:
            tower = None
            release_memory()
        choice.rates[mode] = rate
        choice.cosines[mode] = min_cosine(reference, features)
    choice.mode = pick(choice, order)  # the rules a first run's child processes follow too
    best: Tower = visual
    if choice.mode != "fp32":
        try:
            best = build_tower(choice.mode, visual, device, onnx_path)
        except Exception as exc:  # built a moment ago; if it cannot be now (a disk gone), fp32 it is
            choice.errors[choice.mode] = f"{type(exc).__name__}: {one_line(exc)}"
            choice.mode = "fp32"
    return choice, reference, best


def release_memory() -> None:
    """Hand freed memory back to the system now: a tower just dropped leaves hundreds of MB in the
    C allocator's free lists, which glibc keeps (and counts in the process's memory) unless asked."""
    gc.collect()
    if torch.cuda.is_initialized():  # a tower freed on the GPU: its blocks back to the driver
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to trim
            pass


def time_tower(tower: Tower, batch: torch.Tensor, repeats: int = 1) -> tuple[float, torch.Tensor]:
    """(images per second, features) for `batch`, after a warm-up call: a small one on a CPU, the
    whole batch on a GPU (whose first call at a batch size picks its kernels). On a GPU the clock
    stops once the device has finished, not when the kernels are queued."""
    on_gpu = batch.device.type in GPU_KINDS
    with torch.inference_mode():
        tower(batch if on_gpu else batch[:2])
        synchronize(batch.device)
        start = time.perf_counter()
        for _ in range(repeats):
            features = tower(batch)
        synchronize(batch.device)
        seconds = time.perf_counter() - start
    return repeats * len(batch) / seconds, features.float()


def synchronize(device: torch.device) -> None:
    """Wait until the work queued on `device` is done (a CPU's is done when the call returns)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=1).min())
