"""Work off the event loop: one worker thread runs core calls in order, results come back on the GUI thread.

The pattern of Picard's ``run_task`` (a callable goes to a worker, its outcome to a callback on the GUI
thread), written for clipfind's needs:

* One :class:`TaskRunner` is one lane: its calls run one at a time, in the order given, on one thread.
  A Library is used by one thread at a time, so the window sends every Library call through one lane.
* A task may name a ``kind`` ("search", "regroup", ...): a new task of that kind supersedes the queued
  one (it never runs) and the running one (its result is dropped, as it no longer answers the question).
* ``done(result)`` or ``failed(exception)`` runs on the GUI thread, never for a dropped task.
* The worker never holds the last reference to a task: the runner keeps each one until the GUI thread
  has delivered it, so callables that close over widgets are always released on the GUI thread.
* :meth:`TaskRunner.shutdown` drops what is queued, waits for the call that runs, and joins the thread:
  closing a window mid-task leaves no thread behind.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal

IDLE_SECONDS = 2.0  # a worker with nothing to do ends (so no thread outlives its window); the next task starts one


class Task:
    """One call on its way to the worker and back; :meth:`cancel` drops its outcome."""

    __slots__ = ("fn", "done", "failed", "kind", "dropped", "ok", "value")

    def __init__(self, fn: Callable[[], Any], done: Callable[[Any], None] | None,
                 failed: Callable[[BaseException], None] | None, kind: str | None) -> None:
        self.fn: Callable[[], Any] | None = fn
        self.done, self.failed, self.kind = done, failed, kind
        self.dropped = False
        self.ok: bool | None = None  # None until the worker has run it
        self.value: Any = None

    def cancel(self) -> None:
        """Its result or exception will not be delivered (it still runs if the worker has started it)."""
        self.dropped = True


class Relay(QObject):
    """Carries values from a worker thread to the GUI thread (progress callbacks): ``relay.emit`` is the callback."""

    value = Signal(object)

    def emit(self, value: object) -> None:
        self.value.emit(value)


class TaskRunner(QObject):
    """One worker thread that runs calls in order and delivers each outcome on the GUI thread."""

    busy_changed = Signal()  # a task was queued or delivered: ask busy(kind) what is running now
    _finished = Signal()  # internal: the worker finished a task (queued connection to the GUI thread)

    def __init__(self, parent: QObject | None = None, name: str = "clipfind-tasks") -> None:
        super().__init__(parent)
        self.name = name
        self._cond = threading.Condition()
        self._queue: deque[Task] = deque()
        self._running: Task | None = None
        self._outstanding: list[Task] = []  # submitted, not delivered yet: GUI-thread bookkeeping
        self._delivered: deque[Task] = deque()  # run by the worker, waiting for the GUI thread
        self._closed = False
        self._thread: threading.Thread | None = None
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    # -- GUI thread ---------------------------------------------------------------------------
    def submit(self, fn: Callable[[], Any], done: Callable[[Any], None] | None = None,
               failed: Callable[[BaseException], None] | None = None, *, kind: str | None = None) -> Task:
        """Queue ``fn()`` for the worker; ``done(result)`` or ``failed(exc)`` runs here afterwards.

        Args:
            fn: the call to run off the event loop (a Library call; it must not touch Qt).
            done: receives the result on the GUI thread.
            failed: receives the exception on the GUI thread; without one, an exception is dropped.
            kind: a new task of the same kind supersedes the queued and the running one.
        """
        task = Task(fn, done, failed, kind)
        if self._closed:
            task.dropped = True
            return task
        with self._cond:
            if kind is not None:
                self.supersede(kind)
            self._queue.append(task)
            self._outstanding.append(task)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name)
                self._thread.start()
            self._cond.notify()
        self.busy_changed.emit()
        return task

    def supersede(self, kind: str) -> None:
        """Drop the queued and the running task of ``kind``: their outcome is no longer wanted."""
        with self._cond:
            for task in [t for t in self._queue if t.kind == kind]:
                task.dropped = True
            if self._running is not None and self._running.kind == kind:
                self._running.dropped = True

    def busy(self, kind: str | None = None) -> bool:
        """Whether a task (of ``kind``, when given) is queued or running and still wanted."""
        return any(not t.dropped and (kind is None or t.kind == kind) for t in self._outstanding)

    @property
    def idle(self) -> bool:
        """Nothing queued, running or waiting to be delivered (dropped tasks included)."""
        return not self._outstanding

    def shutdown(self) -> None:
        """Drop every pending outcome, wait for the call in flight, and join the worker thread."""
        with self._cond:
            self._closed = True
            for task in self._outstanding:
                task.dropped = True
            self._queue.clear()
            self._cond.notify()
        with self._cond:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._deliver()  # release every task here, on the GUI thread

    def _deliver(self) -> None:
        while True:
            with self._cond:
                if not self._delivered:
                    break
                task = self._delivered.popleft()
            if task in self._outstanding:
                self._outstanding.remove(task)
            fn, ok, value = task.done if task.ok else task.failed, task.ok, task.value
            task.fn = task.value = None
            if not task.dropped and fn is not None:
                try:
                    fn(value)
                except Exception:  # a broken callback is reported like any slot's; the others still run
                    sys.excepthook(*sys.exc_info())
            self.busy_changed.emit()
            del fn, ok, value
        if self._closed:  # queued tasks that never ran (shutdown cleared them)
            self._outstanding = [t for t in self._outstanding if t is self._running]

    # -- worker thread ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    if not self._cond.wait(IDLE_SECONDS) and not self._queue:
                        break  # idle: end the thread; the next submit starts another
                if not self._queue:
                    self._thread = None
                    return
                task = self._queue.popleft()
                self._running = task
                fn = None if task.dropped else task.fn
            if fn is not None:
                try:
                    task.value, task.ok = fn(), True
                except BaseException as exc:  # noqa: BLE001 (delivered, not swallowed)
                    task.value, task.ok = exc, False
            with self._cond:
                self._running = None
                self._delivered.append(task)
            del task, fn  # the runner's lists hold it: the GUI thread lets go last
            try:
                self._finished.emit()
            except RuntimeError:  # the runner was deleted without shutdown(): nobody waits for the outcome
                return


def on_gui_thread() -> bool:
    """Whether the caller runs on the thread that owns the application (for assertions in tests)."""
    from PySide6.QtCore import QCoreApplication

    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()
