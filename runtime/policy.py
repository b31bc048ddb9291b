"""Queue policy: how often a job is retried, how long an attempt may run, how long it is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from .db.identifiers import validate_queue_name
from .errors import ValidationError

__all__ = ["QueueSpec", "RetryPolicy"]

Backoff = Literal["fixed", "exponential"]


def _check_duration(owner: str, field: str, value: object, *, positive: bool = False) -> None:
    if not isinstance(value, timedelta):
        raise ValidationError(f"{owner}.{field} must be a timedelta, got {value!r}")
    if value < timedelta(0) or (positive and value == timedelta(0)):
        kind = "positive" if positive else "zero or more"
        raise ValidationError(f"{owner}.{field} must be {kind}, got {value}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed job is retried.

    ``limit`` retries follow the first attempt (so ``limit=3`` means at most 4 attempts). The
    delay before retry ``n`` (1-based) is ``delay`` for fixed backoff and ``delay * 2**(n-1)``
    for exponential backoff, capped by ``max_delay``; with ``jitter`` it is scaled by a random
    factor in [0.5, 1].
    """

    limit: int = 3
    delay: timedelta = timedelta(seconds=5)
    backoff: Backoff = "exponential"
    max_delay: timedelta = timedelta(minutes=10)
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0:
            raise ValidationError(f"RetryPolicy.limit must be an int >= 0, got {self.limit!r}")
        _check_duration("RetryPolicy", "delay", self.delay)
        _check_duration("RetryPolicy", "max_delay", self.max_delay)
        if self.backoff not in ("fixed", "exponential"):
            raise ValidationError(
                f"RetryPolicy.backoff must be 'fixed' or 'exponential', got {self.backoff!r}"
            )


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue and its policy, as ``Boss.create_queue`` stores it (an upsert)."""

    name: str
    retry: RetryPolicy = RetryPolicy()
    expire_in: timedelta = timedelta(minutes=15)
    retention: timedelta = timedelta(days=7)
    dead_letter: str | None = None
    description: str = ""
    #: How long a job may wait to start (created or retry, counted from when it became due)
    #: before maintenance fails it as ``WaitExpired``, dead-lettered; None (default): forever.
    max_wait: timedelta | None = None

    def __post_init__(self) -> None:
        validate_queue_name(self.name)
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError(f"QueueSpec.retry must be a RetryPolicy, got {self.retry!r}")
        _check_duration("QueueSpec", "expire_in", self.expire_in, positive=True)
        _check_duration("QueueSpec", "retention", self.retention)
        if self.dead_letter is not None:
            validate_queue_name(self.dead_letter)
            if self.dead_letter == self.name:
                raise ValidationError(f'queue "{self.name}" cannot be its own dead-letter queue')
        if self.max_wait is not None:
            _check_duration("QueueSpec", "max_wait", self.max_wait, positive=True)

    def to_params(self) -> dict[str, Any]:
        """The parameters of the ``create_queue`` statement."""
        return {
            "name": self.name,
            "retry_limit": self.retry.limit,
            "retry_delay": self.retry.delay,
            "retry_backoff": self.retry.backoff,
            "retry_max_delay": self.retry.max_delay,
            "retry_jitter": self.retry.jitter,
            "expire_in": self.expire_in,
            "retention": self.retention,
            "dead_letter": self.dead_letter,
            "description": self.description,
            "max_wait": self.max_wait,
        }
