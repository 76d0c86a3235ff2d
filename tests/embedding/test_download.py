"""clipfind.embedding.download: weights from the Hugging Face Hub, with progress, and clear errors without it.

Everything runs without network and without pretrained weights: the tiny random architecture
stands in for a real one, and Hugging Face Hub behaviour is exercised in subprocesses (so
huggingface_hub reads HF_HOME / HF_HUB_OFFLINE / HF_ENDPOINT at import, as on a user's machine)
against a cache built here or a fake Hub served on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import open_clip
import pytest
from huggingface_hub.utils._xet_progress_reporting import XetDownloadProgressReporter

from clipfind.embedding import download
from clipfind.embedding.spec import TINY_MODEL
from tests.embedding.conftest import TEXTS, Saved

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Given to the fake Hub repos: with it a white image becomes all ones, which open_clip's default
# (OpenAI) mean/std would not give, so the repo's preprocess_cfg is seen to be used.
PREPROCESS_CFG = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"}
FAST = 5.0  # seconds: a failure without network must come at once, not after minutes of retries


pytestmark = pytest.mark.usefixtures("no_network")


# -- download progress -------------------------------------------------------------------------------------


def test_progress_bar_reports_bytes_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[int, int | None]] = []
    bar = download._progress_bar(lambda done, total: calls.append((done, total)))(total=300, unit="B")
    for _ in range(3):
        bar.update(100)
    bar.close()
    assert calls == [(0, 300), (100, 300), (200, 300), (300, 300)]
    assert capsys.readouterr() == ("", "")


def test_progress_bar_gets_one_stream_from_xet_downloads() -> None:
    """Hub weights are on Xet storage: huggingface_hub's Xet reporter must feed one bar, not two."""
    calls: list[tuple[int, int | None]] = []
    bar_class = download._progress_bar(lambda done, total: calls.append((done, total)))
    with XetDownloadProgressReporter(
        reconstruction_desc="weights", total=300, log_level=logging.INFO, tqdm_class=bar_class
    ) as reporter:
        for written, received in [(100, 90), (200, 150), (300, 210)]:
            reporter.update_progress(
                SimpleNamespace(
                    total_bytes_completed=written,
                    total_transfer_bytes_completed=received,
                    total_bytes_completion_rate=1.0,
                    total_transfer_bytes_completion_rate=1.0,
                    total_bytes=300,
                )
            )
    assert calls == [(0, 300), (100, 300), (200, 300), (300, 300)]


# -- the Hugging Face Hub, in subprocesses -------------------------------------------------------------------

SCENARIO = r"""
import json, sys, time, urllib.request, warnings
import torch
from PIL import Image
import open_clip
from open_clip.pretrained import _PRETRAINED, _pcfg
from clipfind.errors import ModelLoadError
from tests.embedding.conftest import TEXTS, Saved
from clipfind.embedding.torch_model import load_model, register_tiny_model
from clipfind.embedding.spec import ModelSpec

args = json.loads(sys.argv[1])
images = torch.load(args["images"])
register_tiny_model()
for model, tag, repo, quick_gelu in args.get("fake_tags", []):  # tags like the real ones, on test repos
    _PRETRAINED.setdefault(model, {})[tag] = _pcfg(hf_hub=repo, quick_gelu=quick_gelu)
results = []
for step in args["steps"]:
    if step.get("mark"):
        urllib.request.urlopen(args["endpoint"] + "/_mark").read()
        continue
    calls = []
    spec = ModelSpec.parse(*step["spec"]) if step.get("parse") else ModelSpec(*step["spec"])
    result = {"calls": calls}
    start = time.monotonic()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_model(spec, "cpu", (lambda d, t: calls.append([d, t])) if step.get("progress") else None)
        result.update(
            images=model.encode_images(images).tolist(),
            texts=model.encode_texts(args["texts"]).tolist(),
            dim=model.dim,
            white=model.preprocess(Image.new("RGB", (90, 40), "white")).unique().tolist(),
            warnings=[str(w.message) for w in caught if "meaningless" in str(w.message) or "GELU" in str(w.message)],
            quick_gelu=any(type(m).__name__ == "QuickGELU" for m in model._model.modules()),
        )
    except ModelLoadError as e:
        result["error"] = str(e)
    result["seconds"] = time.monotonic() - start
    results.append(result)
print(json.dumps(results))
"""


