"""Process-wide settings changed for a stretch of work: BLAS on one thread, the cycle collector paused.

Both are settings of the whole process, so each is set by the first caller to enter and put back
by the last to leave (counted under a lock): two threads leaving in any order cannot leave the
process stuck with it, and a caller inside another's stretch changes nothing.

- **One BLAS thread** (:func:`one_blas_thread`): numpy's OpenBLAS splits even a 44 x 44 product
  over every core, and its threads spin while they wait for each other. The fingerprints and the
  crop check make thousands of such products: on a two-core machine with other work running, one
  crop fit took 37-45 ms instead of 0.3-0.5 ms and a batch of descriptors 7 ms instead of 0.1 ms.
  Large products (a search over every vector) keep every core: only the code that asks runs on one
  thread. Measured with OpenBLAS 0.3.31: once the main thread has set a limit, a worker thread's
  is ignored, so a process that uses this from both (a test run) keeps the main thread's setting.
- **The cycle collector paused** (:func:`gc_paused`): each full collection walks every object
  alive, and building a large library's duplicate groups (a million rows read, hundreds of
  thousands of tuples, photos and members, none in a cycle) triggers several. At a million photos,
  reading the photo table took 1.4-1.5 s with the collector on and 1.0 s with it paused, in a
  process holding three million objects. Nothing leaks: reference counts free what the step drops.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


class _WhileInside:
    """A setting changed while any caller is inside: ``change()`` returns how to put it back."""

    def __init__(self, change: Callable[[], Callable[[], None]]) -> None:
        self._change = change
        self._lock = threading.Lock()
        self._inside = 0
        self._put_back: Callable[[], None] | None = None

    @contextmanager
    def _stretch(self) -> Iterator[None]:
        with self._lock:
            if self._inside == 0:
                self._put_back = self._change()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0 and self._put_back is not None:
                    self._put_back()
                    self._put_back = None

    def __call__(self) -> AbstractContextManager[None]:
        return self._stretch()


_controller: Any = None


def _blas_on_one_thread() -> Callable[[], None]:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()  # ~1 ms: looks at every loaded library once
    return _controller.limit(limits=1, user_api="blas").restore_original_limits


def _collector_paused() -> Callable[[], None]:
    if not gc.isenabled():
        return lambda: None
    gc.disable()
    return gc.enable


one_blas_thread = _WhileInside(_blas_on_one_thread)
"""``with one_blas_thread():`` BLAS on one thread; also a decorator, ``@one_blas_thread()``."""

gc_paused = _WhileInside(_collector_paused)
"""``with gc_paused():`` the cycle collector off, then as it was."""
