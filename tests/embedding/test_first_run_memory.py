"""The first run's measuring and exporting holds one extra tower at a time and copies no weights
it does not need, with the same towers, files and choice as before (issue 12, part 4)."""

from __future__ import annotations

import contextlib
import copy
import gc
import warnings
import weakref
from pathlib import Path

import pytest
import torch

from clipfind.embedding import calibrate, selection
from clipfind.embedding import quantise as quantise_module
from clipfind.embedding.spec import TINY_MODEL, ModelSpec
from clipfind.embedding.torch_model import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def visual() -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_model(ModelSpec(TINY_MODEL, None), device="cpu", precision="fp32")._model.visual


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(5))


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_int8_and_bf16_towers_equal_those_of_a_full_copy_and_leave_fp32_alone(
    visual: torch.nn.Module, batch: torch.Tensor
) -> None:
    """The towers are built from the fp32 weights without a full copy of them first; they must be
    the very towers a deepcopy gave, and the fp32 tower must not change."""
    before = _state(visual)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old_int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(visual), {torch.nn.Linear}, torch.qint8)
    old_bf16 = copy.deepcopy(visual).to(torch.bfloat16)
    int8 = calibrate.build_tower("int8", visual, CPU)
    bf16 = calibrate.build_tower("bf16", visual, CPU)
    with torch.inference_mode():
        assert torch.equal(int8(batch), old_int8(batch))
        assert torch.equal(bf16(batch), old_bf16(batch.to(torch.bfloat16)).float())
    after = visual.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.dtype == torch.float32 for p in visual.parameters())


