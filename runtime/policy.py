"""Queue policy: how often a job is retried, how long an attempt may run, how long it is kept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from .config import validate_database_name
from .db.identifiers import validate_queue_name
from .errors import ConfigurationError, ValidationError
from .schedules import Schedule

__all__ = ["GroupPolicy", "Limits", "QueueSpec", "Rate", "RemoteSubscription", "RetryPolicy"]

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


# -- flow control --

_RATE: Final = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*(ms|s|m|h|d)\s*")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _positive_int(owner: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{owner} must be an int >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` job starts in any interval of length ``per`` (``Rate.parse("100/1s")``)."""

    count: int
    per: timedelta

    def __post_init__(self) -> None:
        _positive_int("Rate.count", self.count)
        _check_duration("Rate", "per", self.per, positive=True)

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/1s"``, ``"10/1m"``, ``"5/500ms"`` or ``"100/s"`` (count / duration)."""
        match = _RATE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValidationError(
                f"invalid rate {text!r}: write it as count/duration, e.g. 100/1s, 10/1m or 5/500ms"
            )
        amount = int(match[2]) if match[2] else 1
        return cls(int(match[1]), timedelta(seconds=amount * _UNIT_SECONDS[match[3]]))

    def __str__(self) -> str:
        seconds = self.per.total_seconds()
        for unit in ("d", "h", "m", "s"):
            size = _UNIT_SECONDS[unit]
            if seconds >= size and seconds % size == 0:
                return f"{self.count}/{int(seconds // size)}{unit}"
        return f"{self.count}/{round(seconds * 1000)}ms"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of a queue across every process: at most ``active`` jobs running at once (jobs a
    worker claimed ahead count), at most ``rate`` job starts per period. None: no limit."""

    active: int | None = None
    rate: Rate | None = None

    def __post_init__(self) -> None:
        if self.active is not None:
            _positive_int("Limits.active", self.active)
        if self.rate is not None and not isinstance(self.rate, Rate):
            raise ValidationError(
                f"Limits.rate must be a Rate (e.g. Rate.parse('100/1s')), got {self.rate!r}"
            )


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """Jobs sent with a ``group_key``: at most ``active`` of one key run at once; with ``fifo``
    they start in send order, each once the ones sent before it (at most ``active - 1`` of them
    still unfinished) have completed or failed for good: a job waiting for a retry holds its
    place."""

    active: int = 1
    fifo: bool = False

    def __post_init__(self) -> None:
        _positive_int("GroupPolicy.active", self.active)
        if not isinstance(self.fifo, bool):
            raise ValidationError(f"GroupPolicy.fifo must be a bool, got {self.fifo!r}")


@dataclass(frozen=True, slots=True)
class RemoteSubscription:
    """A subscription to an event whose domain may live on another database (``database``;
    None: the default one), declared ``delivery: at-least-once`` in the catalogue.

    When the two databases are one server (the same DSN) it is an ordinary subscription,
    atomic with the send. Otherwise ``create_queues`` makes an outbox queue on the publisher's
    database (``<queue>.outbox``) that receives the copies atomically with each send, and the
    workers of the subscribing queue relay them, each copy at least once and written once.
    """

    event: str
    database: str | None = None

    def __post_init__(self) -> None:
        split_subscription("RemoteSubscription", self.event)
        if self.database is not None:
            _check_database("RemoteSubscription", self.database)


def _check_database(owner: str, name: str) -> None:
    try:
        validate_database_name(name)
    except ConfigurationError as exc:
        raise ValidationError(f"{owner}.database: {exc}") from None


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
    #: Flow control across processes: active and rate limits (``Limits``).
    limits: Limits = Limits()
    #: Per-key limits of jobs sent with a ``group_key`` (``GroupPolicy``); None: keys are kept
    #: but change nothing.
    group: GroupPolicy | None = None
    #: How often one job may be snoozed (``raise Snooze(delay)``) before it fails for good.
    snooze_limit: int = 100
    #: Events of other queues this queue also receives, as ``"domain.event"``: every job of
    #: that event sent to a queue of that domain is copied here too (fan-out).
    subscribe: tuple[str, ...] = ()
    #: How long finished jobs are kept in the archive after retention moved them there; None
    #: (default): retention deletes them.
    archive: timedelta | None = None
    #: Schedules that send jobs to this queue, replaced as a whole by ``create_queues``
    #: (schedules made with ``Boss.schedule`` are left alone).
    schedules: tuple[Schedule, ...] = ()
    #: The database of the queue's domain (``database:`` in the catalogue): the DSN comes from
    #: ``QUEUES_DSN_<NAME>``, else the Boss's own; None: the Boss's own database.
    database: str | None = None
    #: Subscriptions delivered at least once, possibly from another database (see
    #: ``RemoteSubscription``); ``subscribe`` holds those that are always atomic.
    remote_subscriptions: tuple[RemoteSubscription, ...] = ()

    def __post_init__(self) -> None:
        validate_queue_name(self.name)
        if self.database is not None:
            _check_database("QueueSpec", self.database)
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
        if not isinstance(self.limits, Limits):
            raise ValidationError(f"QueueSpec.limits must be a Limits, got {self.limits!r}")
        if self.group is not None and not isinstance(self.group, GroupPolicy):
            raise ValidationError(f"QueueSpec.group must be a GroupPolicy, got {self.group!r}")
        if (
            isinstance(self.snooze_limit, bool)
            or not isinstance(self.snooze_limit, int)
            or self.snooze_limit < 0
        ):
            raise ValidationError(
                f"QueueSpec.snooze_limit must be an int >= 0, got {self.snooze_limit!r}"
            )
        self._check_events()

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

    def flow_params(self) -> dict[str, Any]:
        """The parameters of the ``queue_flow_set`` statement."""
        rate, group = self.limits.rate, self.group
        return {
            "name": self.name,
            "active_limit": self.limits.active,
            "rate_count": None if rate is None else rate.count,
            "rate_period": None if rate is None else rate.per,
            "group_active": None if group is None else group.active,
            "group_fifo": False if group is None else group.fifo,
            "snooze_limit": self.snooze_limit,
        }

    # -- events --

    def _check_events(self) -> None:
        if isinstance(self.subscribe, str) or not isinstance(self.subscribe, tuple | list):
            raise ValidationError(
                f'queue "{self.name}": subscribe must be a tuple of "domain.event" strings, '
                f"got {self.subscribe!r}"
            )
        object.__setattr__(self, "subscribe", tuple(self.subscribe))
        for entry in self.subscribe:
            split_subscription(self.name, entry)
        object.__setattr__(self, "remote_subscriptions", tuple(self.remote_subscriptions))
        for remote in self.remote_subscriptions:
            if not isinstance(remote, RemoteSubscription):
                raise ValidationError(
                    f'queue "{self.name}": remote_subscriptions must hold RemoteSubscription '
                    f"objects, got {remote!r}"
                )
            if remote.event in self.subscribe:
                raise ValidationError(
                    f'queue "{self.name}": "{remote.event}" is both in subscribe and in '
                    "remote_subscriptions; keep one"
                )
        if self.archive is not None:
            _check_duration("QueueSpec", "archive", self.archive, positive=True)
        if not isinstance(self.schedules, tuple | list):
            raise ValidationError(f'queue "{self.name}": schedules must be a tuple of Schedule')
        object.__setattr__(self, "schedules", tuple(self.schedules))
        names: set[str] = set()
        for schedule in self.schedules:
            if not isinstance(schedule, Schedule):
                raise ValidationError(
                    f'queue "{self.name}": schedules must hold Schedule objects, got {schedule!r}'
                )
            if schedule.queue != self.name:
                raise ValidationError(
                    f'queue "{self.name}": schedule "{schedule.name}" sends to queue '
                    f'"{schedule.queue}"; declare it in that queue\'s QueueSpec'
                )
            if schedule.name in names:
                raise ValidationError(
                    f'queue "{self.name}": schedule "{schedule.name}" is declared twice'
                )
            names.add(schedule.name)

    def subscriptions(self) -> list[tuple[str, str]]:
        """``subscribe`` as (domain, event) pairs."""
        return [split_subscription(self.name, entry) for entry in self.subscribe]


_MAX_EVENT = 200


def split_subscription(queue: str, entry: object) -> tuple[str, str]:
    """``"billing.invoice-created"`` -> ``("billing", "invoice-created")``: the publishing
    domain (the part of a queue name before its first dot) and the event."""
    if not isinstance(entry, str) or "." not in entry:
        raise ValidationError(
            f'queue "{queue}": subscribe entry {entry!r} must be "domain.event", '
            'e.g. "billing.invoice-created"'
        )
    domain, event = entry.split(".", 1)
    if not domain or not event or len(entry) > _MAX_EVENT or "\x00" in entry:
        raise ValidationError(
            f'queue "{queue}": subscribe entry {entry!r} must be "domain.event" with both '
            f"parts non-empty (at most {_MAX_EVENT} characters, no NUL)"
        )
    return domain, event
