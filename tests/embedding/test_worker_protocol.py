"""The pipe between a first run's indexing process and its children (clipfind.embedding.worker_protocol)."""

from __future__ import annotations

import pytest

from clipfind.embedding.worker_protocol import Worker, WorkerFailed

CHILD = "tests.embedding.chatty_child"


def test_answers_come_through_whatever_the_child_prints() -> None:
    progress: list[tuple[int, int | None]] = []
    worker = Worker(CHILD, {}, lambda done, total: progress.append((done, total)))
    try:
        assert worker.receive() == {"ready": True}
        assert progress == [(5, 10)]
        assert worker.ask({"x": [1, 2]}) == {"echo": {"x": [1, 2]}}
    finally:
        worker.close()


def test_an_error_or_a_death_is_worker_failed_never_a_hang() -> None:
    worker = Worker(CHILD, {})
    try:
        worker.receive()
        with pytest.raises(WorkerFailed, match="it could not") as failed:
            worker.ask({"fail": True})
        assert failed.value.kind == "load"
        with pytest.raises(WorkerFailed, match="exit code 3"):
            worker.ask({"die": True})
        with pytest.raises(WorkerFailed):
            worker.ask({"x": 1})  # gone: its pipe is closed
    finally:
        worker.close()


def test_a_child_ends_when_its_input_closes() -> None:
    worker = Worker(CHILD, {})
    worker.receive()
    worker.close(timeout=10)
    assert worker._proc.returncode == 0
