"""The ``Worker``: claims jobs of one queue and runs a processor on each, concurrently.

It claims with ``FOR UPDATE SKIP LOCKED`` in batches that ``ClaimAhead`` sizes (the free
slots, plus jobs claimed ahead while the handlers are fast), runs up to ``concurrency``
processors at once, hands results to the shared ``ResultWriter``, and sleeps until a
notification or the poll interval when the queue is empty. ``stop()`` stops claiming, lets
running jobs finish up to a grace period, then cancels the rest and hands them back.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from ..db import ClaimedJob
from ..db.encoding import encode_output, error_document
from ..db.identifiers import validate_queue_name
from ..errors import ConfigurationError, PermanentJobError, Snooze
from ..jobs import JobContext, JobId, JobTransactions
from ..options import Duration, positive_int, seconds
from ..tracing import job_tracer, run_in_span
from .claim_ahead import ClaimAhead
from .claim_cursor import ClaimCursor
from .flow import FlowGate, own_expiry_error, snooze_job
from .result_writer import ResultWriter
from .services import WorkerServices
from .transaction_hooks import WriterHooks
from .wakeup import Signal

if TYPE_CHECKING:
    from ..client.boss import Boss

__all__ = ["Worker", "start_workers"]

log = logging.getLogger("queues.worker")

Processor = Callable[[JobContext], Awaitable[object]]

#: Seconds a job claimed ahead may wait for a free slot before it goes back to the queue.
_AHEAD_HOLD_S = 1.0
#: Jobs a runner runs in a row, and seconds, before it lets the event loop run (claims,
#: writes, heartbeats): handlers that never await would otherwise hold the loop together.
_BURST: Final = 32
_BURST_S: Final = 0.002


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None] | None
    fence: int
    started: float  # monotonic
    ctx: JobContext
    #: The job's outcome was decided without the handler (expired, lease lost, or handed back
    #: at stop): whatever the handler still does is ignored.
    settled: bool = False
    #: The job's own expire_in in seconds (``send(expire_in=...)``); 0: the queue's.
    expire_s: float = 0.0

    def settle(self) -> None:
        """Decide the outcome without the handler, and tell the handler (``job.cancelled``)."""
        self.settled = True
        self.ctx.mark_cancelled()


@types.coroutine
def _resume(
    coro: Coroutine[Any, Any, None], context: contextvars.Context, awaited: Any
) -> Generator[Any, Any, None]:
    """Drive ``coro``, whose first step ran in ``context`` and is waiting on ``awaited``, to
    its end on the task that awaits this: what the task sends or throws goes to ``coro``, each
    step in ``context`` (the job's own copy of the context variables), as if ``coro`` were
    that task's own coroutine."""
    run = context.run
    while True:
        try:
            sent = yield awaited
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown in by the task: a cancellation, mostly
            try:
                awaited = run(coro.throw, exc)
            except StopIteration:
                return
        else:
            try:
                awaited = run(coro.send, sent)
            except StopIteration:
                return


class _WorkerJob(JobContext):
    """The ``JobContext`` a worker's handlers get: ``heartbeat()`` goes straight to the result
    writer (no closure made per job)."""

    __slots__ = ("_writer",)

    def __init__(
        self, writer: ResultWriter, job: ClaimedJob, queue: str, tx: JobTransactions | None
    ):
        super().__init__(
            job.id, queue, job.data, attempt=job.retry_count + 1, fence=job.fence, transactions=tx
        )
        self._writer = writer

    async def heartbeat(self) -> None:
        await self._writer.heartbeat_one(self.id, self.fence)


class Worker:
    """Processes the jobs of one queue with ``processor`` (an async function of a JobContext).

    A processor that has a ``close()`` method is closed when the worker stops.
    """

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
        self._processor = processor
        self._services: WorkerServices | None = None
        self._running: dict[JobId, _Running] = {}
        #: Runner tasks (see ``_run_ready``), and how many of them are free (not tied to a
        #: job that awaits).
        self._runners: set[asyncio.Task[None]] = set()
        self._free_runners = 0
        #: Jobs launched (running, in a slot) that a runner has not started yet.
        self._starting: deque[_Running] = deque()
        self._runner_name = f"queues-runner:{self.label}"
        #: Claimed (leased, heartbeated) jobs waiting for a free slot; see ``_claim_loop``.
        self._ready: deque[ClaimedJob] = deque()
        self._policy = ClaimAhead(self.concurrency, self.batch_size)
        self._wake = Signal()
        self._slot = Signal()
        self._hurry = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_called = False
        self._stopped = asyncio.Event()
        self._expire_s = 0.0
        #: How often the expiry timer looks at jobs with an expire_in of their own.
        self._own_expiry_tick = float("inf")
        self._flow = FlowGate(boss.flow_policies, self.queue, self._wake)
        #: What this worker's jobs open ``job.transaction()`` with (set by ``start``).
        self._transactions: JobTransactions | None = None

    def __repr__(self) -> str:
        return f"Worker({self.label!r}, queue={self.queue!r}, concurrency={self.concurrency})"

    @property
    def running(self) -> bool:
        """True between ``start()`` and the end of ``stop()``."""
        return self._loop_task is not None and not self._stopped.is_set()

    @property
    def active_jobs(self) -> int:
        """Jobs whose handler is running now."""
        return len(self._running)

    @property
    def held_jobs(self) -> int:
        """Jobs claimed ahead of a free slot, leased and waiting to start."""
        return len(self._ready)

    async def start(self) -> None:
        """Start processing in the background; returns once the worker runs."""
        if self._loop_task is not None:
            if self._stopping:
                raise ConfigurationError(f"worker {self.label!r} was stopped; make a new one")
            return
        info = await self.boss.queue_info(self.queue)
        self._expire_s = info.expire_in.total_seconds()
        self._services = await self.boss.attach_worker(self)
        self._transactions = self._transactions_of(self._services)
        self._services.subscribe(self.queue, self._wake)
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._claim_loop(), name=f"queues-worker:{self.label}")
        self._sweeper = loop.create_task(self._expire_loop(), name=f"queues-expiry:{self.label}")

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        services = self._services
        assert services is not None
        policy = self._policy
        # Claims start past the last job claimed, and from the start now and then.
        position = ClaimCursor()
        failures = 0
        while not self._stopping:
            self._start_ready(services)
            held = len(self._ready)
            want = self._flow.room(
                policy.want(len(self._running), held), self.concurrency - len(self._running) - held
            )
            if want <= 0:
                self._slot.clear()
                if not held:
                    await self._slot.wait()
                elif not await self._slot.wait(_AHEAD_HOLD_S):
                    # The handlers got slow: give the jobs claimed ahead back to the queue
                    # (no attempt used) for other workers rather than hold them.
                    policy.handlers_slow()
                    await self._return_ready()
                continue
            self._wake.clear()
            try:
                claimed = await self._flow.claim(services, want, self.poll_interval, position)
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
                if claimed:
                    await services.hand_back([(job.id, job.fence) for job in claimed])
                break
            track = services.writer.track
            for job in claimed:
                track(job.id, job.fence, self._lease_lost)
            self._ready.extend(claimed)
            self._start_ready(services)
            policy.claimed(want, len(claimed))
            if policy.drained and not self._ready:  # (jobs still waiting start first)
                idle = self._flow.idle_wait(self.poll_interval)
                await self._pause(min(idle, position.due_in(time.monotonic())))

    def _start_ready(self, services: WorkerServices) -> None:
        """Start held jobs while there are free slots: each becomes running now (``_launch``)
        and a free runner (``_run_ready``) runs it next."""
        ready = self._ready
        while ready and not self._stopping and len(self._running) < self.concurrency:
            self._starting.append(self._launch(services, ready.popleft()))
        if self._starting and not self._free_runners:
            self._free_runners += 1
            task = asyncio.get_running_loop().create_task(
                self._run_ready(services), name=self._runner_name
            )
            self._runners.add(task)  # (a reference until it ends: it removes itself)

    def _next_job(self, services: WorkerServices) -> _Running | None:
        """The next job a runner runs: one launched for it, else a held one if a slot is free."""
        if self._starting:
            return self._starting.popleft()
        if self._ready and not self._stopping and len(self._running) < self.concurrency:
            return self._launch(services, self._ready.popleft())
        return None

    async def _run_ready(self, services: WorkerServices) -> None:
        """A runner: runs the launched jobs, then held ones while slots are free, one after
        another.

        A job's first step runs here, in a copy of the context of its own; a job that finishes
        in it (a handler that never waits) costs no task of its own. A job that awaits keeps
        this task as its own until it ends (the task its lease loss, expiry or stop cancels,
        and what ``asyncio.current_task()`` was from its start), while a new runner goes on
        with the other jobs; then this one ends (no later job shares a task with a job that
        awaited, or with what it left keyed by its task).
        """
        task = asyncio.current_task()
        try:
            burst = 0
            since = time.monotonic()
            try:
                while (running := self._next_job(services)) is not None:
                    if running.settled:  # given up before it started (lease lost, stop)
                        self._running.pop(running.ctx.id, None)
                        self._slot.set()
                        continue
                    coro = self._execute(running.ctx, running)
                    context = contextvars.copy_context()
                    try:
                        awaited = context.run(coro.send, None)
                    except StopIteration:
                        burst += 1
                        if burst == _BURST or time.monotonic() - since >= _BURST_S:
                            await asyncio.sleep(0)  # let claims, writes and heartbeats run
                            burst, since = 0, time.monotonic()
                        continue
                    except Exception:  # (_execute handles the handler's errors: a bug of ours)
                        log.exception("worker %s: running a job failed", self.label)
                        continue
                    running.task = task
                    break
                else:
                    return
            finally:
                self._free_runners -= 1
            self._start_ready(services)  # another runner for the other jobs
            await _resume(coro, context, awaited)
            self._start_ready(services)  # (a slot is free)
        finally:
            self._runners.discard(task)

    async def _pause(self, delay: float) -> None:
        """Sleep until woken (a notification, a stop) or ``delay`` passes."""
        if self._stopping:
            return
        await self._wake.wait(delay)

    def _launch(self, services: WorkerServices, job: ClaimedJob) -> _Running:
        """A held job becomes running (its task is set by the runner if it awaits)."""
        ctx = _WorkerJob(services.writer, job, self.queue, self._transactions)
        running = _Running(None, job.fence, time.monotonic(), ctx)
        if job.expire_in is not None:
            running.expire_s = job.expire_in.total_seconds()
            self._own_expiry_tick = min(self._own_expiry_tick, max(0.02, running.expire_s / 10))
        self._running[job.id] = running
        return running

    async def _expire_loop(self) -> None:
        """Fail and cancel attempts running longer than the queue's ``expire_in`` (one timer
        for all jobs). The failure is recorded at once, even if the handler ignores the
        cancellation (or is a sync function stuck in its thread)."""
        services = self._services
        assert services is not None
        every = min(1.0, max(0.02, self._expire_s / 10))
        error = error_document(
            f"the attempt ran longer than expire_in ({self._expire_s:g}s) and was cancelled",
            kind="JobExpired",
        )
        while not self._stopping:
            await asyncio.sleep(min(every, self._own_expiry_tick))
            now = time.monotonic()
            limit = now - self._expire_s
            for job_id, running in list(self._running.items()):
                if running.expire_s:  # the job's own expire_in
                    if running.started > now - running.expire_s:
                        continue
                elif running.started > limit:
                    continue
                if running.ctx.completed:  # a transaction() block completed it already
                    continue
                if not running.settled and running.task is not None:
                    running.settle()
                    observer = services.observer
                    tag = None if observer is None else observer.tag(self.queue, running.ctx.event)
                    why = own_expiry_error(running.expire_s) if running.expire_s else error
                    services.writer.fail(job_id, running.fence, why, False, tag)
                    running.task.cancel()

    def _lease_lost(self, job_id: JobId) -> None:
        """The job's lease is gone (rescued after a stall, cancelled, or claimed again by
        another worker): stop working on it. Its handler is cancelled (a sync handler's thread
        runs on, but its result is ignored) and nothing is written for it."""
        running = self._running.get(job_id)
        if running is not None:
            if running.settled:
                return
            running.settle()
            if running.task is not None:
                running.task.cancel()
            # (else it has not started: its runner drops it)
        elif any(job.id == job_id for job in self._ready):
            self._ready = deque(job for job in self._ready if job.id != job_id)
        else:
            return
        if self._services is not None:
            self._services.writer.untrack(job_id)
        log.warning(
            "worker %s: stopped job %s: its lease was lost, so another worker may run it",
            self.label,
            job_id,
            extra={"job_id": str(job_id)},
        )

    async def _execute(self, ctx: JobContext, running: _Running) -> None:
        services = self._services
        assert services is not None
        observer = services.observer
        tag = None if observer is None else observer.tag(self.queue, ctx.event)
        started = time.perf_counter() if observer is not None else 0.0
        ok = False
        try:
            tracer = job_tracer()
            if tracer is None:
                result = await self._processor(ctx)
            else:
                result = await run_in_span(tracer, ctx, lambda: self._processor(ctx))
            ok = True
        except BaseException as exc:  # nothing a handler does may kill the worker
            if ctx.completed:  # a transaction() block committed the completion: nothing more
                services.writer.untrack(ctx.id)
            elif not running.settled and isinstance(exc, Snooze):
                writer = services.writer

                def fail(job_id: JobId, fence: int, error: str, permanent: bool) -> None:
                    writer.fail(job_id, fence, error, permanent, tag)

                await snooze_job(services, ctx, running.fence, exc, fail)
            elif not running.settled:
                permanent = isinstance(exc, PermanentJobError)
                services.writer.fail(ctx.id, running.fence, error_document(exc), permanent, tag)
        else:
            if ctx.completed:  # (see above)
                services.writer.untrack(ctx.id)
            elif not running.settled:
                services.writer.complete(ctx.id, running.fence, encode_output(result), tag)
        finally:
            if observer is not None:
                observer.handler_finished(tag, time.perf_counter() - started, ok)
            self._running.pop(ctx.id, None)
            self._policy.finished(time.monotonic() - running.started)
            self._flow.job_finished()
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
            services = self._services
            if services is not None:
                services.unsubscribe(self.queue, self._wake)
                await services.writer.flush(timeout=max(grace, 5.0))
            self._flow.close()
            close = getattr(self._processor, "close", None)
            if callable(close):
                close()
            self.boss.detach_worker(self)
            self._stopped.set()

    async def _return_ready(self) -> None:
        """Give back the claimed jobs that never started (no attempt used)."""
        if not self._ready:
            return
        services = self._services
        assert services is not None
        held, self._ready = list(self._ready), deque()
        for job in held:
            services.writer.untrack(job.id)
        await services.hand_back([(job.id, job.fence) for job in held])

    async def _drain(self, grace: float) -> None:
        await self._return_ready()
        # (the runners too: jobs launched but not started yet are theirs to run)
        tasks = [r.task for r in self._running.values() if r.task is not None]
        tasks.extend(self._runners)
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
            if not r.settled  # (an expired one's failure stands)
        ]
        if not leftovers:
            return
        services = self._services
        assert services is not None
        for job_id, running in leftovers:
            running.settle()
            services.writer.untrack(job_id)
            if running.task is not None:  # (else not started: its runner drops it)
                running.task.cancel()
        returned = await services.hand_back([(job_id, r.fence) for job_id, r in leftovers])
        log.info(
            "worker %s: handed back %d unfinished jobs after %.1fs grace",
            self.label,
            returned,
            grace,
        )
        unwinding = [r.task for _, r in leftovers if r.task is not None]
        if unwinding:
            await asyncio.wait(unwinding, timeout=1.0)

    # -- one-shot runs (typed_queues.runtime.testing) --

    async def run_ready(self, *, limit: int | None = None) -> list[OneShotRun]:
        """Claim and run this queue's due jobs one at a time, in claim order, until none is
        due (or ``limit`` ran), each result written before the next claim; return what ran.

        For tests (``testing.drain``), instead of ``start()``: no background task and no
        expiry timer. The worker must not be running.
        """
        if self.running:
            raise ConfigurationError(
                f"worker {self.label!r} is running: run_ready() runs a worker that was not "
                "started (stop it first, or drain with another worker of the queue)"
            )
        services = await self.boss.attach_worker(self)
        self._transactions = self._transactions_of(services)
        ran: list[OneShotRun] = []
        try:
            while limit is None or len(ran) < limit:
                claimed = await self._flow.claim(services, 1, self.poll_interval)
                if not claimed:
                    break
                ran.append(await self._run_one(services, claimed[0]))
        finally:
            self.boss.detach_worker(self)
        return ran

    async def _run_one(self, services: WorkerServices, job: ClaimedJob) -> OneShotRun:
        writer = services.writer
        job_id, fence = job.id, job.fence
        ctx = _WorkerJob(writer, job, self.queue, self._transactions)
        writer.track(job_id, fence)
        error: BaseException | None = None
        output: object = None
        try:
            output = await self._processor(ctx)
        except BaseException as exc:  # recorded like the worker does, whatever it is
            current = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and current and current.cancelling():
                writer.untrack(job_id)  # the caller was cancelled, not the handler
                raise
            error = exc
            if ctx.completed:  # a transaction() block committed the completion
                writer.untrack(job_id)
            elif isinstance(exc, Snooze):
                await snooze_job(services, ctx, fence, exc, writer.fail)
            else:
                writer.fail(job_id, fence, error_document(exc), isinstance(exc, PermanentJobError))
        else:
            if ctx.completed:
                writer.untrack(job_id)
            else:
                writer.complete(job_id, fence, encode_output(output))
        await writer.flush()
        return OneShotRun(ctx, error, output)

    # -- transactional handlers --

    def _transactions_of(self, services: WorkerServices) -> JobTransactions:
        hooks = WriterHooks(services.writer, asyncio.get_running_loop())
        return self.boss.job_transactions(hooks)


@dataclass(frozen=True, slots=True)
class OneShotRun:
    """One job run by ``Worker.run_ready()``: its context, and its error or its output."""

    job: JobContext
    error: BaseException | None
    output: object


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
