"""Pydantic models of ``queues.yaml`` (the README's catalogue format) and the structural checks.

``load_catalogue`` reads the file, validates its shape with these models, then runs the
cross-checks of ``validate``; every problem becomes one ``CatalogueError`` line.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from .errors import CatalogueError, CatalogueInvalid, Path, suggest
from .source import Source, load_source, parse_source

__all__ = [
    "NEVER",
    "Catalogue",
    "Defaults",
    "Domain",
    "EffectiveRetry",
    "Event",
    "GroupConfig",
    "LimitsConfig",
    "Queue",
    "RetryConfig",
    "ScheduleConfig",
    "format_duration",
    "load_catalogue",
    "parse_catalogue",
    "parse_duration",
    "parse_rate",
]

_DURATION = re.compile(r"(\d{1,9})(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_HINT = "durations are written like 500ms, 30s, 15m, 2h or 7d"


def parse_duration(value: object) -> timedelta:
    """``"500ms" | "30s" | "15m" | "2h" | "7d"`` -> ``timedelta``; anything else raises."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(_DURATION_HINT)
    text = str(value).strip()
    if text.startswith("-"):
        raise ValueError(f'negative duration "{text}"')
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f'invalid duration "{text}": {_DURATION_HINT}')
    amount, unit = int(match[1]), match[2]
    if unit == "ms":
        return timedelta(milliseconds=amount)
    return timedelta(seconds=amount * _UNITS[unit])


def format_duration(value: timedelta) -> str:
    """Inverse of ``parse_duration`` with the largest exact unit."""
    ms = round(value.total_seconds() * 1000)
    for unit, factor in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % factor == 0:
            return f"{ms // factor}{unit}"
    return f"{ms}ms"


def _bounded(low: timedelta, high: timedelta) -> AfterValidator:
    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(
                f"{format_duration(value)} is out of range: "
                f"allowed {format_duration(low)} to {format_duration(high)}"
            )
        return value

    return AfterValidator(check)


#: ``max_wait: never`` (no limit), kept apart from "not set" (inherit the default).
NEVER = timedelta(0)


def _parse_max_wait(value: object) -> timedelta:
    """A duration from 1s to 3650d, or ``never`` (``NEVER``)."""
    if value == "never":
        return NEVER
    try:
        parsed = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or never (no limit)") from None
    if not timedelta(seconds=1) <= parsed <= timedelta(days=3650):
        raise ValueError(f"{format_duration(parsed)} is out of range: allowed 1s to 3650d")
    return parsed


