"""The in-process cache of queue names and the policy fields the hot paths need."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from ..db import QueueRow
from ..db.identifiers import validate_queue_name
from ..errors import UnknownQueueError
from ..policy import QueueSpec

__all__ = ["QueueCache", "QueueInfo"]

QueueInfo = QueueRow
"""A queue's name, retry limit, ``expire_in`` and dead-letter queue."""


def info_of(spec: QueueSpec) -> QueueInfo:
    return QueueInfo(spec.name, spec.retry.limit, spec.expire_in, spec.dead_letter)


class QueueCache:
    """Queue name -> ``QueueInfo``; refreshed with ``read`` on a miss, and by maintenance."""

    def __init__(
        self, schema: str, read: Callable[[], Awaitable[list[QueueRow]]] | None = None
    ) -> None:
        self._schema = schema
        self._read = read
        self._queues: dict[str, QueueInfo] = {}
        self._lock = asyncio.Lock()
        self._generation = 0

    async def info(self, name: str) -> QueueInfo:
        """The cached policy of queue ``name``; refreshed once on a miss."""
        info = self._queues.get(name)
        if info is not None:
            return info
        validate_queue_name(name)
        await self.refresh()
        info = self._queues.get(name)
        if info is None:
            raise UnknownQueueError(name, self._schema)
        return info

    def get(self, name: str) -> QueueInfo | None:
        return self._queues.get(name)

    def put(self, info: QueueInfo) -> None:
        self._queues[info.name] = info

    def load(self, rows: Iterable[QueueRow]) -> None:
        """Replace the cache with every queue of the schema."""
        self._queues = {row.name: row for row in rows}
        self._generation += 1

    async def refresh(self) -> None:
        """Reload, once however many callers miss at the same time."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # someone refreshed while we waited
            assert self._read is not None, "a cache without a reader is refreshed with load()"
            self.load(await self._read())
