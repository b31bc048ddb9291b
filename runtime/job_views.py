"""What the operations API returns: a page of the job list and its cursor, a redrive's report,
a purge's report, and the per-queue depth metrics read.

Pure data (no I/O). The job list reads one state at a time in the order of the index holding
that state (``LIST_ORDER`` says which); its cursor is opaque to callers: the sort key of the
last row shown, in URL-safe base64.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from .errors import ValidationError
from .jobs import Job, JobId, JobState

__all__ = [
    "LIST_ORDER",
    "STATE_GROUPS",
    "JobPage",
    "JobSummary",
    "ListCursor",
    "PurgeReport",
    "QueueDepth",
    "RedriveItem",
    "RedriveReport",
    "job_document",
]

#: How each state is listed (the order of the index that holds it).
LIST_ORDER: Final[dict[JobState, str]] = {
    JobState.ACTIVE: "longest running first",
    JobState.RETRY: "next retry first",
    JobState.CREATED: "claim order: highest priority, then longest waiting",
    JobState.FAILED: "most recent first",
    JobState.CANCELLED: "most recent first",
    JobState.COMPLETED: "most recent first",
}
#: The order of the groups when no state is asked for: what needs attention first.
STATE_GROUPS: Final = (
    JobState.ACTIVE,
    JobState.RETRY,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.CREATED,
    JobState.COMPLETED,
)


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One row of the job list: what identifies a job and where it stands, without its data."""

    id: JobId
    queue: str
    state: JobState
    event: str | None
    priority: int
    retry_count: int
    created_on: datetime
    start_after: datetime
    started_on: datetime | None
    completed_on: datetime | None
    #: The last error's type and message (cut to 500 characters), for retry and failed jobs.
    error_type: str | None
    error_message: str | None
    #: The job's dead-letter copy, once it failed for good into a dead-letter queue.
    dead_letter_id: JobId | None
    #: For a dead-letter copy: the job it is a copy of.
    dead_letter_of: JobId | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> JobSummary:
        (
            job_id,
            queue,
            state,
            event,
            priority,
            retry_count,
            created_on,
            start_after,
            started_on,
            completed_on,
            error_type,
            error_message,
            dead_letter_id,
            dead_letter_of,
        ) = row
        return cls(
            id=JobId(job_id),
            queue=queue,
            state=JobState(state),
            event=event,
            priority=priority,
            retry_count=retry_count,
            created_on=created_on,
            start_after=start_after,
            started_on=started_on,
            completed_on=completed_on,
            error_type=error_type,
            error_message=error_message,
            dead_letter_id=None if dead_letter_id is None else JobId(dead_letter_id),
            dead_letter_of=None if dead_letter_of is None else JobId(dead_letter_of),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "queue": self.queue,
            "state": self.state.value,
            "event": self.event,
            "priority": self.priority,
            "retry_count": self.retry_count,
            "created_on": _iso(self.created_on),
            "start_after": _iso(self.start_after),
            "started_on": _iso(self.started_on),
            "completed_on": _iso(self.completed_on),
            "error_type": self.error_type,
            "error_message": self.error_message,
            "dead_letter_id": _str(self.dead_letter_id),
            "dead_letter_of": _str(self.dead_letter_of),
        }


