"""Typed rows: what the store's statements return, named instead of indexed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from ..jobs import JobId

__all__ = [
    "ClaimedJob",
    "FailedJob",
    "FetchedJob",
    "JobDataRow",
    "QueueMaxWait",
    "QueueRow",
    "RedriveRow",
    "RescuedJob",
    "WaitingJob",
]


class ClaimedJob(NamedTuple):
    """A job a worker claimed: enough to run it and to fence its writes."""

    id: JobId
    fence: int
    retry_count: int
    data: dict[str, Any]


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
