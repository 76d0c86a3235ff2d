"""one_blas_thread: BLAS on one thread inside, the process's own setting back once every caller has left."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from clipfind.blas import one_blas_thread


def blas_threads() -> list[int]:
    return [lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers]


@pytest.fixture
def two_threads():
    """BLAS on two threads to start from (a one-core machine would start at one, and show nothing)."""
    controller = ThreadpoolController()
    if not controller.select(user_api="blas").lib_controllers:
        pytest.skip("numpy has no BLAS library that threadpoolctl can see")
    with controller.limit(limits=2, user_api="blas"):
        yield


def test_inside_is_one_thread_and_nesting_gives_the_setting_back(two_threads: None) -> None:
    assert set(blas_threads()) == {2}
    with one_blas_thread():
        assert set(blas_threads()) == {1}
        with one_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}  # the outer caller is still inside
    assert set(blas_threads()) == {2}


class Recorder:
    """Stands for threadpoolctl's controller: records each limit set and each given back."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def limit(self, limits: int, user_api: str) -> Recorder:
        self.events.append(f"limit {limits} {user_api}")
        return self

    def restore_original_limits(self) -> None:
        self.events.append("restore")


def test_two_threads_leaving_in_any_order_give_the_setting_back_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The counting, with a recorder: OpenBLAS itself ignores a worker thread's setting once the main
    # thread has made one (as this suite's other tests do), which is not what is tested here.
    import clipfind.blas

    recorder = Recorder()
    monkeypatch.setattr(clipfind.blas, "_controller", recorder)
    first_in, first_may_leave, first_left = (threading.Event() for _ in range(3))
    seen: list[list[str]] = []

    def first() -> None:
        with one_blas_thread():
            first_in.set()
            first_may_leave.wait(5)
        first_left.set()

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with one_blas_thread():
        first_may_leave.set()
        first_left.wait(5)
        seen.append(list(recorder.events))  # the first left while this one is inside: nothing given back
    worker.join(5)
    assert seen == [["limit 1 blas"]] and recorder.events == ["limit 1 blas", "restore"]


def test_as_a_decorator_and_through_an_exception(two_threads: None) -> None:
    @one_blas_thread()
    def product(a: np.ndarray) -> set[int]:
        assert np.allclose(a @ a, a)
        return set(blas_threads())

    assert product(np.eye(3)) == {1}
    with pytest.raises(ValueError), one_blas_thread():
        raise ValueError("out")
    assert set(blas_threads()) == {2}