def run_scenario(saved: Saved, env: dict[str, str], steps: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """Run load steps in a fresh interpreter whose huggingface_hub sees `env` from its import on."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    clean.update(env, HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    args = {"images": str(saved.images), "texts": TEXTS, "steps": steps, **extra}
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, json.dumps(args)],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_saved_weights(result: dict[str, Any], saved: Saved) -> None:
    assert "error" not in result, result["error"]
    np.testing.assert_allclose(np.array(result["images"]), saved.image_vectors, atol=1e-5)
    np.testing.assert_allclose(np.array(result["texts"]), saved.text_vectors, atol=1e-5)
    assert result["dim"] == 64
    assert result["warnings"] == []
    assert not result["quick_gelu"]


def repo_files(saved: Saved, weights: str) -> dict[str, bytes]:
    config = {"model_cfg": open_clip.get_model_config(TINY_MODEL), "preprocess_cfg": PREPROCESS_CFG}
    data = saved.safetensors.read_bytes() if weights.endswith(".safetensors") else saved.bin.read_bytes()
    return {"open_clip_config.json": json.dumps(config).encode(), weights: data}


REPOS = {"clipfind-test/tiny": "open_clip_model.safetensors", "clipfind-test/tiny-bin": "open_clip_pytorch_model.bin"}


def build_cache(hub: Path, repo: str, files: dict[str, bytes]) -> None:
    """The layout huggingface_hub leaves after a download: refs/main -> snapshots/<commit>/<files>."""
    folder = hub / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)


@pytest.mark.slow
def test_offline_hub_cache(saved: Saved, tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1: cached repos and tags load their exact weights at once; missing ones fail at once."""
    for repo, weights in REPOS.items():
        build_cache(tmp_path / "hub", repo, repo_files(saved, weights))
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    hub_repo, bin_only_repo, tag, quick_gelu_tag, missing_repo, default = run_scenario(
        saved,
        env,
        [
            {"spec": ["hf-hub:clipfind-test/tiny", None]},
            {"spec": ["hf-hub:clipfind-test/tiny-bin", None]},
            {"spec": [TINY_MODEL, "test_tag"]},
            {"spec": [TINY_MODEL, "test_quickgelu"]},
            {"spec": ["hf-hub:clipfind-test/absent", None]},
            {"spec": [None, None], "parse": True},
        ],
        fake_tags=[
            [TINY_MODEL, "test_tag", "clipfind-test/tiny-bin/", False],
            [TINY_MODEL, "test_quickgelu", "clipfind-test/tiny/", True],  # like ViT-B-32/openai
        ],
    )
    assert_saved_weights(hub_repo, saved)
    assert hub_repo["white"] == [1.0]  # the repo's preprocess_cfg is used
    assert_saved_weights(bin_only_repo, saved)
    assert bin_only_repo["seconds"] < FAST  # no retries on the .safetensors open_clip tries first
    assert_saved_weights(tag, saved)
    assert quick_gelu_tag["quick_gelu"] and quick_gelu_tag["warnings"] == []  # the tag's activation, no mismatch
    assert "Connect once to download it" in missing_repo["error"] and "HF_HUB_OFFLINE" in missing_repo["error"]
    assert missing_repo["seconds"] < FAST
    assert default["error"].startswith("Could not download the weights for ViT-B-32 (laion2b_s34b_b79k)")
    assert "Connect once to download them (about 600 MB)" in default["error"]
    assert "--pretrained /path/to/open_clip_model.safetensors" in default["error"]
    assert default["seconds"] < FAST


@pytest.mark.slow
def test_no_connection_fails_at_once(saved: Saved, tmp_path: Path) -> None:
    """Without HF_HUB_OFFLINE but with no Hub to reach, the message says so within seconds."""
    with socket.socket() as s:  # a port on which nothing listens: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"HF_HOME": str(tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    (default,) = run_scenario(saved, env, [{"spec": [None, None], "parse": True}])
    assert default["error"] == (
        "Could not download the weights for ViT-B-32 (laion2b_s34b_b79k): no internet connection. "
        "Connect once to download them (about 600 MB), or pass a checkpoint file with "
        "--pretrained /path/to/open_clip_model.safetensors."
    )
    assert default["seconds"] < FAST


class FakeHub(http.server.ThreadingHTTPServer):
    """Answers HEAD/GET /{repo}/resolve/{revision}/{file} the way the Hub does, and logs requests."""

    daemon_threads = True

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), FakeHubHandler)
        self.repos = repos
        self.log: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHubHandler(http.server.BaseHTTPRequestHandler):
    server: FakeHub

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def do_GET(self) -> None:
        self.answer(body=True)

    def answer(self, body: bool) -> None:
        self.server.log.append(f"{self.command} {self.path}")
        parts = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).strip("/").split("/")
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        if parts == ["_mark"]:
            self.reply(200, {}, b"", body)
        elif repo not in self.server.repos:
            self.reply(404, {"X-Error-Code": "RepoNotFound"}, b"", body)
        elif filename not in self.server.repos[repo]:
            self.reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, b"", body)
        else:
            data = self.server.repos[repo][filename]
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
            self.reply(200, headers, data, body)

    def reply(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            for start in range(0, len(data), 1 << 20):
                self.wfile.write(data[start : start + (1 << 20)])

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are kept in server.log."""


@pytest.fixture
def fake_hub(saved: Saved) -> Iterator[FakeHub]:
    server = FakeHub({repo: repo_files(saved, weights) for repo, weights in REPOS.items()})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def assert_progress(calls: list[list[Any]], size: int) -> None:
    done = [c[0] for c in calls]
    assert done[0] == 0 and done[-1] == size and len(done) >= 3
    assert all(a < b for a, b in itertools.pairwise(done)), done
    assert all(total == size for _, total in calls)


@pytest.mark.slow
def test_download_with_progress_then_never_again(saved: Saved, tmp_path: Path, fake_hub: FakeHub) -> None:
    """First load downloads through huggingface_hub with our progress callback; later loads are offline."""
    env = {"HF_HOME": str(tmp_path), "HF_ENDPOINT": fake_hub.endpoint}
    hub_repo, tag, absent, again_repo, again_tag = run_scenario(
        saved,
        env,
        [
            {"spec": ["hf-hub:clipfind-test/tiny", None], "progress": True},
            {"spec": [TINY_MODEL, "test_tag"], "progress": True},
            {"spec": ["hf-hub:clipfind-test/absent", None]},
            {"mark": True},
            {"spec": ["hf-hub:clipfind-test/tiny", None], "progress": True},
            {"spec": [TINY_MODEL, "test_tag"], "progress": True},
        ],
        fake_tags=[[TINY_MODEL, "test_tag", "clipfind-test/tiny-bin/", False]],
        endpoint=fake_hub.endpoint,
    )
    assert_saved_weights(hub_repo, saved)
    assert hub_repo["white"] == [1.0]
    assert_progress(hub_repo["calls"], saved.safetensors.stat().st_size)  # the weights only, not the config
    assert_saved_weights(tag, saved)
    assert_progress(tag["calls"], saved.bin.stat().st_size)  # the repo has no .safetensors: the .bin came
    assert "clipfind-test/absent was not found" in absent["error"]
    assert_saved_weights(again_repo, saved)
    assert_saved_weights(again_tag, saved)
    assert again_repo["calls"] == again_tag["calls"] == []
    assert fake_hub.log[-1] == "GET /_mark"  # nothing reached the Hub once the weights were cached
    assert "GET /clipfind-test/tiny-bin/resolve/main/open_clip_pytorch_model.bin" in fake_hub.log
