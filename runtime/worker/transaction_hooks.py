"""What a worker does around a transactional handler's completing transaction
(``job.transaction()``): tell its result writer, from the event loop's thread whatever thread
the handler runs in."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable

from ..jobs import JobId
from .result_writer import ResultWriter

__all__ = ["WriterHooks"]

#: Longest a sync handler's thread waits for the event loop to take a hook.
_HOOK_TIMEOUT_S = 5.0


class WriterHooks:
    """``TransactionHooks`` on a worker's ``ResultWriter``."""

    __slots__ = ("_loop", "_thread", "_writer")

    def __init__(self, writer: ResultWriter, loop: asyncio.AbstractEventLoop) -> None:
        self._writer = writer
        self._loop = loop
        self._thread = threading.get_ident()

    def hold(self, job_id: JobId) -> None:
        self._on_loop(lambda: self._writer.hold(job_id))

    def release(self, job_id: JobId) -> None:
        self._on_loop(lambda: self._writer.release(job_id))

    def committed(self, job_id: JobId) -> None:
        self._on_loop(lambda: self._writer.untrack(job_id))

    def _on_loop(self, action: Callable[[], object]) -> None:
        """Run ``action`` on the loop's thread and wait for it (a sync handler's thread must
        know the writer holds the job before it writes the completion)."""
        if threading.get_ident() == self._thread:
            action()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                action()
                done.set_result(None)
            except BaseException as exc:  # told to the waiting thread
                done.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: the worker is gone, nothing to tell
            return
        # (on a timeout, a busy loop runs the hook later: that only delays a heartbeat decision)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            done.result(timeout=_HOOK_TIMEOUT_S)
