"""Start-up times, each a fresh process launched from here and repeated (median and max reported).

1. App start: wall time from launching the installed `clipfind-gui` (offscreen Qt) to a visible, responsive
   window. gui/app.py's CLIPFIND_STARTUP_PROBE hook appends "window <time.time()>" once the shown window is
   exposed and the running event loop has fired a zero-timer, then "model <time.time()>" once the background
   model load ends, and closes the app. Launch-to-window is time.time() before Popen against the written
   value. Two homes: a small real library (10 photos indexed with ViT-B-32, random weights) and an empty
   first-run home (`--pretrained none`, as there is no network for the default weights).
2. Cold `clipfind search "dog on a beach"` against that library: process wall time, broken down by fresh
   processes that import torch, open_clip and onnxruntime alone, one that times (in-process, in order) the
   imports, the ViT-B-32 load and the first text encoding (plus its interpreter start and exit, by wall
   clock from here), and `python -X importtime` offenders.
3. Cold `clipfind status`: process wall time, and whether it imports torch.

"Cold" means a fresh interpreter; the OS file cache is warm (one discarded run first), as for a user who
has run clipfind before. Children get a private XDG_CONFIG_HOME, so the app's settings are never the user's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import common

BIN = Path(sys.executable).parent  # the venv's bin: python, clipfind, clipfind-gui
QUERY = "dog on a beach"
APP_TARGET_S = 2.0
SEARCH_TARGET_S = 0.76  # rclip's cold search
LIBRARY_PHOTOS = 10

# Run in a fresh interpreter: the in-process cost of each step of a cold text search, in order.
BREAKDOWN = """
import time
began = time.time()
import json, warnings
warnings.simplefilter("ignore")
t = [time.perf_counter()]
import torch
t.append(time.perf_counter())
import open_clip
t.append(time.perf_counter())
from clipfind.embedding.torch_model import load_model
from clipfind.embedding.spec import ModelSpec
t.append(time.perf_counter())
model = load_model(ModelSpec("ViT-B-32", None))
t.append(time.perf_counter())
model.encode_texts([%r])
t.append(time.perf_counter())
from open_clip.model import _build_text_tower
cfg = open_clip.get_model_config("ViT-B-32")
_build_text_tower(cfg["embed_dim"], cfg["text_cfg"])
t.append(time.perf_counter())
net = model._model
share = sum(p.numel() for p in net.visual.parameters()) / sum(p.numel() for p in net.parameters())
steps = ["import torch", "import open_clip (on top)", "import clipfind.embedding.torch_model (on top)",
         "load ViT-B-32, both towers", "first text encoding", "(not in a search) build the text tower alone"]
print(json.dumps({"steps": dict(zip(steps, [b - a for a, b in zip(t, t[1:])])), "visual_share": share,
                  "began": began, "ended": time.time()}), flush=True)