@dataclass(frozen=True, slots=True)
class ListCursor:
    """Where a page of the job list ended: a state and the last row's sort key in it."""

    state: JobState
    #: The sort key of the state's order (see ``key_of``); empty: the state's first row.
    key: tuple[Any, ...] = ()

    @staticmethod
    def key_of(job: JobSummary) -> tuple[Any, ...]:
        """The sort key of ``job`` in its state's order."""
        if job.state is JobState.CREATED:
            return (job.priority, job.start_after, job.id)
        if job.state is JobState.RETRY:
            return (job.start_after, job.id)
        if job.state is JobState.ACTIVE:
            return (job.started_on, job.id)
        return (job.completed_on, job.id)

    def encode(self) -> str:
        """The cursor as an opaque, URL-safe string."""
        parts = [_plain(value) for value in self.key]
        text = json.dumps([self.state.value, *parts], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ListCursor:
        """Parse a cursor made by ``encode``; ``ValidationError`` naming the problem if not."""
        problem = (
            f"invalid cursor {text[:60]!r}: pass the `next` value of the previous page unchanged"
        )
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            values = json.loads(raw)
            state = JobState(values[0])
            parts = values[1:]
            if not parts:  # the first row of the state
                return cls(state)
            if state is JobState.CREATED:
                priority, at, job_id = parts
                if isinstance(priority, bool) or not isinstance(priority, int):
                    raise ValueError(priority)
                key: tuple[Any, ...] = (
                    priority,
                    datetime.fromisoformat(at),
                    JobId(uuid.UUID(job_id)),
                )
            else:
                at, job_id = parts
                key = (datetime.fromisoformat(at), JobId(uuid.UUID(job_id)))
        except (ValueError, TypeError, IndexError, binascii.Error, UnicodeDecodeError):
            raise ValidationError(problem) from None
        if key[-2].tzinfo is None:
            raise ValidationError(problem)
        return cls(state, key)


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of the job list and the cursor of the next (None on the last page)."""

    jobs: list[JobSummary]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        return {"jobs": [job.to_json() for job in self.jobs], "next": self.next}


@dataclass(frozen=True, slots=True)
class RedriveItem:
    """One dead-letter copy a redrive looked at, and what happened to it (or would, in a dry
    run)."""

    copy_id: JobId
    original_id: JobId | None
    #: The original's queue and state before the redrive; None once retention deleted it.
    original_queue: str | None
    original_state: JobState | None
    #: The original was queued again (once).
    requeued: bool
    #: The copy was completed with a note, so no worker of the dead-letter queue runs it.
    settled: bool

    @property
    def outcome(self) -> str:
        if self.requeued:
            return "requeued"
        if self.original_state is None:
            return "skipped: the original job no longer exists (deleted by retention)"
        return f"settled: the original job is {self.original_state.value}, not requeued"

    def to_json(self) -> dict[str, Any]:
        return {
            "copy_id": str(self.copy_id),
            "original_id": _str(self.original_id),
            "original_queue": self.original_queue,
            "original_state": None if self.original_state is None else self.original_state.value,
            "requeued": self.requeued,
            "settled": self.settled,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class RedriveReport:
    """What ``Boss.redrive`` did (or, with ``dry_run``, would do)."""

    dead_letter_queue: str
    dry_run: bool
    items: list[RedriveItem] = field(default_factory=list)

    @property
    def requeued(self) -> int:
        return sum(1 for item in self.items if item.requeued)

    @property
    def settled(self) -> int:
        return sum(1 for item in self.items if item.settled)

    @property
    def skipped(self) -> int:
        return sum(1 for item in self.items if not item.requeued and not item.settled)

    def to_json(self) -> dict[str, Any]:
        return {
            "dead_letter_queue": self.dead_letter_queue,
            "dry_run": self.dry_run,
            "requeued": self.requeued,
            "settled": self.settled,
            "skipped": self.skipped,
            "items": [item.to_json() for item in self.items],
        }


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What ``Boss.purge`` deleted (or, with ``dry_run``, would delete)."""

    queue: str
    state: JobState
    older_than_seconds: float | None
    dry_run: bool
    deleted: int

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "state": self.state.value,
            "older_than_seconds": self.older_than_seconds,
            "dry_run": self.dry_run,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """A queue's backlog as metrics show it: queued jobs, those due now, the age of the oldest
    due one in seconds (None when none is due), and running jobs."""

    queue: str
    waiting: int
    due: int
    oldest_due_seconds: float | None
    active: int


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def job_document(job: Job) -> dict[str, Any]:
    """Everything stored about ``job``, as JSON-ready values (``queues jobs show --json``)."""
    return {
        "id": str(job.id),
        "queue": job.queue,
        "state": job.state.value,
        "event": job.data.get("event") if isinstance(job.data, dict) else None,
        "priority": job.priority,
        "retry_count": job.retry_count,
        "retry_limit": job.retry_limit,
        "singleton_key": job.singleton_key,
        "created_on": _iso(job.created_on),
        "start_after": _iso(job.start_after),
        "started_on": _iso(job.started_on),
        "completed_on": _iso(job.completed_on),
        "lease_until": _iso(job.lease_until),
        "dead_letter_id": _str(job.dead_letter_id),
        "dead_letter_of": _str(job.dead_letter_of),
        "data": job.data,
        "output": job.output,
        "errors": [
            {
                "attempt": error.attempt,
                "at": _iso(error.at),
                "type": error.type,
                "message": error.message,
                "traceback": error.traceback,
                "worker": None
                if error.worker_host is None and error.worker_pid is None
                else {"host": error.worker_host, "pid": error.worker_pid},
                "dead_letter_id": _str(error.dead_letter_id),
            }
            for error in job.errors
        ],
    }
