"""The in-process cache of queue names and the policy fields the hot paths need."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ._sql import Queries
from .policy import QueueSpec

__all__ = ["QueueCache", "QueueInfo"]


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    retry_limit: int
    expire_in: timedelta
    dead_letter: str | None

    @classmethod
    def from_spec(cls, spec: QueueSpec) -> QueueInfo:
        return cls(spec.name, spec.retry.limit, spec.expire_in, spec.dead_letter)


class QueueCache:
    """Queue name -> ``QueueInfo``; refreshed on a miss and by maintenance."""

    def __init__(self) -> None:
        self._queues: dict[str, QueueInfo] = {}
        self._lock = asyncio.Lock()
        self._generation = 0

    def get(self, name: str) -> QueueInfo | None:
        return self._queues.get(name)

    def put(self, info: QueueInfo) -> None:
        self._queues[info.name] = info

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        """Replace the cache with rows of the ``list_queues`` query."""
        self._queues = {row[0]: QueueInfo(row[0], row[1], row[2], row[3]) for row in rows}
        self._generation += 1

    async def refresh(self, conn: psycopg.AsyncConnection[Any], q: Queries) -> None:
        cur = await conn.execute(q["list_queues"])
        self.load(await cur.fetchall())

    async def refresh_pool(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], q: Queries
    ) -> None:
        """Refresh once, however many callers miss at the same time."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # someone refreshed while we waited
            async with pool.connection() as conn:
                await self.refresh(conn, q)

    def refresh_sync(self, conn: psycopg.Connection[Any], q: Queries) -> None:
        self.load(conn.execute(q["list_queues"]).fetchall())
