"""``SyncBoss``: the synchronous send path for sync callers (Django, scripts).

It runs the same statements as ``Boss`` through ``SyncStore`` and validates with the same
pure request code, so the two cannot drift. Pass ``conn=`` (for example Django's
``connection.connection`` inside ``transaction.atomic()``) to enqueue inside your own
transaction; otherwise a small pool is opened on first use. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from psycopg_pool import ConnectionPool

from ..config import other_database_dsn, resolve_dsn, validate_database_name
from ..db import SyncConn, SyncStore
from ..db.connect import connection_kwargs
from ..db.identifiers import validate_queue_name
from ..db.rows import JobDataRow
from ..errors import ConfigurationError, UnknownQueueError
from ..jobs import Job, JobId
from ..options import positive_int
from ..policy import QueueSpec
from ..schedules import CatchUp, Schedule
from ..worker.relay import place_subscriptions
from .events import as_schedule, check_schedule_name, schedule_params
from .flow_requests import batch_flow_options, flow_options, with_batch_flow, with_flow
from .queue_cache import QueueCache, info_of
from .requests import Batch, EncodedMany, Row, make_row, split_for_copy, unwrap_many
from .sender import SINGLETON_TRIES, singleton_conflict

__all__ = ["SyncBoss"]

T = TypeVar("T")


class SyncBoss:
    """Sends jobs and reads them back without an event loop."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str = "queues",
        max_payload_bytes: int = 1_000_000,
        source: str | None = None,
        max_pool_size: int = 4,
        copy_threshold: int = 2000,
        prepare: bool = True,
        pgbouncer: bool = False,
        databases: Mapping[str, str] | None = None,
    ) -> None:
        # The options a SyncBoss of another database (``database()``) is made with.
        self._options: dict[str, Any] = {
            k: v for k, v in locals().items() if k not in ("self", "dsn", "databases")
        }
        # pgbouncer: a transaction pooler keeps no prepared statements between transactions.
        self._store = SyncStore(schema, prepare=bool(prepare) and not pgbouncer)
        self.schema = schema
        self.source = source
        self._dsn = dsn
        self._max_payload = positive_int("max_payload_bytes", max_payload_bytes)
        self._max_pool_size = positive_int("max_pool_size", max_pool_size)
        self._copy_threshold = positive_int("copy_threshold", copy_threshold)
        self._pool: ConnectionPool[SyncConn] | None = None
        self._lock = threading.Lock()
        self._queues = QueueCache(schema)
        self._databases = {validate_database_name(n): d for n, d in (databases or {}).items()}
        self._others: dict[str, SyncBoss] = {}
        self._home: SyncBoss | None = None

    def _get_pool(self) -> ConnectionPool[SyncConn]:
        with self._lock:
            if self._pool is None:
                dsn = resolve_dsn(self._dsn)
                if dsn is None:
                    raise ConfigurationError(
                        "no database configured: pass SyncBoss(dsn=...) or set QUEUES_DSN or "
                        "DATABASE_URL (or pass conn= to each call)"
                    )
                self._pool = ConnectionPool(
                    dsn,
                    min_size=1,
                    max_size=self._max_pool_size,
                    kwargs=connection_kwargs(dsn, "queues-sync"),
                    open=True,
                    name=f"queues-sync-{self.schema}",
                )
            return self._pool

    def _run(self, conn: SyncConn | None, action: Callable[[SyncConn], T]) -> T:
        if conn is not None:
            return action(conn)
        with self._get_pool().connection() as pooled:
            return action(pooled)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            others = list(self._others.values())
        if pool is not None:
            pool.close()
        for other in others:
            other.close()

    def database(self, name: str | None) -> SyncBoss:
        """The SyncBoss of database ``name`` (a domain's ``database:``), like
        ``Boss.database``: made on first use, closed with this one."""
        if self._home is not None:
            return self._home.database(name)
        if name is None:
            return self
        dsn = other_database_dsn(name, self._databases.get(name), resolve_dsn(self._dsn))
        if dsn is None:
            return self
        with self._lock:
            other = self._others.get(dsn)
            if other is None:
                other = self._others[dsn] = SyncBoss(dsn, **self._options)
                other._home = self
        return other

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def migrate(self, *, conn: SyncConn | None = None) -> None:
        """Apply missing migrations (safe to run from many processes at once)."""
        self._run(conn, self._store.migrate)

    def create_queue(self, spec: QueueSpec, *, conn: SyncConn | None = None) -> None:
        """Create a queue or update its policy, on its ``database`` (``database()``)."""
        if not isinstance(spec, QueueSpec):
            raise TypeError(f"create_queue takes a QueueSpec, got {spec!r}")
        spec, outboxes = place_subscriptions(spec, self.database)
        if outboxes:
            raise ConfigurationError(
                f'queue "{spec.name}" subscribes to {", ".join(outboxes[0][2])} on another '
                "database: its outbox is made by Boss.create_queues (the generated create_queues)"
            )
        home = self.database(spec.database)
        if home is not self:
            home.create_queue(spec, conn=conn)
            return
        self._run(conn, lambda c: self._upsert_queue(c, spec))
        self._queues.put(info_of(spec))

    # -- queue control and schedules (as Boss's) --

    def pause_queue(self, name: str, *, conn: SyncConn | None = None) -> None:
        """Pause a queue, like ``Boss.pause_queue``: sends are kept, running jobs finish, and
        workers start nothing new (they notice within their poll interval)."""
        self._pause(name, True, conn)

    def resume_queue(self, name: str, *, conn: SyncConn | None = None) -> None:
        """Resume a paused queue; its workers are notified and start jobs again."""
        self._pause(name, False, conn)

    def _pause(self, name: str, paused: bool, conn: SyncConn | None) -> None:
        validate_queue_name(name)
        if not self._run(conn, lambda c: self._store.queue_pause(c, name, paused)):
            raise UnknownQueueError(name, self.schema)

    def schedule(
        self,
        name: str,
        queue: str,
        data: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
        cron: str | None = None,
        every: timedelta | None = None,
        timezone: str = "UTC",
        catch_up: CatchUp = "latest",
        priority: int = 0,
        conn: SyncConn | None = None,
    ) -> Schedule:
        """Create or replace the schedule ``name``, as ``Boss.schedule`` does."""
        made = as_schedule(
            name,
            queue,
            {} if data is None else data,
            event=event,
            cron=cron,
            every=every,
            timezone=timezone,
            catch_up=catch_up,
            priority=priority,
        )
        params = schedule_params(made, None, self._max_payload)
        self._check_queue(made.queue, conn)  # UnknownQueueError before anything is written
        self._run(conn, lambda c: self._store.schedule_upsert(c, params))
        return made

    def unschedule(self, name: str, *, conn: SyncConn | None = None) -> bool:
        """Delete the schedule ``name``; False when there was none (as ``Boss.unschedule``)."""
        check_schedule_name(name)
        return self._run(conn, lambda c: self._store.schedule_delete(c, name))

    def _check_queue(self, queue: str, conn: SyncConn | None) -> None:
        if self._queues.get(queue) is not None:
            return
        self._queues.load(self._run(conn, self._store.queue_list))
        if self._queues.get(queue) is None:
            raise UnknownQueueError(queue, self.schema)

    def send(
        self,
        queue: str,
        data: Mapping[str, Any],
        *,
        conn: SyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
        group_key: str | None = None,
        throttle: timedelta | None = None,
        debounce: timedelta | None = None,
        retry_limit: int | None = None,
        expire_in: timedelta | None = None,
    ) -> JobId:
        """Enqueue one job; with ``conn`` it joins that connection's transaction. The flow
        options are those of ``Boss.send``."""
        known = self._queues.get(queue) is not None
        if not known:
            validate_queue_name(queue)
        row = make_row(queue, data, self._max_payload, start_after, priority, singleton_key)
        flow = flow_options(
            group_key=group_key,
            throttle=throttle,
            debounce=debounce,
            retry_limit=retry_limit,
            expire_in=expire_in,
            singleton_key=singleton_key,
            start_after=start_after,
        )
        if flow is not None:
            row = with_flow(row, flow)
        if not known:  # checked after the arguments: bad input fails before any SQL
            self._check_queue(queue, conn)
        return self._run(conn, lambda c: self._insert_one(c, row))

    def _insert_one(self, conn: SyncConn, row: Row) -> JobId:
        store = self._store
        stmt = row.insert(store.sql)
        for _ in range(SINGLETON_TRIES):
            found = store.job_insert(conn, stmt)
            if found is not None:
                return found
            if row.singleton_key is None:
                return row.id
            found = store.job_find_singleton(conn, row.queue, row.singleton_key)
            if found is not None:
                return found
        raise singleton_conflict(row)

    def send_many(
        self,
        queue: str,
        data: Iterable[Mapping[str, Any]] | EncodedMany,
        *,
        conn: SyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        group_key: str | None = None,
        retry_limit: int | None = None,
        expire_in: timedelta | None = None,
    ) -> list[JobId]:
        """Enqueue many jobs in one statement (COPY for big batches); all or nothing. The
        flow options are those of ``Boss.send_many``."""
        known = self._queues.get(queue) is not None
        if not known:
            validate_queue_name(queue)
        flow = batch_flow_options(group_key=group_key, retry_limit=retry_limit, expire_in=expire_in)
        source, encoded_event = unwrap_many(data)
        if flow is not None:  # one INSERT in send order, never COPY
            flow_batch = with_batch_flow(
                Batch.of(queue, source, self._max_payload, start_after, priority, encoded_event),
                flow,
            )
            if not known:
                self._check_queue(queue, conn)
            if flow_batch.ids:
                stmt = flow_batch.insert(self._store.sql)
                self._run(conn, lambda c: self._store.job_insert_batch(c, stmt))
            return flow_batch.ids
        items, streamed = split_for_copy(source, self._copy_threshold, conn is not None)
        batch = Batch.of(queue, items, self._max_payload, start_after, priority, encoded_event)
        if not known:
            self._check_queue(queue, conn)
        if streamed is not None:
            with self._get_pool().connection() as pooled, pooled.transaction():
                self._copy(pooled, batch, streamed)
            return batch.ids
        if not batch.ids:
            return []
        if conn is not None and len(batch.ids) >= self._copy_threshold:
            self._copy(conn, batch, iter(()))
        else:
            stmt = batch.insert(self._store.sql)
            self._run(conn, lambda c: self._store.job_insert_batch(c, stmt))
        return batch.ids

    def _copy(self, conn: SyncConn, batch: Batch, rest: Iterator[object]) -> None:
        # event_copy: job_copy plus the subscribers' copies of the events it wrote
        self._store.event_copy(
            conn,
            batch.queue,
            batch.start_after,
            batch.delay,
            lambda at: batch.stream_chunks(rest, self._max_payload, at),
            lambda: batch.ids,
        )

    def get_job(self, job_id: JobId, *, conn: SyncConn | None = None) -> Job | None:
        """The job with this id, or None."""
        return self._run(conn, lambda c: self._store.job_get(c, job_id))

    # -- test helpers (typed_queues.runtime.testing) --

    def jobs_of(
        self, queue: str, *, event: str | None = None, conn: SyncConn | None = None
    ) -> list[JobDataRow]:
        """``Boss.jobs_of``: every job of ``queue`` (of ``event``, when given), oldest first."""
        validate_queue_name(queue)
        return self._run(conn, lambda c: self._store.testing_jobs_of(c, queue, event))

    # -- flow control --

    def _upsert_queue(self, conn: SyncConn, spec: QueueSpec) -> None:
        """The queue's policy and its flow policy, together."""
        with conn.transaction():
            self._store.queue_upsert(conn, spec.to_params())
            self._store.queue_flow_set(conn, spec.flow_params())
            self._store_events(conn, spec)

    # -- events --

    def _store_events(self, conn: SyncConn, spec: QueueSpec) -> None:
        """``Boss.create_queues``' part of events: the queue's subscriptions, archive duration
        and declared schedules become what its spec says."""
        self._store.subscription_set(conn, spec.name, spec.subscriptions())
        self._store.queue_archive_set(conn, spec.name, spec.archive)
        for schedule in spec.schedules:
            params = schedule_params(schedule, spec.name, self._max_payload)
            self._store.schedule_upsert(conn, params)
        self._store.schedule_drop_undeclared(conn, spec.name, [s.name for s in spec.schedules])
