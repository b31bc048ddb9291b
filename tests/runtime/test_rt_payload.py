"""Bad job data raises a typed error before any SQL runs, and nothing is written."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rt_support import count_jobs, make_queue

from typed_queues.runtime import (
    Boss,
    PayloadError,
    QueueSpec,
    SyncBoss,
    UnknownQueueError,
    ValidationError,
)

pytest_plugins = ["rt_fixtures"]

BAD_DATA: list[Any] = [
    {"when": datetime.now(UTC)},
    {"nan": math.nan},
    {"inf": math.inf},
    {"value": "a\x00b"},
    {"key\x00": 1},
    {"nested": [{"deep": ["x", "y\x00"]}]},
    {"surrogate": "\ud800"},
    ["not", "a", "mapping"],
    "text",
    {"obj": object()},
]


@pytest.mark.parametrize("data", BAD_DATA, ids=range(len(BAD_DATA)))
async def test_bad_data_is_refused_and_nothing_written(
    boss: Boss, db: psycopg.AsyncConnection[Any], data: Any
) -> None:
    await make_queue(boss)
    with pytest.raises(PayloadError):
        await boss.send("q", data)
    with pytest.raises(PayloadError):
        await boss.send("q", data, singleton_key="k")
    with pytest.raises(PayloadError):
        await boss.send_many("q", [{"fine": 1}, data])
    assert await count_jobs(db, boss.schema) == 0


async def test_escaped_nul_text_is_fine(boss: Boss) -> None:
    await make_queue(boss)
    job_id = await boss.send("q", {"text": "a literal \\u0000 is six characters"})
    job = await boss.get_job(job_id)
    assert job is not None
    assert job.data == {"text": "a literal \\u0000 is six characters"}


async def test_size_limit(dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]) -> None:
    async with Boss(dsn, schema=schema_name, max_payload_bytes=1000) as boss:
        await make_queue(boss)
        with pytest.raises(PayloadError, match="over the limit of 1000"):
            await boss.send("q", {"blob": "x" * 1000})
        with pytest.raises(PayloadError, match="item 1"):
            await boss.send_many("q", [{"a": 1}, {"blob": "é" * 600}])
        assert await count_jobs(db, schema_name) == 0
        at_limit = {"b": "x" * (1000 - len('{"b":""}'))}
        job_id = await boss.send("q", at_limit)
        assert (await boss.get_job(job_id)) is not None


async def test_unknown_queue_names_the_fix(boss: Boss, db: psycopg.AsyncConnection[Any]) -> None:
    with pytest.raises(UnknownQueueError, match="create_queue") as info:
        await boss.send("nope", {"a": 1})
    assert info.value.queue == "nope"
    assert "create_queues" in str(info.value)
    with pytest.raises(UnknownQueueError):
        await boss.send_many("nope", [{"a": 1}])
    with pytest.raises(UnknownQueueError):
        await boss.fetch("nope")
    with pytest.raises(UnknownQueueError):
        await boss.queue_stats("nope")
    assert await count_jobs(db, boss.schema) == 0


async def test_queue_created_elsewhere_is_found_on_a_miss(dsn: str, boss: Boss) -> None:
    async with Boss(dsn, schema=boss.schema) as other:
        await make_queue(other, "late")
    job_id = await boss.send("late", {"a": 1})
    assert (await boss.get_job(job_id)) is not None


async def test_bad_arguments(boss: Boss) -> None:
    await make_queue(boss)
    with pytest.raises(ValidationError, match="timezone-aware"):
        await boss.send("q", {}, start_after=datetime(2030, 1, 1))
    with pytest.raises(ValidationError):
        await boss.send("q", {}, start_after="tomorrow")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await boss.send("q", {}, priority=2**40)
    with pytest.raises(ValidationError):
        await boss.send("q", {}, priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await boss.send("q", {}, singleton_key="a\x00")
    with pytest.raises(ValidationError):
        await boss.send("q", {}, singleton_key="")
    with pytest.raises(ValidationError):
        await boss.fetch("q", batch_size=0)
    assert await boss.send_many("q", []) == []
    await boss.send("q", {}, start_after=timedelta(seconds=-5))


def test_sync_bad_data_writes_nothing(dsn: str, schema_name: str) -> None:
    with SyncBoss(dsn, schema=schema_name) as sync, psycopg.connect(dsn) as conn:
        sync.migrate()
        with pytest.raises(UnknownQueueError):
            sync.send("q", {"a": 1})
        sync.create_queue(QueueSpec(name="q"))
        for data in BAD_DATA:
            with pytest.raises(PayloadError):
                sync.send("q", data)
            with pytest.raises(PayloadError):
                sync.send_many("q", [data])
        query = sql.SQL("SELECT count(*) FROM {}.job").format(sql.Identifier(schema_name))
        assert conn.execute(query).fetchone() == (0,)


async def test_bad_input_fails_before_touching_the_callers_connection(
    dsn: str, schema_name: str, boss: Boss
) -> None:
    conn = await psycopg.AsyncConnection.connect(dsn)
    await conn.close()  # any SQL on it would raise OperationalError
    with pytest.raises(PayloadError):
        await boss.send("never-created", {"a": "\x00"}, conn=conn)
    with pytest.raises(PayloadError):
        await boss.send_many("never-created", [{"a": math.nan}], conn=conn)
    sync_conn = psycopg.connect(dsn)
    sync_conn.close()
    with SyncBoss(dsn, schema=schema_name) as sync:
        with pytest.raises(PayloadError):
            sync.send("never-created", {"a": object()}, conn=sync_conn)
        with pytest.raises(PayloadError):
            sync.send_many("never-created", [{"a": "x" * 2_000_000}], conn=sync_conn)
