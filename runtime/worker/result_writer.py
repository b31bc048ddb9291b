"""Buffered, fenced writes of a process's workers: completions, failures and heartbeats.

One task per Boss writes them: every completion and failure that arrived since the last write
goes out in one statement each (``UPDATE ... FROM unnest``), and every ``heartbeat_interval``
one statement extends the lease of all active jobs. Each write carries the fencing token of its
claim, so a worker that lost its lease (rescued, re-claimed elsewhere) changes nothing and logs
it. A failed write is retried with backoff until the job's lease would have run out; after that
the job is left to the rescuer (it is never lost, at worst run again). A batch the server
rejects is retried row by row, so one bad row does not hold back the others, and heartbeats go
on while results cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..db import Store
from ..jobs import JobId
from .observer import WorkerObserver

__all__ = ["LostLease", "ResultWriter"]

log = logging.getLogger("queues.worker")

AsyncPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


LostLease = Callable[[JobId], None]
"""Told that a job's lease is gone: its owner stops working on it."""


@dataclass(slots=True)
class _Lease:
    fence: int
    deadline: float  # monotonic time when the lease ends unless extended
    owner: LostLease | None


@dataclass(slots=True)
class _Done:
    id: JobId
    fence: int
    output: str | None
    deadline: float
    tag: object = None  # the observer's handle on the job's labels (metrics)


@dataclass(slots=True)
class _Failed:
    id: JobId
    fence: int
    error: str
    permanent: bool
    deadline: float
    tag: object = None


def _backoff(failures: int) -> float:
    return min(0.05 * 2.0**failures, 2.0)


def _statement_error(exc: Exception) -> bool:
    """An error the server raised for this statement (a constraint, a trigger, a bad value),
    as opposed to a lost connection or a server going down: worth retrying row by row."""
    if not isinstance(exc, psycopg.Error) or exc.sqlstate is None:
        return False
    return exc.sqlstate[:2] not in ("08", "53", "57", "58")


_Item = TypeVar("_Item", bound=_Done | _Failed)


async def _write_isolating(
    batch: list[_Item], write: Callable[[list[_Item]], Awaitable[None]]
) -> tuple[list[_Item], Exception | None]:
    """Write ``batch`` in one statement; if the server rejects it, write its items one by one
    so that one bad row (a poison output, a failing trigger) does not hold back the others.
    Returns the items not written and the error that stopped them."""
    try:
        await write(batch)
        return [], None
    except Exception as exc:
        if len(batch) == 1 or not _statement_error(exc):
            return batch, exc
        error: Exception = exc
    left: list[_Item] = []
    for index, item in enumerate(batch):
        try:
            await write([item])
        except Exception as exc:
            if not _statement_error(exc):
                return left + batch[index:], exc
            left.append(item)
    return left, (error if left else None)


