"""The runtime's errors: one small hierarchy under ``QueuesError``.

Every message names the thing that is wrong and, where there is one, the fix.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "ConfigurationError",
    "InvalidPayloadError",
    "JobCancelledError",
    "LeaseLostError",
    "PayloadError",
    "PermanentJobError",
    "QueuesError",
    "SchemaVersionError",
    "Snooze",
    "UnknownEventError",
    "UnknownQueueError",
    "ValidationError",
]


class QueuesError(Exception):
    """Base class of every error raised by the runtime on purpose."""


class ConfigurationError(QueuesError):
    """The runtime is configured wrongly: no DSN, a bad option, used before ``start()``."""


class ValidationError(QueuesError, ValueError):
    """An argument is invalid (bad identifier, bad option value); raised before any SQL runs."""


class UnknownQueueError(ValidationError):
    """A job was sent to, or a worker started for, a queue that was never created."""

    def __init__(self, queue: str, schema: str | None = None) -> None:
        where = f' in schema "{schema}"' if schema else ""
        super().__init__(
            f'unknown queue "{queue}"{where}: create it first with '
            f"`await boss.create_queue(QueueSpec(name={queue!r}))` "
            "(or `await create_queues(boss)` from the generated package)"
        )
        self.queue = queue


class PayloadError(ValidationError):
    """Job data cannot be stored: not JSON, contains NUL characters, or too large."""


class SchemaVersionError(QueuesError):
    """The database schema's version does not match what this code knows how to use."""


class PermanentJobError(QueuesError):
    """Raise in a handler to fail the job at once, skipping any remaining retries."""


class InvalidPayloadError(PermanentJobError):
    """A job's payload does not match its event's model; retrying cannot help."""


class UnknownEventError(PermanentJobError):
    """A job names an event its queue's handlers do not know; retrying cannot help."""


class JobCancelledError(QueuesError):
    """Raised by ``JobContext.raise_if_cancelled()`` once the worker gave up on the run."""


# -- flow control --


class Snooze(QueuesError):
    """Raise in a handler to put the job back for ``delay`` (a timedelta or seconds) without
    using an attempt: it runs again later with the same attempt number. A queue's
    ``snooze_limit`` (100 by default) bounds how often one job may snooze; past it the job
    fails for good."""

    def __init__(self, delay: object) -> None:
        if isinstance(delay, timedelta):
            seconds = delay.total_seconds()
        elif isinstance(delay, int | float) and not isinstance(delay, bool):
            seconds = float(delay)
        else:
            raise ValidationError(f"Snooze(delay): a timedelta or seconds, got {delay!r}")
        if not seconds >= 0:
            raise ValidationError(f"Snooze(delay) must be zero or more, got {delay!r}")
        super().__init__(f"snoozed for {seconds:g}s")
        #: How long the job waits before it is due again.
        self.delay = timedelta(seconds=seconds)


# -- events --


class LeaseLostError(QueuesError):
    """Raised by a ``job.transaction()`` block whose job's lease was lost (the job was
    rescued, cancelled or claimed again elsewhere): the block's transaction rolled back."""
