"""Where sync processors run: one daemon thread per call.

A sync processor cannot be interrupted. When its job is handed back at shutdown (the grace
period is over) or failed at expiry, the thread may still be running; it must not keep the
process alive (a ``ThreadPoolExecutor``'s threads are joined at interpreter exit, so a 3-hour
handler would hold ``queues worker`` for 3 hours after SIGTERM). The worker bounds how many
calls run at once, so a thread per call is all the pooling needed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import ParamSpec, TypeVar

__all__ = ["DaemonThreads"]

P = ParamSpec("P")
T = TypeVar("T")


class DaemonThreads(Executor):
    """An executor running each call in a new daemon thread named ``<prefix>-<n>``."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._numbers = itertools.count(1)
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._closed:
            raise RuntimeError("cannot run new calls after shutdown")
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the awaiting worker, which handles it
                future.set_exception(exc)
            else:
                future.set_result(result)

        name = f"{self._prefix}-{next(self._numbers)}"
        threading.Thread(target=run, name=name, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; running ones go on (and never delay the process's exit)."""
        self._closed = True
