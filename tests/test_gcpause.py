"""gc_paused: the collector off inside, back as it was once every caller has left."""

from __future__ import annotations

import gc
import threading

import pytest

from clipfind.gcpause import gc_paused


@pytest.fixture
def collecting():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_nesting_and_an_exception_give_the_collector_back(collecting: None) -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer caller is still inside
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("out")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collecting: None) -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_two_threads_leaving_in_any_order(collecting: None) -> None:
    inside, may_leave, left = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            inside.set()
            may_leave.wait(5)
        left.set()

    worker = threading.Thread(target=first)
    worker.start()
    inside.wait(5)
    with gc_paused():
        may_leave.set()
        left.wait(5)
        seen.append(gc.isenabled())  # the first left while this one is inside
    worker.join(5)
    assert seen == [False] and gc.isenabled()
