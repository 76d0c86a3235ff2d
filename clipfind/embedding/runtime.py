"""This machine, and the record of how it runs each model: which mode calibration chose, and
where the exported towers live; how many photos fill a batch on a GPU (batch_size_for).

Light to import (no torch): a process that finds here that the model runs through ONNX Runtime
on this machine, with the export already made, indexes without importing torch at all (see
clipfind.embedding.onnx). clipfind.embedding.calibrate does the measuring and the exporting.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from clipfind.embedding.spec import GPU_KINDS, MODES, ModelSpec
from clipfind.home import ONNX_FOLDER, atomic_write

CHOICE_FILE = "runtime.json"
ONNX_OPSET = 17


@dataclass
class Choice:
    """What a calibration measured, and the mode it picked."""

    mode: str
    rates: dict[str, float] = field(default_factory=dict)  # images per second per mode
    cosines: dict[str, float] = field(default_factory=dict)  # minimum cosine to fp32 per mode
    errors: dict[str, str] = field(default_factory=dict)  # modes that could not be built or run

    def summary(self) -> str:
        base = self.rates.get("fp32")
        if self.mode == "fp32" or not base:
            return "the image encoder runs in fp32 (no faster mode kept the vectors within tolerance here)"
        return (
            f"the image encoder runs in {self.mode}: {self.rates[self.mode] / base:.1f}x "
            f"the fp32 speed, vectors within cosine {self.cosines[self.mode]:.4f} of fp32"
        )


def weights_fingerprint(spec: ModelSpec) -> str:
    """A checkpoint file is known by its size and time, so a re-saved file is exported again."""
    if not spec.is_file or not spec.pretrained:
        return ""
    try:
        st = os.stat(os.path.expanduser(spec.pretrained))
    except OSError:
        return spec.pretrained
    return f"{spec.pretrained}:{st.st_size}:{st.st_mtime_ns}"


def export_key(spec: ModelSpec) -> str:
    """What an exported tower depends on: the weights and the exporter, not the machine."""
    parts = [spec.identity, weights_fingerprint(spec), package_version("torch"), str(ONNX_OPSET)]
    return _digest(parts)


def machine_key(spec: ModelSpec, device: str | None, runs_on: str = "cpu") -> str:
    """What a measured choice depends on; a change in any of these measures again. `device` is the
    one asked for (None: the fastest present), so that a process can look the choice up without
    importing torch to find out which devices exist; `runs_on` is the device that runs the model
    (calibrate.device_label: "cpu", or a GPU's kind and name), so that a choice measured on the CPU
    is never taken on a GPU, nor one GPU's on another. A CPU's key is the one it always was."""
    parts = [
        export_key(spec), device or "auto", str(cpu_threads()), package_version("onnxruntime"), cpu_name(),
        " ".join(sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni"})),
    ]
    if runs_on != "cpu":
        parts.append(runs_on)
    return _digest(parts)


NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the NVIDIA driver shows (Linux)


def cuda_likely() -> bool:
    """Whether torch would probably find a CUDA GPU here, told without importing it: an NVIDIA GPU
    the driver shows (Linux: /proc/driver/nvidia/gpus; Windows: nvidia-smi on the PATH), not hidden
    by CUDA_VISIBLE_DEVICES, and a torch build for CUDA (the nvidia-* runtime wheels beside it, or a
    "+cu" version). Used where a process that would take the ONNX Runtime path on a CPU must leave
    the choice to torch instead (clipfind.embedding.onnx.onnx_mode)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    try:
        driver = any(NVIDIA_GPUS.iterdir())
    except OSError:
        driver = sys.platform == "win32" and shutil.which("nvidia-smi") is not None
    if not driver:
        return False
    torch_version = package_version("torch")
    runtimes = ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11", "nvidia-cuda-runtime")
    return "+cu" in torch_version or any(package_version(name) for name in runtimes)


def apple_chip() -> str:
    """The Apple chip's name ("Apple M2 Pro"): an MPS GPU is known by it."""
    try:
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5)
        name = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or platform.machine()


