"""Schedules: a job on a queue at every slot of a cron expression (in a time zone) or of a fixed
interval, and the pure computation of those slots.

Slots are instants (aware datetimes, returned in UTC). A cron schedule's slots follow its time
zone's rules, daylight-saving transitions included, the way Debian's cron does (through
``cronsim``): a time that a transition skips fires right after the jump, a time it repeats
fires once. An ``every`` schedule's slots are the multiples of its interval since the Unix
epoch, so every process computes the same slots without talking to the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import ValidationError

__all__ = [
    "CATCH_UP",
    "MISSED_AFTER",
    "CatchUp",
    "Schedule",
    "SlotPlan",
    "StoredSchedule",
    "schedule_of",
    "seconds_until",
]

CatchUp = Literal["latest", "all", "none"]
#: What a schedule does with slots missed while no process ran: fire only the latest of them,
#: fire each of them, or fire none.
CATCH_UP: Final = ("latest", "all", "none")
#: A slot not fired this long after its time was missed (``catch_up: none`` skips it).
MISSED_AFTER: Final = timedelta(seconds=10)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_SECOND: Final = timedelta(seconds=1)
_INT4: Final = 2**31
_MAX_NAME: Final = 200


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f'unknown time zone "{name}": use an IANA name such as UTC or Europe/Paris'
        ) from None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job on ``queue`` at every slot of ``cron`` (5 fields, or 6 with seconds first, in
    ``timezone``) or of ``every``.

    With ``event``, the job is that event's envelope with ``data`` as its payload (what a
    generated worker routes); without, ``data`` is the job's data as it is. ``catch_up`` says
    what happens to slots missed while no worker process ran: ``latest`` fires the most recent
    one only, ``all`` fires each (in order), ``none`` fires none of them.
    """

    name: str
    queue: str
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)
    event: str | None = None
    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    catch_up: CatchUp = "latest"
    priority: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name) > _MAX_NAME:
            raise ValidationError(
                f"Schedule.name must be a non-empty str of at most {_MAX_NAME} characters, "
                f"got {self.name!r}"
            )
        if "\x00" in self.name:
            raise ValidationError("Schedule.name contains a NUL character (\\u0000): remove it")
        if not isinstance(self.data, Mapping):
            raise ValidationError(f'schedule "{self.name}": data must be a mapping')
        if self.event is not None and (not isinstance(self.event, str) or not self.event):
            raise ValidationError(f'schedule "{self.name}": event must be a non-empty str')
        if (self.cron is None) == (self.every is None):
            raise ValidationError(
                f'schedule "{self.name}": give cron= (e.g. "0 3 * * *") or every= '
                "(a timedelta), one of the two"
            )
        if self.cron is not None:
            if not isinstance(self.cron, str):
                raise ValidationError(f'schedule "{self.name}": cron must be a str')
            try:
                CronSim(self.cron, datetime(2000, 1, 1, tzinfo=UTC))
            except CronSimError as exc:
                raise ValidationError(
                    f'schedule "{self.name}": invalid cron expression "{self.cron}" ({exc}): '
                    'write 5 fields, minute hour day-of-month month day-of-week, e.g. "0 3 * * *"'
                ) from None
        if self.every is not None and (
            not isinstance(self.every, timedelta) or self.every < _SECOND
        ):
            raise ValidationError(
                f'schedule "{self.name}": every must be a timedelta of 1 second or more, '
                f"got {self.every!r}"
            )
        if not isinstance(self.timezone, str):
            raise ValidationError(f'schedule "{self.name}": timezone must be a str')
        _zone(self.timezone)
        if self.every is not None and self.timezone != "UTC":
            raise ValidationError(
                f'schedule "{self.name}": timezone applies to cron schedules only (every= counts '
                "from the Unix epoch)"
            )
        if self.catch_up not in CATCH_UP:
            raise ValidationError(
                f'schedule "{self.name}": catch_up must be one of latest, all, none; '
                f"got {self.catch_up!r}"
            )
        if (
            isinstance(self.priority, bool)
            or not isinstance(self.priority, int)
            or not -_INT4 <= self.priority < _INT4
        ):
            raise ValidationError(
                f'schedule "{self.name}": priority must be a 32-bit int, got {self.priority!r}'
            )

    @property
    def rule(self) -> str:
        """How the schedule repeats, as ``queues status`` shows it."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        assert self.every is not None
        return f"every {self.every}"

    # -- slots ---------------------------------------------------------------------------

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (an aware datetime)."""
        if self.every is not None:
            step = self.every // _US
            count = (after - _EPOCH) // _US // step + 1
            return _EPOCH + count * step * _US
        assert self.cron is not None
        start = after.astimezone(_zone(self.timezone))
        return next(CronSim(self.cron, start)).astimezone(UTC)

    def latest_slot(self, until: datetime) -> datetime | None:
        """The last slot at or before ``until``; None when there is none within 50 years."""
        if self.every is not None:
            step = self.every // _US
            count = (until - _EPOCH) // _US // step
            return _EPOCH + count * step * _US
        assert self.cron is not None
        # reverse iteration ticks one second back first: start one second after `until`
        start = (until.replace(microsecond=0) + _SECOND).astimezone(_zone(self.timezone))
        try:
            return next(CronSim(self.cron, start, reverse=True)).astimezone(UTC)
        except StopIteration:
            return None

    def slots(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """The slots in (``after``, ``until``], oldest first, at most ``limit`` of them."""
        found: list[datetime] = []
        if self.every is not None:
            slot = self.next_slot(after)
            while slot <= until and len(found) < limit:
                found.append(slot)
                slot += self.every
            return found
        assert self.cron is not None
        for slot in CronSim(self.cron, after.astimezone(_zone(self.timezone))):
            at = slot.astimezone(UTC)
            if at > until or len(found) >= limit:
                break
            found.append(at)
        return found

    def plan(self, done_until: datetime, now: datetime, limit: int) -> SlotPlan:
        """What to do at ``now`` for a schedule whose slots up to ``done_until`` are done:
        the slots to fire (oldest first, at most ``limit``), the slot to mark done without
        firing (``skip_to``), and when the next slot after those falls (``next_at``)."""
        first = self.next_slot(done_until)
        if first > now:
            return SlotPlan((), None, first)
        if self.catch_up == "all":
            fire = self.slots(done_until, now, limit)
            return SlotPlan(tuple(fire), None, self.next_slot(fire[-1]))
        latest = max(first, self.latest_slot(now) or first)
        following = self.next_slot(latest)
        if self.catch_up == "none" and now - latest > MISSED_AFTER:
            return SlotPlan((), latest, following)
        return SlotPlan((latest,), None, following)


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """The result of ``Schedule.plan``."""

    fire: tuple[datetime, ...]
    skip_to: datetime | None
    next_at: datetime


def seconds_until(at: datetime, now: datetime) -> float:
    """Seconds from ``now`` to ``at`` (0 when past), rounded up to the millisecond."""
    return max(0.0, math.ceil((at - now).total_seconds() * 1000) / 1000)


class StoredSchedule(Protocol):
    """A schedule as the database holds it (``db.rows.ScheduleRow``)."""

    @property
    def name(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def event(self) -> str | None: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def cron(self) -> str | None: ...
    @property
    def every(self) -> timedelta | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def catch_up(self) -> str: ...
    @property
    def priority(self) -> int: ...


def schedule_of(row: StoredSchedule) -> Schedule:
    """The ``Schedule`` a stored row describes (``ValidationError`` if it is not valid here)."""
    catch_up: CatchUp = (
        "all" if row.catch_up == "all" else "none" if row.catch_up == "none" else "latest"
    )
    return Schedule(
        name=row.name,
        queue=row.queue,
        data=row.data,
        event=row.event,
        cron=row.cron,
        every=row.every,
        timezone=row.timezone,
        catch_up=catch_up,
        priority=row.priority,
    )
