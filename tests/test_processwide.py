"""Process-wide settings for a stretch of work: set by the first caller in, put back by the last out."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import pytest

from clipfind.processwide import _WhileInside, gc_paused


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
BLAS_CHECK = """
import numpy as np
from threadpoolctl import ThreadpoolController
from clipfind.processwide import one_blas_thread

def threads():
    return {lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers}

if not ThreadpoolController().select(user_api="blas").lib_controllers:
    print("no BLAS")
    raise SystemExit
with ThreadpoolController().limit(limits=2, user_api="blas"):
    seen = [threads()]
    with one_blas_thread():
        seen.append(threads())
        with one_blas_thread():
            seen.append(threads())
        seen.append(threads())
    seen.append(threads())

    @one_blas_thread()
    def product(a):
        assert np.allclose(a @ a, a)
        return threads()

    seen += [product(np.eye(3)), threads()]
print(seen)
"""


def test_blas_is_on_one_thread_inside_and_as_it_was_after() -> None:
    # In a fresh interpreter: OpenBLAS keeps what other tests of this process set (a worker thread's
    # limit is ignored once the main thread has set one), which is not what is checked here.
    run = subprocess.run([sys.executable, "-c", BLAS_CHECK], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    if run.stdout.strip() == "no BLAS":
        pytest.skip("numpy has no BLAS library that threadpoolctl can see")
    assert run.stdout.strip() == str([{2}, {1}, {1}, {1}, {2}, {1}, {2}])


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
