"""The coalescer: concurrent single sends of one process written as one multi-row INSERT."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg

from .requests import Row

__all__ = ["Coalescer"]

log = logging.getLogger("queues.send")


Pending = tuple[Row, "asyncio.Future[None]"]


class Coalescer:
    """Batches concurrent single sends into one statement, keeping each caller's own outcome.

    A caller's row joins the next batch; at most ``max_inflight`` batches run at once and the
    rows that arrive meanwhile wait for the next. A batch that fails on a lost connection is
    retried (ids are made here and the insert ignores an id it already has, so a retry cannot
    duplicate a job); any other failure is narrowed down by sending its rows one by one, so one
    bad row fails only its own caller.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Row]], Awaitable[None]],
        *,
        max_batch: int = 500,
        max_inflight: int = 2,
        retries: int = 2,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._retries = retries
        self._pending: list[Pending] = []
        self._inflight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, row: Row) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._inflight == 0 and not self._pending:
            # Nothing else in flight: write at once in the caller's task (no batching to wait
            # for); sends arriving meanwhile gather in _pending for the next batch.
            self._inflight += 1
            try:
                await self._write_with_retry([(row, future)])
            finally:
                self._inflight -= 1
                if self._pending and not self._scheduled:
                    self._kick()
        else:
            self._pending.append((row, future))
            if not self._scheduled and self._inflight < self._max_inflight:
                self._scheduled = True
                loop.call_soon(self._kick)
        await future

    def _kick(self) -> None:
        self._scheduled = False
        while self._pending and self._inflight < self._max_inflight:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[Pending]) -> None:
        try:
            await self._write_with_retry(batch)
        finally:
            self._inflight -= 1
            if self._pending:
                self._kick()

    async def _write_with_retry(self, batch: list[Pending]) -> None:
        rows = [row for row, _ in batch]
        for attempt in range(self._retries + 1):
            try:
                await self._write(rows)
            except psycopg.OperationalError as exc:
                if attempt < self._retries:
                    log.warning("send batch of %d failed (%s); retrying", len(rows), exc)
                    await asyncio.sleep(0.05 * 4**attempt)
                    continue
                _settle(batch, exc)
                return
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch, exc)
                else:
                    for single in batch:
                        await self._write_with_retry([single])
                return
            except BaseException as exc:  # cancelled while writing: tell every caller
                _settle(batch, exc)
                raise
            _settle(batch, None)
            return

    async def drain(self) -> None:
        """Wait until every submitted row is written or has failed."""
        while self._tasks or self._pending:
            if self._pending and not self._scheduled and self._inflight < self._max_inflight:
                self._kick()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await asyncio.sleep(0)


def _settle(batch: list[Pending], error: BaseException | None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)
