"""The queues at a glance, at any table size: each queue's jobs by state and the last hour's
activity, as the dashboard shows them.

Every count reads at most ``cap`` entries of the partial index that holds its state; a count
that reaches the cap is replaced by an estimate from the statistics ANALYZE keeps on
(queue, state), or shown as "at least". The activity reads the minutes maintenance has rolled
up (``job_minute``, migration 0008) and, from the job table, only the jobs finished since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from ..db import AsyncConn, Store
from ..db.identifiers import validate_queue_name
from ..db.rows import ActivityRow, QueueCountsRow
from ..errors import ValidationError
from ..job_views import JobSummary
from ..jobs import JobId, JobState
from .connections import ClientConnections

__all__ = [
    "ACTIVITY_MINUTES",
    "Count",
    "EventSearch",
    "Overview",
    "QueueActivity",
    "QueueOverview",
    "activity_minutes",
    "autovacuum_warning",
]

#: Minutes of activity shown (the last hour, the current minute included).
ACTIVITY_MINUTES: Final = 60
#: Default bound of each count.
DEFAULT_CAP: Final = 1000
#: Most finished jobs read per queue for the activity of the last hour.
DEFAULT_ACTIVITY_CAP: Final = 100_000
#: Most jobs an event search reads (the newest first).
DEFAULT_SEARCH_SCAN: Final = 20_000

CountKind = Literal["exact", "estimate", "at_least"]


@dataclass(frozen=True, slots=True)
class Count:
    """A number of jobs: exact, estimated from statistics, or a lower bound."""

    value: int
    kind: CountKind = "exact"

    @property
    def exact(self) -> bool:
        return self.kind == "exact"


@dataclass(frozen=True, slots=True)
class QueueOverview:
    """One queue: its policy as the dashboard shows it and its jobs by state."""

    name: str
    description: str
    dead_letter: str | None
    paused: bool
    counts: dict[JobState, Count]
    #: When the oldest queued job became due (None: nothing queued, or nothing due yet).
    oldest_due: datetime | None
    #: Queues whose dead-letter queue this one is.
    dead_letter_for: list[str] = field(default_factory=list)

    def oldest_waiting(self, now: datetime) -> timedelta | None:
        """How long the oldest queued job has been due at ``now``."""
        if self.oldest_due is None or self.oldest_due > now:
            return None
        return now - self.oldest_due


@dataclass(frozen=True, slots=True)
class QueueActivity:
    """A queue's last hour, minute by minute (oldest first, the current minute last)."""

    queue: str
    #: The start of each minute.
    minutes: list[datetime]
    completed: list[int]
    #: Failed or cancelled in that minute.
    failed: list[int]
    #: The age, in seconds, of the oldest job waiting at the end of each minute (0: none).
    oldest_wait: list[float]
    #: True when more jobs finished since the last roll-up than were read: the early minutes
    #: undercount.
    partial: bool = False

    @property
    def finished(self) -> list[int]:
        """Jobs finished per minute, whatever their outcome."""
        return [done + bad for done, bad in zip(self.completed, self.failed, strict=True)]


@dataclass(frozen=True, slots=True)
class EventSearch:
    """One page of an event search: the matching jobs, newest first, among the jobs read."""

    jobs: list[JobSummary]
    #: How many jobs were read (at most the search's bound).
    read: int
    #: The search stopped at its bound: older jobs were not read.
    bounded: bool
    #: Continue after this id for the next page: more matches were found than shown, or the
    #: bound was hit and older jobs remain (None: the search is complete).
    next: JobId | None