def test_the_export_is_the_same_file_as_the_exporter_embedding_the_weights(
    visual: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weights are written apart, tensor by tensor; the graph and weights files are those the
    exporter gives when it embeds them (the path taken where torch lacks the pass to intercept)."""
    example = torch.zeros(2, 3, 64, 64)
    real_pass = torch._C._jit_pass_onnx_deduplicate_initializers
    calibrate.export_onnx(visual, example, tmp_path / "apart" / "t.onnx", "images")
    assert torch._C._jit_pass_onnx_deduplicate_initializers is real_pass  # put back
    monkeypatch.setattr(calibrate._WeightsApart, "_PASS", "_no_such_pass")
    calibrate.export_onnx(visual, example, tmp_path / "embedded" / "t.onnx", "images")
    for name in ("t.onnx", "t.onnx.data"):
        assert (tmp_path / "apart" / name).read_bytes() == (tmp_path / "embedded" / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "apart").iterdir()) == ["t.onnx", "t.onnx.data"]  # no temp left


def test_the_quantised_file_is_the_one_onnxruntime_makes_alone(
    visual: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shapes inferred without the weights, one copy of them: the same int8 file, byte for byte,
    and onnxruntime's own function in place again afterwards."""
    import onnxruntime.quantization.onnx_quantizer as quantizer

    real_reload = quantizer.save_and_reload_model_with_shape_infer
    source = tmp_path / "t.onnx"
    calibrate.export_onnx(visual, torch.zeros(2, 3, 64, 64), source, "images")
    calibrate.quantise(source, tmp_path / "lean.onnx")
    assert quantizer.save_and_reload_model_with_shape_infer is real_reload
    monkeypatch.setattr(quantise_module, "_one_copy_of_the_weights", contextlib.nullcontext)
    calibrate.quantise(source, tmp_path / "plain.onnx")
    assert (tmp_path / "lean.onnx").read_bytes() == (tmp_path / "plain.onnx").read_bytes()


def test_a_failed_export_puts_the_exporter_back(
    visual: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pass = torch._C._jit_pass_onnx_deduplicate_initializers

    def broken(*args: object, **kwargs: object) -> None:
        assert torch._C._jit_pass_onnx_deduplicate_initializers is not real_pass  # patched while exporting
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        calibrate.export_onnx(visual, torch.zeros(2, 3, 64, 64), tmp_path / "t.onnx", "images")
    assert torch._C._jit_pass_onnx_deduplicate_initializers is real_pass
    assert not calibrate._EXPORT_LOCK.locked()
    assert not list(tmp_path.iterdir())  # nothing half written


def _every_mode_good_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every mode counts as fast and close enough, and better than the one before: the last one
    measured is chosen, whatever this CPU measures."""
    monkeypatch.setattr(selection, "MIN_SPEEDUP", 0.0)
    monkeypatch.setattr(calibrate, "min_cosine", lambda a, b: 1.0)
    monkeypatch.setattr(selection, "better", lambda *args: True)


@pytest.mark.parametrize("native_bf16", [True, False], ids=["bf16-cpu", "avx2-cpu"])
def test_one_tower_at_a_time_and_the_chosen_one_built_again(
    visual: torch.nn.Module, batch: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_bf16: bool
) -> None:
    """Each measured tower is gone before the next is built; the chosen mode is built once more at
    the end, and that is the tower returned. On both kinds of CPU (bf16 measured or not)."""
    flags = calibrate.cpu_flags() - {"avx512_bf16", "amx_bf16", "bf16"}
    monkeypatch.setattr(calibrate, "cpu_flags", lambda: flags | {"avx512_bf16"} if native_bf16 else flags)
    real_build = calibrate.build_tower
    alive: list[weakref.ref[object]] = []
    built: list[str] = []

    class Tower:
        def __init__(self, inner: calibrate.Tower) -> None:
            self.inner = inner

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    def build(mode: str, *args: object, **kwargs: object) -> calibrate.Tower:
        gc.collect()
        assert not [r for r in alive if r() is not None], f"a tower was still held when {mode} was built"
        built.append(mode)
        tower = Tower(real_build(mode, *args, **kwargs))  # type: ignore[arg-type]
        alive.append(weakref.ref(tower))
        return tower

    monkeypatch.setattr(calibrate, "build_tower", build)
    _every_mode_good_enough(monkeypatch)
    choice, _, tower = calibrate.calibrate(visual, batch, CPU, tmp_path / "t.onnx")
    measured = [m for m in calibrate.supported_modes(CPU) if m != "fp32"]
    assert ("bf16" in measured) == native_bf16
    assert built == [*measured, measured[-1]] and choice.mode == measured[-1]
    assert isinstance(tower, Tower) and alive[-1]() is tower
    assert set(choice.rates) == {"fp32", *measured}


def test_a_chosen_tower_that_cannot_be_built_again_means_fp32(
    visual: torch.nn.Module, batch: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = calibrate.build_tower
    calls: list[str] = []

    def build(mode: str, *args: object, **kwargs: object) -> calibrate.Tower:
        calls.append(mode)
        if calls.count(mode) > 1:
            raise OSError("disk gone")
        return real_build(mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calibrate, "build_tower", build)
    _every_mode_good_enough(monkeypatch)
    choice, _, tower = calibrate.calibrate(visual, batch, CPU, tmp_path / "t.onnx", ["fp32", "int8"])
    assert choice.mode == "fp32" and tower is visual
    assert choice.errors == {"int8": "OSError: disk gone"}


# -- a first run's children (clipfind.embedding.first_run) ---------------------------------------
def test_towers_made_in_place_are_the_towers_build_tower_makes(visual: torch.nn.Module, batch: torch.Tensor) -> None:
    """The child that measures makes each torch mode of the fp32 tower itself (its weights never
    held in two types at once); the towers must be those the indexing process builds later."""
    for mode in ("int8", "bf16"):
        with torch.inference_mode():
            expected = calibrate.build_tower(mode, visual, CPU)(batch)
            own = copy.deepcopy(visual)
            weights = weakref.ref(own.transformer.resblocks[0].mlp.c_fc.weight)
            tower = calibrate.build_tower_in_place(mode, own)
            gc.collect()
            if mode == "int8":  # the Linear layers replaced, their fp32 weights let go
                assert weights() is None, "the fp32 weight is still held"
            else:  # every weight cast where it is
                assert all(p.dtype == torch.bfloat16 for p in own.parameters())
            assert torch.equal(tower(batch), expected), mode


@pytest.mark.parametrize("native_bf16", [True, False], ids=["bf16-cpu", "avx2-cpu"])
def test_the_child_measures_what_one_process_measures(
    visual: torch.nn.Module, batch: torch.Tensor, tmp_path: Path, native_bf16: bool
) -> None:
    """torch_worker._measure: the export, fp32's features, and each torch mode's cosine exactly as
    calibrate computes them; the fp32 tower saved for the modes after the first is gone after."""
    import numpy as np

    from clipfind.embedding import torch_worker
    from clipfind.embedding.selection import cpu_modes

    modes = cpu_modes(native_bf16, True)
    held = [copy.deepcopy(visual)]
    export = tmp_path / "t.onnx"
    measured = torch_worker._measure(held, batch, modes, tmp_path / "reference.npy", export)
    assert not held and not measured["errors"]
    assert export.is_file() and (tmp_path / "t.onnx.data").is_file()
    with torch.inference_mode():
        reference = visual(batch)
    np.testing.assert_array_equal(np.load(tmp_path / "reference.npy"), reference.numpy())
    for mode in modes:
        if mode in ("fp32", "onnx", "onnx-int8"):
            continue
        with torch.inference_mode():
            features = calibrate.build_tower(mode, visual, CPU)(batch)
        assert measured["cosines"][mode] == calibrate.min_cosine(reference, features), mode
    assert set(measured["rates"]) == {m for m in modes if m not in ("onnx", "onnx-int8")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference.npy", "t.onnx", "t.onnx.data"]


def test_the_rules_pick_what_calibrate_picks(
    visual: torch.nn.Module, batch: torch.Tensor, tmp_path: Path
) -> None:
    """selection.pick (the children's way) and calibrate.calibrate (one process) keep the same mode
    from the same measures."""
    choice, _, _ = calibrate.calibrate(visual, batch, CPU, tmp_path / "t.onnx")
    assert selection.pick(choice, calibrate.supported_modes(CPU)) == choice.mode
    made_up = calibrate.Choice("fp32", rates={"fp32": 10.0, "int8": 14.0, "onnx": 13.0, "onnx-int8": 30.0},
                               cosines={"fp32": 1.0, "int8": 0.9995, "onnx": 1.0, "onnx-int8": 0.99})
    assert selection.pick(made_up, ["fp32", "int8", "onnx", "onnx-int8"]) == "onnx"  # near-tie: ONNX Runtime
    made_up.rates["int8"] = 15.0
    assert selection.pick(made_up, ["fp32", "int8", "onnx", "onnx-int8"]) == "int8"
