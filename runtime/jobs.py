"""Jobs as Python sees them: ids, states, the stored row, the envelope and the job wrapper."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, NewType, Protocol, TypeVar

from .errors import ConfigurationError, JobCancelledError, Snooze
from .failures import summarize
from .tracing import trace_context

__all__ = [
    "ENVELOPE_VERSION",
    "Job",
    "JobContext",
    "JobError",
    "JobId",
    "JobState",
    "JobTransactions",
    "QueueStats",
    "make_envelope",
    "process_job",
]

JobId = NewType("JobId", uuid.UUID)

#: Version of the envelope format written by ``make_envelope``.
ENVELOPE_VERSION: Final = "1"

#: The logger of the job wrapper and of ``JobContext.logger``.
JOB_LOGGER_NAME: Final = "queues.jobs"
_job_log = logging.getLogger(JOB_LOGGER_NAME)

T = TypeVar("T")

if TYPE_CHECKING:
    from psycopg import AsyncConnection, Connection


class JobState(StrEnum):
    """A job's state; ``created`` and ``retry`` are queued, ``active`` is running."""

    CREATED = "created"
    RETRY = "retry"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobError:
    """One failed attempt of a job, as kept in its error history (the last 20 attempts; each
    part bounded: message 2000 characters, traceback summary 4000)."""

    #: Which attempt failed (1 for the first run).
    attempt: int
    #: When the failure was written (the database's clock).
    at: datetime | None
    type: str
    message: str
    #: The last frames of the traceback, bounded; None for failures without one (a rescue).
    traceback: str | None = None
    #: Host and pid of the process that ran the attempt; None when not known (a rescue).
    worker_host: str | None = None
    worker_pid: int | None = None
    #: The dead-letter copy made by this failure, when it was the last attempt.
    dead_letter_id: JobId | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> JobError:
        """One entry of the ``errors`` column."""
        worker = entry.get("worker")
        worker = worker if isinstance(worker, Mapping) else {}
        at = entry.get("at")
        copy = entry.get("dead_letter_id")
        pid = worker.get("pid")
        return cls(
            attempt=int(entry.get("attempt") or 0),
            at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            type=str(entry.get("type") or "Error"),
            message=str(entry.get("message") or ""),
            traceback=entry.get("traceback"),
            worker_host=worker.get("host"),
            worker_pid=pid if isinstance(pid, int) else None,
            dead_letter_id=JobId(uuid.UUID(copy)) if isinstance(copy, str) else None,
        )


@dataclass(slots=True)
class Job:
    """One stored job."""

    id: JobId
    queue: str
    state: JobState
    data: dict[str, Any]
    priority: int
    retry_count: int
    retry_limit: int
    start_after: datetime
    created_on: datetime
    started_on: datetime | None
    completed_on: datetime | None
    output: Any
    singleton_key: str | None
    #: Claims so far; a worker's writes carry the value of its claim (fencing token).
    fence: int = 0
    #: When an active job's lease ends unless its worker heartbeats.
    lease_until: datetime | None = None
    #: Id of the copy put into the dead-letter queue, once the job failed for good.
    dead_letter_id: JobId | None = None
    #: Every failed attempt's error, oldest first (the last 20 attempts).
    errors: tuple[JobError, ...] = ()
    #: For a copy in a dead-letter queue: the id of the job it is a copy of.
    dead_letter_of: JobId | None = None
    #: When maintenance moved the finished job to its queue's archive; None while in the queue.
    archived_on: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        """Build a job from a row of the ``job_columns`` selection."""
        errors = row.get("errors")
        source = row.get("dead_letter_of")
        return cls(
            id=JobId(row["id"]),
            queue=row["queue"],
            state=JobState(row["state"]),
            data=row["data"],
            priority=row["priority"],
            retry_count=row["retry_count"],
            retry_limit=row["retry_limit"],
            start_after=row["start_after"],
            created_on=row["created_on"],
            started_on=row["started_on"],
            completed_on=row["completed_on"],
            output=row["output"],
            singleton_key=row["singleton_key"],
            fence=row["fence"],
            lease_until=row["lease_until"],
            dead_letter_id=None if row["dead_letter_id"] is None else JobId(row["dead_letter_id"]),
            errors=tuple(JobError.from_entry(e) for e in errors or () if isinstance(e, Mapping)),
            dead_letter_of=None if source is None else JobId(source),
            archived_on=row.get("archived_on"),
        )


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of one queue's jobs by state, as ``queues status`` shows them."""

    queue: str
    created: int
    retry: int
    active: int
    completed: int
    cancelled: int
    failed: int
    #: Failed jobs of this queue that were copied into its dead-letter queue.
    dead_lettered: int
    #: How long the oldest job that is due has been waiting; ``None`` when nothing is due.
    oldest_waiting: timedelta | None

    @property
    def queued(self) -> int:
        return self.created + self.retry

    @property
    def total(self) -> int:
        return (
            self.created + self.retry + self.active + self.completed + self.cancelled + self.failed
        )


