"""The ``Boss``: one process's handle on the queue (pool, sends, finishing jobs, workers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import psycopg
from psycopg_pool import AsyncConnectionPool

from ._finish import JobOps
from ._handle import EnqueuedJob, QueueHandle
from ._ident import validate_queue_name
from ._kept import KeptConnection
from ._migrate import CODE_VERSION, migrate_async, verify_async
from ._options import Duration, connection_kwargs, positive_int, seconds
from ._queues import QueueCache, QueueInfo
from ._send import Coalescer
from ._sending import SendOps
from ._sql import queries_for
from .config import resolve_dsn
from .errors import ConfigurationError, UnknownQueueError
from .jobs import JobContext
from .policy import QueueSpec
from .worker import Worker, wrapped_worker

if TYPE_CHECKING:
    from ._runtime import WorkerRuntime

__all__ = ["Boss", "EnqueuedJob", "QueueHandle"]

log = logging.getLogger("queues")

AsyncConn = psycopg.AsyncConnection[Any]


class Boss(SendOps, JobOps):
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
    ) -> None:
        self._q = queries_for(schema)  # validates the schema name (ValidationError)
        self.schema = schema
        self.source = source
        self._dsn = dsn
        self._max_pool_size = positive_int("max_pool_size", max_pool_size)
        self._max_payload = positive_int("max_payload_bytes", max_payload_bytes)
        self.lease = timedelta(seconds=seconds("lease", lease))
        self.listen = bool(listen)
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.heartbeat_interval = (
            self.lease.total_seconds() / 3
            if heartbeat_interval is None
            else seconds("heartbeat_interval", heartbeat_interval)
        )
        self.maintenance = bool(maintenance)
        self.maintenance_interval = seconds("maintenance_interval", maintenance_interval)
        self.worker_pool_size = positive_int("worker_pool_size", worker_pool_size)
        self.retention_batch = positive_int("retention_batch", retention_batch)
        self._copy_threshold = positive_int("copy_threshold", copy_threshold)
        self._connect_timeout = seconds("connect_timeout", connect_timeout)
        self._prepare = bool(prepare)
        self._pool: AsyncConnectionPool[AsyncConn] | None = None
        self._kept_send: KeptConnection | None = None
        self._conninfo: str | None = None
        self._queues = QueueCache()
        self._sender = Coalescer(
            self._write_rows,
            max_batch=positive_int("send_batch_size", send_batch_size),
            max_inflight=positive_int("send_concurrency", send_concurrency),
        )
        self._runtime: WorkerRuntime | None = None
        self._runtime_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._workers: list[Worker] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, migrate: bool = True) -> None:
        """Open the pool and migrate the schema (or, with ``migrate=False``, check it)."""
        async with self._start_lock:
            if self._pool is None:
                await self._open(migrate)

    async def _open(self, migrate: bool) -> None:
        dsn = self._resolve_dsn()
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=self._max_pool_size,
            kwargs=connection_kwargs(dsn, "queues"),
            open=False,
            name=f"queues-{self.schema}",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            async with pool.connection() as conn:
                if migrate:
                    await migrate_async(conn, self._q)
                    version = CODE_VERSION
                else:
                    version = await verify_async(conn, self._q)
                if version < CODE_VERSION:
                    log.warning(
                        'schema "%s" is at version %d, this code needs %d: run `queues migrate` '
                        "(or start with migrate=True) before sending or working",
                        self.schema,
                        version,
                        CODE_VERSION,
                    )
                if version:
                    await self._queues.refresh(conn, self._q)
        except BaseException:
            await pool.close()
            raise
        self._pool, self._conninfo = pool, dsn
        self._kept_send = KeptConnection(dsn, connection_kwargs(dsn, "queues"))

    async def stop(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop this Boss's workers (graceful, up to ``timeout`` each), then close the pool."""
        if self._pool is None:
            return
        workers = list(self._workers)
        results = await asyncio.gather(
            *(worker.stop(timeout=timeout) for worker in workers), return_exceptions=True
        )
        for worker, result in zip(workers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("stopping worker %s failed: %r", worker.label, result)
        if self._runtime is not None:
            runtime, self._runtime = self._runtime, None
            await runtime.stop()
        await self._sender.drain()
        pool, self._pool = self._pool, None
        if self._kept_send is not None:
            kept, self._kept_send = self._kept_send, None
            await kept.close()
        await pool.close()

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
        return self._pool is not None

    async def migrate(self) -> None:
        """Apply missing migrations (safe to run from many processes at once)."""
        if self._pool is not None:
            async with self._pool.connection() as conn:
                await migrate_async(conn, self._q)
                await self._queues.refresh(conn, self._q)
            return
        dsn = self._resolve_dsn()
        async with await psycopg.AsyncConnection.connect(
            dsn, **connection_kwargs(dsn, "queues-migrate")
        ) as conn:
            await migrate_async(conn, self._q)

    def _resolve_dsn(self) -> str:
        dsn = resolve_dsn(self._dsn)
        if dsn is None:
            raise ConfigurationError(
                "no database configured: pass Boss(dsn=...) or set QUEUES_DSN or DATABASE_URL"
            )
        return dsn

    def _pool_or_fail(self) -> AsyncConnectionPool[AsyncConn]:
        if self._pool is None:
            raise ConfigurationError(
                "the Boss is not started: `await boss.start()` first "
                "(or use `async with Boss(...) as boss`)"
            )
        return self._pool

    # -- queues ------------------------------------------------------------------------------

    async def create_queue(self, spec: QueueSpec) -> None:
        """Create a queue or update its policy."""
        if not isinstance(spec, QueueSpec):
            raise TypeError(f"create_queue takes a QueueSpec, got {spec!r}")
        async with self._pool_or_fail().connection() as conn:
            await conn.execute(self._q["create_queue"], spec.to_params())
        self._queues.put(QueueInfo.from_spec(spec))

    async def create_queues(self, specs: Iterable[QueueSpec]) -> None:
        """Create or update several queues in one transaction."""
        specs = list(specs)
        for spec in specs:
            if not isinstance(spec, QueueSpec):
                raise TypeError(f"create_queues takes QueueSpecs, got {spec!r}")
        async with self._pool_or_fail().connection() as conn, conn.transaction():
            for spec in specs:
                await conn.execute(self._q["create_queue"], spec.to_params())
        for spec in specs:
            self._queues.put(QueueInfo.from_spec(spec))

    async def _queue_info(self, queue: str) -> QueueInfo:
        """The cached policy of ``queue``; the cache is refreshed once on a miss."""
        info = self._queues.get(queue)
        if info is not None:
            return info
        validate_queue_name(queue)
        pool = self._pool_or_fail()
        await self._queues.refresh_pool(pool, self._q)
        info = self._queues.get(queue)
        if info is None:
            raise UnknownQueueError(queue, self.schema)
        return info

    def queue(self, name: str) -> QueueHandle:
        """An untyped handle on one queue (``enqueue(data)`` returns the id and the data)."""
        return QueueHandle(self, validate_queue_name(name))

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
        return wrapped_worker(
            self, queue, processor, concurrency=concurrency, label=label, **options
        )

    async def _attach(self, worker: Worker) -> WorkerRuntime:
        """Register a starting worker; the first one starts the worker machinery."""
        from ._runtime import WorkerRuntime

        self._pool_or_fail()
        async with self._runtime_lock:
            if self._runtime is None:
                assert self._conninfo is not None
                runtime = WorkerRuntime(
                    self, self._conninfo, connection_kwargs(self._conninfo, "queues-worker")
                )
                await runtime.start(self._connect_timeout)
                self._runtime = runtime
        if worker not in self._workers:
            self._workers.append(worker)
        return self._runtime

    def _detach(self, worker: Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
