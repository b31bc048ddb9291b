"""The ``Worker``: claims jobs of one queue and runs a processor on each, concurrently.

It claims with ``FOR UPDATE SKIP LOCKED`` in batches sized to its free slots, plus, while the
handlers are fast, the jobs they finish in about 50 ms (claimed ahead, so that fast jobs share
claims and commits; the next claim runs while the held jobs start). It runs up to
``concurrency`` processors at once, hands results to the Boss's batched writer, and sleeps
until a notification or the poll interval when the queue is empty. ``stop()`` stops claiming,
lets running jobs finish up to a grace period, then cancels the rest and hands them back.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._ident import validate_queue_name
from ._options import Duration, positive_int, seconds
from ._payload import encode_output, error_document
from ._signal import Signal
from ._threads import DaemonThreads
from .errors import ConfigurationError, PermanentJobError
from .jobs import JobContext, JobId, process_job

if TYPE_CHECKING:
    from ._runtime import WorkerRuntime
    from .client import Boss

__all__ = ["Worker", "start_workers", "wrapped_worker"]

log = logging.getLogger("queues.worker")

Processor = Callable[[JobContext], Awaitable[object]]

#: Seconds a job claimed ahead may wait for a free slot before it goes back to the queue.
_AHEAD_HOLD_S = 1.0
#: How long, at the rate the handlers finish, the jobs claimed ahead should last: the depth
#: of claim-ahead follows the handlers' speed (more jobs per claim and per commit for fast
#: handlers), while no job waits in the worker for much longer than this.
_AHEAD_BUDGET_S = 0.05
#: Most jobs claimed ahead of the free slots, however fast the handlers are.
_AHEAD_MAX = 500


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None] | None
    fence: int
    started: float  # monotonic
    #: The job's outcome was decided without the handler (expired, or handed back at stop):
    #: whatever the handler still does is ignored.
    settled: bool = False


class Worker:
    """Processes the jobs of one queue with ``processor`` (an async function of a JobContext)."""

    queue: str

    def __init__(
        self,
        boss: Boss,
        queue: str,
        processor: Processor,
        *,
        concurrency: int = 10,
        label: str | None = None,
        batch_size: int | None = None,
        poll_interval: Duration | None = None,
        shutdown_grace: Duration = timedelta(seconds=30),
    ) -> None:
        self.queue = validate_queue_name(queue)
        self.concurrency = positive_int("concurrency", concurrency)
        self.label = label or queue
        #: Most jobs claimed at once (default: the free slots, plus up to ``concurrency``
        #: claimed ahead while the handlers finish faster than a claim takes).
        self.batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
        self.poll_interval = (
            boss.poll_interval if poll_interval is None else seconds("poll_interval", poll_interval)
        )
        self.shutdown_grace = seconds("shutdown_grace", shutdown_grace, allow_zero=True)
        self.boss = boss
        self._boss = boss
        self._processor = processor
        self._executor: DaemonThreads | None = None
        self._runtime: WorkerRuntime | None = None
        self._running: dict[JobId, _Running] = {}
        #: Claimed (leased, heartbeated) jobs waiting for a free slot; see ``_claim_loop``.
        self._ready: deque[tuple[Any, ...]] = deque()
        self._ahead = 0
        #: How long a job takes from start to finish, smoothed (None until one finished).
        self._job_s: float | None = None
        #: The last claim returned fewer jobs than asked: the queue is drained for now.
        self._drained = False
        self._wake = Signal()
        self._slot = Signal()
        self._hurry = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_called = False
        self._stopped = asyncio.Event()
        self._expire_s = 0.0

    def __repr__(self) -> str:
        return f"Worker({self.label!r}, queue={self.queue!r}, concurrency={self.concurrency})"

    @property
    def running(self) -> bool:
        """True between ``start()`` and the end of ``stop()``."""
        return self._loop_task is not None and not self._stopped.is_set()

    @property
    def active_jobs(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        """Start processing in the background; returns once the worker runs."""
        if self._loop_task is not None:
            if self._stopping:
                raise ConfigurationError(f"worker {self.label!r} was stopped; make a new one")
            return
        info = await self._boss._queue_info(self.queue)
        self._expire_s = info.expire_in.total_seconds()
        self._runtime = await self._boss._attach(self)
        self._runtime.subscribe(self.queue, self._wake)
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._claim_loop(), name=f"queues-worker:{self.label}")
        self._sweeper = loop.create_task(self._expire_loop(), name=f"queues-expiry:{self.label}")

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        runtime = self._runtime
        assert runtime is not None
        failures = 0
        while not self._stopping:
            self._start_ready(runtime)
            held = len(self._ready)
            # Claim ahead: besides the free slots, hold as many jobs as the handlers finish in
            # about _AHEAD_BUDGET_S (none for slow handlers), so fast jobs share claims and
            # commits. The next claim goes out when half of them are started, and runs while
            # the rest do; after a claim that drained the queue, only once all are started.
            want = self.concurrency - len(self._running) + self._ahead - held
            if self.batch_size is not None:
                want = min(want, self.batch_size)
            if want <= 0 or (held and (self._drained or held > self._ahead // 2)):
                self._slot.clear()
                if not held:
                    await self._slot.wait()
                elif not await self._slot.wait(_AHEAD_HOLD_S):
                    # The handlers got slow: give the jobs claimed ahead back to the queue
                    # (no attempt used) for other workers rather than hold them.
                    self._ahead = 0
                    await self._return_ready()
                continue
            self._wake.clear()
            try:
                rows = await runtime.claim(self.queue, want)
            except Exception as exc:
                failures += 1
                delay = min(0.05 * 2**failures, 2.0)
                log.warning(
                    "worker %s: claiming failed (%s: %s); retrying in %.2fs",
                    self.label,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self._pause(delay)
                continue
            failures = 0
            if self._stopping:
                # A stop began while this claim was in flight: give the jobs back unstarted
                # (no attempt used) rather than start them after the stop signal.
                if rows:
                    await runtime.hand_back([(row[0], row[1]) for row in rows])
                break
            track = runtime.writer.track
            for row in rows:
                track(row[0], row[1])
            self._ready.extend(rows)
            self._start_ready(runtime)
            self._drained = len(rows) < want
            if self._drained:
                self._ahead = 0
                if not self._ready:  # (jobs still waiting for a slot start first)
                    await self._pause(self.poll_interval)
            else:
                self._ahead = min(self._ahead_limit(), 2 * self._ahead or self.concurrency)

    def _ahead_limit(self) -> int:
        """Jobs to hold beyond the free slots: as many as the handlers finish in
        ``_AHEAD_BUDGET_S``, up to ``_AHEAD_MAX``."""
        if self._job_s is None:
            return 0
        finished_per_s = self.concurrency / max(self._job_s, 1e-6)
        return min(_AHEAD_MAX, int(finished_per_s * _AHEAD_BUDGET_S))

    def _start_ready(self, runtime: WorkerRuntime) -> None:
        ready = self._ready
        while ready and len(self._running) < self.concurrency:
            self._launch(runtime, ready.popleft())

    async def _pause(self, delay: float) -> None:
        """Sleep until woken (a notification, a stop) or ``delay`` passes."""
        if self._stopping:
            return
        await self._wake.wait(delay)

    def _launch(self, runtime: WorkerRuntime, row: tuple[Any, ...]) -> None:
        job_id: JobId = row[0]
        fence: int = row[1]
        writer = runtime.writer

        async def heartbeat() -> None:
            await writer.heartbeat_one(job_id, fence)

        ctx = JobContext(
            job_id, self.queue, row[3], attempt=row[2] + 1, fence=fence, heartbeat=heartbeat
        )
        running = _Running(None, fence, time.monotonic())
        self._running[job_id] = running
        running.task = asyncio.get_running_loop().create_task(self._execute(ctx, running))

    async def _expire_loop(self) -> None:
        """Fail and cancel attempts running longer than the queue's ``expire_in`` (one timer
        for all jobs). The failure is recorded at once, even if the handler ignores the
        cancellation (or is a sync function stuck in its thread)."""
        runtime = self._runtime
        assert runtime is not None
        every = min(1.0, max(0.02, self._expire_s / 10))
        error = error_document(
            f"the attempt ran longer than expire_in ({self._expire_s:g}s) and was cancelled",
            kind="JobExpired",
        )
        while not self._stopping:
            await asyncio.sleep(every)
            limit = time.monotonic() - self._expire_s
            for job_id, running in list(self._running.items()):
                if running.started <= limit and not running.settled and running.task is not None:
                    running.settled = True
                    runtime.writer.fail(job_id, running.fence, error, False)
                    running.task.cancel()

    def _lease_lost(self, job_id: JobId) -> None:
        """The job's lease is gone (rescued after a stall, cancelled, or claimed again by
        another worker): stop working on it. Its handler is cancelled (a sync handler's thread
        runs on, but its result is ignored) and nothing is written for it."""
        running = self._running.get(job_id)
        if running is not None:
            if running.settled or running.task is None:
                return
            running.settled = True
            running.task.cancel()
        elif any(row[0] == job_id for row in self._ready):
            self._ready = deque(row for row in self._ready if row[0] != job_id)
        else:
            return
        if self._runtime is not None:
            self._runtime.writer.untrack(job_id)
        log.warning(
            "worker %s: stopped job %s: its lease was lost, so another worker may run it",
            self.label,
            job_id,
            extra={"job_id": str(job_id)},
        )

    async def _execute(self, ctx: JobContext, running: _Running) -> None:
        runtime = self._runtime
        assert runtime is not None
        try:
            result = await self._processor(ctx)
        except BaseException as exc:  # nothing a handler does may kill the worker
            if not running.settled:
                permanent = isinstance(exc, PermanentJobError)
                runtime.writer.fail(ctx.id, running.fence, error_document(exc), permanent)
        else:
            if not running.settled:
                runtime.writer.complete(ctx.id, running.fence, encode_output(result))
        finally:
            self._running.pop(ctx.id, None)
            took = time.monotonic() - running.started
            self._job_s = took if self._job_s is None else 0.9 * self._job_s + 0.1 * took
            if self._ready and not self._stopping:  # the next held job takes the slot now
                self._launch(runtime, self._ready.popleft())
            self._slot.set()

    # -- stopping ----------------------------------------------------------------------------

    def stop_claiming(self) -> None:
        """Claim no more jobs, from now on (synchronous: safe in a signal handler). Jobs that
        a claim in flight returns are handed back unstarted; ``stop()`` does the rest."""
        self._stopping = True
        self._wake.set()
        self._slot.set()

    async def stop(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop claiming, let running jobs finish for up to ``timeout`` seconds (default
        ``shutdown_grace``), then cancel the rest and hand them back without using an attempt.

        Calling it again while a stop is under way cuts the grace period short.
        """
        if self._loop_task is None:
            return
        if self._stop_called:
            self._hurry.set()
            await self._stopped.wait()
            return
        grace = self.shutdown_grace if timeout is None else max(0.0, float(timeout))
        self._stop_called = True
        self.stop_claiming()
        await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
        try:
            await self._drain(grace)
        finally:
            runtime = self._runtime
            if runtime is not None:
                runtime.unsubscribe(self.queue, self._wake)
                await runtime.writer.flush(timeout=max(grace, 5.0))
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._boss._detach(self)
            self._stopped.set()

    async def _return_ready(self) -> None:
        """Give back the claimed jobs that never started (no attempt used)."""
        if not self._ready:
            return
        runtime = self._runtime
        assert runtime is not None
        rows, self._ready = list(self._ready), deque()
        for row in rows:
            runtime.writer.untrack(row[0])
        await runtime.hand_back([(row[0], row[1]) for row in rows])

    async def _drain(self, grace: float) -> None:
        await self._return_ready()
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            hurry: asyncio.Future[Any] = asyncio.ensure_future(self._hurry.wait())
            try:
                deadline = time.monotonic() + grace
                pending: set[asyncio.Future[Any]] = set(tasks)
                while pending and not self._hurry.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    _, pending = await asyncio.wait(
                        pending | {hurry}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                    )
                    pending.discard(hurry)
            finally:
                hurry.cancel()
        leftovers = [
            (job_id, r)
            for job_id, r in self._running.items()
            if r.task is not None and not r.settled  # (an expired one's failure stands)
        ]
        if not leftovers:
            return
        runtime = self._runtime
        assert runtime is not None
        for job_id, running in leftovers:
            running.settled = True
            runtime.writer.untrack(job_id)
            assert running.task is not None
            running.task.cancel()
        returned = await runtime.hand_back([(job_id, r.fence) for job_id, r in leftovers])
        log.info(
            "worker %s: handed back %d unfinished jobs after %.1fs grace",
            self.label,
            returned,
            grace,
        )
        unwinding = [r.task for _, r in leftovers if r.task is not None]
        await asyncio.wait(unwinding, timeout=1.0)


