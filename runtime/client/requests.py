"""What a send asks for, validated and turned into statement parameters or COPY text.

Pure (no I/O), shared by the async and the sync client so that they cannot drift: everything a
send needs is checked here before any SQL runs (data, priority, start time, singleton key).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain, islice
from typing import Any, Final

from ..db.encoding import encode_data, encode_many
from ..db.ids import new_job_id, new_job_ids
from ..db.statements import Statement, Statements
from ..errors import ValidationError
from ..jobs import JobId

__all__ = [
    "Batch",
    "EncodedMany",
    "EventBatch",
    "EventRow",
    "Row",
    "copy_chunks",
    "make_row",
    "rows_params",
    "split_for_copy",
    "split_start_after",
    "unwrap_many",
    "validate_priority",
    "validate_singleton_key",
]

_INT4_MIN: Final = -(2**31)
_INT4_MAX: Final = 2**31 - 1
MAX_SINGLETON_KEY: Final = 1000
#: Items encoded at a time while a big batch streams into COPY: small enough for the server
#: to start on a group while the next is encoded, big enough to keep the writes few.
_STREAM_GROUP: Final = 250


@dataclass(frozen=True, slots=True)
class EncodedMany:
    """A ``send_many`` batch that the caller encoded already, all envelopes of one event (the
    generated SDK's, ``typed.envelopes_json``): each item is the JSON text of an envelope of
    ``event`` (it must be valid JSON; only what JSON text can still fail is checked, see
    ``encode_many``), or an envelope as a mapping, encoded as usual."""

    event: str
    items: Iterable[str | Mapping[str, Any]]


def unwrap_many(data: Iterable[object] | EncodedMany) -> tuple[Iterable[object], str | None]:
    """The items of a ``send_many``, and their event when they are ``EncodedMany``'s."""
    if isinstance(data, EncodedMany):
        return data.items, data.event
    return data, None


@dataclass(slots=True)
class Row:
    """One validated job, ready to insert."""

    id: JobId
    queue: str
    data: str
    priority: int
    start_after: datetime | None
    delay: timedelta | None
    singleton_key: str | None = None

    def insert(self, sql: Statements) -> Statement:
        return sql.job_insert(
            self.id,
            self.queue,
            self.data,
            self.priority,
            self.start_after,
            self.delay,
            self.singleton_key,
        )


def validate_priority(priority: object) -> int:
    if priority is None:
        return 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError(f"priority must be an int, got {priority!r}")
    if not _INT4_MIN <= priority <= _INT4_MAX:
        raise ValidationError(f"priority {priority} is out of range (a 32-bit integer)")
    return priority


def split_start_after(start_after: object) -> tuple[datetime | None, timedelta | None]:
    """``start_after`` as an absolute time or a delay counted on the database clock."""
    if start_after is None:
        return None, None
    if isinstance(start_after, timedelta):
        return None, start_after
    if isinstance(start_after, datetime):
        if start_after.tzinfo is None or start_after.utcoffset() is None:
            raise ValidationError(
                "start_after must be timezone-aware (e.g. datetime.now(UTC) + ...) "
                "or a timedelta counted from the database's clock"
            )
        return start_after, None
    raise ValidationError(f"start_after must be a datetime or a timedelta, got {start_after!r}")


def validate_key(name: str, key: object, limit: int = MAX_SINGLETON_KEY) -> str | None:
    """A singleton or group key: None, or a non-empty str without NUL of at most ``limit``
    characters (``name`` is the option, for the error)."""
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise ValidationError(f"{name} must be a non-empty str, got {key!r}")
    if "\x00" in key:
        raise ValidationError(f"{name} contains a NUL character (\\u0000): remove it")
    if len(key) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters")
    return key


def validate_singleton_key(key: object) -> str | None:
    return validate_key("singleton_key", key)


def make_row(
    queue: str,
    data: object,
    max_bytes: int,
    start_after: object,
    priority: object,
    singleton_key: object = None,
) -> Row:
    """One send, checked: start time, priority, data and singleton key (in that order)."""
    at, delay = split_start_after(start_after)
    prio = validate_priority(priority)
    text = encode_data(queue, data, max_bytes)
    key = validate_singleton_key(singleton_key)
    event = event_of(data)
    if event is not None:  # an event: its subscribers get a copy (see EventRow)
        return EventRow(new_job_id(), queue, text, prio, at, delay, key, event)
    return Row(new_job_id(), queue, text, prio, at, delay, key)


def rows_params(rows: Sequence[Row]) -> dict[str, Any]:
    """Parameters of the ``send_rows`` statement (one array per column)."""
    params: dict[str, Any] = {
        "ids": [row.id for row in rows],
        "queues": [row.queue for row in rows],
        "data": [row.data for row in rows],
        "priorities": [row.priority for row in rows],
        "start_afters": [row.start_after for row in rows],
        "delays": [row.delay for row in rows],
    }
    events = [row.event if isinstance(row, EventRow) else None for row in rows]
    if any(events):
        params["events"] = events  # the send_rows of events (fan-out)
    return params


def copy_chunks(
    ids: Sequence[JobId],
    texts: Sequence[str],
    queue: str,
    priority: int,
    start_after: str | None,
    chunk: int = 256 * 1024,
) -> Iterator[str]:
    """COPY text-format lines of one batch, in chunks of about ``chunk`` characters.

    A generator, so the server parses one chunk while the next is built. JSON text never holds
    raw tabs or newlines (the encoder escapes control characters) and queue names cannot, so
    only backslashes need escaping; ids go as 32 hex digits (PostgreSQL's uuid input takes them).
    """
    tail = (
        f"\t{queue}\t{priority}\n"
        if start_after is None
        else (f"\t{queue}\t{priority}\t{start_after}\n")
    )
    lines: list[str] = []
    size = 0
    for job_id, text in zip(ids, texts, strict=True):
        if "\\" in text:
            text = text.replace("\\", "\\\\")
        line = f"{job_id.int:032x}\t{text}{tail}"
        lines.append(line)
        size += len(line)
        if size >= chunk:
            yield "".join(lines)
            lines, size = [], 0
    if lines:
        yield "".join(lines)


@dataclass(slots=True)
class Batch:
    """The validated jobs of one ``send_many`` call (one queue, one priority and start)."""

    queue: str
    ids: list[JobId]
    texts: list[str]
    priority: int
    start_after: datetime | None
    delay: timedelta | None
    #: The items are ``EncodedMany``'s: JSON text already (see ``encode_many``).
    encoded: bool = False

    @classmethod
    def of(
        cls,
        queue: str,
        items: Iterable[object],
        max_bytes: int,
        start_after: object,
        priority: object,
        encoded_event: str | None = None,
    ) -> Batch:
        """The batch of ``items``, checked; ``encoded_event``: they are the ``EncodedMany``
        of that event (``unwrap_many``)."""
        at, delay = split_start_after(start_after)
        prio = validate_priority(priority)
        items = items if isinstance(items, list) else list(items)
        encoded = encoded_event is not None
        texts = encode_many(queue, items, max_bytes, encoded=encoded)
        ids = new_job_ids(len(texts))
        if cls is not Batch:
            return cls(queue, ids, texts, prio, at, delay, encoded)
        if encoded:
            events: list[str | None] = [encoded_event] * len(texts)
        else:
            events = [event_of(item) for item in items]
        if any(events):  # events: their subscribers get copies (see EventBatch)
            return EventBatch(queue, ids, texts, prio, at, delay, encoded, events)
        return Batch(queue, ids, texts, prio, at, delay, encoded)

    def insert(self, sql: Statements) -> Statement:
        return sql.job_insert_batch(
            self.queue, self.ids, self.texts, self.priority, self.start_after, self.delay
        )

    def stream_chunks(
        self, rest: Iterator[object], max_bytes: int, start_after: datetime | None
    ) -> Iterator[str]:
        """COPY text of this batch's jobs, then of ``rest``, encoded group by group as the
        COPY consumes them (their ids are added to ``ids``), so that encoding overlaps with
        the server's work. A bad item raises ``PayloadError`` midway: the caller's
        transaction must then roll back the rows already copied."""
        stamp = None if start_after is None else start_after.isoformat()
        yield from copy_chunks(self.ids, self.texts, self.queue, self.priority, stamp)
        index = len(self.ids)
        while group := list(islice(rest, _STREAM_GROUP)):
            texts = encode_many(self.queue, group, max_bytes, index, encoded=self.encoded)
            ids = new_job_ids(len(texts))
            self.ids.extend(ids)
            index += len(texts)
            yield from copy_chunks(ids, texts, self.queue, self.priority, stamp)


def split_for_copy(
    data: Iterable[object], threshold: int, in_callers_transaction: bool
) -> tuple[list[object], Iterator[object] | None]:
    """The items to check before any SQL runs, and the rest to stream into COPY (or None).

    In a transaction of the client's own, a batch of ``threshold`` items or more streams: its
    items are encoded while the COPY runs, and a bad one rolls the whole batch back. In the
    caller's transaction every item is checked first instead: a bad item must not leave that
    transaction aborted.
    """
    if in_callers_transaction:
        return list(data), None
    if isinstance(data, Sized) and len(data) >= threshold:
        return [], iter(data)
    rest = iter(data)
    head = list(islice(rest, threshold))
    if len(head) >= threshold:
        return [], chain(head, rest)
    return head, None


# -- events --


def event_of(data: object) -> str | None:
    """The event of job data that is an envelope (``{"event": str, "payload": ...}``, as
    ``JobContext`` reads it), else None."""
    if isinstance(data, dict | Mapping):
        event = data.get("event")
        if isinstance(event, str) and "payload" in data:
            return event
    return None


@dataclass(slots=True)
class EventRow(Row):
    """One validated job whose data is an event: its send also writes a copy on every queue
    subscribed to the event (``event_send_one``)."""

    event: str = ""

    def insert(self, sql: Statements) -> Statement:
        return sql.event_job_insert(
            self.id,
            self.queue,
            self.event,
            self.data,
            self.priority,
            self.start_after,
            self.delay,
            self.singleton_key,
        )


@dataclass(slots=True)
class EventBatch(Batch):
    """A batch holding events (``events[i]`` is item i's event, None for plain data): each
    event's subscribers get copies (``event_send_batch``; after a COPY, ``Store.event_copy``)."""

    events: list[str | None] = field(default_factory=list)

    def insert(self, sql: Statements) -> Statement:
        return sql.event_job_insert_batch(
            self.queue,
            self.ids,
            self.texts,
            self.events,
            self.priority,
            self.start_after,
            self.delay,
        )
