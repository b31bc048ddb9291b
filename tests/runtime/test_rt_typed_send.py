"""The generated SDK's batch send (``typed.send_events``) writes each envelope as JSON text in
one pass (``typed.envelopes_json``): the stored data must be what the envelope dicts stored
before (as jsonb), a bad item must be refused with the same error as before and write nothing,
and events must still fan out, on every send path, async and sync."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from psycopg import sql
from pydantic import AwareDatetime, BaseModel, Field, field_serializer
from rt_support import count_jobs, rows

from typed_queues.runtime import Boss, JobId, PayloadError, QueueSpec, SyncBoss, jobs, typed
from typed_queues.runtime.db.encoding import encode_data, encode_many
from typed_queues.runtime.testing import enqueued

pytest_plugins = ["rt_fixtures"]

QUEUE = "shop.orders"
EVENT = "order-placed"
#: A small copy threshold, so that a batch of a few items already goes through COPY.
THRESHOLD = 5


class Line(typed.Payload):
    sku: str
    quantity: int


class Order(typed.Payload):
    """A float field, an alias, nested models, optional fields: every way JSON could differ."""

    order_id: UUID
    customer_name: Annotated[str, Field(alias="customer-name")]
    placed_at: AwareDatetime
    lines: list[Line] = []
    total: float | None = None
    note: str | None = None
    extra: dict[str, Any] = {}


class Basket(typed.Payload):
    """No float, nested models."""

    lines: list[Line]


class Plain(typed.Payload):
    """No float: the texts are trusted without looking for ``null``."""

    text: str
    n: int


class Shouting(BaseModel):
    """A serialiser of the user's (it may return anything)."""

    word: str

    @field_serializer("word")
    def upper(self, word: str) -> str:
        return word.upper()


def orders() -> list[BaseModel]:
    when = datetime(2026, 12, 1, 12, 30, 15, 123456, tzinfo=UTC)
    made: list[BaseModel] = [
        Order.model_validate(
            {
                "order_id": UUID(int=n),
                "customer-name": name,
                "placed_at": when + timedelta(seconds=n),
                "lines": [Line(sku=f"s-{n}", quantity=n)],
                "total": total,
                "note": note,
                "extra": extra,
            }
        )
        for n, (name, total, note, extra) in enumerate(
            [
                ("Ada", 12.5, None, {}),
                ("Zoë Ünïcode ✓", 0.1, "a \\u0000 is six characters", {"k": [1, None]}),
                ('quotes " and \\ backslash', 1e16, "tab\tnew\nline", {"big": 2**70}),
                ("null NaN Infinity", None, "null", {"x": math.inf}),  # Any: stored as null
                ("x" * 300, -0.0, "\u2028\u2029\x7f", {"nested": {"a": [True, False]}}),
            ]
        )
    ]
    made += [Plain(text=f"plain {n} é \\u0000", n=n) for n in range(3)]
    made += [Basket(lines=[Line(sku="a", quantity=1)]), Shouting(word="quiet")]
    return made


