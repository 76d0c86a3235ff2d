"""A first run measures in child processes (clipfind.embedding.first_run): the indexing process
never imports torch where ONNX Runtime wins, loads the torch model where torch wins, records the
same choice as measuring in one process does, and falls back to fp32 here, recording nothing,
when a child fails (issue 12, part 4).

The tiny test model is measured in one process in normal use (first_run.IN_PROCESS_BELOW_MB);
these tests lower that bound. Which mode wins depends on the CPU: where it matters, the winner is
forced both ways (selection.pick in the indexing process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from clipfind.catalog import Catalog
from clipfind.embedding import first_run, runtime, selection, worker_protocol
from clipfind.embedding.first_run import FirstRunEncoder, first_run_encoder, weights_mb
from clipfind.embedding.runtime import Choice
from clipfind.embedding.spec import ONNX_MODES, TINY_MODEL, ModelSpec
from clipfind.errors import ModelLoadError
from clipfind.library import Library
from tests.helpers import ROOT, copy_photos

SPEC = ModelSpec(TINY_MODEL, None)

# `clipfind index` with the children used for the tiny model too, the winner forced where asked,
# and whether this process imported torch printed last.
CLI = """
import sys, warnings
warnings.simplefilter("ignore")
from clipfind.embedding import first_run, selection
first_run.IN_PROCESS_BELOW_MB = -1
force = sys.argv.pop(1)
if force != "measured":
    selection.pick = lambda choice, order: force
from clipfind.cli import main
code = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
sys.exit(code)
"""


def _env(home: Path) -> dict[str, str]:
    """The tiny model, auto precision, and temporary files in a folder of the test's (TMPDIR)."""
    tmp = home.parent / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CLIPFIND_MODEL": TINY_MODEL, "CLIPFIND_PRETRAINED": "none", "PYTHONPATH": str(ROOT),
           "TMPDIR": str(tmp)}
    env.pop("CLIPFIND_PRECISION", None)
    return env


def _cli(home: Path, folder: Path, force: str = "measured") -> subprocess.CompletedProcess[str]:
    env = _env(home)
    return subprocess.run([sys.executable, "-c", CLI, force, "--home", str(home), "index", str(folder), "--json"],
                          capture_output=True, text=True, env=env, timeout=600)


def _vectors(home: Path, photos: list[Path]) -> np.ndarray:
    catalog = Catalog(home / "catalog.sqlite3")
    try:
        return np.stack([catalog.photo_by_path(str(p))[1] for p in photos])  # type: ignore[index]
    finally:
        catalog.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("photos")
    return folder, copy_photos(folder, 10, "kodak24")  # more than CALIBRATION_MIN_IMAGES


