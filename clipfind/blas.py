"""Tiny matrix products on one BLAS thread.

numpy's OpenBLAS splits even a 44 x 44 product over every core, and its threads spin while they
wait for each other. The fingerprints and the crop check make thousands of such products: on a
two-core machine with other work running (the app's indexer, another program), one crop check
took 40 ms instead of 0.5 ms and a batch of descriptors 7 ms instead of 0.1 ms. Large products
(a search over every vector) still use every core: only the code that asks runs on one thread.
Measured with OpenBLAS 0.3.31: once the main thread has set a limit, a worker thread's is ignored,
so a process that uses this from both (a test run) keeps the main thread's setting on its workers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0
_limiter: Any = None
_controller: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while any caller is inside (threads and nesting counted: the limit is
    set by the first to enter and lifted by the last to leave, so two threads cannot leave the
    process stuck on one thread). Also a decorator: ``@one_blas_thread()``."""
    global _depth, _limiter, _controller
    with _lock:
        if _depth == 0:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()  # ~1 ms: looks at every loaded library once
            _limiter = _controller.limit(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _limiter.restore_original_limits()
                _limiter = None
