"""Operating the queue without SQL: the job list, retry of a dead-lettered job, dead-letter
redrive, purge, and the queue depths that metrics read.

Every argument is checked before any SQL runs; a queue must exist. The job list pages by
keyset (``JobPage.next``) through the index of each state, so a page costs the same at any
table size.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any, Final, TypeVar

import psycopg

from ..db import AsyncConn, Store
from ..db.identifiers import validate_queue_name
from ..errors import QueuesError, ValidationError
from ..job_views import (
    STATE_GROUPS,
    JobPage,
    JobSummary,
    ListCursor,
    PurgeReport,
    QueueDepth,
    RedriveItem,
    RedriveReport,
)
from ..jobs import JobId, JobState
from .connections import ClientConnections
from .queue_cache import QueueCache

__all__ = ["MAX_LIST_LIMIT", "Operations", "parse_job_id", "parse_state"]

T = TypeVar("T")

#: Most jobs one page of the job list holds.
MAX_LIST_LIMIT: Final = 1000
#: Most dead-letter copies one redrive call moves (``limit`` larger than this is refused).
MAX_REDRIVE: Final = 100_000
#: Jobs deleted per transaction by a purge.
PURGE_BATCH: Final = 1000
#: Longest event name accepted as a filter.
_MAX_EVENT: Final = 200

_LIST_QUERY: Final = {
    JobState.CREATED: "job_list_created",
    JobState.RETRY: "job_list_retry",
    JobState.ACTIVE: "job_list_active",
    JobState.COMPLETED: "job_list_completed",
    JobState.CANCELLED: "job_list_failed",
    JobState.FAILED: "job_list_failed",
}


def parse_state(state: JobState | str) -> JobState:
    """``state`` as a ``JobState``, or ``ValidationError`` listing the states."""
    try:
        return JobState(state)
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise ValidationError(f"unknown job state {state!r}: use one of {names}") from None


def parse_job_id(job_id: JobId | uuid.UUID | str) -> JobId:
    """A job id from a UUID or its text, or ``ValidationError`` saying what is wrong."""
    if isinstance(job_id, uuid.UUID):
        return JobId(job_id)
    if isinstance(job_id, str):
        try:
            return JobId(uuid.UUID(job_id.strip()))
        except ValueError:
            pass
    raise ValidationError(
        f"invalid job id {str(job_id)[:80]!r}: a job id is a UUID such as "
        "0190a5c4-7d2e-7c3a-9b1e-5f4a3c2b1a00 (see `queues jobs list`)"
    )


def _limit(name: str, value: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValidationError(f"{name} must be an integer from 1 to {most}, got {value!r}")
    return value


def _event(event: str | None) -> str | None:
    if event is None:
        return None
    if not isinstance(event, str) or not event or len(event) > _MAX_EVENT or "\x00" in event:
        raise ValidationError(
            f"invalid event name {str(event)[:60]!r}: a non-empty string of at most "
            f"{_MAX_EVENT} characters (e.g. invoice-created)"
        )
    return event


class Operations:
    def __init__(self, store: Store, connections: ClientConnections, queues: QueueCache) -> None:
        self._store = store
        self._connections = connections
        self._queues = queues

    async def _queue(self, name: str) -> str:
        """``name`` if it is a valid name of an existing queue (``UnknownQueueError`` else)."""
        validate_queue_name(name)
        await self._queues.info(name)
        return name

    async def _on(self, conn: AsyncConn | None, action: Callable[[AsyncConn], Awaitable[T]]) -> T:
        if conn is not None:
            return await action(conn)
        async with self._connections.pool().connection() as pooled:
            return await action(pooled)

    # -- the job list ------------------------------------------------------------------------

    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | str | None = None,
        event: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> JobPage:
        wanted = None if state is None else parse_state(state)
        limit = _limit("limit", limit, MAX_LIST_LIMIT)
        event = _event(event)
        if queue is not None:
            queue = await self._queue(queue)
        cursor = None if after is None else ListCursor.decode(after)
        if cursor is not None and wanted is not None and cursor.state is not wanted:
            raise ValidationError(
                f"the cursor continues a list of {cursor.state.value} jobs, not "
                f"{wanted.value}: pass the same filters as for the previous page"
            )
        groups = (wanted,) if wanted is not None else STATE_GROUPS
        start = 0 if cursor is None else groups.index(cursor.state)
        found: list[JobSummary] = []
        async with self._connections.pool().connection() as conn:
            for index in range(start, len(groups)):
                group = groups[index]
                key = cursor.key if cursor is not None and index == start else ()
                want = limit - len(found)
                rows = await self._store.job_list(
                    conn, _LIST_QUERY[group], _list_params(group, queue, event, want + 1, key)
                )
                if len(rows) > want:  # more in this state: the page ends inside it
                    found.extend(rows[:want])
                    last = found[-1]
                    return JobPage(found, ListCursor(group, ListCursor.key_of(last)).encode())
                found.extend(rows)
                if len(found) == limit and index + 1 < len(groups):
                    # Full, and the next state may have rows: the next page starts there.
                    return JobPage(found, ListCursor(groups[index + 1]).encode())
        return JobPage(found, None)

    # -- retry and redrive -------------------------------------------------------------------

    async def retry(self, job_id: JobId, conn: AsyncConn | None) -> bool:
        """Retry a failed job now; its dead-letter copy, if it has not run, is settled in the
        same transaction (so the job runs again once, not also in the dead-letter queue)."""
        job_id = parse_job_id(job_id)

        async def run(c: AsyncConn) -> bool:
            # The caller's connection outside autocommit: join its transaction (the caller
            # commits or rolls back both statements); otherwise a transaction of our own.
            joined = c is conn and not c.autocommit
            async with nullcontext() if joined else c.transaction():
                copy = await self._store.job_lock_dead_letter_copy(c, job_id)
                if copy is not None and copy[1] == JobState.ACTIVE.value:
                    raise QueuesError(
                        f"cannot retry job {job_id} now: its dead-letter copy {copy[0]} is "
                        f'running in queue "{copy[2]}"; retry once that run has finished'
                    )
                return await self._store.job_retry_settling(c, job_id)

        try:
            return await self._on(conn, run)
        except psycopg.errors.UniqueViolation:
            raise QueuesError(
                f"cannot retry job {job_id}: another queued or active job of its queue has "
                "the same singleton key; cancel or finish that one first"
            ) from None

    async def redrive(
        self, dead_letter_queue: str, limit: int | None = None, *, dry_run: bool = False
    ) -> RedriveReport:
        queue = await self._queue(dead_letter_queue)
        most = MAX_REDRIVE if limit is None else _limit("limit", limit, MAX_REDRIVE)
        items: list[RedriveItem] = []
        async with self._connections.pool().connection() as conn:
            if dry_run:
                ids = await self._store.dlq_pick(conn, queue, most, [], lock=False)
                rows = await self._store.dlq_classify(conn, ids) if ids else []
            else:
                rows = []
                left_alone: list[JobId] = []  # copies of deleted originals: not picked again
                # In batches, each its own transaction: a big dead-letter queue is not locked
                # all at once, and what was redriven stays redriven if a later batch fails.
                while len(rows) < most:
                    batch = min(PURGE_BATCH, most - len(rows))
                    async with conn.transaction():
                        ids = await self._store.dlq_pick(conn, queue, batch, left_alone, lock=True)
                        done = await self._store.dlq_redrive(conn, ids) if ids else []
                    rows.extend(done)
                    left_alone.extend(row.copy_id for row in done if not row.settled)
                    if len(ids) < batch:
                        break
        for row in rows:
            items.append(
                RedriveItem(
                    copy_id=JobId(row.copy_id),
                    original_id=None if row.original_id is None else JobId(row.original_id),
                    original_queue=row.original_queue,
                    original_state=None
                    if row.original_state is None
                    else JobState(row.original_state),
                    requeued=row.requeued,
                    settled=row.settled,
                )
            )
        return RedriveReport(queue, dry_run, items)

    # -- purge -------------------------------------------------------------------------------

    async def purge(
        self,
        queue: str,
        state: JobState | str,
        *,
        older_than: timedelta | None = None,
        dry_run: bool = False,
    ) -> PurgeReport:
        name = await self._queue(queue)
        chosen = parse_state(state)
        if chosen is JobState.ACTIVE:
            raise ValidationError(
                f'refusing to purge active jobs of "{name}": a worker is running them; cancel '
                "them first (`queues jobs cancel ID`) or wait until they finish"
            )
        if older_than is not None and (
            not isinstance(older_than, timedelta) or older_than <= timedelta(0)
        ):
            raise ValidationError(f"older_than must be a positive timedelta, got {older_than!r}")
        seconds = None if older_than is None else older_than.total_seconds()
        store = self._store
        async with self._connections.pool().connection() as conn:
            if dry_run:
                count = await store.job_purge_count(conn, name, chosen.value, older_than)
                return PurgeReport(name, chosen, seconds, True, count)
            deleted = 0
            while True:
                async with conn.transaction():
                    batch = await store.job_purge(conn, name, chosen.value, older_than, PURGE_BATCH)
                deleted += batch
                if batch < PURGE_BATCH:
                    break
        return PurgeReport(name, chosen, seconds, False, deleted)

    # -- metrics -----------------------------------------------------------------------------

    async def queue_depths(self) -> list[QueueDepth]:
        return await self._connections.with_retry(self._store.queue_depths)


def _list_params(
    state: JobState, queue: str | None, event: str | None, limit: int, key: tuple[Any, ...]
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "queue": queue,
        "event": event,
        "limit": limit,
        "state": state.value,
        "k_priority": None,
        "k_at": None,
        "k_id": None,
    }
    if key and state is JobState.CREATED:
        params["k_priority"], params["k_at"], params["k_id"] = key
    elif key:
        params["k_at"], params["k_id"] = key
    return params
