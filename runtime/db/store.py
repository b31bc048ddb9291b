"""``Store``: the one place where the runtime's SQL runs (async connections).

Every method takes the connection (or cursor) to run on, because the caller owns the
connection policy: a pooled connection, a dedicated one, or the user's own transaction. The
statements, their parameters and their prepare policy come from ``Statements``; rows come back
typed (``rows.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.rows import dict_row
from pydantic_core import from_json

from ..job_views import JobSummary, QueueDepth
from ..jobs import Job, JobId, QueueStats
from .migrations import CODE_VERSION, check_version
from .queries import MIGRATIONS
from .rows import (
    ActivityRow,
    ClaimedJob,
    ClaimPosition,
    FailedJob,
    FetchedJob,
    JobDataRow,
    LimitedClaim,
    LimitedJob,
    QueueArchive,
    QueueCountsRow,
    QueueFlowRow,
    QueueMaxWait,
    QueueRow,
    RedriveRow,
    RescuedJob,
    ScheduleRow,
    SubscriptionRow,
    WaitingJob,
)
from .statements import Statement, Statements

__all__ = ["AsyncConn", "AsyncCursor", "Store"]

AsyncConn = psycopg.AsyncConnection[Any]
AsyncCursor = psycopg.AsyncCursor[Any]
Runner = AsyncConn | AsyncCursor


class _ClaimedJsonLoader(Loader):
    """jsonb of claimed jobs, decoded by pydantic-core's parser: the same values as the
    default loader's ``json.loads`` for anything jsonb can hold, in less time per row."""

    def load(self, data: Buffer) -> Any:
        return from_json(data if isinstance(data, bytes) else bytes(data))


_JSONB_OID: Final = psycopg.adapters.types["jsonb"].oid


def _claim_loaders(on: Runner) -> None:
    """Decode the claimed rows' jsonb with ``_ClaimedJsonLoader`` (set once per cursor)."""
    adapters = on.adapters
    if adapters.get_loader(_JSONB_OID, Format.TEXT) is not _ClaimedJsonLoader:
        adapters.register_loader(_JSONB_OID, _ClaimedJsonLoader)