@pytest.fixture(scope="module")
def fp32_vectors(tmp_path_factory: pytest.TempPathFactory, photos: tuple[Path, list[Path]]) -> np.ndarray:
    """The vectors of a run that measures nothing (fp32, in this process)."""
    home = tmp_path_factory.mktemp("fp32-home")
    lib = Library(home, TINY_MODEL, "none", precision="fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib.index_folders([str(photos[0])])
    lib.close()
    return _vectors(home, photos[1])


def _entry(home: Path) -> dict[str, object]:
    table = json.loads((home / runtime.CHOICE_FILE).read_text())
    return dict(table[runtime.machine_key(SPEC, None)])  # the key measuring in one process uses


def test_where_onnx_runtime_wins_this_process_never_imports_torch(
    tmp_path: Path, photos: tuple[Path, list[Path]], fp32_vectors: np.ndarray
) -> None:
    folder, files = photos
    home = tmp_path / "home"
    proc = _cli(home, folder, "onnx-int8")
    assert proc.returncode == 0, proc.stderr
    *summary, flag = proc.stdout.strip().splitlines()
    assert flag == "NO-TORCH"
    assert json.loads("\n".join(summary))["added"] == len(files)
    assert "measured once on this machine: the image encoder runs in onnx-int8" in proc.stderr
    assert "Traceback" not in proc.stderr
    entry = _entry(home)
    assert entry["mode"] == "onnx-int8"
    measured = set(entry["rates"]) | set(entry["errors"])  # type: ignore[arg-type]
    assert {"fp32", "int8", *ONNX_MODES} <= measured
    image = runtime.onnx_path(home, SPEC)
    text = runtime.onnx_path(home, SPEC, "text")
    for path in (image, runtime.quantised_path(image), image.with_suffix(".json"), text):
        assert path.is_file(), path
    assert not list(home.glob(".measure.*")) and not list((home.parent / "tmp").glob("clipfind-*"))  # all gone
    # The first batch was measured on: its vectors are fp32's, as when measuring in one process.
    assert float((_vectors(home, files) * fp32_vectors).sum(axis=1).min()) > 0.99999


def test_where_torch_wins_the_model_runs_here_once_the_children_are_gone(
    tmp_path: Path, photos: tuple[Path, list[Path]], fp32_vectors: np.ndarray
) -> None:
    folder, files = photos
    home = tmp_path / "home"
    proc = _cli(home, folder, "int8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "TORCH"
    assert _entry(home)["mode"] == "int8"
    assert not runtime.onnx_path(home, SPEC, "text").exists()  # no text export where torch runs, as before
    assert float((_vectors(home, files) * fp32_vectors).sum(axis=1).min()) > 0.99999
    # A later run reads the choice: nothing is measured again.
    copy_photos(folder / "later", 2, "skimage_data")
    try:
        again = _cli(home, folder, "fp32")  # a forced pick would show if anything were measured
        assert again.returncode == 0, again.stderr
        assert "measured once" not in again.stderr and _entry(home)["mode"] == "int8"
    finally:
        for p in (folder / "later").iterdir():
            p.unlink()
        (folder / "later").rmdir()


def _lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(first_run, "IN_PROCESS_BELOW_MB", -1)


def test_a_child_that_dies_while_measuring_means_fp32_here_and_nothing_recorded(
    tmp_path: Path, photos: tuple[Path, list[Path]], fp32_vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lowered(monkeypatch)
    real_ask = worker_protocol.Worker.ask

    def killed(self: worker_protocol.Worker, request: dict[str, object]) -> dict[str, object]:
        if "calibrate" in request:
            self._proc.kill()  # a crash, or the system killing it for memory
        return real_ask(self, request)

    monkeypatch.setattr(worker_protocol.Worker, "ask", killed)
    lib = Library(tmp_path / "home", TINY_MODEL, "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = lib.index_folders([str(photos[0])])
    lib.close()
    assert report.encoded == len(photos[1])
    assert any("measuring the image encoder in a separate process failed" in n for n in report.notices)
    assert not (tmp_path / "home" / runtime.CHOICE_FILE).exists()  # the next run measures again
    assert float((_vectors(tmp_path / "home", photos[1]) * fp32_vectors).sum(axis=1).min()) > 0.99999


def test_onnx_runtime_failing_in_its_child_leaves_the_torch_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash in the torch-free child is ONNX Runtime's modes failing on this machine, as an error
    they raised is when measuring in one process: recorded, and the best torch mode kept."""
    _lowered(monkeypatch)
    real_start = FirstRunEncoder._start

    def start(self: FirstRunEncoder, role: str, on_progress: object = None, **args: object) -> worker_protocol.Worker:
        worker = real_start(self, role, on_progress, **args)  # type: ignore[arg-type]
        if role == "onnx":
            worker._proc.kill()
        return worker

    monkeypatch.setattr(FirstRunEncoder, "_start", start)
    from clipfind.embedding.torch_model import load_model

    encoder = first_run_encoder(SPEC, tmp_path, None, "auto",
                                lambda: load_model(SPEC, None, precision="auto", home=tmp_path))
    assert encoder is not None
    batch = np.random.default_rng(0).standard_normal((8, 3, encoder.image_size, encoder.image_size), dtype=np.float32)
    vectors = encoder.encode_images(batch)
    assert vectors.shape == (8, encoder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.choice is not None
    assert set(encoder.choice.errors) >= set(ONNX_MODES) and encoder.choice.mode not in ONNX_MODES
    assert all("WorkerFailed" in encoder.choice.errors[m] for m in ONNX_MODES)


def _no_torch_here() -> object:
    raise AssertionError("this test expects nothing to run in the test's process")


def test_too_few_photos_are_encoded_in_fp32_and_the_measuring_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lowered(monkeypatch)
    monkeypatch.setattr(selection, "pick", lambda choice, order: "onnx")
    from clipfind.embedding.torch_model import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = load_model(SPEC, "cpu", precision="fp32")
    encoder = first_run_encoder(SPEC, tmp_path, None, "auto", _no_torch_here)
    assert isinstance(encoder, FirstRunEncoder)
    assert (encoder.dim, encoder.image_size) == (reference.dim, reference.image_size)
    rng = np.random.default_rng(1)
    few = rng.standard_normal((3, 3, encoder.image_size, encoder.image_size), dtype=np.float32)
    np.testing.assert_allclose(encoder.encode_images(few), reference.encode_images(few), atol=1e-5)
    assert encoder.choice is None and not (tmp_path / runtime.CHOICE_FILE).exists()
    enough = rng.standard_normal((8, 3, encoder.image_size, encoder.image_size), dtype=np.float32)
    np.testing.assert_allclose(encoder.encode_images(enough), reference.encode_images(enough), atol=1e-5)
    assert encoder.mode == "onnx" and runtime.load_choice(tmp_path, runtime.machine_key(SPEC, None)) is not None
    assert encoder.notices and encoder.notices[0].startswith("measured once on this machine: ")
    later = encoder.encode_images(few)  # now through ONNX Runtime, in this process
    assert float((later * reference.encode_images(few)).sum(axis=1).min()) > 0.9999
    assert type(encoder._inner).__name__ == "OnnxImageEncoder"


def test_a_model_that_cannot_load_says_so_as_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _lowered(monkeypatch)
    missing = tmp_path / "nowhere.safetensors"
    with pytest.raises(ModelLoadError, match="Checkpoint file not found"):
        first_run_encoder(ModelSpec(TINY_MODEL, str(missing)), tmp_path, None, "auto", _no_torch_here)
    assert not list(tmp_path.glob("onnx/*"))


def test_the_children_are_only_for_a_large_model_measured_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert weights_mb(SPEC) < first_run.IN_PROCESS_BELOW_MB  # the tests' model: in one process
    assert weights_mb(ModelSpec("ViT-B-32", None)) > first_run.IN_PROCESS_BELOW_MB  # random weights too
    assert weights_mb(ModelSpec("hf-hub:someone/some-clip", None)) == float("inf")
    checkpoint = tmp_path / "small.safetensors"
    checkpoint.write_bytes(b"x" * 1000)
    assert weights_mb(ModelSpec("ViT-B-32", str(checkpoint))) < 1
    assert first_run_encoder(SPEC, tmp_path, None, "auto", _no_torch_here) is None
    _lowered(monkeypatch)
    for device, precision in (("cuda", "auto"), ("mps", "auto"), (None, "fp32"), ("cpu", "onnx")):
        assert first_run_encoder(SPEC, tmp_path, device, precision, _no_torch_here) is None
    monkeypatch.setattr(first_run, "cuda_likely", lambda: True)
    assert first_run_encoder(SPEC, tmp_path, None, "auto", _no_torch_here) is None  # torch would pick the GPU
    monkeypatch.setattr(first_run, "cuda_likely", lambda: False)
    runtime.save_choice(tmp_path, runtime.machine_key(SPEC, None), Choice("int8"))
    assert first_run_encoder(SPEC, tmp_path, None, "auto", _no_torch_here) is None  # measured before


@pytest.mark.parametrize("native_bf16", [True, False], ids=["bf16-cpu", "avx2-cpu"])
def test_the_modes_measured_are_those_of_this_cpu(native_bf16: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The modes are decided here, without torch, as calibrate.supported_modes decides them."""
    import torch

    from clipfind.embedding import calibrate

    flags = runtime.cpu_flags() - selection.BF16_FLAGS
    fake = (lambda: flags | {"amx_bf16"}) if native_bf16 else (lambda: flags)
    monkeypatch.setattr(calibrate, "cpu_flags", fake)
    monkeypatch.setattr(first_run, "cpu_flags", fake)
    here = selection.cpu_modes(bool(selection.BF16_FLAGS & first_run.cpu_flags()), first_run.onnx_installed())
    assert here == calibrate.supported_modes(torch.device("cpu"))
    assert ("bf16" in here) == native_bf16


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_a_killed_indexer_leaves_no_child_behind_and_the_next_run_finishes(
    tmp_path: Path, photos: tuple[Path, list[Path]]
) -> None:
    folder, files = photos
    home = tmp_path / "home"
    env = _env(home)
    proc = subprocess.Popen([sys.executable, "-c", CLI, "measured", "--home", str(home), "index", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    child = None
    deadline = time.monotonic() + 300
    while child is None and time.monotonic() < deadline and proc.poll() is None:
        child = next(iter(_children(proc.pid)), None)
        time.sleep(0.05)
    assert child is not None, "no measuring child was started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone = time.monotonic() + 30
    while _alive(child) and time.monotonic() < gone:
        time.sleep(0.1)
    assert not _alive(child), "the measuring child outlived its indexer"
    again = _cli(home, folder)
    assert again.returncode == 0, again.stderr
    assert len(_vectors(home, files)) == len(files)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False
