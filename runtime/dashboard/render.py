"""Rendering: the Jinja2 environment of the dashboard's templates and the filters they use.

Autoescape is on for every template, so whatever a job holds (``<script>`` in its payload, an
error message with markup) is shown as text. Values reach the templates as data; no filter
marks anything safe.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import jinja2

from ..client.overview import Count
from ..jobs import JobState

__all__ = ["TEMPLATES", "environment"]

TEMPLATES: Final = Path(__file__).parent / "templates"
#: Longest JSON text shown for one value (an envelope, an output); the rest is cut, with a note.
MAX_JSON_CHARS: Final = 200_000


def environment() -> jinja2.Environment:
    """The template environment: autoescaped, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=count,
        number=number,
        ts=timestamp,
        ago=ago,
        duration=duration,
        pretty=pretty_json,
    )
    env.globals.update(STATES=[state.value for state in JobState])
    return env


def number(value: int | float) -> str:
    return f"{value:,}"


def count(value: Count) -> str:
    """``1,234`` exact, ``≈ 1,234`` estimated from statistics, ``≥ 1,000`` a lower bound."""
    if value.kind == "estimate":
        return f"≈ {value.value:,}"
    if value.kind == "at_least":
        return f"≥ {value.value:,}"
    return f"{value.value:,}"


def timestamp(value: datetime | None) -> str:
    """A moment in UTC, to the second (``-`` for none)."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(value: timedelta | float | None) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.0 d`` (``-`` for none)."""
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def ago(value: datetime | None, now: datetime) -> str:
    """How long before ``now`` (``in ...`` when after it)."""
    if value is None:
        return "-"
    delta = (now - value).total_seconds()
    if delta >= 0:
        return f"{duration(delta)} ago"
    return f"in {duration(-delta)}"


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON, cut past ``MAX_JSON_CHARS`` characters."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    if len(text) > MAX_JSON_CHARS:
        return text[:MAX_JSON_CHARS] + f"\n... ({len(text) - MAX_JSON_CHARS:,} more characters)"
    return text
