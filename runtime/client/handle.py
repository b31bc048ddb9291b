"""``boss.queue(name)``: the untyped queue handle of the source design."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from ..jobs import JobId, QueueStats

if TYPE_CHECKING:
    from .boss import Boss

__all__ = ["EnqueuedJob", "QueueHandle"]


@dataclass(frozen=True, slots=True)
class EnqueuedJob:
    """What ``QueueHandle.enqueue`` returns: the new job's id and the data it carries."""

    id: JobId
    data: Mapping[str, Any]


class QueueHandle:
    """An untyped handle on one queue: ``await boss.queue("x").enqueue({...})``."""

    __slots__ = ("_boss", "name")

    def __init__(self, boss: Boss, name: str) -> None:
        self._boss = boss
        self.name = name

    async def enqueue(
        self,
        data: Mapping[str, Any],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
    ) -> EnqueuedJob:
        job_id = await self._boss.send(
            self.name,
            data,
            conn=conn,
            start_after=start_after,
            priority=priority,
            singleton_key=singleton_key,
        )
        return EnqueuedJob(job_id, data)

    async def enqueue_many(
        self,
        data: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
    ) -> list[EnqueuedJob]:
        items = list(data)
        ids = await self._boss.send_many(
            self.name, items, conn=conn, start_after=start_after, priority=priority
        )
        return [EnqueuedJob(job_id, item) for job_id, item in zip(ids, items, strict=True)]

    async def stats(self) -> QueueStats:
        return await self._boss.queue_stats(self.name)

    def __repr__(self) -> str:
        return f"QueueHandle({self.name!r})"
