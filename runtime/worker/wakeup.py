"""A flag one task waits on with a timeout, without the task ``asyncio.wait_for`` makes.

The worker's claim loop waits on one of these for a notification or a free slot, once or
more per claim; a plain future and a timer handle keep that wait (and the wake-up after it)
short on the path from enqueue to handler start.
"""

from __future__ import annotations

import asyncio

__all__ = ["Signal"]


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Signal:
    """Like ``asyncio.Event`` for a single waiting task, with a timed ``wait``."""

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until set or ``timeout`` seconds pass; returns whether it is set."""
        if self._flag:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else loop.call_later(max(0.0, timeout), _expire, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None
        return self._flag
