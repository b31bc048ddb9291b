"""The send path: validated rows, their SQL parameters, COPY text, and the coalescer.

Everything a send needs is checked here before any SQL runs (data, priority, start time). The
``Coalescer`` gathers concurrent sends of one process into one multi-row INSERT per loop tick,
so 50 sends in flight cost a few statements instead of 50 commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Final

import psycopg

from ._ids import new_job_id, new_job_ids
from ._payload import encode_data, encode_many
from .errors import ValidationError
from .jobs import JobId

__all__ = [
    "Batch",
    "Coalescer",
    "Row",
    "copy_chunks",
    "make_row",
    "rows_params",
    "split_start_after",
    "validate_priority",
    "validate_singleton_key",
]

log = logging.getLogger("queues.send")

_INT4_MIN: Final = -(2**31)
_INT4_MAX: Final = 2**31 - 1
MAX_SINGLETON_KEY: Final = 1000
#: Items encoded at a time while a big batch streams into COPY: small enough for the server
#: to start on a group while the next is encoded, big enough to keep the writes few.
_STREAM_GROUP: Final = 250


@dataclass(slots=True)
class Row:
    """One validated job, ready to insert."""

    id: JobId
    queue: str
    data: str
    priority: int
    start_after: datetime | None
    delay: timedelta | None


def validate_priority(priority: object) -> int:
    if priority is None:
        return 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError(f"priority must be an int, got {priority!r}")
    if not _INT4_MIN <= priority <= _INT4_MAX:
        raise ValidationError(f"priority {priority} is out of range (a 32-bit integer)")
    return priority


def split_start_after(start_after: object) -> tuple[datetime | None, timedelta | None]:
    """``start_after`` as an absolute time or a delay counted on the database clock."""
    if start_after is None:
        return None, None
    if isinstance(start_after, timedelta):
        return None, start_after
    if isinstance(start_after, datetime):
        if start_after.tzinfo is None or start_after.utcoffset() is None:
            raise ValidationError(
                "start_after must be timezone-aware (e.g. datetime.now(UTC) + ...) "
                "or a timedelta counted from the database's clock"
            )
        return start_after, None
    raise ValidationError(f"start_after must be a datetime or a timedelta, got {start_after!r}")


def validate_singleton_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise ValidationError(f"singleton_key must be a non-empty str, got {key!r}")
    if "\x00" in key:
        raise ValidationError("singleton_key contains a NUL character (\\u0000): remove it")
    if len(key) > MAX_SINGLETON_KEY:
        raise ValidationError(f"singleton_key is longer than {MAX_SINGLETON_KEY} characters")
    return key


def make_row(
    queue: str,
    data: object,
    max_bytes: int,
    start_after: datetime | None,
    delay: timedelta | None,
    priority: int,
) -> Row:
    return Row(
        new_job_id(), queue, encode_data(queue, data, max_bytes), priority, start_after, delay
    )


def rows_params(rows: Sequence[Row]) -> dict[str, Any]:
    """Parameters of the ``send_rows`` statement (one array per column)."""
    return {
        "ids": [row.id for row in rows],
        "queues": [row.queue for row in rows],
        "data": [row.data for row in rows],
        "priorities": [row.priority for row in rows],
        "start_afters": [row.start_after for row in rows],
        "delays": [row.delay for row in rows],
    }


def copy_chunks(
    ids: Sequence[JobId],
    texts: Sequence[str],
    queue: str,
    priority: int,
    start_after: str | None,
    chunk: int = 256 * 1024,
) -> Iterator[str]:
    """COPY text-format lines of one batch, in chunks of about ``chunk`` characters.

    A generator, so the server parses one chunk while the next is built. JSON text never holds
    raw tabs or newlines (the encoder escapes control characters) and queue names cannot, so
    only backslashes need escaping; ids go as 32 hex digits (PostgreSQL's uuid input takes them).
    """
    tail = (
        f"\t{queue}\t{priority}\n"
        if start_after is None
        else (f"\t{queue}\t{priority}\t{start_after}\n")
    )
    lines: list[str] = []
    size = 0
    for job_id, text in zip(ids, texts, strict=True):
        if "\\" in text:
            text = text.replace("\\", "\\\\")
        line = f"{job_id.int:032x}\t{text}{tail}"
        lines.append(line)
        size += len(line)
        if size >= chunk:
            yield "".join(lines)
            lines, size = [], 0
    if lines:
        yield "".join(lines)


@dataclass(slots=True)
class Batch:
    """The validated jobs of one ``send_many`` call (one queue, one priority and start)."""

    queue: str
    ids: list[JobId]
    texts: list[str]
    priority: int
    start_after: datetime | None
    delay: timedelta | None

    @classmethod
    def of(
        cls,
        queue: str,
        items: Iterable[object],
        max_bytes: int,
        start_after: object,
        priority: object,
    ) -> Batch:
        at, delay = split_start_after(start_after)
        prio = validate_priority(priority)
        texts = encode_many(queue, items, max_bytes)
        return cls(queue, new_job_ids(len(texts)), texts, prio, at, delay)

    def params(self) -> dict[str, Any]:
        """Parameters of the ``send_batch`` statement."""
        return {
            "queue": self.queue,
            "priority": self.priority,
            "start_after": self.start_after,
            "delay": self.delay,
            "ids": self.ids,
            "data": self.texts,
        }

    def copy_chunks(self, start_after: datetime | None) -> Iterator[str]:
        stamp = None if start_after is None else start_after.isoformat()
        return copy_chunks(self.ids, self.texts, self.queue, self.priority, stamp)

    def stream_chunks(
        self, rest: Iterator[object], max_bytes: int, start_after: datetime | None
    ) -> Iterator[str]:
        """COPY text of this batch's jobs, then of ``rest``, encoded group by group as the
        COPY consumes them (their ids are added to ``ids``), so that encoding overlaps with
        the server's work. A bad item raises ``PayloadError`` midway: the caller's
        transaction must then roll back the rows already copied."""
        stamp = None if start_after is None else start_after.isoformat()
        yield from copy_chunks(self.ids, self.texts, self.queue, self.priority, stamp)
        index = len(self.ids)
        while group := list(islice(rest, _STREAM_GROUP)):
            texts = encode_many(self.queue, group, max_bytes, start=index)
            ids = new_job_ids(len(texts))
            self.ids.extend(ids)
            index += len(texts)
            yield from copy_chunks(ids, texts, self.queue, self.priority, stamp)


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
