"""The queue runtime: a durable PostgreSQL job queue with pg-boss semantics.

Everything a user or the generated code needs is importable from here.
"""

from __future__ import annotations

from .client import Boss, EnqueuedJob, QueueHandle, SyncBoss
from .client.databases import declare_databases
from .errors import (
    ConfigurationError,
    InvalidPayloadError,
    JobCancelledError,
    LeaseLostError,
    PayloadError,
    PermanentJobError,
    QueuesError,
    SchemaVersionError,
    Snooze,
    UnknownEventError,
    UnknownQueueError,
    ValidationError,
)
from .job_views import JobPage, JobSummary, PurgeReport, RedriveItem, RedriveReport
from .jobs import (
    ENVELOPE_VERSION,
    Job,
    JobContext,
    JobError,
    JobId,
    JobState,
    QueueStats,
    make_envelope,
    process_job,
)
from .policy import GroupPolicy, Limits, QueueSpec, Rate, RemoteSubscription, RetryPolicy
from .schedules import Schedule
from .worker import Worker, start_workers

__all__ = [
    "ENVELOPE_VERSION",
    "Boss",
    "ConfigurationError",
    "EnqueuedJob",
    "GroupPolicy",
    "InvalidPayloadError",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobError",
    "JobId",
    "JobPage",
    "JobState",
    "JobSummary",
    "LeaseLostError",
    "Limits",
    "PayloadError",
    "PermanentJobError",
    "PurgeReport",
    "QueueHandle",
    "QueueSpec",
    "QueueStats",
    "QueuesError",
    "Rate",
    "RedriveItem",
    "RedriveReport",
    "RemoteSubscription",
    "RetryPolicy",
    "Schedule",
    "SchemaVersionError",
    "Snooze",
    "SyncBoss",
    "UnknownEventError",
    "UnknownQueueError",
    "ValidationError",
    "Worker",
    "declare_databases",
    "make_envelope",
    "process_job",
    "start_workers",
]