def old_envelope(payload: BaseModel, source: str | None) -> dict[str, Any]:
    """What ``send_events`` sent before the JSON texts: the envelope dict, built the old way."""
    return jobs.make_envelope(EVENT, payload.model_dump(mode="json", by_alias=True), source=source)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One envelope timestamp for the old and the new envelopes, so that they can be equal."""
    monkeypatch.setattr(jobs, "_utc_timestamp", lambda: "2026-12-01T12:00:00.000Z")


@pytest.fixture
def traced() -> Iterator[None]:
    """A current span, so that the metadata carries a trace context."""
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        yield


async def same_as_jsonb(
    db: psycopg.AsyncConnection[Any], schema: str, ids: list[JobId], expected: list[str]
) -> int:
    """How many of the jobs ``ids`` hold exactly ``expected`` (texts compared as jsonb)."""
    [(matching,)] = await rows(
        db,
        schema,
        "SELECT count(*) FROM {schema}.job j"
        " JOIN unnest(%s::uuid[], %s::jsonb[]) AS o(id, data) ON o.id = j.id"
        " WHERE j.data = o.data",
        ids,
        expected,
    )
    return int(matching)


# -- the stored data ----------------------------------------------------------------------------


def test_the_texts_are_the_envelopes(fixed_clock: None, traced: None) -> None:
    """Without a database: each text parses to the old envelope (JSON numbers may be written
    otherwise, 1e+16 against 1e16: the same value); a payload whose text could differ goes
    as the old dict itself."""
    payloads = orders()
    items = list(typed.envelopes_json(EVENT, payloads, "shop-api").items)
    for payload, item in zip(payloads, items, strict=True):
        old = old_envelope(payload, "shop-api")
        assert old["metadata"]["traceparent"].startswith("00-0af7651916cd43dd")
        assert (json.loads(item) if isinstance(item, str) else item) == old
    # a model with a float: its items whose text holds "null" (or NaN, Infinity) go as dicts
    assert [isinstance(item, str) for item in items] == [
        False,  # note None
        False,  # null in extra
        True,
        False,  # total None, and the words in a string
        True,
        *[True] * 3,  # Plain, no float: "null" is not looked for
        True,  # Basket
        True,  # Shouting: a serialiser of the user's, but no null in its text
    ]


@pytest.mark.parametrize("path", ["insert", "copy", "streamed copy", "flow", "caller's tx"])
async def test_stored_data_is_the_old_envelope(
    dsn: str,
    schema_name: str,
    db: psycopg.AsyncConnection[Any],
    fixed_clock: None,
    traced: None,
    path: str,
) -> None:
    payloads = orders()
    copied = path in ("copy", "streamed copy", "caller's tx")
    batch = payloads * 3
    threshold = THRESHOLD if copied else 1000
    async with Boss(dsn, schema=schema_name, source="shop-api", copy_threshold=threshold) as boss:
        await boss.create_queue(QueueSpec(name=QUEUE))
        if path == "caller's tx":
            async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
                ids = await typed.send_events(boss, QUEUE, EVENT, batch, conn=conn)
        elif path == "flow":
            ids = await typed.send_events(boss, QUEUE, EVENT, batch, retry_limit=1)
        elif path == "streamed copy":
            ids = await typed.send_events(boss, QUEUE, EVENT, iter(batch))
        else:
            ids = await typed.send_events(boss, QUEUE, EVENT, batch)
        expected = [encode_data(QUEUE, old_envelope(p, "shop-api"), 10**6) for p in batch]
        assert await same_as_jsonb(db, schema_name, ids, expected) == len(batch)
        # the test helper reads back what was sent
        back = await enqueued(boss, queue=QUEUE, event=EVENT)
        assert back == [old_envelope(p, None)["payload"] for p in batch]


@pytest.mark.parametrize("path", ["insert", "streamed copy", "caller's tx"])
def test_stored_data_is_the_old_envelope_sync(
    dsn: str, schema_name: str, fixed_clock: None, traced: None, path: str
) -> None:
    payloads = orders() * 2
    with SyncBoss(dsn, schema=schema_name, copy_threshold=THRESHOLD) as boss:
        boss.migrate()
        boss.create_queue(QueueSpec(name=QUEUE))
        with psycopg.connect(dsn, autocommit=True) as conn:
            if path == "insert":
                payloads = payloads[: THRESHOLD - 1]
                ids = typed.send_events_sync(boss, QUEUE, EVENT, payloads)
            elif path == "streamed copy":
                ids = typed.send_events_sync(boss, QUEUE, EVENT, iter(payloads))
            else:
                with conn.transaction():
                    ids = typed.send_events_sync(boss, QUEUE, EVENT, payloads, conn=conn)
            expected = [encode_data(QUEUE, old_envelope(p, None), 10**6) for p in payloads]
            query = sql.SQL(
                "SELECT count(*) FROM {}.job j"
                " JOIN unnest(%s::uuid[], %s::jsonb[]) AS o(id, data) ON o.id = j.id"
                " WHERE j.data = o.data"
            ).format(sql.Identifier(schema_name))
            [(matching,)] = conn.execute(query, (ids, expected)).fetchall()
    assert matching == len(payloads)


# -- bad items ----------------------------------------------------------------------------------

BAD: dict[str, Callable[[], BaseModel]] = {
    "too big": lambda: Plain(text="é" * 600, n=1),
    "NUL": lambda: Plain(text="a\x00b", n=1),
    "NUL in a nested list": lambda: Basket(
        lines=[Line(sku="ok", quantity=1), Line(sku="b\x00d", quantity=2)]
    ),
    "infinite float": lambda: Order.model_validate(
        {
            "order_id": UUID(int=1),
            "customer-name": "n",
            "placed_at": datetime(2026, 1, 1, tzinfo=UTC),
            "total": math.inf,
        }
    ),
    "lone surrogate": lambda: Plain(text="\ud800", n=1),
}
MAX_BYTES = 1000


def good(n: int) -> BaseModel:
    return Plain(text=f"fine {n}", n=n)


def batch_with(bad: BaseModel, where: int, size: int) -> list[BaseModel]:
    items = [good(n) for n in range(size)]
    items[where] = bad
    return items


def old_error(items: list[BaseModel]) -> str:
    """The error the old path raised for this batch (the envelope dicts, encoded)."""
    with pytest.raises(PayloadError) as info:
        encode_many(QUEUE, [old_envelope(p, None) for p in items], MAX_BYTES)
    return str(info.value)


@pytest.mark.parametrize("size", [3, 600])  # INSERT; COPY (streamed: 250 items a group)
@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize("bad", list(BAD))
async def test_a_bad_item_writes_nothing_with_the_old_error(
    dsn: str,
    schema_name: str,
    db: psycopg.AsyncConnection[Any],
    bad: str,
    position: str,
    size: int,
) -> None:
    where = {"first": 0, "middle": size // 2, "last": size - 1}[position]
    items = batch_with(BAD[bad](), where, size)
    expected = old_error(items)
    assert expected.startswith(f"item {where}: ")
    async with Boss(
        dsn, schema=schema_name, max_payload_bytes=MAX_BYTES, copy_threshold=THRESHOLD
    ) as boss:
        await boss.create_queue(QueueSpec(name=QUEUE))
        with pytest.raises(PayloadError) as info:
            await typed.send_events(boss, QUEUE, EVENT, iter(items))
        assert str(info.value) == expected
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            with pytest.raises(PayloadError) as info:
                await typed.send_events(boss, QUEUE, EVENT, items, conn=conn)
            assert str(info.value) == expected
        with pytest.raises(PayloadError) as info:
            await typed.send_events(boss, QUEUE, EVENT, items, retry_limit=1)
        assert str(info.value) == expected
    with SyncBoss(
        dsn, schema=schema_name, max_payload_bytes=MAX_BYTES, copy_threshold=THRESHOLD
    ) as sync:
        with pytest.raises(PayloadError) as info:
            typed.send_events_sync(sync, QUEUE, EVENT, iter(items))
        assert str(info.value) == expected
    assert await count_jobs(db, schema_name) == 0


async def test_a_bad_metadata_source_is_refused_as_before(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async with Boss(dsn, schema=schema_name, source="api\x00") as boss:
        await boss.create_queue(QueueSpec(name=QUEUE))
        with pytest.raises(PayloadError, match=r"item 0: .*NUL.* in data\.metadata\.source"):
            await typed.send_events(boss, QUEUE, EVENT, [good(1), good(2)])
    assert await count_jobs(db, schema_name) == 0


# -- fan-out ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 12])  # INSERT; COPY
async def test_typed_batches_fan_out(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any], size: int
) -> None:
    items = [good(n) for n in range(size)]
    async with Boss(dsn, schema=schema_name, copy_threshold=THRESHOLD) as boss:
        await boss.create_queues(
            [QueueSpec(name=QUEUE), QueueSpec(name="mail.outbox", subscribe=(f"shop.{EVENT}",))]
        )
        await typed.send_events(boss, QUEUE, EVENT, items)
        await typed.send_events(boss, QUEUE, EVENT, iter(items))
        await typed.send_events(boss, QUEUE, EVENT, items, retry_limit=1)  # the flow INSERT
    with SyncBoss(dsn, schema=schema_name, copy_threshold=THRESHOLD) as sync:
        typed.send_events_sync(sync, QUEUE, EVENT, iter(items))
    counts = await rows(db, schema_name, "SELECT queue, count(*) FROM {schema}.job GROUP BY 1")
    assert dict(counts) == {QUEUE: 4 * size, "mail.outbox": 4 * size}
    [(unmatched,)] = await rows(
        db,
        schema_name,
        "SELECT count(*) FROM {schema}.job c WHERE c.queue = 'mail.outbox' AND NOT EXISTS"
        " (SELECT 1 FROM {schema}.job o WHERE o.queue = %s AND o.data = c.data)",
        QUEUE,
    )
    assert unmatched == 0  # each copy holds its original's envelope
