"""The flow options of a send (group key, throttle, debounce, per-job retry limit and expiry),
validated, and the rows and batches that carry them to their statements.

Pure (no I/O), shared by the async and the sync client. A send without any of them stays a
plain ``Row`` on the plain statements (and the coalesced path): ``flow_options`` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from ..db.statements import Statement, Statements
from ..errors import ValidationError
from .requests import MAX_SINGLETON_KEY, Batch, EventBatch, EventRow, Row, validate_key

__all__ = [
    "FlowBatch",
    "FlowOptions",
    "FlowRow",
    "batch_flow_options",
    "flow_options",
    "with_batch_flow",
    "with_flow",
]

#: Longest group key accepted (as for singleton keys).
MAX_GROUP_KEY: Final = MAX_SINGLETON_KEY


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """What a send asks for beyond the plain options; see ``Boss.send``."""

    group_key: str | None = None
    retry_limit: int | None = None
    expire_in: timedelta | None = None
    throttle: timedelta | None = None
    debounce: timedelta | None = None

    def params(self) -> dict[str, Any]:
        """The job columns the flow statements take."""
        return {
            "group_key": self.group_key,
            "retry_limit": self.retry_limit,
            "expire_in": self.expire_in,
        }

    @property
    def window(self) -> timedelta | None:
        return self.throttle if self.throttle is not None else self.debounce


def _window(name: str, value: object) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise ValidationError(f"{name} must be a timedelta, got {value!r}")
    if value <= timedelta(0):
        raise ValidationError(f"{name} must be positive, got {value}")
    return value


def _group_key(key: object) -> str | None:
    return validate_key("group_key", key, MAX_GROUP_KEY)


def flow_options(
    *,
    group_key: object = None,
    throttle: object = None,
    debounce: object = None,
    retry_limit: object = None,
    expire_in: object = None,
    singleton_key: object = None,
    start_after: object = None,
) -> FlowOptions | None:
    """The flow options of one send, checked; None when it has none (a plain send)."""
    if (
        group_key is None
        and throttle is None
        and debounce is None
        and retry_limit is None
        and expire_in is None
    ):
        return None
    key = _group_key(group_key)
    throttled = _window("throttle", throttle)
    debounced = _window("debounce", debounce)
    if throttled is not None and debounced is not None:
        raise ValidationError("pass throttle= or debounce=, not both")
    if (throttled is not None or debounced is not None) and singleton_key is None:
        which = "throttle" if throttled is not None else "debounce"
        raise ValidationError(
            f"{which}= needs singleton_key=: the key whose sends are {which}d "
            f'(for example singleton_key=f"report:{{user_id}}")'
        )
    if debounced is not None and start_after is not None:
        raise ValidationError(
            "debounce= sets the start itself (the window after the last send): drop start_after="
        )
    if retry_limit is not None and (
        isinstance(retry_limit, bool) or not isinstance(retry_limit, int) or retry_limit < 0
    ):
        raise ValidationError(f"retry_limit must be an int >= 0, got {retry_limit!r}")
    expiry = _window("expire_in", expire_in)
    return FlowOptions(key, retry_limit, expiry, throttled, debounced)


def batch_flow_options(
    *, group_key: object = None, retry_limit: object = None, expire_in: object = None
) -> FlowOptions | None:
    """``flow_options`` of a batch (``send_many``): no throttle or debounce there."""
    return flow_options(group_key=group_key, retry_limit=retry_limit, expire_in=expire_in)


@dataclass(slots=True)
class FlowRow(Row):
    """One validated job with flow options. With a throttle or debounce window,
    ``singleton_key`` is the window's key (the job itself gets no singleton key)."""

    flow: FlowOptions = FlowOptions()
    #: The event of an envelope (its subscribers get copies), else None.
    event: str | None = None

    def insert(self, sql: Statements) -> Statement:
        flow = self.flow
        window = flow.window
        if window is not None:
            assert self.singleton_key is not None  # (checked by flow_options)
            return sql.job_insert_windowed(
                self.id,
                self.queue,
                self.data,
                self.priority,
                self.start_after,
                self.delay,
                self.singleton_key,
                flow.debounce is not None,
                window,
                flow.params(),
            )
        return sql.job_insert_flow(
            self.id,
            self.queue,
            self.data,
            self.priority,
            self.start_after,
            self.delay,
            self.singleton_key,
            flow.params(),
            self.event,
        )


def with_flow(row: Row, flow: FlowOptions) -> FlowRow:
    return FlowRow(
        id=row.id,
        queue=row.queue,
        data=row.data,
        priority=row.priority,
        start_after=row.start_after,
        delay=row.delay,
        singleton_key=row.singleton_key,
        flow=flow,
        event=row.event if isinstance(row, EventRow) else None,
    )


@dataclass(slots=True)
class FlowBatch(Batch):
    """A ``send_many`` batch with flow options: one INSERT in input order (never COPY)."""

    flow: FlowOptions = FlowOptions()
    #: Item i's event (its subscribers get copies), None for plain data; empty: no events.
    events: list[str | None] = field(default_factory=list)

    def insert(self, sql: Statements) -> Statement:
        return sql.job_insert_flow_batch(
            self.queue,
            self.ids,
            self.texts,
            self.priority,
            self.start_after,
            self.delay,
            self.flow.params(),
            self.events,
        )


def with_batch_flow(batch: Batch, flow: FlowOptions) -> FlowBatch:
    return FlowBatch(
        queue=batch.queue,
        ids=batch.ids,
        texts=batch.texts,
        priority=batch.priority,
        start_after=batch.start_after,
        delay=batch.delay,
        flow=flow,
        events=list(batch.events) if isinstance(batch, EventBatch) else [],
    )
