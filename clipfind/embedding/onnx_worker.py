"""The child process of a first run that measures ONNX Runtime's modes (clipfind.embedding.first_run),
without torch: the exported image tower as it is ("onnx") and quantised to int8 ("onnx-int8",
quantised here first when its file is missing: clipfind.embedding.quantise), each timed on the
calibration batch and compared with fp32's features, one session at a time.

`python -m clipfind.embedding.onnx_worker ARGS_JSON` answers once, {"measured": {rates, cosines,
errors}}, and exits: what quantising and the sessions leave in its memory goes with it.
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from clipfind.embedding.worker_protocol import Parent


def main(argv: list[str]) -> int:
    args: dict[str, Any] = json.loads(argv[0])
    parent = Parent(args)
    try:
        batch = np.load(args["batch"])
        reference = np.load(args["reference"])
        parent.send(measured=measure(Path(args["export"]), args["modes"], batch, reference))
    except Exception as exc:
        from clipfind.errors import one_line

        parent.send(error=f"{type(exc).__name__}: {one_line(exc)}")
        return 1
    return 0


def measure(export: Path, modes: list[str], batch: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Rates, cosines to `reference` and errors of ONNX Runtime's `modes` on `batch`."""
    from clipfind.embedding.onnx import open_session
    from clipfind.embedding.quantise import quantise
    from clipfind.embedding.runtime import quantised_path
    from clipfind.embedding.selection import min_cosine, time_run
    from clipfind.errors import one_line

    rates: dict[str, float] = {}
    cosines: dict[str, float] = {}
    errors: dict[str, str] = {}
    for mode in modes:
        session = None
        try:
            target = quantised_path(export) if mode == "onnx-int8" else export
            if mode == "onnx-int8" and not target.is_file():
                quantise(export, target)
            session = open_session(target)
            name = session.get_inputs()[0].name
            rate, features = time_run(lambda x: session.run(None, {name: x})[0], batch)  # noqa: B023
        except Exception as exc:  # a damaged export, a kernel missing on this machine: that mode is out
            errors[mode] = f"{type(exc).__name__}: {one_line(exc)}"
            continue
        finally:
            session = None
            _release_memory()
        rates[mode] = rate
        cosines[mode] = min_cosine(reference, features)
    return {"rates": rates, "cosines": cosines, "errors": errors}


def _release_memory() -> None:
    """A session just dropped: its memory back to the system before the next one (glibc keeps it)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