class Store:
    __slots__ = ("channel", "schema", "sql")

    def __init__(self, schema: str, *, prepare: bool = True) -> None:
        self.sql = Statements(schema, prepare=prepare)
        self.schema = schema
        self.channel = self.sql.channel

    @staticmethod
    async def _rows(on: Runner, stmt: Statement) -> list[tuple[Any, ...]]:
        cur = await on.execute(stmt.sql, stmt.params, prepare=stmt.prepare)
        return await cur.fetchall() if cur.description is not None else []

    @staticmethod
    async def _run(on: Runner, stmt: Statement) -> int:
        cur = await on.execute(stmt.sql, stmt.params, prepare=stmt.prepare)
        return cur.rowcount

    # -- migrations --------------------------------------------------------------------------

    async def migrate(self, conn: AsyncConn) -> int:
        """Bring the schema up to date in one transaction, under an advisory lock (so many
        processes may start at once); return how many migrations were applied."""
        sql = self.sql
        async with conn.transaction():
            await self._run(conn, sql.migration_lock())
            await self._run(conn, sql.migration_bootstrap())
            [(current,)] = await self._rows(conn, sql.schema_version())
            if current > CODE_VERSION:  # a rolling deploy: accepted with a warning, or refused
                check_version(self.schema, int(current), await self.schema_compatible_from(conn))
                return 0
            for migration in [m for m in MIGRATIONS if m.version > current]:
                await self._run(conn, sql.migration_apply(migration))
                await self._run(conn, sql.migration_record(migration))
            await self.schema_record_compatible_from(conn)
            return sum(1 for m in MIGRATIONS if m.version > current)

    async def schema_version(self, conn: AsyncConn) -> int:
        """The schema's version without migrating (0 when never migrated); raises
        ``SchemaVersionError`` when the database is newer than this code and not compatible
        with it (``check_version``)."""
        [(exists,)] = await self._rows(conn, self.sql.schema_has_version_table())
        if not exists:
            return 0
        [(current,)] = await self._rows(conn, self.sql.schema_version())
        if current > CODE_VERSION:
            check_version(self.schema, int(current), await self.schema_compatible_from(conn))
        return int(current)

    # -- queues ------------------------------------------------------------------------------

    async def queue_upsert(self, conn: AsyncConn, params: dict[str, Any]) -> None:
        await self._run(conn, self.sql.queue_upsert(params))

    async def queue_list(self, conn: AsyncConn) -> list[QueueRow]:
        return [QueueRow._make(row) for row in await self._rows(conn, self.sql.queue_list())]

    async def queue_stats(self, conn: AsyncConn, queue: str | None) -> list[QueueStats]:
        return [QueueStats(*row) for row in await self._rows(conn, self.sql.queue_stats(queue))]

    # -- sends -------------------------------------------------------------------------------

    async def job_insert(self, on: Runner, stmt: Statement) -> JobId | None:
        """Run a ``Statements.job_insert``: the new id, or None when nothing was inserted
        (the id exists already, or a live job holds the singleton key)."""
        found = await self._rows(on, stmt)
        return JobId(found[0][0]) if found else None

    async def job_find_singleton(self, on: Runner, queue: str, key: str) -> JobId | None:
        found = await self._rows(on, self.sql.job_find_singleton(queue, key))
        return JobId(found[0][0]) if found else None

    async def job_insert_rows(self, on: Runner, columns: dict[str, Sequence[Any]]) -> None:
        await self._run(on, self.sql.job_insert_rows(columns))

    async def job_insert_batch(self, on: Runner, stmt: Statement) -> None:
        await self._run(on, stmt)

    async def job_copy(
        self,
        conn: AsyncConn,
        queue: str,
        start_after: datetime | None,
        delay: timedelta | None,
        make_chunks: Callable[[datetime | None], Iterable[str]],
    ) -> None:
        """COPY jobs of one queue; ``make_chunks(start_after)`` yields the COPY text once the
        start time is known (a delay is counted on the database clock). The queue's workers
        are notified after."""
        at = start_after
        if delay is not None:
            [(at,)] = await self._rows(conn, self.sql.db_time_after(delay))
        async with conn.cursor() as cur, cur.copy(self.sql.job_copy(at is not None).sql) as copy:
            for chunk in make_chunks(at):
                await copy.write(chunk)
        await self._run(conn, self.sql.queue_notify(queue))

    # -- claims and results ------------------------------------------------------------------

    async def job_claim(
        self, on: Runner, queue: str, limit: int, lease: timedelta
    ) -> list[ClaimedJob]:
        _claim_loaders(on)
        rows = await self._rows(on, self.sql.job_claim(queue, limit, lease))
        return list(map(ClaimedJob._make, rows))

    async def job_claim_after(
        self, on: Runner, queue: str, limit: int, lease: timedelta, after: ClaimPosition | None
    ) -> tuple[list[ClaimedJob], ClaimPosition | None]:
        """Claim the due jobs that come after ``after`` in the claim order (None: from the
        start); return them and the position of the last one (None when none was claimed)."""
        _claim_loaders(on)
        rows = await self._rows(on, self.sql.job_claim_after(queue, limit, lease, after))
        if not rows:
            return [], None
        last = rows[-1]
        jobs = [ClaimedJob._make(row[:5]) for row in rows]
        return jobs, ClaimPosition(last[5], last[6], last[0])

    async def job_fetch(
        self, on: Runner, queue: str, limit: int, lease: timedelta
    ) -> list[FetchedJob]:
        rows = await self._rows(on, self.sql.job_fetch(queue, limit, lease))
        return list(map(FetchedJob._make, rows))

    async def job_complete_many(
        self,
        on: Runner,
        ids: Sequence[JobId],
        fences: Sequence[int],
        outputs: Sequence[str | None],
    ) -> set[JobId]:
        """Complete the jobs whose claim is still current; returns those written."""
        rows = await self._rows(on, self.sql.job_complete_many(ids, fences, outputs))
        return {row[0] for row in rows}

    async def job_complete_one(
        self, on: Runner, job_id: JobId, output: str | None, fence: int | None
    ) -> bool:
        return bool(await self._rows(on, self.sql.job_complete_one(job_id, output, fence)))

    async def job_fail_many(
        self,
        on: Runner,
        ids: Sequence[JobId],
        fences: Sequence[int | None],
        errors: Sequence[str],
        permanent: Sequence[bool],
    ) -> list[FailedJob]:
        rows = await self._rows(on, self.sql.job_fail_many(ids, fences, errors, permanent))
        return list(map(FailedJob._make, rows))

    async def job_heartbeat_many(
        self, on: Runner, ids: Sequence[JobId], fences: Sequence[int], lease: timedelta
    ) -> set[JobId]:
        """Extend the leases still held; returns the jobs whose lease was extended."""
        rows = await self._rows(on, self.sql.job_heartbeat_many(ids, fences, lease))
        return {row[0] for row in rows}

    async def job_hand_back(self, on: Runner, ids: Sequence[JobId], fences: Sequence[int]) -> int:
        """Put active jobs back, due now, without using an attempt; returns how many."""
        rows = await self._rows(on, self.sql.job_hand_back(ids, fences))
        return int(rows[0][0]) if rows else 0

    async def job_change(self, on: Runner, name: str, job_id: JobId) -> bool:
        """``cancel``, ``resume`` or ``retry`` one job; False when its state did not allow it."""
        return bool(await self._rows(on, self.sql.job_by_id(name, job_id)))

    async def job_get(self, conn: AsyncConn, job_id: JobId) -> Job | None:
        stmt = self.sql.job_by_id("get_job", job_id)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(stmt.sql, stmt.params, prepare=stmt.prepare)
            row = await cur.fetchone()
        if row is None:  # retention may have moved it to its queue's archive
            return await self.job_get_archived(conn, job_id)
        return Job.from_row(row)

    # -- maintenance and notifications -------------------------------------------------------

    async def maintenance_lock(self, conn: AsyncConn) -> bool:
        """Take the maintenance lock for the current transaction; False if another has it."""
        rows = await self._rows(conn, self.sql.maintenance_lock())
        return bool(rows and rows[0][2])

    async def job_rescue(
        self, conn: AsyncConn, lease_error: str, expire_error: str, grace: timedelta, limit: int
    ) -> int:
        rows = await self._rows(conn, self.sql.job_rescue(lease_error, expire_error, grace, limit))
        return len(rows)

    async def job_delete_finished(self, conn: AsyncConn, queue: str, limit: int) -> int:
        return max(await self._run(conn, self.sql.job_delete_finished(queue, limit)), 0)

    async def channel_listen(self, conn: AsyncConn) -> None:
        await self._run(conn, self.sql.channel_listen())

    async def ping(self, conn: AsyncConn) -> None:
        await self._run(conn, self.sql.ping())

    # -- testing --

    async def testing_jobs_of(
        self, conn: AsyncConn, queue: str, event: str | None
    ) -> list[JobDataRow]:
        """Every job of ``queue`` (of ``event`` only, when given), oldest first."""
        rows = await self._rows(conn, self.sql.testing_jobs_of(queue, event))
        return list(map(JobDataRow._make, rows))

    async def testing_make_due(
        self, conn: AsyncConn, queues: Sequence[str], within: timedelta | None
    ) -> int:
        """Make the queued jobs of ``queues`` due within ``within`` (all when None) due now."""
        return max(await self._run(conn, self.sql.testing_make_due(queues, within)), 0)

    # -- max_wait expiry --

    async def queue_max_waits(self, conn: AsyncConn) -> list[QueueMaxWait]:
        """The queues that have a ``max_wait``."""
        return list(map(QueueMaxWait._make, await self._rows(conn, self.sql.queue_max_waits())))

    async def autovacuum_state(self, conn: AsyncConn) -> tuple[bool, bool, str] | None:
        """Whether the server runs autovacuum, whether the job table allows it, and the
        naptime; None when the schema has no job table."""
        rows = await self._rows(conn, self.sql.autovacuum_state())
        return (bool(rows[0][0]), bool(rows[0][1]), str(rows[0][2])) if rows else None

    async def queue_retention_due(self, conn: AsyncConn) -> list[tuple[str, timedelta | None]]:
        """The queues that have finished jobs past their retention, each with its archive
        duration (None: its finished jobs are deleted, not archived)."""
        rows = await self._rows(conn, self.sql.queue_retention_due())
        return [(str(name), archive) for name, archive in rows]

    async def queue_archive_purge_due(self, conn: AsyncConn) -> list[QueueArchive]:
        """The queues whose archive holds jobs older than their archive duration."""
        rows = await self._rows(conn, self.sql.queue_archive_purge_due())
        return list(map(QueueArchive._make, rows))

    async def job_expire_waiting(
        self, conn: AsyncConn, queue: str, max_wait: timedelta, limit: int
    ) -> list[WaitingJob]:
        """Lock up to ``limit`` jobs of ``queue`` due for longer than ``max_wait``, marked for
        ``job_fail_many(..., permanent=[True, ...])`` in the same transaction."""
        rows = await self._rows(conn, self.sql.job_expire_waiting(queue, max_wait, limit))
        return list(map(WaitingJob._make, rows))

    # -- rolling upgrades --

    async def schema_compatible_from(self, conn: AsyncConn) -> int:
        """The oldest code version the schema accepts (the largest declared floor)."""
        [(floor,)] = await self._rows(conn, self.sql.schema_compatible_from())
        return int(floor)

    async def schema_record_compatible_from(self, conn: AsyncConn) -> None:
        """Store each known migration's declared floor where the version table lacks it."""
        await self._run(conn, self.sql.schema_record_compatible_from(MIGRATIONS))

    # -- operations --

    async def job_list(
        self, conn: AsyncConn, name: str, params: dict[str, Any]
    ) -> list[JobSummary]:
        """One page of one state of the job list (see ``Statements.job_list``)."""
        async with conn.transaction():
            await self._run(conn, self.sql.ops_no_jit())
            rows = await self._rows(conn, self.sql.job_list(name, params))
        return [JobSummary.from_row(row) for row in rows]

    async def dlq_pick(
        self, conn: AsyncConn, queue: str, limit: int, skip: Sequence[JobId], *, lock: bool
    ) -> list[JobId]:
        """Dead-letter copies of ``queue`` to redrive, at most ``limit``, none of ``skip``; with
        ``lock``, locked for the current transaction (skipping those another one holds)."""
        rows = await self._rows(conn, self.sql.dlq_pick(queue, limit, skip, lock=lock))
        return [JobId(row[0]) for row in rows[:limit]]

    async def dlq_classify(self, conn: AsyncConn, ids: Sequence[JobId]) -> list[RedriveRow]:
        """What redriving the copies ``ids`` would do (nothing is written)."""
        rows = await self._rows(conn, self.sql.dlq_classify(ids))
        return [
            RedriveRow(copy_id, source, queue, state, bool(linked), state is not None)
            for copy_id, source, queue, state, linked in rows
        ]

    async def dlq_redrive(self, conn: AsyncConn, ids: Sequence[JobId]) -> list[RedriveRow]:
        """Redrive the copies ``ids`` (locked by ``dlq_pick`` in this transaction)."""
        return list(map(RedriveRow._make, await self._rows(conn, self.sql.dlq_redrive(ids))))

    async def job_lock_dead_letter_copy(
        self, conn: AsyncConn, job_id: JobId
    ) -> tuple[JobId, str, str] | None:
        """Lock the dead-letter copy of the failed job ``job_id``: its id, state and queue; None
        when the job is not failed or has no copy."""
        rows = await self._rows(conn, self.sql.job_lock_dead_letter_copy(job_id))
        return None if not rows else (JobId(rows[0][0]), rows[0][1], rows[0][2])

    async def job_retry_settling(self, conn: AsyncConn, job_id: JobId) -> bool:
        """Retry the failed job ``job_id`` now and settle its dead-letter copy; False when the
        job was not failed."""
        return bool(await self._rows(conn, self.sql.job_retry_settling(job_id)))

    async def job_purge(
        self, conn: AsyncConn, queue: str, state: str, older_than: timedelta | None, limit: int
    ) -> int:
        """Delete one batch of at most ``limit`` jobs; returns how many were deleted."""
        stmt = self.sql.job_purge(queue, state, older_than, limit)
        return max(await self._run(conn, stmt), 0)

    async def job_purge_count(
        self, conn: AsyncConn, queue: str, state: str, older_than: timedelta | None
    ) -> int:
        """How many jobs ``job_purge`` batches would delete now."""
        [(count,)] = await self._rows(conn, self.sql.job_purge(queue, state, older_than, None))
        return int(count)

    async def queue_depths(self, conn: AsyncConn) -> list[QueueDepth]:
        async with conn.transaction():
            await self._run(conn, self.sql.ops_no_jit())
            rows = await self._rows(conn, self.sql.queue_depths())
        return [QueueDepth(*row) for row in rows]

    async def job_rescue_detailed(
        self, conn: AsyncConn, lease_error: str, expire_error: str, grace: timedelta, limit: int
    ) -> list[RescuedJob]:
        """``job_rescue``, returning each rescued job with its new state, queue and event."""
        rows = await self._rows(conn, self.sql.job_rescue(lease_error, expire_error, grace, limit))
        if not rows:
            return []
        ids = [JobId(row[0]) for row in rows]
        labels = {
            row[0]: (row[1], row[2], bool(row[3]))
            for row in await self._rows(conn, self.sql.job_labels(ids))
        }
        return [
            RescuedJob(job_id, new_state, *labels.get(job_id, ("", None, False)))
            for job_id, new_state in rows
        ]

    # -- flow control ------------------------------------------------------------------------

    async def queue_flow_set(self, conn: AsyncConn, params: dict[str, Any]) -> None:
        await self._run(conn, self.sql.queue_flow_set(params))

    async def queue_flow_list(self, conn: AsyncConn) -> list[QueueFlowRow]:
        rows = await self._rows(conn, self.sql.queue_flow_list())
        return [QueueFlowRow._make(row) for row in rows]

    async def queue_pause(self, conn: AsyncConn, name: str, paused: bool) -> bool:
        """Pause or resume a queue; False when there is no such queue."""
        return bool(await self._rows(conn, self.sql.queue_pause(name, paused)))

    async def job_claim_limited(
        self, on: Runner, queue: str, limit: int, lease: timedelta
    ) -> LimitedClaim:
        """Claim within the queue's flow policy (``flow_claim``, migration 0003)."""
        rows = await self._rows(on, self.sql.job_claim_limited(queue, limit, lease))
        if len(rows) == 1 and rows[0][0] is None:
            return LimitedClaim([], True, rows[0][-1])
        return LimitedClaim([LimitedJob._make(row[:-1]) for row in rows], False, None)

    async def job_snooze(
        self, on: Runner, job_id: JobId, fence: int, delay: timedelta
    ) -> tuple[bool, int] | None:
        """Put an active job back for ``delay`` without using an attempt: (True, snoozes
        before) when done, (False, snoozes) at the queue's snooze limit (nothing changed), None
        when the claim is no longer current."""
        rows = await self._rows(on, self.sql.job_snooze(job_id, fence, delay))
        return None if not rows else (bool(rows[0][0]), int(rows[0][1]))

    # -- dashboard ---------------------------------------------------------------------------

    async def _read(self, conn: AsyncConn, stmt: Statement) -> list[tuple[Any, ...]]:
        """A dashboard read in a transaction of its own, without JIT compiling."""
        async with conn.transaction():
            await self._run(conn, self.sql.dashboard_no_jit())
            return await self._rows(conn, stmt)

    async def queue_counts_capped(
        self, conn: AsyncConn, queue: str | None, cap: int
    ) -> list[QueueCountsRow]:
        """Each queue's (or ``queue``'s) counts by state, every count read up to ``cap``."""
        rows = await self._read(conn, self.sql.queue_counts_capped(queue, cap))
        return [QueueCountsRow._make(row) for row in rows]

    async def job_active_by_queue(self, conn: AsyncConn, cap: int) -> dict[str, int]:
        """Running jobs per queue, reading at most ``cap`` of them."""
        rows = await self._read(conn, self.sql.job_active_by_queue(cap))
        return {queue: int(count) for queue, count in rows}

    async def queue_state_estimates(self, conn: AsyncConn) -> dict[tuple[str, str], int]:
        """(queue, state) -> estimated jobs, from the statistics of the last ANALYZE (only the
        pairs common enough to be listed there)."""
        rows = await self._read(conn, self.sql.queue_state_estimates())
        return {(queue, state): int(estimate) for queue, state, estimate in rows}

    async def job_activity_minutes(
        self, conn: AsyncConn, queue: str | None, since: datetime, cap: int
    ) -> list[ActivityRow]:
        """Per queue and minute since ``since``: finished jobs and the earliest due time of
        the jobs that stopped waiting (see ``ActivityRow``)."""
        rows = await self._read(conn, self.sql.job_activity_minutes(queue, since, cap))
        return [ActivityRow._make(row) for row in rows]

    async def dashboard_clock(self, conn: AsyncConn) -> datetime:
        """The database's current time."""
        [(now,)] = await self._rows(conn, self.sql.dashboard_clock())
        return now  # type: ignore[no-any-return]

    async def schema_relation_exists(self, conn: AsyncConn, relation: str) -> bool:
        [(exists,)] = await self._rows(conn, self.sql.schema_relation_exists(relation))
        return bool(exists)

    # -- events ------------------------------------------------------------------------------

    async def event_copy(
        self,
        conn: AsyncConn,
        queue: str,
        start_after: datetime | None,
        delay: timedelta | None,
        make_chunks: Callable[[datetime | None], Iterable[str]],
        ids: Callable[[], Sequence[JobId]],
    ) -> None:
        """``job_copy``, then the copies of its events for their subscribers, in the same
        transaction (the caller's); ``ids()`` gives the ids written, once the COPY is done.
        The fan-out statement runs only when some queue subscribes to the queue's domain."""
        [(subscribed,)] = await self._rows(conn, self.sql.event_domain_subscribed(queue))
        await self.job_copy(conn, queue, start_after, delay, make_chunks)
        if subscribed:
            await self._run(conn, self.sql.event_fan_out_copied(ids()))

    async def subscription_set(
        self, conn: AsyncConn, queue: str, pairs: Sequence[tuple[str, str]]
    ) -> None:
        await self._run(conn, self.sql.subscription_set(queue, pairs))

    async def subscription_list(self, conn: AsyncConn) -> list[SubscriptionRow]:
        rows = await self._rows(conn, self.sql.subscription_list())
        return list(map(SubscriptionRow._make, rows))

    async def relay_job_options(
        self, conn: AsyncConn, ids: Sequence[JobId]
    ) -> dict[JobId, tuple[int, str | None]]:
        """The priority and singleton key of outbox jobs, by id (a job gone is left out)."""
        rows = await self._rows(conn, self.sql.relay_job_options(ids))
        return {JobId(row[0]): (int(row[1]), row[2]) for row in rows}

    async def relay_job_write(
        self,
        conn: AsyncConn,
        queue: str,
        jobs: Sequence[tuple[JobId, str, tuple[int, str | None]]],
    ) -> int:
        """Write relayed jobs with their outbox copies' ids; returns how many were new."""
        stmt = self.sql.relay_job_write(
            queue,
            [job_id for job_id, _, _ in jobs],
            [data for _, data, _ in jobs],
            [options[0] for _, _, options in jobs],
            [options[1] for _, _, options in jobs],
        )
        [(written, _)] = await self._rows(conn, stmt)
        return int(written)

    async def queue_archive_set(
        self, conn: AsyncConn, name: str, archive: timedelta | None
    ) -> None:
        await self._run(conn, self.sql.queue_archive_set(name, archive))

    async def queue_archives(self, conn: AsyncConn) -> list[QueueArchive]:
        """The queues that archive their finished jobs."""
        return list(map(QueueArchive._make, await self._rows(conn, self.sql.queue_archives())))

    async def job_archive_finished(self, conn: AsyncConn, queue: str, limit: int) -> int:
        """Move up to ``limit`` finished jobs of ``queue`` past retention into the archive."""
        return max(await self._run(conn, self.sql.job_archive_finished(queue, limit)), 0)

    async def job_archive_purge(
        self, conn: AsyncConn, queue: str, archive: timedelta, limit: int
    ) -> int:
        """Delete up to ``limit`` archived jobs of ``queue`` older than ``archive``."""
        return max(await self._run(conn, self.sql.job_archive_purge(queue, archive, limit)), 0)

    async def job_get_archived(self, conn: AsyncConn, job_id: JobId) -> Job | None:
        stmt = self.sql.job_get_archived(job_id)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(stmt.sql, stmt.params, prepare=stmt.prepare)
            row = await cur.fetchone()
        return None if row is None else Job.from_row(row)

    async def schedule_upsert(self, conn: AsyncConn, params: dict[str, Any]) -> None:
        await self._run(conn, self.sql.schedule_upsert(params))

    async def schedule_delete(self, conn: AsyncConn, name: str) -> bool:
        return bool(await self._rows(conn, self.sql.schedule_delete(name)))

    async def schedule_drop_undeclared(
        self, conn: AsyncConn, queue: str, names: Sequence[str]
    ) -> None:
        await self._run(conn, self.sql.schedule_drop_undeclared(queue, names))

    async def schedule_list(self, conn: AsyncConn) -> list[ScheduleRow]:
        return list(map(ScheduleRow._make, await self._rows(conn, self.sql.schedule_list())))

    async def schedule_clock(self, conn: AsyncConn) -> datetime:
        """The database's clock (``clock_timestamp()``)."""
        [(now,)] = await self._rows(conn, self.sql.schedule_clock())
        return now  # type: ignore[no-any-return]

    async def schedule_fire(
        self, conn: AsyncConn, name: str, slot: datetime, job_id: JobId, data: str
    ) -> bool:
        """Fire one slot of a schedule (its job and the job's copies); False when the slot was
        fired or skipped already, or is not due yet on the database's clock."""
        rows = await self._rows(conn, self.sql.schedule_fire(name, slot, job_id, data))
        return bool(rows and rows[0][0])

    async def schedule_skip(self, conn: AsyncConn, name: str, slot: datetime) -> bool:
        """Mark a schedule's slots up to ``slot`` done without firing them."""
        return bool(await self._rows(conn, self.sql.schedule_skip(name, slot)))

    # -- dashboard activity roll-up --

    async def job_minute_rollup(self, conn: AsyncConn) -> tuple[int, int, datetime | None]:
        """Add the minutes that ended since the mark to the dashboard's per-minute figures
        (run under the maintenance lock): (rows written, rows pruned, the new mark or None
        when no minute had ended)."""
        [(written, pruned, mark)] = await self._rows(conn, self.sql.job_minute_rollup())
        return int(written), int(pruned), mark

    async def job_search_event(
        self,
        conn: AsyncConn,
        event: str,
        queue: str | None,
        state: str | None,
        after: JobId | None,
        scan: int,
        limit: int,
    ) -> tuple[list[JobSummary], int, JobId | None]:
        """The jobs of ``event`` (of ``queue`` and ``state`` when given) among at most ``scan``
        jobs, newest first from before ``after``, at most ``limit``: (the jobs, how many jobs
        were read, the oldest id read)."""
        stmt = self.sql.job_search_event(event, queue, state, after, scan, limit)
        rows = await self._read(conn, stmt)
        jobs = [JobSummary.from_row(row[:14]) for row in rows if row[0] is not None]
        read, oldest = rows[0][14], rows[0][15]
        return jobs, int(read), None if oldest is None else JobId(oldest)