class Overview:
    """Reads for the dashboard: counts by state and activity, bounded per queue."""

    def __init__(self, store: Store, connections: ClientConnections) -> None:
        self._store = store
        self._connections = connections

    async def queues(
        self, queue: str | None = None, *, cap: int = DEFAULT_CAP
    ) -> list[QueueOverview]:
        """Every queue (or only ``queue``) with its jobs by state, by name."""
        cap = _cap(cap)
        if queue is not None:
            validate_queue_name(queue)
        async with self._connections.pool().connection() as conn:
            rows = await self._store.queue_counts_capped(conn, queue, cap)
            active = await self._store.job_active_by_queue(conn, cap)
            capped = any(_hits(row, cap) for row in rows) or sum(active.values()) >= cap
            estimates = await self._store.queue_state_estimates(conn) if capped else {}
            if queue is not None and rows:
                # Its sources: the queues dead-lettering into it (from the full list).
                everyone = await self._store.queue_list(conn)
                sources = {queue: [q.name for q in everyone if q.dead_letter == queue]}
            else:
                sources = {}
                for row in rows:
                    if row.dead_letter is not None:
                        sources.setdefault(row.dead_letter, []).append(row.name)
        active_capped = sum(active.values()) >= cap
        return [
            QueueOverview(
                name=row.name,
                description=row.description,
                dead_letter=row.dead_letter,
                paused=bool(row.paused),
                counts=_counts(row, active.get(row.name, 0), active_capped, cap, estimates),
                oldest_due=row.oldest,
                dead_letter_for=sorted(sources.get(row.name, [])),
            )
            for row in rows
        ]

    async def activity(
        self,
        queue: str | None = None,
        *,
        oldest_due: Mapping[str, datetime | None] | None = None,
        cap: int = DEFAULT_ACTIVITY_CAP,
    ) -> tuple[datetime, dict[str, QueueActivity]]:
        """The database's time and each queue's (or ``queue``'s) last hour by minute; queues
        with nothing in the hour are left out. ``oldest_due`` (queue -> when its oldest queued
        job became due, as ``queues()`` read it) saves reading it again."""
        cap = _cap(cap)
        if queue is not None:
            validate_queue_name(queue)
        async with self._connections.pool().connection() as conn:
            now = await self._store.dashboard_clock(conn)
            first = activity_minutes(now)[0]
            rows = await self._store.job_activity_minutes(conn, queue, first, cap)
            if oldest_due is None:
                oldest_due = await self._oldest_due(conn, queue)
        waiting = {name: due for name, due in oldest_due.items() if due is not None}
        return now, _activity(now, rows, waiting, cap)

    async def search_event(
        self,
        event: str,
        *,
        queue: str | None = None,
        state: JobState | None = None,
        after: JobId | None = None,
        limit: int = 50,
        scan: int = DEFAULT_SEARCH_SCAN,
    ) -> EventSearch:
        """The jobs of ``event`` (of ``queue`` and ``state`` when given) among the newest
        ``scan`` jobs of the table (older than ``after``, when given), newest first, at most
        ``limit``. The event has no index: the bound keeps the search's cost fixed."""
        scan = _cap(scan)
        limit = _cap(limit)
        if not isinstance(event, str) or not event:
            raise ValidationError(f"event must be a non-empty string, got {event!r}")
        if queue is not None:
            validate_queue_name(queue)
        async with self._connections.pool().connection() as conn:
            jobs, read, oldest = await self._store.job_search_event(
                conn, event, queue, None if state is None else state.value, after, scan, limit + 1
            )
        if len(jobs) > limit:
            return EventSearch(jobs[:limit], read, read >= scan, jobs[limit - 1].id)
        bounded = read >= scan
        return EventSearch(jobs, read, bounded, oldest if bounded else None)

    async def autovacuum_warning(self) -> str | None:
        """What to tell an operator when autovacuum does not vacuum the job table (None when
        it does, or when the schema has no job table yet)."""
        state = await self._connections.with_retry(self._store.autovacuum_state)
        return None if state is None else autovacuum_warning(self._store.schema, *state)

    async def _oldest_due(self, conn: AsyncConn, queue: str | None) -> dict[str, datetime | None]:
        # Only the oldest queued job's time is needed: the counts are read with a cap of 1.
        rows = await self._store.queue_counts_capped(conn, queue, 1)
        return {row.name: row.oldest for row in rows}


def autovacuum_warning(schema: str, server_on: bool, table_on: bool, naptime: str) -> str | None:
    """The warning for an autovacuum that is off for the server or for the job table."""
    if server_on and table_on:
        return None
    where = (
        "autovacuum is off on this server (autovacuum or track_counts)"
        if not server_on
        else f'autovacuum is off for "{schema}".job (autovacuum_enabled = off)'
    )
    return (
        f"warning: {where}: every claim, completion and deletion leaves a dead row version "
        "that only vacuum removes, so the job table and its indexes grow and claims slow down; "
        f"turn it on (and on a busy queue server lower autovacuum_naptime, now {naptime}, to "
        "10s), or VACUUM the job table on a schedule"
    )


def activity_minutes(now: datetime) -> list[datetime]:
    """The starts of the minutes the activity covers at ``now``, oldest first."""
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=ACTIVITY_MINUTES - 1)
    return [first + timedelta(minutes=i) for i in range(ACTIVITY_MINUTES)]


