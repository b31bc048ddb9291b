"""The scheduler each worker process runs: it fires the slots of every stored schedule.

No leader: every process reads the schedules, sleeps until the next slot falls (on the
database's clock), and tries to fire it. Firing is one statement that moves the schedule past
the slot and writes the job (with its subscribers' copies); only one statement can move a
schedule past a given slot, so each slot gives exactly one job however many processes try, and
a process that dies changes nothing for the others. Missed slots (no process ran at their time)
are handled per the schedule's ``catch_up`` (``Schedule.plan``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..db import AsyncConn, Store
from ..db.encoding import encode_data
from ..db.ids import new_job_id
from ..db.rows import ScheduleRow
from ..errors import QueuesError
from ..jobs import make_envelope
from ..schedules import Schedule, schedule_of, seconds_until
from .wakeup import Signal

__all__ = ["SCHEDULES_KEY", "Scheduler", "SchedulerRound"]

log = logging.getLogger("queues.scheduler")

AsyncPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]

#: What a change of the schedules notifies on the queues' channel (not a valid queue name).
SCHEDULES_KEY = ":schedules"

#: Largest job data a schedule fires (its data was checked against the Boss's limit already).
_MAX_DATA = 100_000_000


@dataclass(slots=True)
class SchedulerRound:
    """What one round did: slots fired (by this process) and skipped, and when the next slot
    of any schedule falls (None: no schedule), with the database's clock of the round."""

    fired: int = 0
    skipped: int = 0
    next_at: datetime | None = None
    db_now: datetime | None = None


def job_data(schedule: Schedule, slot: datetime) -> str:
    """The data of the job a slot fires: the event's envelope (its metadata naming the
    schedule and the slot), or the schedule's data as it is."""
    if schedule.event is None:
        return encode_data(schedule.queue, schedule.data, _MAX_DATA)
    data = make_envelope(schedule.event, schedule.data, source="schedule")
    data["metadata"]["schedule"] = schedule.name
    data["metadata"]["slot"] = slot.isoformat().replace("+00:00", "Z")
    return encode_data(schedule.queue, data, _MAX_DATA)


class Scheduler:
    """Fires schedules from this process; see the module doc."""

    def __init__(
        self, store: Store, pool: AsyncPool, *, refresh: float = 5.0, batch: int = 100
    ) -> None:
        self._store = store
        self._pool = pool
        #: Longest sleep between rounds: how soon a new or changed schedule is seen.
        self._refresh = refresh
        #: Most slots one schedule fires per round (catch_up: all after a long downtime).
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        #: Set when the schedules changed (a notification on ``SCHEDULES_KEY``).
        self.wake = Signal()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="queues-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            delay = self._refresh
            self.wake.clear()
            try:
                result = await self.run_once()
                read = time.monotonic()
                if result.fired or result.skipped:
                    log.debug("scheduler: fired %d slots, skipped %d", result.fired, result.skipped)
                if result.next_at is not None and result.db_now is not None:
                    wait = seconds_until(result.next_at, result.db_now) - (time.monotonic() - read)
                    delay = min(delay, wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._warn_once(
                    type(exc).__name__,
                    "scheduler round failed (%s: %s); next try in %.1fs",
                    type(exc).__name__,
                    exc,
                    self._refresh,
                )
            # (a few ms past the slot: a slot is fired only once it is due on the database clock)
            await self.wake.wait(max(delay, 0.0) + 0.005)

    async def run_once(self, now: datetime | None = None) -> SchedulerRound:
        """One round: fire what is due at ``now`` (default: the database's clock)."""
        result = SchedulerRound()
        async with self._pool.connection() as conn:
            rows = await self._store.schedule_list(conn)
            if not rows:
                return result
            result.db_now = now or rows[0].db_now
            for row in rows:
                await self._run_schedule(conn, row, result.db_now, result)
        return result

    async def _run_schedule(
        self, conn: AsyncConn, row: ScheduleRow, now: datetime, result: SchedulerRound
    ) -> None:
        try:
            schedule = schedule_of(row)
        except QueuesError as exc:  # stored by other code, and not valid for this one
            self._warn_once(f"invalid:{row.name}", "schedule %s is skipped: %s", row.name, exc)
            return
        plan = schedule.plan(row.done_until, now, self._batch)
        if plan.skip_to is not None and await self._store.schedule_skip(
            conn, schedule.name, plan.skip_to
        ):
            result.skipped += 1
        for slot in plan.fire:
            if await self._store.schedule_fire(
                conn, schedule.name, slot, new_job_id(), job_data(schedule, slot)
            ):
                result.fired += 1
        if result.next_at is None or plan.next_at < result.next_at:
            result.next_at = plan.next_at

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key in self._warned:
            log.debug(message, *args)
            return
        self._warned.add(key)
        log.warning(message, *args)
