"""The ``Boss``: one process's handle on a queue schema.

It is assembled from parts that each own one job and get what they need through their
constructors: the ``Store`` (every statement), ``ClientConnections`` (pool and the send path's
connection), the ``QueueCache``, the ``Sender`` and ``JobControl``; and, from the first
``Worker.start()`` on, the ``WorkerServices`` its workers share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import psycopg

from ..config import resolve_dsn
from ..db import AsyncConn, QueueRow, Store
from ..db.connect import connection_kwargs
from ..db.dedicated import DedicatedConnection
from ..db.identifiers import validate_queue_name
from ..db.migrations import CODE_VERSION
from ..errors import ConfigurationError
from ..job_views import JobPage, PurgeReport, QueueDepth, RedriveReport
from ..jobs import Job, JobContext, JobId, JobState, QueueStats
from ..options import Duration, positive_int, seconds
from ..policy import QueueSpec
from ..schedules import CatchUp, Schedule
from ..worker.relay import outbox_spec, place_subscriptions
from ..worker.services import WorkerServices, WorkerSettings
from .connections import ClientConnections
from .databases import DatabaseRoutes
from .events import EventControl, ScheduleInfo, as_schedule
from .flow_control import FlowControl
from .handle import EnqueuedJob, QueueHandle
from .job_control import JobControl
from .job_transactions import HandlerTransactions, TransactionHooks, WorkerTransactions
from .operations import Operations
from .queue_cache import QueueCache, QueueInfo, info_of
from .requests import EncodedMany
from .sender import Sender

if TYPE_CHECKING:
    from ..db.rows import JobDataRow, SubscriptionRow
    from ..worker.flow import FlowPolicies
    from ..worker.maintenance import MaintenanceResult
    from ..worker.observer import WorkerObserver
    from ..worker.scheduler import SchedulerRound
    from ..worker.worker import Worker
    from .overview import EventSearch, QueueActivity, QueueOverview

__all__ = ["Boss", "EnqueuedJob", "QueueHandle"]

log = logging.getLogger("queues")


class Boss:
    """A process's handle on one queue schema: sends, finishing jobs, and running workers.

    Nothing touches the database before ``start()`` (or ``async with``).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str = "queues",
        max_pool_size: int = 10,
        max_payload_bytes: int = 1_000_000,
        lease: timedelta = timedelta(seconds=30),
        source: str | None = None,
        listen: bool = True,
        poll_interval: Duration = timedelta(seconds=2),
        heartbeat_interval: Duration | None = None,
        maintenance: bool = True,
        maintenance_interval: Duration = timedelta(seconds=15),
        worker_pool_size: int = 4,
        send_batch_size: int = 500,
        send_concurrency: int = 2,
        copy_threshold: int = 2000,
        retention_batch: int = 1000,
        connect_timeout: Duration = 30.0,
        prepare: bool = True,
        connection_lifetime: Duration = timedelta(hours=1),
        pgbouncer: bool = False,
        listen_dsn: str | None = None,
        schedules: bool = True,
        databases: Mapping[str, str] | None = None,
    ) -> None:
        # The options a Boss of another database (``database()``) is made with: all but where.
        self._options: dict[str, Any] = {
            k: v for k, v in locals().items() if k not in ("self", "dsn", "databases", "listen_dsn")
        }
        # pgbouncer: a transaction pooler keeps neither prepared statements nor LISTEN.
        self._store = Store(schema, prepare=bool(prepare) and not pgbouncer)  # validates schema
        self.schema = schema
        self.source = source
        self._dsn = dsn
        self.lease = timedelta(seconds=seconds("lease", lease))
        self.poll_interval = seconds("poll_interval", poll_interval)
        self._worker_settings = WorkerSettings(
            lease=self.lease,
            heartbeat_interval=(
                self.lease.total_seconds() / 3
                if heartbeat_interval is None
                else seconds("heartbeat_interval", heartbeat_interval)
            ),
            listen=bool(listen) and (listen_dsn is not None or not pgbouncer),
            maintenance=bool(maintenance),
            maintenance_interval=seconds("maintenance_interval", maintenance_interval),
            retention_batch=positive_int("retention_batch", retention_batch),
            pool_size=positive_int("worker_pool_size", worker_pool_size),
            connection_lifetime=seconds("connection_lifetime", connection_lifetime),
            listen_dsn=listen_dsn,
            schedules=bool(schedules),
        )
        self._connections = ClientConnections(
            schema,
            positive_int("max_pool_size", max_pool_size),
            seconds("connect_timeout", connect_timeout),
            seconds("connection_lifetime", connection_lifetime),
        )
        self._queues = QueueCache(schema, self._read_queues)
        self._sender = Sender(
            self._store,
            self._connections,
            self._queues,
            max_payload=positive_int("max_payload_bytes", max_payload_bytes),
            copy_threshold=positive_int("copy_threshold", copy_threshold),
            batch_size=positive_int("send_batch_size", send_batch_size),
            concurrency=positive_int("send_concurrency", send_concurrency),
        )
        self._jobs = JobControl(self._store, self._connections, self._queues, self.lease)
        self._operations = Operations(self._store, self._connections, self._queues)
        self._flow = FlowControl(
            self._store, self._connections, self._queues, self.lease, self.poll_interval
        )
        self._events = EventControl(
            self._store,
            self._connections,
            self._queues,
            max_payload=positive_int("max_payload_bytes", max_payload_bytes),
        )
        self._transactions = HandlerTransactions(self._store, self._connections)
        self._observer: WorkerObserver | None = None
        self._services: WorkerServices | None = None
        self._services_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._workers: list[Worker] = []
        self._routes = DatabaseRoutes(databases, self._boss_of)
        #: The Boss that made this one for another database (``database()``), if any.
        self._home: Boss | None = None
        #: Relays into this Boss's queues, started with the first worker of their queue.
        self._relays: dict[str, list[Worker]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, migrate: bool = True) -> None:
        """Open the pool and migrate the schema (or, with ``migrate=False``, check it)."""
        async with self._start_lock:
            if not self._connections.open:
                await self._open(migrate)
                try:
                    await self._routes.start(self._resolve_dsn(), migrate=migrate)
                except BaseException:
                    await self._connections.stop()
                    raise

    async def _open(self, migrate: bool) -> None:
        pool = await self._connections.start(self._resolve_dsn())
        try:
            async with pool.connection() as conn:
                if migrate:
                    await self._store.migrate(conn)
                    version = CODE_VERSION
                else:
                    version = await self._store.schema_version(conn)
                if version < CODE_VERSION:
                    log.warning(
                        'schema "%s" is at version %d, this code needs %d: run `queues migrate` '
                        "(or start with migrate=True) before sending or working",
                        self.schema,
                        version,
                        CODE_VERSION,
                    )
                if version:
                    self._queues.load(await self._store.queue_list(conn))
        except BaseException:
            await self._connections.stop()
            raise

    async def stop(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop this Boss's workers (graceful, up to ``timeout`` each), then close the pool."""
        if not self._connections.open:
            return
        await self._routes.stop(timeout=timeout)
        workers = list(self._workers)
        results = await asyncio.gather(
            *(worker.stop(timeout=timeout) for worker in workers), return_exceptions=True
        )
        for worker, result in zip(workers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("stopping worker %s failed: %r", worker.label, result)
        if self._services is not None:
            services, self._services = self._services, None
            await services.stop()
        await self._sender.drain()
        self._transactions.close()
        await self._connections.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._connections.open

    async def migrate(self) -> None:
        """Apply missing migrations (safe to run from many processes at once)."""
        if self._connections.open:
            async with self._connections.pool().connection() as conn:
                await self._store.migrate(conn)
                self._queues.load(await self._store.queue_list(conn))
            return
        dsn = self._resolve_dsn()
        async with await psycopg.AsyncConnection.connect(
            dsn, **connection_kwargs(dsn, "queues-migrate")
        ) as conn:
            await self._store.migrate(conn)

    def _resolve_dsn(self) -> str:
        dsn = resolve_dsn(self._dsn)
        if dsn is None:
            raise ConfigurationError(
                "no database configured: pass Boss(dsn=...) or set QUEUES_DSN or DATABASE_URL"
            )
        return dsn

    # -- queues ------------------------------------------------------------------------------

    async def create_queue(self, spec: QueueSpec) -> None:
        """Create a queue or update its policy."""
        await self.create_queues([spec])

    async def create_queues(self, specs: Iterable[QueueSpec]) -> None:
        """Create or update several queues in one transaction per database.

        A spec with a ``database`` goes to that database's Boss (``database()``); a remote
        subscription from another server makes its outbox queue there (``RemoteSubscription``).
        """
        specs = list(specs)
        for spec in specs:
            if not isinstance(spec, QueueSpec):
                raise TypeError(f"create_queue takes a QueueSpec, got {spec!r}")
        for boss, placed in self._place(specs):
            await boss._create_here(placed)

    def _place(self, specs: list[QueueSpec]) -> list[tuple[Boss, list[QueueSpec]]]:
        """Which Boss stores which specs: each queue on its domain's database, and for each
        remote subscription from another server, an outbox queue on the publisher's."""
        placed: dict[int, tuple[Boss, list[QueueSpec]]] = {}
        outboxes: list[tuple[Boss, QueueSpec]] = []
        for spec in specs:
            stored, remote = place_subscriptions(spec, self.database)
            home = self.database(spec.database)
            placed.setdefault(id(home), (home, []))[1].append(stored)
            outboxes += [(source, outbox_spec(spec, ev, db)) for source, db, ev in remote]
        for source, outbox in outboxes:  # (after the queues, like dead-letter order wants)
            placed.setdefault(id(source), (source, []))[1].append(outbox)
        return list(placed.values())

    async def _create_here(self, specs: list[QueueSpec]) -> None:
        async with self._connections.pool().connection() as conn, conn.transaction():
            for spec in specs:
                await self._store.queue_upsert(conn, spec.to_params())
            await self._flow.store(conn, specs)
            await self._events.store(conn, specs)  # subscriptions, archive, schedules
        for spec in specs:
            self._queues.put(info_of(spec))
        self._flow.stored(specs)

    async def queue_info(self, queue: str) -> QueueInfo:
        """The policy of ``queue`` that workers need (cached; ``UnknownQueueError`` if the
        queue was never created)."""
        self._connections.pool()
        return await self._queues.info(queue)

    async def _read_queues(self) -> list[QueueRow]:
        return await self._connections.with_retry(self._store.queue_list)

    def queue(self, name: str) -> QueueHandle:
        """An untyped handle on one queue (``enqueue(data)`` returns the id and the data)."""
        return QueueHandle(self, validate_queue_name(name))

    # -- databases of domains ---------------------------------------------------------------

    def database(self, name: str | None) -> Boss:
        """The Boss of database ``name`` (a domain's ``database:``): the DSN of
        ``Boss(databases=...)``, else of ``QUEUES_DSN_<NAME>``, else this Boss's own (then it
        is this Boss). None: this Boss. The generated code routes every call through it."""
        if self._home is not None:
            return self._home.database(name)
        if name is None:
            return self
        routed = self._routes.route(name, self._connections.dsn or resolve_dsn(self._dsn))
        return self if routed is None else routed

    def _boss_of(self, dsn: str) -> Boss:
        boss = Boss(dsn, **self._options)
        boss._home = self
        return boss

    def relay_from(self, source: Boss, queue: str) -> None:
        """Relay ``queue``'s outbox on ``source`` (another database's Boss) into ``queue``
        here, from the first worker of ``queue`` on this Boss until it stops. Does nothing
        when ``source`` is this Boss. The generated worker factories call it for the
        ``delivery: at-least-once`` subscriptions of their queue."""
        if source is self or any(w.boss is source for w in self._relays.get(queue, [])):
            return
        from ..worker.relay import relay_worker

        self._relays.setdefault(queue, []).append(relay_worker(source, self, queue))

    async def relay_options(self, ids: Sequence[JobId]) -> dict[JobId, tuple[int, str | None]]:
        """The priority and singleton key of outbox jobs here, by id (for the relay)."""
        return await self._connections.with_retry(
            lambda conn: self._store.relay_job_options(conn, ids)
        )

    async def relay_write(
        self, queue: str, jobs: Sequence[tuple[JobId, str, tuple[int, str | None]]]
    ) -> int:
        """Write relayed jobs into ``queue`` here with their outbox copies' ids (idempotent:
        an id written before is skipped); for the relay."""
        return await self._connections.with_retry(
            lambda conn: self._store.relay_job_write(conn, queue, jobs)
        )

    # -- sending -----------------------------------------------------------------------------

    async def send(
        self,
        queue: str,
        data: Mapping[str, Any],
        *,
        conn: AsyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
        group_key: str | None = None,
        throttle: timedelta | None = None,
        debounce: timedelta | None = None,
        retry_limit: int | None = None,
        expire_in: timedelta | None = None,
    ) -> JobId:
        """Enqueue one job; with ``conn`` it joins that connection's transaction.

        Flow options: ``group_key`` puts the job in a group of its queue's ``group`` policy;
        ``throttle`` (with ``singleton_key``) writes at most one job per key per window, later
        sends in the window returning its id; ``debounce`` (with ``singleton_key``) starts the
        job once no send of the key came for the window, a send meanwhile replacing the
        waiting job's data (same id); ``retry_limit`` and ``expire_in`` override the queue's
        for this job.
        """
        return await self._sender.send(
            queue,
            data,
            conn=conn,
            start_after=start_after,
            priority=priority,
            singleton_key=singleton_key,
            group_key=group_key,
            throttle=throttle,
            debounce=debounce,
            retry_limit=retry_limit,
            expire_in=expire_in,
        )

    async def send_many(
        self,
        queue: str,
        data: Iterable[Mapping[str, Any]] | EncodedMany,
        *,
        conn: AsyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        group_key: str | None = None,
        retry_limit: int | None = None,
        expire_in: timedelta | None = None,
    ) -> list[JobId]:
        """Enqueue many jobs in one statement (COPY for big batches); all or nothing. With
        ``group_key`` (one group for the whole batch, in input order), ``retry_limit`` or
        ``expire_in``, one INSERT whatever the size."""
        return await self._sender.send_many(
            queue,
            data,
            conn=conn,
            start_after=start_after,
            priority=priority,
            group_key=group_key,
            retry_limit=retry_limit,
            expire_in=expire_in,
        )

    # -- jobs by id --------------------------------------------------------------------------

    async def fetch(self, queue: str, batch_size: int = 1) -> list[Job]:
        """Claim up to ``batch_size`` due jobs; finish each with ``complete`` or ``fail``.

        A fetched job is leased for the queue's ``expire_in`` (at least the Boss's lease);
        nothing heartbeats it, so one not finished by then is rescued as a failed attempt.
        A queue with limits or groups is claimed within them; a paused one returns nothing.
        """
        if await self._flow.gated(queue):
            return await self._flow.fetch(queue, batch_size)
        return await self._jobs.fetch(queue, batch_size)

    async def complete(
        self, job: JobId | Job, output: Any = None, *, conn: AsyncConn | None = None
    ) -> bool:
        """Mark an active job completed with ``output``; False if it was not active. Given the
        ``Job`` that ``fetch`` returned, only while that claim is current (fenced)."""
        return await self._jobs.complete(job, output, conn)

    async def fail(
        self, job: JobId | Job, error: str | BaseException, *, conn: AsyncConn | None = None
    ) -> bool:
        """Fail an active job's attempt: retry (with backoff) or failed plus dead letter.
        Given the ``Job`` that ``fetch`` returned, only while that claim is current."""
        return await self._jobs.fail(job, error, conn)

    async def cancel(self, job_id: JobId, *, conn: AsyncConn | None = None) -> bool:
        """Cancel a queued or active job; False if it had already finished."""
        return await self._jobs.change("cancel", job_id, conn)

    async def resume(self, job_id: JobId, *, conn: AsyncConn | None = None) -> bool:
        """Queue a cancelled job again, due now; False if it was not cancelled."""
        return await self._jobs.change("resume", job_id, conn)

    async def retry(self, job_id: JobId, *, conn: AsyncConn | None = None) -> bool:
        """Retry a failed job now; False if it was not failed. Its dead-letter copy, if it has
        not run, is settled in the same transaction, so the job runs once more, not twice."""
        return await self._operations.retry(job_id, conn)

    async def get_job(self, job_id: JobId) -> Job | None:
        """The job with this id, or None."""
        return await self._jobs.get(job_id)

    async def queue_stats(self, queue: str) -> QueueStats:
        """Counts of one queue's jobs by state, dead-lettered count and oldest waiting age."""
        [stats] = await self._jobs.stats(queue)
        return stats

    async def all_queue_stats(self) -> list[QueueStats]:
        """``queue_stats`` of every queue, by name."""
        return await self._jobs.stats(None)

    # -- workers -----------------------------------------------------------------------------

    def worker(
        self,
        queue: str,
        processor: Callable[[JobContext], Awaitable[object] | object],
        *,
        concurrency: int = 10,
        label: str | None = None,
        **options: Any,
    ) -> Worker:
        """A worker running ``processor`` inside ``process_job`` (start/finish/fail logging).

        Async processors run on the event loop; sync ones in threads of the worker's own
        (a daemon thread per running job). A sync processor cannot be interrupted: at expiry or
        shutdown its job is failed or handed back and the thread's result is ignored.
        """
        from ..worker.executor import wrapped_worker

        return wrapped_worker(
            self, queue, processor, concurrency=concurrency, label=label, **options
        )

    async def attach_worker(self, worker: Worker) -> WorkerServices:
        """Register a starting worker and return the services it runs on (the first worker
        starts them). Called by ``Worker.start()``."""
        self._connections.pool()
        async with self._services_lock:
            if self._services is None:
                dsn = self._connections.dsn
                assert dsn is not None
                services = WorkerServices(
                    self._store,
                    dsn,
                    connection_kwargs(dsn, "queues-worker"),
                    self._worker_settings,
                    on_queues=self._queues.load,
                )
                await services.start(self._connections.connect_timeout)
                services.set_observer(self._observer)
                self._services = services
        if worker not in self._workers:
            self._workers.append(worker)
        for relay in self._relays.get(worker.queue, ()):
            if not relay.running:
                await relay.start()
        return self._services

    def detach_worker(self, worker: Worker) -> None:
        """A worker stopped. Called by ``Worker.stop()``."""
        if worker in self._workers:
            self._workers.remove(worker)

    @property
    def send_connection(self) -> DedicatedConnection | None:
        """The send path's dedicated connection, or None before ``start()``. For diagnostics
        and tests."""
        return self._connections.send

    @property
    def worker_services(self) -> WorkerServices | None:
        """The machinery this Boss's workers share (pool, result writer, listener,
        maintenance), or None before the first worker starts. For diagnostics and tests."""
        return self._services

    async def run_maintenance(self, *, batch: int | None = None) -> MaintenanceResult | None:
        """Run one maintenance round now (rescue, retention in batches of ``batch`` jobs,
        default ``retention_batch``); None when another process holds the maintenance lock.
        Workers do this on their own every ``maintenance_interval``."""
        from ..worker.maintenance import Maintenance

        maintenance = Maintenance(
            self._store,
            self._connections.pool(),
            interval=self._worker_settings.maintenance_interval,
            batch=self._worker_settings.retention_batch
            if batch is None
            else positive_int("batch", batch),
            on_queues=self._queues.load,
        )
        return await maintenance.run_once()

    # -- test helpers (typed_queues.runtime.testing) --

    async def jobs_of(self, queue: str, *, event: str | None = None) -> list[JobDataRow]:
        """Every job of ``queue`` in any state (only those of ``event``, when given), oldest
        first: id, state and stored data. For tests: it reads the whole queue at once."""
        validate_queue_name(queue)
        return await self._connections.with_retry(
            lambda c: self._store.testing_jobs_of(c, queue, event)
        )

    async def make_due(self, queues: Iterable[str], *, within: timedelta | None = None) -> int:
        """Make the queued jobs of ``queues`` that are due within ``within`` from now (every
        delayed or retrying one when None) due now; returns how many. For tests."""
        names = [validate_queue_name(queue) for queue in queues]
        async with self._connections.pool().connection() as conn:
            return await self._store.testing_make_due(conn, names, within)

    # -- operations --

    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | str | None = None,
        event: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> JobPage:
        """One page of jobs (at most ``limit``, up to 1000), filtered by queue, state and
        event; pass the page's ``next`` as ``after`` for the following page (None: the last).

        Each state is read through its own index, in that index's order: running jobs
        longest running first, retries next due first, queued jobs in claim order, finished
        ones most recent first. Without ``state`` the states come in that order: active,
        retry, failed, cancelled, created, completed. ``event`` filters the rows of those
        ranges (it has no index of its own)."""
        return await self._operations.list_jobs(
            queue=queue, state=state, event=event, limit=limit, after=after
        )

    async def redrive(
        self, dead_letter_queue: str, limit: int | None = None, *, dry_run: bool = False
    ) -> RedriveReport:
        """Put the originals of the dead-letter copies waiting in ``dead_letter_queue`` (and of
        those its own handler failed) back in their queues, due now, at most ``limit``.

        Each copy is settled (completed with a note) in the same transaction as its original
        is requeued, so the job runs once more, not also as the copy; a copy a worker is
        running right now is left to it. An original that is no longer the failed job of its
        copy (retried since, or failed again with a newer copy) is not requeued again; a copy
        whose original retention deleted is left as it is. ``dry_run`` writes nothing and
        reports what would happen."""
        return await self._operations.redrive(dead_letter_queue, limit, dry_run=dry_run)

    async def purge(
        self,
        queue: str,
        state: JobState | str,
        *,
        older_than: timedelta | None = None,
        dry_run: bool = False,
    ) -> PurgeReport:
        """Delete the jobs of ``queue`` in ``state`` (finished ones whose ``completed_on``, or
        queued ones whose ``created_on``, is older than ``older_than``), in batches of 1000,
        each its own transaction. Active jobs are refused (cancel them first). ``dry_run``
        counts instead."""
        return await self._operations.purge(queue, state, older_than=older_than, dry_run=dry_run)

    async def queue_depths(self) -> list[QueueDepth]:
        """Per queue: queued jobs, those due, the oldest due one's age, and running jobs."""
        return await self._operations.queue_depths()

    def observe(self, observer: WorkerObserver | None) -> None:
        """Tell ``observer`` (e.g. ``typed_queues.runtime.metrics.PrometheusMetrics``) about
        this Boss's claims, runs, result writes and rescues; None stops it."""
        self._observer = observer
        if self._services is not None:
            self._services.set_observer(observer)

    # -- flow control --

    async def paused_queues(self) -> set[str]:
        """The names of the queues that are paused now (read from the database)."""
        rows = await self._connections.with_retry(self._store.queue_flow_list)
        return {row.name for row in rows if row.paused}

    async def pause_queue(self, name: str) -> None:
        """Pause a queue: sends are still accepted, no job of it starts any more (workers
        notice within their poll interval), jobs already running finish."""
        await self._flow.pause(name, True)

    async def resume_queue(self, name: str) -> None:
        """Resume a paused queue; its workers are notified and start jobs again."""
        await self._flow.pause(name, False)

    @property
    def flow_policies(self) -> FlowPolicies:
        """Every queue's flow policy as this process last read it (used by the workers)."""
        return self._flow.policies

    # -- dashboard --

    async def queue_overview(self, queue: str | None = None) -> list[QueueOverview]:
        """Every queue (or only ``queue``) with its jobs by state, by name, at a cost that does
        not grow with the table: each count reads at most 1000 entries of its state's index,
        and beyond that is an estimate from the statistics ANALYZE keeps, or a lower bound
        (``Count.kind``). ``all_queue_stats`` counts exactly, by reading every job."""
        from .overview import Overview

        return await Overview(self._store, self._connections).queues(queue)

    async def autovacuum_warning(self) -> str | None:
        """A warning when autovacuum does not vacuum this schema's job table (off for the
        server or the table), for ``queues status``; None when it does."""
        from .overview import Overview

        return await Overview(self._store, self._connections).autovacuum_warning()

    async def queue_activity(
        self,
        queue: str | None = None,
        *,
        oldest_due: Mapping[str, datetime | None] | None = None,
    ) -> tuple[datetime, dict[str, QueueActivity]]:
        """The database's time and, per queue with anything in the last hour, minute by minute:
        jobs completed, jobs failed or cancelled, and the age of the oldest waiting job. Reads
        the jobs of that hour only (at most 100,000 finished ones per queue). ``oldest_due``,
        from ``queue_overview``, saves one read."""
        from .overview import Overview

        return await Overview(self._store, self._connections).activity(queue, oldest_due=oldest_due)

    # -- events --

    async def subscriptions(self) -> list[SubscriptionRow]:
        """Every stored subscription: (subscribing queue, publishing domain, event)."""
        return await self._events.subscriptions()

    async def schedule(
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
    ) -> Schedule:
        """Create or replace the schedule ``name``: a job on ``queue`` at every slot of
        ``cron`` (in ``timezone``) or of ``every`` (slots counted from the Unix epoch). With
        ``event``, the job is that event's envelope with ``data`` as its payload; without,
        ``data`` is the job's data. ``catch_up`` (``latest``, ``all``, ``none``) says what
        happens to slots missed while no worker process ran. Worker processes fire it (each
        slot once, whichever gets there first); they see a new schedule within a few seconds.
        Slots before this call never fire."""
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
        await self._events.schedule(made)
        return made

    async def unschedule(self, name: str) -> bool:
        """Delete the schedule ``name``; False when there was none. A schedule declared in a
        ``QueueSpec`` comes back with the next ``create_queues``: remove it there."""
        return await self._events.unschedule(name)

    async def schedules(self) -> list[ScheduleInfo]:
        """Every schedule, by name, with its last slot and its next run."""
        return await self._events.schedules()

    async def run_schedules(self, *, now: datetime | None = None) -> SchedulerRound:
        """Run one scheduler round now: fire the slots due at ``now`` (default: the database's
        clock), each at most once whoever else fires it. Worker processes do this on their own,
        at every slot; this is for scripts and tests."""
        from ..worker.scheduler import Scheduler

        return await Scheduler(self._store, self._connections.pool()).run_once(now)

    def connection(self) -> AbstractAsyncContextManager[AsyncConn]:
        """``async with boss.connection() as conn:`` a connection of this Boss's pool (the
        one senders and handlers use), given back at the end of the block."""
        return self._connections.pool().connection()

    def job_transactions(self, hooks: TransactionHooks) -> WorkerTransactions:
        """What a worker gives its jobs' contexts for ``job.transaction()``; ``hooks`` tell
        the worker around each completing transaction. Called by ``Worker``."""
        return self._transactions.for_worker(hooks)

    # -- dashboard event search --

    async def search_event(
        self,
        event: str,
        *,
        queue: str | None = None,
        state: JobState | str | None = None,
        after: JobId | str | None = None,
        limit: int = 50,
    ) -> EventSearch:
        """The jobs of ``event`` (of ``queue`` and ``state`` when given) among the newest
        ``overview.DEFAULT_SEARCH_SCAN`` jobs of the table (older than ``after``, a page's
        ``next``), newest first, at most ``limit``. The event has no index, so the search reads
        a bounded number of jobs; ``EventSearch.bounded`` tells when older jobs were not read.
        ``list_jobs(event=...)`` reads whole state ranges instead."""
        from .operations import parse_job_id, parse_state
        from .overview import Overview

        return await Overview(self._store, self._connections).search_event(
            event,
            queue=queue,
            state=None if state is None else parse_state(state),
            after=None if after is None else parse_job_id(after),
            limit=limit,
        )