def _cap(cap: int) -> int:
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 10_000_000:
        raise ValidationError(f"cap must be an integer from 1 to 10000000, got {cap!r}")
    return cap


def _hits(row: QueueCountsRow, cap: int) -> bool:
    return max(row.waiting, row.retry, row.finished, row.failed, row.cancelled) >= cap


def _counts(
    row: QueueCountsRow,
    active: int,
    active_capped: bool,
    cap: int,
    estimates: dict[tuple[str, str], int],
) -> dict[JobState, Count]:
    def measured(state: JobState, value: int) -> Count:
        if value < cap:
            return Count(value)
        return estimated(state, cap)

    def estimated(state: JobState, at_least: int) -> Count:
        guess = estimates.get((row.name, state.value))
        if guess is not None and guess >= at_least:
            return Count(guess, "estimate")
        return Count(max(at_least, 0), "at_least")

    retry = measured(JobState.RETRY, row.retry)
    failed = measured(JobState.FAILED, row.failed)
    cancelled = measured(JobState.CANCELLED, row.cancelled)
    if row.waiting < cap:
        created = Count(row.waiting - row.retry)
    else:
        created = estimated(JobState.CREATED, cap - row.retry)
    if row.finished < cap:
        completed = Count(row.finished - row.failed - row.cancelled)
    else:
        completed = estimated(JobState.COMPLETED, cap - row.failed - row.cancelled)
    running = estimated(JobState.ACTIVE, active) if active_capped else Count(active)
    return {
        JobState.CREATED: created,
        JobState.RETRY: retry,
        JobState.ACTIVE: running,
        JobState.COMPLETED: completed,
        JobState.FAILED: failed,
        JobState.CANCELLED: cancelled,
    }


def _activity(
    now: datetime,
    rows: list[ActivityRow],
    waiting: dict[str, datetime],
    cap: int,
) -> dict[str, QueueActivity]:
    minutes = activity_minutes(now)
    index = {minute: i for i, minute in enumerate(minutes)}
    done: dict[str, tuple[list[int], list[int]]] = {}
    left: dict[str, list[datetime | None]] = {}
    partial: set[str] = set()
    for row in rows:
        if row.kind == "seen":
            if (row.completed or 0) + (row.failed or 0) >= cap:
                partial.add(row.queue)
            continue
        slot = None if row.minute is None else index.get(row.minute)
        if slot is None:
            continue
        if row.kind == "done":
            completed, failed = done.setdefault(
                row.queue, ([0] * ACTIVITY_MINUTES, [0] * ACTIVITY_MINUTES)
            )
            completed[slot] += row.completed or 0
            failed[slot] += row.failed or 0
        elif row.kind == "left" and row.earliest is not None:
            earliest = left.setdefault(row.queue, [None] * ACTIVITY_MINUTES)
            known = earliest[slot]
            earliest[slot] = row.earliest if known is None else min(known, row.earliest)
    result: dict[str, QueueActivity] = {}
    for queue in sorted(set(done) | set(left) | set(waiting)):
        completed, failed = done.get(queue, ([0] * ACTIVITY_MINUTES, [0] * ACTIVITY_MINUTES))
        result[queue] = QueueActivity(
            queue=queue,
            minutes=minutes,
            completed=completed,
            failed=failed,
            oldest_wait=_oldest_wait(
                now, minutes, left.get(queue, [None] * ACTIVITY_MINUTES), waiting.get(queue)
            ),
            partial=queue in partial,
        )
    return result


def _oldest_wait(
    now: datetime,
    minutes: list[datetime],
    left: list[datetime | None],
    still_waiting: datetime | None,
) -> list[float]:
    """The age of the oldest waiting job at the end of each minute.

    A job waited from its due time until it left the queue (started, or was cancelled or
    failed while queued); the oldest job waiting at time t is the earliest due time among the
    jobs that left after t, provided it is before t. So walking the minutes backwards with a
    running minimum of the due times of the jobs that left later gives every minute's answer
    in one pass. Jobs still queued count as leaving after every minute.
    """
    ages = [0.0] * len(minutes)
    earliest = still_waiting
    for i in range(len(minutes) - 1, -1, -1):
        end = min(minutes[i] + timedelta(minutes=1), now)
        if earliest is not None and earliest <= end:
            ages[i] = (end - earliest).total_seconds()
        # Jobs that left during minute i were waiting at the end of minute i - 1.
        due = left[i]
        if due is not None and (earliest is None or due < earliest):
            earliest = due
    return ages
