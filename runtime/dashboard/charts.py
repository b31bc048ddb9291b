"""The charts as geometry for inline SVG: bars of jobs finished per minute and a line of the
oldest waiting job's age, over the last hour.

Pure: the templates draw what these functions compute (no JavaScript, no image files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..client.overview import QueueActivity

__all__ = [
    "Bar",
    "Chart",
    "combined",
    "sparkline",
    "throughput_chart",
    "wait_chart",
]

_LEFT = 46.0  # room for the y labels
_BOTTOM = 18.0  # room for the x labels
_TOP = 8.0

Box = tuple[float, float, float, float]  # the plotting area: left, top, right, bottom


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    #: CSS class: "ok" (completed) or "bad" (failed or cancelled).
    kind: str
    #: Hover text (an SVG <title>).
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: its size, what to draw, and its axis labels."""

    title: str
    width: float
    height: float
    bars: list[Bar] = field(default_factory=list)
    #: A polyline's points ("x,y x,y ..."), and the same closed down to the axis as an area.
    line: str = ""
    area: str = ""
    #: (y, label) of the horizontal grid lines; (x, label) under the axis.
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    box: Box = (0.0, 0.0, 0.0, 0.0)
    summary: str = ""
    empty: bool = True


def combined(activities: Sequence[QueueActivity], minutes: list[datetime]) -> QueueActivity:
    """All queues as one: jobs summed per minute, the oldest wait the largest of any queue."""
    completed = [0] * len(minutes)
    failed = [0] * len(minutes)
    oldest = [0.0] * len(minutes)
    for activity in activities:
        for i in range(len(minutes)):
            completed[i] += activity.completed[i]
            failed[i] += activity.failed[i]
            oldest[i] = max(oldest[i], activity.oldest_wait[i])
    return QueueActivity(
        queue="all queues",
        minutes=minutes,
        completed=completed,
        failed=failed,
        oldest_wait=oldest,
        partial=any(activity.partial for activity in activities),
    )


def _bar(x: float, y: float, width: float, height: float, kind: str, title: str) -> Bar:
    return Bar(round(x, 1), round(y, 1), round(width, 1), round(height, 1), kind, title)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10 * power


def _box(width: float, height: float) -> Box:
    return (_LEFT, _TOP, width - 6.0, height - _BOTTOM)


def _x_ticks(minutes: list[datetime], box: Box) -> list[tuple[float, str]]:
    left, _, right, _ = box
    step = (right - left) / max(len(minutes), 1)
    ticks = []
    for i, minute in enumerate(minutes):
        if i % 15 == 0 or i == len(minutes) - 1:
            ticks.append((round(left + step * i + step / 2, 1), minute.strftime("%H:%M")))
    return ticks


def _y_ticks(top_value: float, box: Box) -> list[tuple[float, str]]:
    _, top, _, bottom = box
    return [
        (round(bottom - (bottom - top) * fraction, 1), _short_number(top_value * fraction))
        for fraction in (0.0, 0.5, 1.0)
    ]


def _short_number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if value >= 1_000:
        return f"{value / 1_000:.3g}k"
    return f"{value:.3g}" if value % 1 else f"{int(value)}"


def throughput_chart(
    activity: QueueActivity, *, width: float = 600.0, height: float = 150.0
) -> Chart:
    """Completed (and, stacked above, failed or cancelled) jobs per minute."""
    minutes = activity.minutes
    box = _box(width, height)
    left, top, right, bottom = box
    totals = activity.finished
    peak = _nice_ceiling(max(totals, default=0))
    step = (right - left) / max(len(minutes), 1)
    scale = (bottom - top) / peak
    bars: list[Bar] = []
    for i, minute in enumerate(minutes):
        done, bad = activity.completed[i], activity.failed[i]
        x = left + step * i + 0.5
        when = minute.strftime("%H:%M")
        if done:
            h = done * scale
            bars.append(_bar(x, bottom - h, step - 1.0, h, "ok", f"{when}: {done} completed"))
        if bad:
            h = bad * scale
            y = bottom - done * scale - h
            bars.append(_bar(x, y, step - 1.0, h, "bad", f"{when}: {bad} failed or cancelled"))
    total, failures = sum(activity.completed), sum(activity.failed)
    summary = (
        f"{total:,} completed, {failures:,} failed or cancelled in the last "
        f"{len(minutes)} minutes ({total / max(len(minutes), 1):,.1f} per minute)"
    )
    if activity.partial:
        summary += "; more finished than were read, the early minutes undercount"
    return Chart(
        title="Jobs finished per minute",
        width=width,
        height=height,
        bars=bars,
        y_ticks=_y_ticks(peak, box),
        x_ticks=_x_ticks(minutes, box),
        box=box,
        summary=summary,
        empty=not any(totals),
    )


def wait_chart(activity: QueueActivity, *, width: float = 600.0, height: float = 150.0) -> Chart:
    """The age of the oldest waiting job at the end of each minute, in minutes or seconds."""
    minutes = activity.minutes
    box = _box(width, height)
    left, top, right, bottom = box
    ages = activity.oldest_wait
    worst = max(ages, default=0.0)
    unit, divisor = ("min", 60.0) if worst >= 120 else ("s", 1.0)
    peak = _nice_ceiling(worst / divisor)
    step = (right - left) / max(len(minutes), 1)
    points = []
    for i, age in enumerate(ages):
        x = left + step * i + step / 2
        y = bottom - (bottom - top) * (age / divisor) / peak
        points.append(f"{x:.1f},{y:.1f}")
    line = " ".join(points)
    area = ""
    if points:
        first_x = left + step / 2
        last_x = left + step * (len(ages) - 1) + step / 2
        area = f"{first_x:.1f},{bottom:.1f} {line} {last_x:.1f},{bottom:.1f}"
    ticks = [(y, f"{label}{unit}") for y, label in _y_ticks(peak, box)]
    now_age = ages[-1] if ages else 0.0
    summary = (
        f"oldest waiting job now: {_age(now_age)}; the worst in the last {len(minutes)} "
        f"minutes: {_age(worst)}"
    )
    return Chart(
        title="Age of the oldest waiting job",
        width=width,
        height=height,
        line=line,
        area=area,
        y_ticks=ticks,
        x_ticks=_x_ticks(minutes, box),
        box=box,
        summary=summary,
        empty=not any(ages),
    )


def sparkline(values: Sequence[float], *, width: float = 120.0, height: float = 22.0) -> str:
    """The points of a small line of ``values`` scaled to fit (for a table cell)."""
    if not values:
        return ""
    peak = max(max(values), 1e-9)
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (height - 2) * value / peak:.1f}"
        for i, value in enumerate(values)
    )


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "none waiting"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