""" % QUERY


def child_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPFIND_")}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(config), HF_HUB_OFFLINE="1")
    return env


def run(cmd: Sequence[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done


def wall(cmd: Sequence[str], env: dict[str, str]) -> float:
    with common.timer() as t:
        run(cmd, env)
    return t()


def make_library(work: Path, env: dict[str, str]) -> Path:
    """A home with LIBRARY_PHOTOS real photos indexed by ViT-B-32 (random weights), as a user would have."""
    folder = work / "Photos"
    folder.mkdir()
    for src in [p for p in common.real_photos() if p.parent.name == "kodak24"][:LIBRARY_PHOTOS]:
        shutil.copyfile(src, folder / src.name)
    home = work / "library"
    run([str(BIN / "clipfind"), "--home", str(home), "index", str(folder), "--model", "ViT-B-32",
         "--pretrained", "none"], env)
    return home


def app_start(args: list[str], env: dict[str, str], probe: Path) -> tuple[float, float]:
    """One launch of clipfind-gui: seconds to the responsive window, then from there to the model loaded."""
    probe.unlink(missing_ok=True)
    started = time.time()
    with subprocess.Popen([str(BIN / "clipfind-gui"), *args], env={**env, "CLIPFIND_STARTUP_PROBE": str(probe)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        _, err = proc.communicate(timeout=300)
    marks = dict(line.split() for line in probe.read_text().splitlines()) if probe.exists() else {}
    if proc.returncode != 0 or {"window", "model"} - marks.keys():
        raise SystemExit(f"bench: clipfind-gui {args} exited {proc.returncode}, probe {marks}:\n{err[-2000:]}")
    return float(marks["window"]) - started, float(marks["model"]) - float(marks["window"])


def report(name: str, values: Sequence[float], target: float | None = None, digits: int = 2) -> None:
    median, worst = common.percentile(values, 50), max(values)
    if target is None:
        common.figure(f"{name}, median", median, "s", digits=digits)
        common.figure(f"{name}, max", worst, "s", digits=digits)
    else:
        common.figure(f"{name}, median", median, "s", target=f"<= {target:g} s", met=median <= target, digits=digits)
        common.figure(f"{name}, max", worst, "s", target=f"<= {target:g} s", met=worst <= target, digits=digits)


def import_time(module: str, env: dict[str, str]) -> float:
    """Seconds `import module` takes in a fresh interpreter, timed inside it."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return float(run([sys.executable, "-c", code], env).stdout)


