"""ONNX Runtime's int8 quantisation of an exported image tower, with one copy of the weights in
memory. Light to import (no torch: onnx and onnxruntime only), so a first run can quantise in a
process that never holds torch (clipfind.embedding.onnx_worker).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clipfind.embedding.onnx import EXTERNAL_THRESHOLD
from clipfind.home import atomic_write


def quantise(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the transformer's matrix products only, per
    output channel and with 7-bit range (CPUs without VNNI can overflow with the full 8 bits):
    on random ViT-B-32 weights this kept a cosine of 0.9996 to fp32 where the full 8 bits or all
    operators went down to 0.987. The calibration checks it again on the real weights.

    Its copies of the weights are kept down to one (see _one_copy_of_the_weights): ViT-B-32's quantisation
    peaked at +1.15 GB, +0.59 GB now, for the same file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        with warnings.catch_warnings(), atomic_write(target) as tmp, _one_copy_of_the_weights():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                             op_types_to_quantize=["MatMul"])
    finally:
        root.removeFilter(_no_preprocessing_advice)


_QUANTISE_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_copy_of_the_weights() -> Iterator[None]:
    """While quantising, onnxruntime's shape inference works on the model without its weights.

    quantize_dynamic loads the model, and its quantizer then reloads it through a temporary file
    with shapes inferred (`save_and_reload_model_with_shape_infer`): a deep copy and a reload
    beside the first, three copies of the weights at once. Here the shapes are inferred on a copy
    without the large weights (shapes never depend on their values), and the model first loaded
    is given what the reload holds besides them: the same model, with one copy of the weights.
    Where onnxruntime has no such function (another version), it quantises as it always does."""
    import onnxruntime.quantization.onnx_quantizer as quantizer

    with _QUANTISE_LOCK:  # the function is replaced for the whole process: one quantisation at a time
        real = getattr(quantizer, "save_and_reload_model_with_shape_infer", None)
        if real is None:
            yield
            return

        def reload(model: Any) -> Any:
            reloaded = real(_without_weights(model))
            if [t.name for t in reloaded.graph.initializer] != [t.name for t in model.graph.initializer]:
                return real(model)  # not the model with inferred shapes only: the plain way
            import onnx

            rest = onnx.ModelProto()
            rest.CopyFrom(reloaded)
            rest.graph.ClearField("initializer")
            for field, _ in model.ListFields():
                if field.name != "graph":
                    model.ClearField(field.name)
            for field, _ in model.graph.ListFields():
                if field.name != "initializer":
                    model.graph.ClearField(field.name)
            model.MergeFrom(rest)
            return model

        quantizer.save_and_reload_model_with_shape_infer = reload
        try:
            yield
        finally:
            quantizer.save_and_reload_model_with_shape_infer = real


_TENSOR_DATA = {"raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"}


def _without_weights(model: Any) -> Any:
    """A copy of `model` whose tensors of EXTERNAL_THRESHOLD bytes or more keep their name, type and
    dims but not their data (small ones, such as the shapes a Reshape reads, are copied whole)."""
    import onnx

    clone = onnx.ModelProto()
    _copy_fields(model, clone, {"graph"})
    _copy_fields(model.graph, clone.graph, {"initializer"})
    for tensor in model.graph.initializer:
        copy_ = clone.graph.initializer.add()
        if tensor.ByteSize() < EXTERNAL_THRESHOLD:
            copy_.CopyFrom(tensor)
        else:
            _copy_fields(tensor, copy_, _TENSOR_DATA)
    return clone


def _copy_fields(source: Any, target: Any, skip: set[str]) -> None:
    for field, value in source.ListFields():
        if field.name in skip:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        if repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """onnxruntime logs "Please consider to run pre-processing before quantization" on the root
    logger for every model: advice for its own users, noise on a clipfind user's first run."""
    return not record.getMessage().startswith("Please consider to run pre-processing")
