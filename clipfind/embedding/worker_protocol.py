"""The pipe between a first run's indexing process and the child processes that measure for it
(clipfind.embedding.first_run; the children: clipfind.embedding.torch_worker, .onnx_worker).

A child is a fresh interpreter (spawned, not forked: a forked child would share, and be counted
with, its parent's pages), started as `python -m MODULE ARGS_JSON`. It answers with one JSON object
per line on its standard output, and reads requests the same way on its standard input; arrays go
through .npy files in a folder of the parent's. Anything else a library prints in the child goes to
its standard error, which is the parent's (a download's progress bar shows as it would in one
process). A child exits when its input closes, and when its parent is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import clipfind

ProgressFn = Callable[[int, int | None], None]


class WorkerFailed(Exception):
    """A child process stopped without answering (a crash, a kill), or answered with an error;
    `kind` "load" where that error is the model's own ModelLoadError (its message says what to do)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class Worker:
    """A child process of this one, spoken to in JSON lines."""

    def __init__(
        self, module: str, args: dict[str, Any], progress: ProgressFn | None = None, env: dict[str, str] | None = None
    ) -> None:
        """Start `python -m module` with `args`; `env`: variables it gets besides this process's."""
        root = str(Path(clipfind.__file__).resolve().parent.parent)  # where `clipfind` is imported from
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, **(env or {}), "PYTHONPATH": root + (os.pathsep + path if path else "")}
        self._progress = progress
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module, json.dumps({**args, "parent": os.getpid()})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, encoding="utf-8", bufsize=1,
        )

    def receive(self) -> dict[str, Any]:
        """The child's next answer (download progress on the way goes to `progress`). Raises
        WorkerFailed if the child stops first, or answers with an error."""
        assert self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                code = self._proc.wait()
                raise WorkerFailed(f"it stopped (exit code {code})")
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not ours: a library that wrote to the real standard output
            if "progress" in message:
                if self._progress is not None:
                    self._progress(*message["progress"])
                continue
            if "error" in message:
                raise WorkerFailed(message["error"], message.get("kind", ""))
            return dict(message)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except OSError as exc:  # gone already
            raise WorkerFailed(f"it stopped (exit code {self._proc.wait()})") from exc
        return self.receive()

    def close(self, timeout: float = 30.0) -> None:
        """Close its input (it exits) and wait for it; kill it if it does not go in `timeout` seconds."""
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


# -- the child's side ------------------------------------------------------------------------
class Parent:
    """A child's line to the process that started it."""

    def __init__(self, args: dict[str, Any]) -> None:
        """`args`: what the child was started with (Worker adds the parent's process id)."""
        # The answers get their own copy of standard output; standard output itself goes to standard
        # error, so that nothing a library prints can be taken for an answer.
        self._out: IO[str] = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        # A Ctrl+C in the terminal reaches the whole process group: the parent decides (it stops after
        # the current step), and the child finishes what it was asked or goes with its parent.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _exit_with(int(args.get("parent") or os.getppid()))

    def send(self, **message: Any) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    def requests(self) -> Any:
        """Each request from the parent, until it closes the pipe."""
        for line in sys.stdin:
            if line.strip():
                yield json.loads(line)

    def progress(self, done: int, total: int | None) -> None:
        self.send(progress=[done, total])


def _exit_with(parent: int) -> None:
    """Go when the parent has gone (killed: its pipe may stay open while this one computes)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="clipfind-parent-watch").start()