def importtime_rows(code: str, env: dict[str, str]) -> list[tuple[str, int, float, float]]:
    """(module, depth, self s, cumulative s) from `python -X importtime -c code`, children before parents."""
    err = run([sys.executable, "-X", "importtime", "-c", code], env).stderr
    rows = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if m:
            rows.append((m[4], len(m[3]) // 2, int(m[1]) / 1e6, int(m[2]) / 1e6))
    return rows


def offenders(rows: list[tuple[str, int, float, float]], top: int = 8) -> list[tuple[str, float, float]]:
    """Known heavy packages and the `top` modules by own time, as (module, self s, cumulative s), by cumulative."""
    wanted = {"torch", "torchvision", "torch._dynamo", "torch._inductor", "open_clip", "timm", "sympy",
              "huggingface_hub", "PIL.Image", "numpy", "clipfind.embedding.torch_model"}
    heavy = sorted(rows, key=lambda r: r[2], reverse=True)[:top]
    kept = {(name, own, cumulative) for name, _, own, cumulative in rows if name in wanted and cumulative >= 0.05}
    return sorted(kept | {(name, own, cumulative) for name, _, own, cumulative in heavy}, key=lambda r: -r[2])


def imported_by(rows: list[tuple[str, int, float, float]], module: str) -> list[str]:
    """The chain of first imports that brought `module` in, from the top: each row's parent is the next
    row printed at a smaller depth."""
    index = next((i for i, row in enumerate(rows) if row[0] == module), None)
    if index is None:
        return []
    chain, depth = [module], rows[index][1]
    for name, d, _, _ in rows[index + 1:]:
        if d < depth:
            chain.append(name)
            depth = d
    return chain[::-1]


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args(argv)
    reps = 10 if args.full else 3
    load = os.getloadavg()[0]
    print(f"clipfind start-up, {reps} runs each, {os.cpu_count()} cores, load average {load:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="clipfind-startup-") as tmp:
        work = Path(tmp)
        env = child_env(work / "config")
        home = make_library(work, env)
        probe = work / "probe"

        common.section("1. app start: launch of clipfind-gui to a visible, responsive window (offscreen Qt)")
        common.note(f"library: {LIBRARY_PHOTOS} photos indexed with ViT-B-32; empty home: first run, --pretrained none")
        app_start(["--home", str(home)], env, probe)  # warm-up: file cache, Qt's font and plugin caches
        cases = {"library": lambda i: ["--home", str(home)],
                 "empty home": lambda i: ["--home", str(work / f"first-run-{i}"), "--pretrained", "none"]}
        for label, case_args in cases.items():
            runs = [app_start(case_args(i), env, probe) for i in range(reps)]
            report(f"{label}: window", [w for w, _ in runs], APP_TARGET_S)
            report(f"{label}: model loaded after window", [m for _, m in runs])

        common.section(f'2. cold `clipfind search "{QUERY}"` (ViT-B-32, random weights, 10 photos)')
        search = [str(BIN / "clipfind"), "--home", str(home), "search", QUERY, "-k", "5"]
        run(search, env)  # warm-up
        report("search process", [wall(search, env) for _ in range(reps)], SEARCH_TARGET_S)
        check = run([sys.executable, "-c", "import sys; from clipfind.cli import main; main(sys.argv[1:]); "
                     "print('torch' in sys.modules)", *search[1:]], env)
        if check.stdout.strip().splitlines()[-1] == "False":
            common.note("the search process did not import torch: the text tower runs in ONNX Runtime here")
        else:
            common.note("the search process imported torch: no ONNX Runtime mode was chosen on this machine")
        report("python -c pass (interpreter start)", [wall([sys.executable, "-c", "pass"], env) for _ in range(reps)],
               digits=3)
        imports = {m: [import_time(m, env) for _ in range(reps)] for m in ("torch", "open_clip", "onnxruntime")}
        for module, values in imports.items():
            report(f"import {module} alone", values, SEARCH_TARGET_S if module == "torch" else None)
        steps: dict[str, list[float]] = {}
        for _ in range(reps):
            launched = time.time()
            out = json.loads(run([sys.executable, "-c", BREAKDOWN], env).stdout)
            exited = time.time()
            out["steps"] = {"interpreter start": out["began"] - launched, **out["steps"],
                            "interpreter exit (after the last line)": exited - out["ended"]}
            for step, seconds in out["steps"].items():
                steps.setdefault(step, []).append(seconds)
        print("  one process doing what a search does, step by step (medians):")
        for step, values in steps.items():
            common.figure(f"  {step}", common.percentile(values, 50), "s", digits=2)
        common.note(f"the image tower is {out['visual_share']:.0%} of ViT-B-32's parameters; a text search loads it "
                    "too, and random weights mean init time instead of reading a checkpoint")
        print("  python -X importtime -c 'import clipfind.embedding.torch_model', by cumulative "
              "(self s, cumulative s):")
        rows = importtime_rows("import clipfind.embedding.torch_model", env)
        for name, own, cumulative in offenders(rows):
            print(f"    {name:<40} {own:6.2f} {cumulative:6.2f}")
        if chain := imported_by(rows, "torch._dynamo"):
            hops = chain if len(chain) <= 6 else [chain[0], "...", *chain[-4:]]
            common.note("torch._dynamo (the compiler, unused by clipfind) comes in through " + " > ".join(hops))
        torch_s = common.percentile(imports["torch"], 50)
        if torch_s > SEARCH_TARGET_S:
            common.note(f"import torch alone takes {torch_s:.2f} s > {SEARCH_TARGET_S} s: no process that imports "
                        "torch can meet the target, hence clipfind's torch-free query path (text tower in ONNX "
                        "Runtime); a resident clipfind answering over a local socket would remove the rest")

        common.section("3. cold `clipfind status`")
        status = [str(BIN / "clipfind"), "--home", str(home), "status"]
        run(status, env)  # warm-up
        report("status process", [wall(status, env) for _ in range(reps)])
        trace = run([sys.executable, "-X", "importtime", str(BIN / "clipfind"), "--home", str(home), "status"], env)
        loaded = {line.rsplit("|", 1)[-1].strip() for line in trace.stderr.splitlines() if "|" in line}
        heavy = [m for m in ("torch", "open_clip", "PySide6", "numpy", "hnswlib") if m in loaded]
        common.note(f"status imports {', '.join(heavy) or 'none of torch, open_clip, PySide6, numpy, hnswlib'}"
                    f"{'' if 'torch' in heavy else ' (no torch)'}")
    common.note(f"load average {os.getloadavg()[0]:.1f} at the end (other work on this machine slows every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