def _utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_envelope(
    event: str, payload: Mapping[str, Any], *, source: str | None = None
) -> dict[str, Any]:
    """The job data of one event: ``{"event", "payload", "metadata"}``. When an OpenTelemetry
    span is active, the metadata also carries its W3C ``traceparent`` (and ``tracestate``), so
    the worker's span for the job continues the caller's trace."""
    metadata = {
        "source": source or "queues",
        "timestamp": _utc_timestamp(),
        "version": ENVELOPE_VERSION,
    }
    traced = trace_context()
    if traced is not None:
        metadata.update(traced)
    return {
        "event": event,
        "payload": payload if isinstance(payload, dict) else dict(payload),
        "metadata": metadata,
    }


HeartbeatFn = Callable[[], Awaitable[None]]


class JobContext:
    """What a handler gets besides its payload: the job's identity, data, logger, heartbeat."""

    __slots__ = (
        "_cancelled",
        "_completed",
        "_heartbeat",
        "_logger",
        "_transactions",
        "attempt",
        "data",
        "event",
        "fence",
        "id",
        "metadata",
        "payload",
        "queue",
    )

    def __init__(
        self,
        id: JobId,
        queue: str,
        data: Mapping[str, Any],
        *,
        attempt: int = 1,
        fence: int = 0,
        heartbeat: HeartbeatFn | None = None,
        transactions: JobTransactions | None = None,
    ) -> None:
        self.id = id
        #: The claim this run belongs to (the job's fencing token): two runs of one job never
        #: share it, so it tells a re-run after a lost lease from the first run.
        self.fence = fence
        self.queue = queue
        self.data: dict[str, Any] = data if isinstance(data, dict) else dict(data)
        self.attempt = attempt
        event = self.data.get("event")
        if isinstance(event, str) and "payload" in self.data:
            self.event: str | None = event
            self.payload: Any = self.data["payload"]
            metadata = self.data.get("metadata")
            self.metadata: dict[str, Any] = metadata if isinstance(metadata, dict) else {}
        else:
            self.event = None
            self.payload = self.data
            self.metadata = {}
        self._heartbeat = heartbeat
        self._cancelled = False
        self._transactions = transactions
        self._completed = False
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``queues.jobs``) whose records carry job_id, queue, event and attempt."""
        if self._logger is None:
            self._logger = logging.LoggerAdapter(
                _job_log,
                {
                    "job_id": str(self.id),
                    "queue": self.queue,
                    "event": self.event,
                    "attempt": self.attempt,
                },
            )
        return self._logger

    @property
    def cancelled(self) -> bool:
        """True once the worker gave up on this run: its lease was lost (another worker may
        run the job), it ran past ``expire_in``, or the worker stopped and handed it back. An
        async handler is cancelled at that moment; a sync handler runs on in its thread and
        should check this (or call ``raise_if_cancelled()``) between steps: whatever it
        returns is ignored."""
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        """Raise ``JobCancelledError`` if the worker gave up on this run (see ``cancelled``)."""
        if self._cancelled:
            raise JobCancelledError(f"job {self.id} was given up by its worker; stop working on it")

    def mark_cancelled(self) -> None:
        """Called by the worker when it gives up on this run."""
        self._cancelled = True

    async def heartbeat(self) -> None:
        """Extend this job's lease now (workers also do it for every active job on a timer)."""
        if self._heartbeat is not None:
            await self._heartbeat()

    def __repr__(self) -> str:
        return f"JobContext(id={self.id}, queue={self.queue!r}, event={self.event!r})"

    # -- transactional handlers --

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """``async with job.transaction() as conn:`` a connection in a transaction that also
        completes this job: what the block writes on ``conn`` (follow-up events sent with
        ``conn=conn`` included) and the job's completion commit together, or not at all.

        Fenced: if the worker lost this run's lease, nothing commits and the block raises
        ``LeaseLostError``. If the block raises, nothing in it commits and the job fails (and
        retries) as usual. Once the block committed, the job is completed: the worker writes
        nothing more for this run, whatever the handler does after it.
        """
        return self._source().transaction(self)

    def sync_transaction(self) -> AbstractContextManager[Connection[Any]]:
        """``with job.sync_transaction() as conn:``, ``transaction()`` for sync handlers (a
        sync psycopg connection)."""
        return self._source().sync_transaction(self)

    @property
    def completed(self) -> bool:
        """True once a ``transaction()`` block committed this job's completion."""
        return self._completed

    def mark_completed(self) -> None:
        """Called when a ``transaction()`` block committed the job's completion."""
        self._completed = True

    def _source(self) -> JobTransactions:
        if self._transactions is None:
            raise ConfigurationError(
                f"job {self.id}: transaction() is available to handlers run by a Worker "
                "(this JobContext was made without one)"
            )
        if self._completed:
            raise ConfigurationError(
                f"job {self.id}: a transaction() block already completed this job; "
                "a handler has one such block"
            )
        return self._transactions