_Duration = BeforeValidator(parse_duration)
RetryDelay = Annotated[timedelta, _Duration, _bounded(timedelta(0), timedelta(days=1))]
MaxDelay = Annotated[timedelta, _Duration, _bounded(timedelta(seconds=1), timedelta(days=7))]
ExpireIn = Annotated[timedelta, _Duration, _bounded(timedelta(seconds=1), timedelta(days=1))]
Retention = Annotated[timedelta, _Duration, _bounded(timedelta(minutes=1), timedelta(days=3650))]
MaxWait = Annotated[timedelta, BeforeValidator(_parse_max_wait)]
Archive = Annotated[timedelta, _Duration, _bounded(timedelta(minutes=1), timedelta(days=3650))]
Every = Annotated[timedelta, _Duration, _bounded(timedelta(seconds=1), timedelta(days=366))]
RetryLimit = Annotated[StrictInt, Field(ge=0, le=100)]
Text = Annotated[StrictStr, Field(max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class RetryConfig(_Strict):
    """``retry:`` of ``defaults`` or of one queue; unset fields inherit."""

    limit: RetryLimit | None = None
    delay: RetryDelay | None = None
    backoff: Literal["fixed", "exponential"] | None = None
    max_delay: MaxDelay | None = None
    jitter: StrictBool | None = None


class EffectiveRetry(_Strict):
    """A queue's retry policy after inheritance."""

    limit: int = 3
    delay: timedelta = timedelta(seconds=5)
    backoff: Literal["fixed", "exponential"] = "exponential"
    max_delay: timedelta = timedelta(minutes=10)
    jitter: bool = True

    def merged(self, override: RetryConfig | None) -> EffectiveRetry:
        if override is None:
            return self
        values = {k: v for k, v in override.model_dump().items() if v is not None}
        return self.model_copy(update=values)


class Defaults(_Strict):
    retry: RetryConfig = RetryConfig()
    expire_in: ExpireIn = timedelta(minutes=15)
    retention: Retention = timedelta(days=7)
    max_wait: MaxWait = NEVER


class Event(_Strict):
    description: Text = ""
    entity_id: StrictStr | None = None
    payload: dict[str, Any]
    example: dict[str, Any] | None = None


# -- flow control --

_RATE = re.compile(r"(\d{1,7})/(\d{0,9})(ms|s|m|h|d)")
_RATE_HINT = "write count/duration, like 100/1s, 10/1m or 5/500ms"
_RATE_PERIOD = (timedelta(milliseconds=100), timedelta(days=7))
_RATE_COUNT_MAX = 1_000_000


def parse_rate(value: object) -> tuple[int, timedelta]:
    """``"100/1s"`` -> ``(100, timedelta(seconds=1))``; ``"100/s"`` is ``"100/1s"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f'invalid rate "{value}": {_RATE_HINT}')
    if not isinstance(value, str):
        raise ValueError(f"expected a rate: {_RATE_HINT}")
    text = value.strip().replace(" ", "")
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f'invalid rate "{value}": {_RATE_HINT}')
    count = int(match[1])
    period = parse_duration(f"{match[2] or 1}{match[3]}")
    if not 1 <= count <= _RATE_COUNT_MAX:
        raise ValueError(f'rate "{value}": the count must be 1 to {_RATE_COUNT_MAX:,}')
    low, high = _RATE_PERIOD
    if not low <= period <= high:
        raise ValueError(
            f'rate "{value}": the period must be {format_duration(low)} to {format_duration(high)}'
        )
    return count, period


def _rate_text(value: object) -> str:
    count, period = parse_rate(value)
    return f"{count}/{format_duration(period)}"


RateText = Annotated[str, BeforeValidator(_rate_text)]


class LimitsConfig(_Strict):
    """``limits:`` of a queue, across every process: ``active`` jobs at once (claimed-ahead
    ones included), ``rate`` job starts per period."""

    active: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    rate: RateText | None = None

    @model_validator(mode="after")
    def _something(self) -> LimitsConfig:
        if self.active is None and self.rate is None:
            raise ValueError("limits sets nothing: give active, rate or both (or drop limits)")
        return self


class GroupConfig(_Strict):
    """``group:`` of a queue: per ``group_key`` given at enqueue, at most ``active`` jobs at
    once; with ``fifo``, in send order (a retrying job holds its key)."""

    active: Annotated[StrictInt, Field(ge=1, le=10_000)] = 1
    fifo: StrictBool = False


class Subscription(_Strict):
    """A ``subscribe`` entry written as a mapping: the event and how it is delivered."""

    event: StrictStr
    #: ``atomic`` (default): the copy is written by the send's own statement, which needs
    #: both domains on one database. ``at-least-once``: across databases, through an outbox
    #: on the publisher's database, relayed by the subscriber's workers.
    delivery: Literal["atomic", "at-least-once"] = "atomic"


def _subscription_mapping(value: object) -> object:
    """A bare ``"domain.event"`` is the mapping ``{event: "domain.event"}``."""
    return {"event": value} if isinstance(value, str) else value


SubscribeEntry = Annotated[Subscription, BeforeValidator(_subscription_mapping)]


class Queue(_Strict):
    description: Text = ""
    retry: RetryConfig | None = None
    expire_in: ExpireIn | None = None
    retention: Retention | None = None
    max_wait: MaxWait | None = None
    dead_letter: StrictStr | None = None
    limits: LimitsConfig | None = None
    group: GroupConfig | None = None
    #: Events of other queues this queue also receives, as "domain.event" (fan-out), or as
    #: ``{event: "domain.event", delivery: at-least-once}``.
    subscribe: list[SubscribeEntry] = Field(default_factory=list)
    #: How long finished jobs stay in the archive after retention; unset: deleted.
    archive: Archive | None = None
    events: dict[str, Event] = Field(default_factory=dict)

    def subscribed_events(self) -> list[str]:
        """``subscribe`` as "domain.event" strings."""
        return [entry.event for entry in self.subscribe]


class ScheduleConfig(_Strict):
    """``schedules.<name>`` of a domain: an event of the domain sent on a cron or an interval."""

    description: Text = ""
    event: StrictStr
    cron: StrictStr | None = None
    every: Every | None = None
    timezone: StrictStr | None = None
    catch_up: Literal["latest", "all", "none"] = "latest"
    payload: dict[str, Any] = Field(default_factory=dict)


class Domain(_Strict):
    description: Text = ""
    #: The domain's own PostgreSQL server, by name: its DSN comes from QUEUES_DSN_<NAME> at
    #: run time (else the default one). Unset: the default database.
    database: StrictStr | None = None
    defs: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="$defs")
    queues: dict[str, Queue]
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)


class Catalogue(_Strict):
    version: Literal[1]
    defaults: Defaults = Defaults()
    domains: dict[str, Domain]


def load_catalogue(path: FilePath, display_name: str | None = None) -> tuple[Catalogue, Source]:
    """Read, validate and cross-check ``path``. Raises ``CatalogueInvalid`` with every error.

    Errors name the file as ``display_name`` (default: the path as given).
    """
    return _checked(load_source(path, display_name))


def parse_catalogue(text: str, file: str = "queues.yaml") -> tuple[Catalogue, Source]:
    """Like ``load_catalogue`` for YAML text (tests, tools)."""
    return _checked(parse_source(text, file))


def _checked(source: Source) -> tuple[Catalogue, Source]:
    from .salvage import salvage  # local: both import this module
    from .validate import cross_check

    if not isinstance(source.data, dict):
        raise CatalogueInvalid([source.error((), "the catalogue must be a mapping")])
    try:
        catalogue = Catalogue.model_validate(source.data)
    except PydanticValidationError as exc:
        errors = _shape_errors(source, exc)
        salvaged = salvage(source.data)  # report what the cross-checks find, too
        if salvaged is not None:
            partial, gaps = salvaged
            errors += cross_check(partial, source, gaps)
        raise CatalogueInvalid(errors) from None
    errors = cross_check(catalogue, source)
    if errors:
        raise CatalogueInvalid(errors)
    return catalogue, source


_MODELS: dict[str, type[BaseModel]] = {
    "": Catalogue,
    "defaults": Defaults,
    "retry": RetryConfig,
    "domain": Domain,
    "queue": Queue,
    "event": Event,
    "limits": LimitsConfig,
    "group": GroupConfig,
    "schedule": ScheduleConfig,
    "subscription": Subscription,
}


def _model_at(loc: Path) -> type[BaseModel]:
    """Which catalogue model a pydantic location points into (for key suggestions)."""
    parts = [p for p in loc if isinstance(p, str)]
    if parts[:1] == ["defaults"]:
        return RetryConfig if "retry" in parts else Defaults
    depth = len(loc)
    if depth >= 1 and loc[0] == "domains":
        if depth <= 2:
            return Domain
        if loc[2] == "schedules":
            return Domain if depth == 3 else ScheduleConfig
        if depth <= 4:
            return Queue
        if loc[4] == "retry":
            return RetryConfig
        if loc[4] == "limits":
            return LimitsConfig
        if loc[4] == "group":
            return GroupConfig
        if loc[4] == "subscribe":
            return Subscription
        return Event if loc[4] == "events" and depth >= 6 else Queue
    return Catalogue


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _shape_errors(source: Source, exc: PydanticValidationError) -> list[CatalogueError]:
    errors: list[CatalogueError] = []
    for item in exc.errors(include_url=False, include_context=True):
        loc: Path = tuple(p for p in item["loc"] if isinstance(p, str | int))
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(loc[:-1])
            message = f'unknown key "{key}"{suggest(key, _keys(model))}'
        elif kind == "missing":
            message = f'missing required key "{loc[-1]}"'
        elif kind in {"dict_type", "model_type"}:
            message = "expected a mapping"
        elif kind == "literal_error" and loc == ("version",):
            message = "unsupported catalogue version; expected 1"
        elif kind.startswith("string_type"):
            message = "expected a string"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        errors.append(source.error(loc, message))
    return errors
