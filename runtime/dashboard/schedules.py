"""The schedules page's data: each schedule with its rule and next run, when the runtime has
schedules (issue 11); otherwise an empty listing that says why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..client import Boss

__all__ = ["ScheduleLine", "ScheduleListing", "read_schedules"]


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    name: str
    queue: str
    event: str | None
    #: The cron expression (with its time zone) or the interval, as written.
    rule: str
    next_run: datetime | None
    last_run: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleListing:
    schedules: list[ScheduleLine] = field(default_factory=list)
    #: Shown when there is nothing to list: why.
    note: str = ""


async def read_schedules(boss: Boss) -> ScheduleListing:
    """Every schedule of ``boss``'s schema, by name."""
    return ScheduleListing(
        note="no schedules: this version of the runtime has no schedules API yet"
    )
