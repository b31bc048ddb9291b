"""The Boss's part of events: storing subscriptions, archive durations and declared schedules
with the queues (``create_queues``), schedules made at run time, and reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..db import AsyncConn, Store
from ..db.encoding import encode_data
from ..db.identifiers import validate_queue_name
from ..db.rows import ScheduleRow, SubscriptionRow
from ..errors import ValidationError
from ..policy import QueueSpec
from ..schedules import CatchUp, Schedule, schedule_of
from .connections import ClientConnections
from .queue_cache import QueueCache

__all__ = ["EventControl", "ScheduleInfo", "as_schedule", "schedule_params"]


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule and when it next fires."""

    schedule: Schedule
    #: The latest slot fired or skipped (None: none yet).
    last_slot: datetime | None
    #: The next slot to fire: past (overdue) when no worker process has fired it yet.
    next_run: datetime

    @property
    def name(self) -> str:
        return self.schedule.name


def schedule_params(
    schedule: Schedule, declared_by: str | None, max_payload: int
) -> dict[str, Any]:
    """The parameters of the ``schedule_upsert`` statement (the data checked as job data)."""
    return {
        "name": schedule.name,
        "queue": schedule.queue,
        "event": schedule.event,
        "data": encode_data(schedule.queue, schedule.data, max_payload),
        "cron": schedule.cron,
        "every": schedule.every,
        "timezone": schedule.timezone,
        "catch_up": schedule.catch_up,
        "priority": schedule.priority,
        "declared_by": declared_by,
    }


class EventControl:
    def __init__(
        self,
        store: Store,
        connections: ClientConnections,
        queues: QueueCache,
        *,
        max_payload: int,
    ) -> None:
        self._store = store
        self._connections = connections
        self._queues = queues
        self._max_payload = max_payload

    async def store(self, conn: AsyncConn, specs: Iterable[QueueSpec]) -> None:
        """Inside ``create_queues``' transaction: each queue's subscriptions, archive duration
        and declared schedules become what its spec says."""
        store = self._store
        for spec in specs:
            await store.subscription_set(conn, spec.name, spec.subscriptions())
            await store.queue_archive_set(conn, spec.name, spec.archive)
            for schedule in spec.schedules:
                params = schedule_params(schedule, spec.name, self._max_payload)
                await store.schedule_upsert(conn, params)
            await store.schedule_drop_undeclared(
                conn, spec.name, [schedule.name for schedule in spec.schedules]
            )

    async def subscriptions(self) -> list[SubscriptionRow]:
        return await self._connections.with_retry(self._store.subscription_list)

    async def schedule(self, schedule: Schedule) -> None:
        validate_queue_name(schedule.queue)
        params = schedule_params(schedule, None, self._max_payload)
        await self._queues.info(schedule.queue)  # UnknownQueueError before anything is written
        async with self._connections.pool().connection() as conn:
            await self._store.schedule_upsert(conn, params)

    async def unschedule(self, name: str) -> bool:
        check_schedule_name(name)
        async with self._connections.pool().connection() as conn:
            return await self._store.schedule_delete(conn, name)

    async def schedules(self) -> list[ScheduleInfo]:
        rows = await self._connections.with_retry(self._store.schedule_list)
        return [info_of(row) for row in rows]


def check_schedule_name(name: object) -> None:
    """``unschedule``'s argument: a schedule name (what ``Schedule`` validates more is
    irrelevant to a delete)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"unschedule(name): a schedule name, got {name!r}")


def info_of(row: ScheduleRow) -> ScheduleInfo:
    schedule = schedule_of(row)
    plan = schedule.plan(row.done_until, row.db_now, 1)
    upcoming = plan.fire[0] if plan.fire else plan.next_at
    return ScheduleInfo(schedule, row.last_slot, upcoming)


def as_schedule(
    name: str,
    queue: str,
    data: Mapping[str, Any],
    *,
    event: str | None,
    cron: str | None,
    every: timedelta | None,
    timezone: str,
    catch_up: CatchUp,
    priority: int,
) -> Schedule:
    """``Boss.schedule``'s arguments as a ``Schedule`` (validated)."""
    return Schedule(
        name=name,
        queue=queue,
        data=data,
        event=event,
        cron=cron,
        every=every,
        timezone=timezone,
        catch_up=catch_up,
        priority=priority,
    )