class ResultWriter:
    """Writes the results and heartbeats of one process's workers (see the module doc)."""

    def __init__(
        self, pool: AsyncPool, store: Store, *, lease: timedelta, heartbeat_interval: float
    ) -> None:
        self._pool = pool
        self._store = store
        self._lease = lease
        self._lease_s = lease.total_seconds()
        self._heartbeat_interval = heartbeat_interval
        self._active: dict[JobId, _Lease] = {}
        self._lost: set[JobId] = set()
        self._done: list[_Done] = []
        self._failed: list[_Failed] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._paused: set[JobId] = set()
        #: Jobs whose completion a handler's transaction is writing (see ``hold``).
        self._holding: set[JobId] = set()
        #: Told about every write (metrics); None costs nothing.
        self.observer: WorkerObserver | None = None
        #: Called after each write of results (flow control: limited workers claim again).
        self._written_callbacks: list[Callable[[], None]] = []

    # -- called by workers -----------------------------------------------------------------

    def track(self, job_id: JobId, fence: int, owner: LostLease | None = None) -> None:
        """A job was claimed: heartbeat it until it finishes; ``owner`` is told if its lease
        turns out lost."""
        self._active[job_id] = _Lease(fence, time.monotonic() + self._lease_s, owner)

    def untrack(self, job_id: JobId) -> _Lease | None:
        # (each look-up hashes the UUID in Python: the sets are nearly always empty)
        if self._lost:
            self._lost.discard(job_id)
        if self._paused:
            self._paused.discard(job_id)
        if self._holding:
            self._holding.discard(job_id)
        return self._active.pop(job_id, None)

    def suspend_heartbeats(self, job_id: JobId) -> None:
        """Stop heartbeating one job, as if its process were frozen (a test seam)."""
        self._paused.add(job_id)

    def complete(self, job_id: JobId, fence: int, output: str | None, tag: object = None) -> None:
        lease = self.untrack(job_id)
        deadline = lease.deadline if lease else time.monotonic()
        self._done.append(_Done(job_id, fence, output, deadline, tag))
        self._signal()

    def fail(
        self, job_id: JobId, fence: int, error: str, permanent: bool, tag: object = None
    ) -> None:
        lease = self.untrack(job_id)
        deadline = lease.deadline if lease else time.monotonic()
        self._failed.append(_Failed(job_id, fence, error, permanent, deadline, tag))
        self._signal()

    def _signal(self) -> None:
        self._idle.clear()
        self._wake.set()

    @property
    def active_count(self) -> int:
        return len(self._active)

    async def heartbeat_one(self, job_id: JobId, fence: int) -> bool:
        """Extend one job's lease now; False (and a warning) if the lease was lost."""
        async with self._pool.connection() as conn:
            sent = time.monotonic()
            alive = bool(await self._store.job_heartbeat_many(conn, [job_id], [fence], self._lease))
        lease = self._active.get(job_id)
        if alive and lease is not None:
            lease.deadline = sent + self._lease_s
        elif not alive:
            self._report_lost(job_id, "heartbeat")
        return alive

    # -- the writer task -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="queues-writer")

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until everything buffered so far is written (or given up)."""
        if self._task is None or self._task.done():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("gave up waiting for buffered job results to be written")

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.flush(timeout=max(self._lease_s, 5.0))
        self._closing = True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        next_beat = time.monotonic() + self._heartbeat_interval
        failures = 0
        while True:
            if not (self._done or self._failed):
                self._idle.set()
                wait = max(0.0, next_beat - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            # Results and heartbeats fail independently: a result that cannot be written
            # must not stop the heartbeats of the other jobs (they would be rescued and run
            # again), and the other way round.
            failed = False
            if self._done or self._failed:
                try:
                    await self._write_results()
                    for written in self._written_callbacks:
                        written()
                except Exception as exc:
                    failed = True
                    self._log_failure("writing job results", exc, failures)
                    self._drop_expired()
            if time.monotonic() >= next_beat:
                try:
                    await self._heartbeat_all()
                    next_beat = time.monotonic() + self._heartbeat_interval
                except Exception as exc:
                    failed = True
                    self._log_failure("heartbeating active jobs", exc, failures)
            if not failed:
                failures = 0
                continue
            failures += 1
            # Back off, but never past the next heartbeat.
            delay = min(_backoff(failures), max(0.05, next_beat - time.monotonic()))
            await asyncio.sleep(delay)

    @staticmethod
    def _log_failure(what: str, exc: Exception, failures: int) -> None:
        log.warning(
            "%s failed (%s: %s); retrying in up to %.2fs",
            what,
            type(exc).__name__,
            exc,
            _backoff(failures + 1),
        )

    def _drop_expired(self) -> None:
        now = time.monotonic()
        items: list[_Done | _Failed] = [*self._done, *self._failed]
        expired = [item for item in items if item.deadline <= now]
        if not expired:
            return
        for item in expired:
            log.warning(
                "giving up writing the result of job %s: its lease has run out, so the "
                "rescuer will retry it",
                item.id,
                extra={"job_id": str(item.id)},
            )
        self._done = [item for item in self._done if item.deadline > now]
        self._failed = [item for item in self._failed if item.deadline > now]

    async def _write_results(self) -> None:
        """Write everything buffered; what could not be written stays buffered and the first
        error is raised."""
        error: Exception | None = None
        if self._done:
            done, self._done = self._done, []
            try:
                left_done, error = await _write_isolating(done, self._write_done)
            except BaseException:
                self._done[:0] = done
                raise
            self._done[:0] = left_done
        if self._failed:
            failed, self._failed = self._failed, []
            try:
                left_failed, failed_error = await _write_isolating(failed, self._write_failed)
            except BaseException:
                self._failed[:0] = failed
                raise
            self._failed[:0] = left_failed
            error = error or failed_error
        if error is not None:
            raise error

    async def _write_done(self, batch: list[_Done]) -> None:
        conn = await self._pool.getconn()
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        try:
            written = await self._store.job_complete_many(
                conn,
                [item.id for item in batch],
                [item.fence for item in batch],
                [item.output for item in batch],
            )
        finally:
            await self._pool.putconn(conn)
        if observer is not None:
            observer.completions_written(
                [item.tag for item in batch if item.id in written], time.perf_counter() - started
            )
        if len(written) < len(batch):
            self._report_unwritten(batch, written, "completion")

    async def _write_failed(self, batch: list[_Failed]) -> None:
        conn = await self._pool.getconn()
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        try:
            failed = await self._store.job_fail_many(
                conn,
                [item.id for item in batch],
                [item.fence for item in batch],
                [item.error for item in batch],
                [item.permanent for item in batch],
            )
        finally:
            await self._pool.putconn(conn)
        if observer is not None:
            tags = {item.id: item.tag for item in batch}
            observer.failures_written(
                [(tags[row.id], row.new_state, row.dead_letter_id is not None) for row in failed],
                time.perf_counter() - started,
            )
        written = {row.id for row in failed}
        if len(written) < len(batch):
            self._report_unwritten(batch, written, "failure")

    def _report_unwritten(
        self, batch: Sequence[_Done | _Failed], written: set[JobId], what: str
    ) -> None:
        for item in batch:
            if item.id not in written:
                self._report_lost(item.id, what)

    async def _heartbeat_all(self) -> None:
        leases = [
            (job_id, lease)
            for job_id, lease in self._active.items()
            if job_id not in self._paused
            and job_id not in self._lost
            and job_id not in self._holding
        ]
        if not leases:
            return
        async with self._pool.connection() as conn:
            sent = time.monotonic()
            alive = await self._store.job_heartbeat_many(
                conn,
                [job_id for job_id, _ in leases],
                [lease.fence for _, lease in leases],
                self._lease,
            )
        for job_id, lease in leases:
            if job_id in alive:
                lease.deadline = sent + self._lease_s
            elif job_id in self._active:
                self._report_lost(job_id, "heartbeat")

    def _report_lost(self, job_id: JobId, what: str) -> None:
        if job_id in self._lost or job_id in self._holding:
            return
        lease = self._active.get(job_id)
        if lease is not None:
            self._lost.add(job_id)
        log.warning(
            "lost the lease of job %s: its %s changed nothing (the job was rescued, cancelled "
            "or re-claimed by another worker, whose result stands)",
            job_id,
            what,
            extra={"job_id": str(job_id)},
        )
        if lease is not None and lease.owner is not None:
            lease.owner(job_id)

    # -- flow control --

    def on_written(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every write of results from now on (until ``remove``d)."""
        if callback not in self._written_callbacks:
            self._written_callbacks.append(callback)

    def remove_on_written(self, callback: Callable[[], None]) -> None:
        if callback in self._written_callbacks:
            self._written_callbacks.remove(callback)

    # -- transactional handlers --

    def hold(self, job_id: JobId) -> None:
        """A handler's transaction is writing the job's completion: stop heartbeating it, and
        ignore a heartbeat that finds it gone (it waited on the row, then saw it completed)."""
        self._holding.add(job_id)

    def release(self, job_id: JobId) -> None:
        """The handler's transaction did not commit: the job is heartbeated again."""
        self._holding.discard(job_id)
