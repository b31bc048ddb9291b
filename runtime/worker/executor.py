"""Running a user's processor for the ``Worker``: inside the job wrapper, and sync
processors in daemon threads of their own."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..jobs import JobContext, process_job
from .threads import DaemonThreads
from .worker import Worker

if TYPE_CHECKING:
    from ..client.boss import Boss

__all__ = ["WrappedProcessor", "wrapped_worker"]


def wrapped_worker(
    boss: Boss,
    queue: str,
    processor: Callable[[JobContext], Awaitable[object] | object],
    *,
    concurrency: int = 10,
    label: str | None = None,
    **options: Any,
) -> Worker:
    """``Boss.worker``: a Worker whose processor runs inside ``process_job``; sync processors
    run in threads of their own (daemon threads: one still running after its job was handed
    back or expired does not keep the process alive)."""
    name = label or queue
    return Worker(
        boss,
        queue,
        WrappedProcessor(processor, name),
        concurrency=concurrency,
        label=name,
        **options,
    )


class WrappedProcessor:
    """Runs ``processor`` inside ``process_job``; a sync one in a daemon thread per job."""

    def __init__(
        self, processor: Callable[[JobContext], Awaitable[object] | object], label: str
    ) -> None:
        self._processor = processor
        self._label = label
        is_async = inspect.iscoroutinefunction(processor) or inspect.iscoroutinefunction(
            getattr(processor, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._threads = None if is_async else DaemonThreads(f"queues-{label}")

    async def __call__(self, ctx: JobContext) -> object:
        processor, threads = self._processor, self._threads
        if threads is None:  # (a partial: one allocation per job, a closure is three)
            return await process_job(ctx, partial(_called, processor, ctx), label=self._label)
        loop = asyncio.get_running_loop()
        return await process_job(
            ctx,
            lambda: _awaited(loop.run_in_executor(threads, processor, ctx)),
            label=self._label,
        )

    def close(self) -> None:
        """Called when the worker stops: threads still running are left to finish alone."""
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)


def _called(
    processor: Callable[[JobContext], Awaitable[object] | object], ctx: JobContext
) -> Awaitable[object]:
    """What ``processor(ctx)`` returns, as an awaitable of its final value."""
    return _awaited(processor(ctx))


async def _awaited(value: object) -> object:
    """Await ``value`` if it is awaitable (a sync processor may return a coroutine)."""
    while inspect.isawaitable(value):
        value = await value
    return value
