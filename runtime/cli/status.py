"""``queues status``: the per-queue table of job counts."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client.events import ScheduleInfo
    from ..jobs import QueueStats

__all__ = ["render_status", "status_json"]


_STATUS_COLUMNS = (
    "queue",
    "created",
    "retry",
    "active",
    "completed",
    "failed",
    "dead-lettered",
    "oldest waiting",
)


def render_status(
    stats: Sequence[QueueStats], *, schema: str = "queues", paused: AbstractSet[str] = frozenset()
) -> str:
    """The ``queues status`` table: one row per queue, counts by state, oldest waiting job; a
    paused queue's name is followed by ``(paused)``."""
    if not stats:
        return f"no queues in schema {schema!r} (create them with `create_queues(boss)`)"
    rows = [
        [
            f"{s.queue} (paused)" if s.queue in paused else s.queue,
            str(s.created),
            str(s.retry),
            str(s.active),
            str(s.completed),
            str(s.failed),
            str(s.dead_lettered),
            _age(s.oldest_waiting),
        ]
        for s in sorted(stats, key=lambda s: s.queue)
    ]
    widths = [
        max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(_STATUS_COLUMNS)
    ]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(_STATUS_COLUMNS), rule, *(line(row) for row in rows)])


def status_json(
    stats: Sequence[QueueStats],
    schedules: Sequence[ScheduleInfo],
    paused: AbstractSet[str],
    warning: str | None,
) -> dict[str, Any]:
    """``queues status --json``: the same facts as the tables, as data."""
    return {
        "queues": [
            {
                "queue": s.queue,
                "paused": s.queue in paused,
                "created": s.created,
                "retry": s.retry,
                "active": s.active,
                "completed": s.completed,
                "cancelled": s.cancelled,
                "failed": s.failed,
                "dead_lettered": s.dead_lettered,
                "oldest_waiting_s": None
                if s.oldest_waiting is None
                else round(s.oldest_waiting.total_seconds(), 3),
            }
            for s in sorted(stats, key=lambda s: s.queue)
        ],
        "schedules": [
            {
                "name": info.name,
                "queue": info.schedule.queue,
                "event": info.schedule.event,
                "cron": info.schedule.cron,
                "every_s": None
                if info.schedule.every is None
                else info.schedule.every.total_seconds(),
                "timezone": info.schedule.timezone,
                "last_slot": None if info.last_slot is None else info.last_slot.isoformat(),
                "next_run": info.next_run.isoformat(),
            }
            for info in schedules
        ],
        "warnings": [] if warning is None else [warning],
    }


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = max(age.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