# Photos per model batch on a GPU: enough to fill it (a CPU batch of 32 leaves most of a GPU idle),
# and no more than half its free memory; powers of two, for the kernels.
GPU_BATCH_CEILING = 256
GPU_MEMORY_SHARE = 0.5


def batch_size_for(device_kind: str, *, requested: int = 32, free_bytes: int | None = None,
                   per_image_bytes: int = 32 * 2**20) -> int:
    """Photos per model batch on a device of `device_kind` ("cpu", "cuda", "mps"): `requested` on a
    CPU; on a GPU the largest power of two up to GPU_BATCH_CEILING whose photos take at most
    GPU_MEMORY_SHARE of `free_bytes` (`per_image_bytes` each: calibrate.per_image_bytes), never fewer
    than `requested`. Without a figure for the free memory, 128. clipfind.embedding.torch_model's
    ClipModel.batch_size_for asks it with the model's own figures."""
    if device_kind not in GPU_KINDS:
        return requested
    if free_bytes is None:
        fits = 128
    else:
        fits = int(GPU_MEMORY_SHARE * free_bytes // max(1, per_image_bytes))
    size = 1
    while size * 2 <= min(GPU_BATCH_CEILING, fits):
        size *= 2
    return max(requested, size)


def onnx_path(home: Path, spec: ModelSpec, tower: str = "image") -> Path:
    """Where the exported `tower` ("image", "text", or "image.int8", the image tower quantised) of
    `spec` lives in `home`."""
    name = spec.name.replace("/", "_").replace(":", "_")
    return home / ONNX_FOLDER / f"{name}-{export_key(spec)}{'' if tower == 'image' else '.' + tower}.onnx"


def quantised_path(path: Path) -> Path:
    """The quantised twin of an exported image tower (same folder, same sidecar)."""
    return path.with_name(path.stem + ".int8.onnx")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it; else every CPU)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def decode_workers_for(device_kind: str, usable_cpus: int) -> int:
    """Decode workers that keep a model on `device_kind` fed: on a CPU up to 4 (the model shares the
    cores with them); on a GPU, where decoding and not the model is the bound, one per usable CPU
    but one (left to the process that batches, feeds the GPU and commits)."""
    if device_kind in GPU_KINDS:
        return max(1, usable_cpus - 1)
    return max(1, min(4, usable_cpus))


def load_choice(home: Path, key: str) -> Choice | None:
    try:
        entry = json.loads((home / CHOICE_FILE).read_text(encoding="utf-8")).get(key)
        if not entry or entry.get("mode") not in MODES:
            return None
        return Choice(**entry)
    except (OSError, ValueError, TypeError, AttributeError):
        return None  # missing or damaged: measure again


def save_choice(home: Path, key: str, choice: Choice) -> None:
    """Best effort: a read-only or full home only means measuring again next time."""
    path = home / CHOICE_FILE
    try:
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
            table = table if isinstance(table, dict) else {}
        except (OSError, ValueError):
            table = {}
        table[key] = asdict(choice)
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(table, indent=1), encoding="utf-8")
    except OSError:
        pass


def cpu_threads() -> int:
    """Threads for the model: one per physical core we may run on (OMP_NUM_THREADS wins if set)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else physical_cores()


def physical_cores() -> int:
    """Cores this process may run on, counting hyper-threads once (they slow matmul-bound work)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:  # no sysfs (macOS, Windows, some containers): count logical CPUs
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores))


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def cpu_flags() -> set[str]:
    return set(_cpuinfo_field(("flags", "Features")).split())


def cpu_name() -> str:
    return _cpuinfo_field(("model name",)) or platform.processor() or platform.machine()


def _cpuinfo_field(names: tuple[str, ...]) -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(names):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
