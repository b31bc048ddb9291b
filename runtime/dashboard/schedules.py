"""The schedules page's data: each schedule with its rule, its last slot and its next run
(``Boss.schedules``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..client import Boss
from .render import duration

__all__ = ["ScheduleLine", "ScheduleListing", "read_schedules"]


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    name: str
    queue: str
    event: str | None
    #: The cron expression with its time zone, or the interval.
    rule: str
    catch_up: str
    next_run: datetime | None
    last_run: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleListing:
    schedules: list[ScheduleLine] = field(default_factory=list)
    #: Shown when there is nothing to list.
    note: str = ""


async def read_schedules(boss: Boss) -> ScheduleListing:
    """Every schedule of ``boss``'s schema, by name."""
    lines = []
    for info in await boss.schedules():
        schedule = info.schedule
        if schedule.cron is not None:
            rule = f"cron {schedule.cron} ({schedule.timezone})"
        else:
            rule = f"every {duration(schedule.every)}"
        lines.append(
            ScheduleLine(
                name=schedule.name,
                queue=schedule.queue,
                event=schedule.event,
                rule=rule,
                catch_up=schedule.catch_up,
                next_run=info.next_run,
                last_run=info.last_slot,
            )
        )
    return ScheduleListing(lines, "" if lines else "No schedules.")
