"""Typed rows: what the store's statements return, named instead of indexed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from ..jobs import JobId

__all__ = [
    "ActivityRow",
    "ClaimPosition",
    "ClaimedJob",
    "FailedJob",
    "FetchedJob",
    "JobDataRow",
    "LimitedClaim",
    "LimitedJob",
    "QueueArchive",
    "QueueCountsRow",
    "QueueFlowRow",
    "QueueMaxWait",
    "QueueRow",
    "RedriveRow",
    "RescuedJob",
    "ScheduleRow",
    "SubscriptionRow",
    "WaitingJob",
]


class ClaimedJob(NamedTuple):
    """A job a worker claimed: enough to run it and to fence its writes."""

    id: JobId
    fence: int
    retry_count: int
    data: dict[str, Any]
    #: The job's own expiry (``send(expire_in=...)``); None: its queue's.
    expire_in: timedelta | None


class ClaimPosition(NamedTuple):
    """Where a claim stopped in the claim order (priority descending, then start_after, then
    id): the last job it claimed. A worker's next claim can start after it."""

    priority: int
    start_after: datetime
    id: JobId


class FetchedJob(NamedTuple):
    """A job claimed by ``Boss.fetch``: the claimed columns a ``Job`` shows."""

    id: JobId
    fence: int
    retry_count: int
    data: dict[str, Any]
    priority: int
    start_after: datetime
    created_on: datetime
    started_on: datetime
    singleton_key: str | None
    lease_until: datetime


class FailedJob(NamedTuple):
    """One failed attempt as written: the job's new state and its dead-letter copy, if any."""

    id: JobId
    new_state: str
    dead_letter_id: JobId | None


class QueueRow(NamedTuple):
    """The policy fields of a queue that the hot paths need."""

    name: str
    retry_limit: int
    expire_in: timedelta
    dead_letter: str | None


# -- testing --


class JobDataRow(NamedTuple):
    """A job as the test helpers read it back: its id, state and stored data."""

    id: JobId
    state: str
    data: dict[str, Any]


# -- max_wait expiry --


class WaitingJob(NamedTuple):
    """A job that waited longer than its queue's ``max_wait``, about to fail."""

    id: JobId
    retry_count: int
    waited: timedelta


class QueueMaxWait(NamedTuple):
    """A queue whose jobs may wait at most ``max_wait`` to start."""

    name: str
    max_wait: timedelta


# -- operations --


class RedriveRow(NamedTuple):
    """A dead-letter copy and its original, as a redrive (or its dry run) found them."""

    copy_id: JobId
    original_id: JobId | None
    original_queue: str | None
    original_state: str | None
    requeued: bool
    settled: bool


class RescuedJob(NamedTuple):
    """A job a maintenance round rescued, with its queue and event (for metrics)."""

    id: JobId
    new_state: str
    queue: str
    event: str | None
    dead_lettered: bool


# -- flow control --


class QueueFlowRow(NamedTuple):
    """A queue's flow policy as stored: its limits, its groups, and whether it is paused."""

    name: str
    active_limit: int | None
    rate_count: int | None
    rate_period: timedelta | None
    group_active: int | None
    group_fifo: bool
    paused: bool


class LimitedJob(NamedTuple):
    """A job claimed within its queue's flow policy (``flow_claim``)."""

    id: JobId
    fence: int
    retry_count: int
    data: dict[str, Any]
    expire_in: timedelta | None
    priority: int
    start_after: datetime
    created_on: datetime
    started_on: datetime
    singleton_key: str | None
    lease_until: datetime

    def claimed(self) -> ClaimedJob:
        """What a worker needs of it."""
        return ClaimedJob(self.id, self.fence, self.retry_count, self.data, self.expire_in)

    def fetched(self) -> FetchedJob:
        """What ``Boss.fetch`` shows of it."""
        return FetchedJob(
            self.id,
            self.fence,
            self.retry_count,
            self.data,
            self.priority,
            self.start_after,
            self.created_on,
            self.started_on,
            self.singleton_key,
            self.lease_until,
        )


class LimitedClaim(NamedTuple):
    """The result of one claim within a flow policy: the jobs, whether a limit (active or rate)
    left no room at all, and then how long until the rate allows a start again (``wait_s``;
    None when it is the active limit: a start is allowed when a job ends)."""

    jobs: list[LimitedJob]
    limited: bool
    wait_s: float | None


# -- dashboard --


class QueueCountsRow(NamedTuple):
    """One queue's policy columns and its job counts, each read up to a cap (a count equal to
    the cap means "at least that many"): queued (created and retry), retry, finished (completed,
    cancelled and failed), failed, cancelled; and its oldest queued job's start time."""

    name: str
    description: str
    dead_letter: str | None
    paused: bool
    waiting: int
    retry: int
    finished: int
    failed: int
    cancelled: int
    oldest: datetime | None


class ActivityRow(NamedTuple):
    """One row of a queue's last hour (``job_activity_minutes``): ``kind`` "done" counts the
    jobs that finished in ``minute`` (completed, and failed or cancelled); "left" gives the
    earliest due time among the jobs that stopped waiting in ``minute``; "seen" (no minute)
    how many finished jobs were read for the queue, in ``completed`` and ``failed``."""

    queue: str
    kind: str
    minute: datetime | None
    completed: int | None
    failed: int | None
    earliest: datetime | None


# -- events --


class SubscriptionRow(NamedTuple):
    """``queue`` receives a copy of every ``event`` sent to a queue of ``domain``."""

    queue: str
    domain: str
    event: str


class QueueArchive(NamedTuple):
    """A queue whose finished jobs are archived after retention, and kept there ``archive``."""

    name: str
    archive: timedelta


class ScheduleRow(NamedTuple):
    """A schedule as stored, with the database's clock when it was read."""

    name: str
    queue: str
    event: str | None
    data: dict[str, Any]
    cron: str | None
    every: timedelta | None
    timezone: str
    catch_up: str
    priority: int
    #: Slots up to this time are done (the last slot fired or skipped, else the creation time).
    done_until: datetime
    last_slot: datetime | None
    last_job_id: JobId | None
    db_now: datetime
