"""Process-wide settings for a stretch of work: set by the first caller in, put back by the last out."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from clipfind.processwide import _WhileInside, gc_paused, one_blas_thread


def test_two_threads_leaving_in_any_order_put_the_setting_back_once() -> None:
    events: list[str] = []
    stretch = _WhileInside(lambda: events.append("set") or (lambda: events.append("put back")))
    first_in, first_may_leave, first_left = (threading.Event() for _ in range(3))
    seen: list[list[str]] = []

    def first() -> None:
        with stretch():
            first_in.set()
            first_may_leave.wait(5)
        first_left.set()

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with stretch():
        first_may_leave.set()
        first_left.wait(5)
        seen.append(list(events))  # the first left while this one is inside: nothing put back
    worker.join(5)
    assert seen == [["set"]] and events == ["set", "put back"]
    with pytest.raises(ValueError), stretch():
        raise ValueError("out")
    assert events == ["set", "put back", "set", "put back"]


# -- BLAS on one thread ----------------------------------------------------------------------------------
def blas_threads() -> set[int]:
    return {lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers}


@pytest.fixture
def two_blas_threads():
    """BLAS on two threads to start from (a one-core machine would start at one, and show nothing)."""
    controller = ThreadpoolController()
    if not controller.select(user_api="blas").lib_controllers:
        pytest.skip("numpy has no BLAS library that threadpoolctl can see")
    with controller.limit(limits=2, user_api="blas"):
        yield


def test_blas_is_on_one_thread_inside_and_as_it_was_after(two_blas_threads: None) -> None:
    assert blas_threads() == {2}
    with one_blas_thread():
        assert blas_threads() == {1}
        with one_blas_thread():
            assert blas_threads() == {1}
        assert blas_threads() == {1}  # the outer caller is still inside
    assert blas_threads() == {2}

    @one_blas_thread()
    def product(a: np.ndarray) -> set[int]:
        assert np.allclose(a @ a, a)
        return blas_threads()

    assert product(np.eye(3)) == {1} and blas_threads() == {2}


# -- the cycle collector paused --------------------------------------------------------------------------
@pytest.fixture
def collecting():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_as_it_was_after(collecting: None) -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()  # off before, off after
