"""The runtime's errors: one small hierarchy under ``QueuesError``.

Every message names the thing that is wrong and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "InvalidPayloadError",
    "JobCancelledError",
    "PayloadError",
    "PermanentJobError",
    "QueuesError",
    "SchemaVersionError",
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