class JobTransactions(Protocol):
    """What opens a job's completing transactions (given to a ``JobContext`` by its worker)."""

    def transaction(self, job: JobContext) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """An async connection in a transaction that completes ``job`` (fenced) on commit."""

    def sync_transaction(self, job: JobContext) -> AbstractContextManager[Connection[Any]]:
        """The same on a sync connection."""


async def process_job(
    ctx: JobContext,
    action: Callable[[], Awaitable[T]],
    *,
    label: str | None = None,
    entity_id: str | None = None,
) -> T:
    """Run ``action`` for one job, logging its start, its end with the duration, or its failure.

    Records go to the ``queues.jobs`` logger with the ``extra`` fields job_id, queue, event,
    entity_id, attempt, metadata (and duration_ms at the end). The action's error is re-raised.
    """
    name = label or ctx.event or ctx.queue
    extra: dict[str, Any] | None = None
    if _job_log.isEnabledFor(logging.INFO):
        extra = _extra(ctx, entity_id)
        _job_log.info("Starting: %s | ID: %s", name, _shown_id(ctx, entity_id), extra=extra)
    started = time.perf_counter()
    try:
        result = await action()
    except Snooze as snooze:  # not a failure: the job comes back later, same attempt
        if extra is not None:
            duration = round((time.perf_counter() - started) * 1000.0, 3)
            _job_log.info(
                "Snoozed: %s | ID: %s after %.1f ms, for %gs",
                name,
                _shown_id(ctx, entity_id),
                duration,
                snooze.delay.total_seconds(),
                extra={**extra, "duration_ms": duration},
            )
        raise
    except BaseException as exc:
        if _job_log.isEnabledFor(logging.ERROR):
            duration = round((time.perf_counter() - started) * 1000.0, 3)
            failure = {**(extra or _extra(ctx, entity_id)), "duration_ms": duration}
            _log_failed(name, _shown_id(ctx, entity_id), duration, exc, failure)
        raise
    if extra is not None:
        duration = round((time.perf_counter() - started) * 1000.0, 3)
        _job_log.info(
            "Finished: %s | ID: %s in %.1f ms",
            name,
            _shown_id(ctx, entity_id),
            duration,
            extra={**extra, "duration_ms": duration},
        )
    return result


def _log_failed(
    name: str, shown_id: str, duration: float, exc: BaseException, failure: dict[str, Any]
) -> None:
    """The ``Failed:`` record, bounded: the message and the traceback are cut as the stored
    error is (``failures.summarize``), so a huge exception message never makes a huge line.
    The record keeps ``exc_info`` (for handlers that want the exception object) with the
    bounded text preset as its ``exc_text``, which formatters print instead of formatting the
    exception again."""
    summary = summarize(exc, kind=type(exc).__name__)
    failure["error"] = summary.line
    cancelled = isinstance(exc, asyncio.CancelledError)
    fn, lno, func, _ = _job_log.findCaller(False, 2)  # process_job's line
    record = _job_log.makeRecord(
        _job_log.name,
        logging.ERROR,
        fn,
        lno,
        "Failed: %s | ID: %s after %.1f ms: %s",
        (name, shown_id, duration, "cancelled" if cancelled else summary.line),
        None if cancelled else (type(exc), exc, exc.__traceback__),
        func,
        failure,
    )
    if not cancelled:
        record.exc_text = summary.traceback.rstrip("\n")
    _job_log.handle(record)


def _shown_id(ctx: JobContext, entity_id: str | None) -> str:
    """The id a record shows: the entity's, else the job's (formatted only for a record)."""
    return entity_id if entity_id is not None else str(ctx.id)


def _extra(ctx: JobContext, entity_id: str | None) -> dict[str, Any]:
    return {
        "job_id": str(ctx.id),
        "queue": ctx.queue,
        "event": ctx.event,
        "entity_id": entity_id,
        "attempt": ctx.attempt,
        "metadata": ctx.metadata,
    }
