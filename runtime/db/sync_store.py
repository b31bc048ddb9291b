"""``SyncStore``: the statements the synchronous client needs, on sync connections.

The same ``Statements`` as ``Store``: only the way they run differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..jobs import Job, JobId
from .migrations import CODE_VERSION, check_version
from .queries import MIGRATIONS
from .rows import JobDataRow, QueueRow
from .statements import Statement, Statements

__all__ = ["SyncConn", "SyncStore"]

SyncConn = psycopg.Connection[Any]


class SyncStore:
    __slots__ = ("channel", "schema", "sql")

    def __init__(self, schema: str, *, prepare: bool = True) -> None:
        self.sql = Statements(schema, prepare=prepare)
        self.schema = schema
        self.channel = self.sql.channel

    @staticmethod
    def _rows(conn: SyncConn, stmt: Statement) -> list[tuple[Any, ...]]:
        cur = conn.execute(stmt.sql, stmt.params, prepare=stmt.prepare)
        return cur.fetchall() if cur.description is not None else []

    def migrate(self, conn: SyncConn) -> int:
        """``Store.migrate`` on a sync connection."""
        sql = self.sql
        with conn.transaction():
            self._rows(conn, sql.migration_lock())
            self._rows(conn, sql.migration_bootstrap())
            [(current,)] = self._rows(conn, sql.schema_version())
            if current > CODE_VERSION:  # a rolling deploy: accepted with a warning, or refused
                check_version(self.schema, int(current), self.schema_compatible_from(conn))
                return 0
            for migration in [m for m in MIGRATIONS if m.version > current]:
                self._rows(conn, sql.migration_apply(migration))
                self._rows(conn, sql.migration_record(migration))
            self._rows(conn, sql.schema_record_compatible_from(MIGRATIONS))
            return sum(1 for m in MIGRATIONS if m.version > current)

    def queue_upsert(self, conn: SyncConn, params: dict[str, Any]) -> None:
        self._rows(conn, self.sql.queue_upsert(params))

    def queue_list(self, conn: SyncConn) -> list[QueueRow]:
        return [QueueRow._make(row) for row in self._rows(conn, self.sql.queue_list())]

    def job_insert(self, conn: SyncConn, stmt: Statement) -> JobId | None:
        found = self._rows(conn, stmt)
        return JobId(found[0][0]) if found else None

    def job_find_singleton(self, conn: SyncConn, queue: str, key: str) -> JobId | None:
        found = self._rows(conn, self.sql.job_find_singleton(queue, key))
        return JobId(found[0][0]) if found else None

    def job_insert_batch(self, conn: SyncConn, stmt: Statement) -> None:
        self._rows(conn, stmt)

    def job_copy(
        self,
        conn: SyncConn,
        queue: str,
        start_after: datetime | None,
        delay: timedelta | None,
        make_chunks: Callable[[datetime | None], Iterable[str]],
    ) -> None:
        """``Store.job_copy`` on a sync connection."""
        at = start_after
        if delay is not None:
            [(at,)] = self._rows(conn, self.sql.db_time_after(delay))
        with conn.cursor() as cur, cur.copy(self.sql.job_copy(at is not None).sql) as copy:
            for chunk in make_chunks(at):
                copy.write(chunk)
        self._rows(conn, self.sql.queue_notify(queue))

    def job_get(self, conn: SyncConn, job_id: JobId) -> Job | None:
        stmt = self.sql.job_by_id("get_job", job_id)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(stmt.sql, stmt.params, prepare=stmt.prepare).fetchone()
        if row is None:  # retention may have moved it to its queue's archive
            return self.job_get_archived(conn, job_id)
        return Job.from_row(row)

    # -- testing --

    def testing_jobs_of(self, conn: SyncConn, queue: str, event: str | None) -> list[JobDataRow]:
        """``Store.testing_jobs_of`` on a sync connection."""
        return list(map(JobDataRow._make, self._rows(conn, self.sql.testing_jobs_of(queue, event))))

    def testing_schema_drop(self, conn: SyncConn) -> None:
        """Drop the whole schema, queue tables and all (for throwaway test schemas)."""
        self._rows(conn, self.sql.testing_schema_drop())

    # -- rolling upgrades --

    def schema_compatible_from(self, conn: SyncConn) -> int:
        """``Store.schema_compatible_from`` on a sync connection."""
        [(floor,)] = self._rows(conn, self.sql.schema_compatible_from())
        return int(floor)

    # -- flow control --

    def queue_flow_set(self, conn: SyncConn, params: dict[str, Any]) -> None:
        self._rows(conn, self.sql.queue_flow_set(params))

    # -- events --

    def event_copy(
        self,
        conn: SyncConn,
        queue: str,
        start_after: datetime | None,
        delay: timedelta | None,
        make_chunks: Callable[[datetime | None], Iterable[str]],
        ids: Callable[[], Sequence[JobId]],
    ) -> None:
        """``Store.event_copy`` on a sync connection."""
        [(subscribed,)] = self._rows(conn, self.sql.event_domain_subscribed(queue))
        self.job_copy(conn, queue, start_after, delay, make_chunks)
        if subscribed:
            self._rows(conn, self.sql.event_fan_out_copied(ids()))

    def subscription_set(
        self, conn: SyncConn, queue: str, pairs: Sequence[tuple[str, str]]
    ) -> None:
        self._rows(conn, self.sql.subscription_set(queue, pairs))

    def queue_archive_set(self, conn: SyncConn, name: str, archive: timedelta | None) -> None:
        self._rows(conn, self.sql.queue_archive_set(name, archive))

    def job_get_archived(self, conn: SyncConn, job_id: JobId) -> Job | None:
        stmt = self.sql.job_get_archived(job_id)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(stmt.sql, stmt.params, prepare=stmt.prepare).fetchone()
        return None if row is None else Job.from_row(row)

    def schedule_upsert(self, conn: SyncConn, params: dict[str, Any]) -> None:
        self._rows(conn, self.sql.schedule_upsert(params))

    def schedule_delete(self, conn: SyncConn, name: str) -> bool:
        return bool(self._rows(conn, self.sql.schedule_delete(name)))

    def queue_pause(self, conn: SyncConn, name: str, paused: bool) -> bool:
        """Pause or resume a queue; False when there is no such queue."""
        return bool(self._rows(conn, self.sql.queue_pause(name, paused)))

    def schedule_drop_undeclared(self, conn: SyncConn, queue: str, names: Sequence[str]) -> None:
        self._rows(conn, self.sql.schedule_drop_undeclared(queue, names))

    def job_complete_one(
        self, conn: SyncConn, job_id: JobId, output: str | None, fence: int | None
    ) -> bool:
        """``Store.job_complete_one`` on a sync connection (a sync handler's transaction)."""
        return bool(self._rows(conn, self.sql.job_complete_one(job_id, output, fence)))