async def start_workers(*workers: Worker) -> None:
    """Start every worker; log once that all run. On a failure, stop the ones already started
    and re-raise the error with a note naming the worker that failed."""
    started: list[Worker] = []
    for worker in workers:
        try:
            await worker.start()
        except BaseException as exc:
            log.error("worker %s (queue %s) failed to start: %s", worker.label, worker.queue, exc)
            for other in reversed(started):
                try:
                    await other.stop(timeout=0)
                except Exception as stop_error:
                    log.error("stopping worker %s failed: %r", other.label, stop_error)
            exc.add_note(
                f"while starting worker {worker.label!r} (queue {worker.queue!r}); "
                f"the {len(started)} workers started before it were stopped"
            )
            raise
        started.append(worker)
    log.info(
        "%d workers running: %s",
        len(started),
        ", ".join(f"{w.label} (concurrency {w.concurrency})" for w in started),
    )


def wrapped_worker(
    boss: Boss,
    queue: str,
    processor: Callable[[JobContext], Awaitable[object] | object],
    *,
    concurrency: int = 10,
    label: str | None = None,
    **options: Any,
) -> Worker:
    """``Boss.worker``: a Worker whose processor runs inside ``process_job``; sync processors
    run in threads of their own (daemon threads: one still running after its job was handed
    back or expired does not keep the process alive)."""
    name = label or queue
    is_async = inspect.iscoroutinefunction(processor) or inspect.iscoroutinefunction(
        getattr(processor, "__call__", None)  # noqa: B004 - async callable objects
    )
    executor = None if is_async else DaemonThreads(f"queues-{name}")

    async def run(ctx: JobContext) -> object:
        if executor is None:
            return await process_job(ctx, lambda: _awaited(processor(ctx)), label=name)
        loop = asyncio.get_running_loop()
        return await process_job(
            ctx, lambda: _awaited(loop.run_in_executor(executor, processor, ctx)), label=name
        )

    built = Worker(boss, queue, run, concurrency=concurrency, label=name, **options)
    built._executor = executor
    return built


async def _awaited(value: object) -> object:
    """Await ``value`` if it is awaitable (a sync processor may return a coroutine)."""
    while inspect.isawaitable(value):
        value = await value
    return value
