"""Faults 12-14: NUL characters, oversized payloads and hostile identifiers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import (
    Boss,
    PayloadError,
    QueueSpec,
    RetryPolicy,
    SyncBoss,
    ValidationError,
    make_envelope,
)
from typed_queues.runtime.db.identifiers import MAX_QUEUE_NAME, MAX_SCHEMA_NAME

from ._harness import (
    FAST_BOSS,
    QUEUE,
    SLACK,
    Db,
    Procs,
    create_record_tables,
    log_records,
    queue_config,
    wait_until,
)

NUL_PAYLOADS: list[dict[str, Any]] = [
    {"text": "a\x00b"},
    {"a\x00b": 1},
    {"deep": [{"x": ["fine", "bad\x00"]}]},
    make_envelope("evt", {"value": "\x00"}),
]


@pytest.fixture
async def closed_conn(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A closed connection: any statement on it would raise, so a PayloadError proves the
    data was refused before any SQL."""
    conn = await psycopg.AsyncConnection.connect(dsn)
    await conn.close()
    yield conn


@pytest.fixture
def closed_sync_conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(dsn)
    conn.close()
    yield conn


@pytest.mark.parametrize("data", NUL_PAYLOADS, ids=["value", "key", "nested", "envelope"])
async def test_fault12_nul_payload_refused_before_any_sql(
    db: Db,
    boss: Boss,
    dsn: str,
    data: dict[str, Any],
    closed_conn: psycopg.AsyncConnection[Any],
    closed_sync_conn: psycopg.Connection[Any],
) -> None:
    """A payload with ``\\u0000`` in a value or a key raises a typed error before any SQL."""
    await boss.create_queue(QueueSpec(name=QUEUE))
    with pytest.raises(PayloadError, match="NUL"):
        await boss.send(QUEUE, data, conn=closed_conn)
    with pytest.raises(PayloadError, match="NUL"):
        await boss.send_many(QUEUE, [{"ok": 1}, data], conn=closed_conn)
    with pytest.raises(PayloadError, match="NUL"):
        await boss.send(QUEUE, data)
    with SyncBoss(dsn, schema=db.schema) as sync:
        with pytest.raises(PayloadError, match="NUL"):
            sync.send(QUEUE, data, conn=closed_sync_conn)
        with pytest.raises(PayloadError, match="NUL"):
            sync.send_many(QUEUE, [{"ok": 1}, data], conn=closed_sync_conn)
    assert await db.jobs() == {}


async def test_fault12_handler_error_with_nul(procs: Procs, db: Db, boss: Boss) -> None:
    """A handler's error message containing NUL: the job still goes to retry, then failed, with
    the error stored sanitised."""
    retry = RetryPolicy(limit=1, delay=timedelta(0), jitter=False)
    await boss.create_queue(QueueSpec(name=QUEUE, retry=retry))
    job_id = await boss.send(QUEUE, {"raise": "nul"})
    worker = await procs.start("w", queues=[queue_config()], boss=FAST_BOSS)

    async def failed() -> bool:
        return (await db.jobs([job_id]))[str(job_id)].state == "failed"

    await wait_until(failed, timeout=SLACK, what="the job to fail after its retry")
    row = (await db.jobs([job_id]))[str(job_id)]
    assert row.retry_count == 1
    assert await db.effects() == {str(job_id): 2}
    message = row.output["error"]["message"]
    assert "\x00" not in message and message.startswith("bad")
    assert worker.alive()


LIMIT = 10_000
PAD = len('{"pad":""}')


def _at_limit(limit: int) -> dict[str, str]:
    return {"pad": "x" * (limit - PAD)}


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_fault13_payload_size_limit(
    procs: Procs,
    db: Db,
    dsn: str,
    closed_conn: psycopg.AsyncConnection[Any],
    closed_sync_conn: psycopg.Connection[Any],
) -> None:
    """A payload over the size limit is refused before any SQL; 10k jobs exactly at the limit
    (10 kB here) are claimed and completed normally; one at the default 1 MB limit too."""
    async with Boss(dsn, schema=db.schema, max_payload_bytes=LIMIT) as boss:
        await boss.create_queue(QueueSpec(name=QUEUE))
        over = {"pad": "x" * (LIMIT - PAD + 1)}
        with pytest.raises(PayloadError, match="over the limit"):
            await boss.send(QUEUE, over, conn=closed_conn)
        with pytest.raises(PayloadError, match="over the limit"):
            await boss.send_many(QUEUE, [_at_limit(LIMIT), over], conn=closed_conn)
        with (
            SyncBoss(dsn, schema=db.schema, max_payload_bytes=LIMIT) as sync,
            pytest.raises(PayloadError, match="over the limit"),
        ):
            sync.send(QUEUE, over, conn=closed_sync_conn)
        assert await db.jobs() == {}

        ids: list[Any] = []
        for _ in range(10):
            ids += await boss.send_many(QUEUE, [_at_limit(LIMIT) for _ in range(1000)])
    async with Boss(dsn, schema=db.schema) as default_boss:
        ids.append(await default_boss.send(QUEUE, _at_limit(1_000_000)))
        with pytest.raises(PayloadError):
            await default_boss.send(QUEUE, _at_limit(1_000_001), conn=closed_conn)
    assert await db.scalar("SELECT max(octet_length(data::text)) FROM {s}.job") >= LIMIT

    workers = [
        await procs.start(
            f"w{i}", queues=[queue_config(concurrency=20)], boss=FAST_BOSS, recorder="batched"
        )
        for i in range(2)
    ]
    await wait_until(
        lambda: db.all_completed(ids), timeout=240, what="10k jobs at the limit", interval=0.5
    )
    assert await db.scalar("SELECT max(retry_count) FROM {s}.job") == 0
    for proc in workers:
        assert not [r for r in log_records(proc.stderr()) if r.get("level") == "ERROR"]


