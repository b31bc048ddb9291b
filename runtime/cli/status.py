"""``queues status``: the per-queue table of job counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..jobs import QueueStats

__all__ = ["render_status"]


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


def render_status(stats: Sequence[QueueStats], *, schema: str = "queues") -> str:
    """The ``queues status`` table: one row per queue, counts by state, oldest waiting job."""
    if not stats:
        return f"no queues in schema {schema!r} (create them with `create_queues(boss)`)"
    rows = [
        [
            s.queue,
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
