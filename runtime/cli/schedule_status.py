"""The schedules table of ``queues status``: each schedule's rule and its next run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client.events import ScheduleInfo

__all__ = ["render_schedules"]

_COLUMNS = ("schedule", "queue", "event", "rule", "catch up", "last slot", "next run")


def render_schedules(schedules: Sequence[ScheduleInfo]) -> str:
    """One row per schedule; times in UTC. Empty when there is no schedule."""
    if not schedules:
        return ""
    rows = [
        [
            info.name,
            info.schedule.queue,
            info.schedule.event or "-",
            info.schedule.rule,
            info.schedule.catch_up,
            _time(info.last_slot),
            _time(info.next_run),
        ]
        for info in schedules
    ]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(_COLUMNS), rule, *(line(row) for row in rows)])


def _time(at: datetime | None) -> str:
    if at is None:
        return "-"
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if at.tzinfo else at.isoformat()