HOSTILE_NAMES = [
    'a"b',
    "a;b",
    "a--b",
    "a b",
    " a",
    "a\tb",
    "a\nb",
    "a\x01b",
    "a\x00b",
    "x" * 64,
    "é" * 32,
    'x"; DROP TABLE job;--',
    "x'); DROP TABLE job;--",
    "",
]


async def _schemas(db: Db) -> set[str]:
    return {row[0] for row in await db.rows("SELECT nspname FROM pg_namespace")}


def _could_come_from(schema: str, name: str) -> bool:
    """Whether a new schema may have been created from ``name`` (other tests running at the
    same time create ordinary ``t_...`` schemas; a hostile name would leave odd ones)."""
    if not name:
        return False
    return name.startswith(schema) or schema.startswith(name[:8]) or not schema.isidentifier()


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
async def test_fault14_hostile_schema_and_queue_names(
    db: Db, boss: Boss, dsn: str, name: str
) -> None:
    """Schema and queue names with quotes, semicolons, ``--``, whitespace, control characters,
    64+ bytes or an injection attempt: as a schema (an SQL identifier) each is refused at
    validation, before any SQL; as a queue name (always a bound value, never SQL text) each is
    refused at validation or, where the naming rules allow it (``a--b``, 64 characters), used
    verbatim and safely. No DDL runs: the schemas and this schema's tables stay as they were."""
    schemas = await _schemas(db)
    tables = await db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (db.schema,))

    with pytest.raises(ValidationError):
        await Boss(dsn, schema=name).start()
    with pytest.raises(ValidationError):
        SyncBoss(dsn, schema=name).send(QUEUE, {})

    try:
        spec = QueueSpec(name=name)
    except ValidationError:
        await boss.create_queue(QueueSpec(name=QUEUE))
        with pytest.raises(ValidationError):
            await boss.send(name, {})
        with pytest.raises(ValidationError):
            await boss.send_many(name, [{}])
        with pytest.raises(ValidationError):
            await boss.fetch(name)
        with pytest.raises(ValidationError):
            await boss.queue_stats(name)
        with pytest.raises(ValidationError):
            boss.worker(name, lambda ctx: None)
        with pytest.raises(ValidationError):
            QueueSpec(name=QUEUE, dead_letter=name)
    else:
        await boss.create_queue(spec)
        job_id = await boss.send(name, {"n": 1})
        [job] = await boss.fetch(name)
        assert (job.id, job.queue) == (job_id, name)
        assert (await boss.queue_stats(name)).active == 1

    created = await _schemas(db) - schemas
    assert not [schema for schema in created if _could_come_from(schema, name)], created
    after = await db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (db.schema,))
    assert after == tables
    assert await db.scalar("SELECT to_regclass(%s) IS NOT NULL", (f'"{db.schema}".job',))


async def test_fault14_longest_names_keep_channels_within_63_bytes(procs: Procs, dsn: str) -> None:
    """The longest schema and queue names accepted still give a notification channel within
    PostgreSQL's 63-byte limit, and a notification on it really wakes a worker (which polls
    only every 60 s)."""
    schema = "r" + uuid.uuid4().hex + "_" * (MAX_SCHEMA_NAME - 33)
    assert len(schema) == MAX_SCHEMA_NAME
    queue = ("q" * MAX_QUEUE_NAME)[:MAX_QUEUE_NAME]
    with pytest.raises(ValidationError):
        Boss(dsn, schema=schema + "x")
    procs.schema = schema
    try:
        async with Boss(dsn, schema=schema) as boss:
            await boss.create_queue(QueueSpec(name=queue))
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                db = Db(conn, schema)
                await create_record_tables(db)
                options = {**FAST_BOSS, "poll_interval": 60.0}
                worker = await procs.start("long-names", queues=[queue_config(queue)], boss=options)

                async def listening() -> list[tuple[Any, ...]]:
                    return await db.rows(
                        "SELECT query FROM pg_stat_activity"
                        " WHERE application_name = 'rel-long-names' AND query ILIKE 'LISTEN%%'"
                    )

                listens = await wait_until(listening, timeout=SLACK, what="the worker's LISTEN")
                for (query,) in listens:
                    channel = query.split(None, 1)[1].strip().strip('"')
                    assert len(channel.encode()) <= 63, channel
                job_id = await boss.send(queue, {})
                await wait_until(
                    lambda: db.all_completed([job_id]), timeout=SLACK, what="a notified job"
                )
                assert worker.alive()
    finally:
        procs.cleanup()
        with psycopg.connect(dsn, autocommit=True) as sync_conn:
            sync_conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
