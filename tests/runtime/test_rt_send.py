"""Sending: single, coalesced, batch (unnest and COPY), delayed, prioritised, transactional."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from rt_support import count_jobs, make_queue, rows, scalar

from typed_queues.runtime import Boss, JobState, PayloadError, SyncBoss
from typed_queues.runtime.client.coalescer import Coalescer
from typed_queues.runtime.client.requests import Row
from typed_queues.runtime.db.ids import new_job_id

pytest_plugins = ["rt_fixtures"]


async def test_send_and_get(boss: Boss) -> None:
    await make_queue(boss)
    job_id = await boss.send("q", {"hello": "world", "n": [1, 2.5, None, True]})
    job = await boss.get_job(job_id)
    assert job is not None
    assert job.id == job_id
    assert job.queue == "q"
    assert job.state is JobState.CREATED
    assert job.data == {"hello": "world", "n": [1, 2.5, None, True]}
    assert job.priority == 0
    assert job.retry_count == 0
    assert job.retry_limit == 3
    assert job.start_after == job.created_on
    assert job.started_on is None and job.completed_on is None and job.output is None
    assert await boss.get_job(new_job_id()) is None


async def test_queue_handle(boss: Boss) -> None:
    await make_queue(boss, "billing.invoices")
    handle = boss.queue("billing.invoices")
    enqueued = await handle.enqueue({"a": 1}, priority=3)
    assert enqueued.data == {"a": 1}
    job = await boss.get_job(enqueued.id)
    assert job is not None and job.priority == 3
    many = await handle.enqueue_many([{"b": 1}, {"b": 2}])
    assert [m.data for m in many] == [{"b": 1}, {"b": 2}]
    assert (await handle.stats()).created == 3


async def test_concurrent_sends_are_coalesced_and_distinct(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, "a")
    await make_queue(boss, "b")
    ids = await asyncio.gather(*(boss.send("a" if i % 2 else "b", {"i": i}) for i in range(300)))
    assert len(set(ids)) == 300
    assert await count_jobs(db, boss.schema) == 300
    stored = await rows(db, boss.schema, "SELECT id, queue, data FROM {schema}.job")
    by_id = {row[0]: (row[1], row[2]) for row in stored}
    for i, job_id in enumerate(ids):
        assert by_id[job_id] == ("a" if i % 2 else "b", {"i": i})


async def test_coalescer_isolates_a_failing_row() -> None:
    written: list[list[int]] = []

    async def write(batch: Sequence[Row]) -> None:
        if any(row.priority == 13 for row in batch):
            raise ValueError("bad row in batch")
        written.append([row.priority for row in batch])

    coalescer = Coalescer(write, max_batch=100, max_inflight=1)

    def row(priority: int) -> Row:
        return Row(new_job_id(), "q", "{}", priority, None, None)

    results = await asyncio.gather(
        *(coalescer.submit(row(p)) for p in range(20)), return_exceptions=True
    )
    assert isinstance(results[13], ValueError)
    assert all(r is None for i, r in enumerate(results) if i != 13)
    assert sorted(p for batch in written for p in batch) == [p for p in range(20) if p != 13]
    await coalescer.drain()


async def test_priority_then_due_time_order(boss: Boss) -> None:
    await make_queue(boss)
    low = await boss.send("q", {"n": "low"}, priority=-1)
    first = await boss.send("q", {"n": "first"})
    high = await boss.send("q", {"n": "high"}, priority=10)
    second = await boss.send("q", {"n": "second"})
    claimed = [(await boss.fetch("q"))[0].id for _ in range(4)]
    assert claimed == [high, first, second, low]
    one = await boss.send("q", {"n": 1}, priority=5)
    await boss.send("q", {"n": 2}, priority=1)
    assert [j.id for j in await boss.fetch("q")] == [one]


async def test_start_after_uses_the_database_clock(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    delayed = await boss.send("q", {}, start_after=timedelta(hours=1))
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    absolute = await boss.send("q", {}, start_after=at)
    many = await boss.send_many("q", [{}, {}], start_after=timedelta(minutes=5))
    offset = await scalar(
        db, boss.schema, "SELECT start_after - created_on FROM {schema}.job WHERE id = %s", delayed
    )
    assert offset == timedelta(hours=1)
    job = await boss.get_job(absolute)
    assert job is not None and job.start_after == at
    for job_id in many:
        offset = await scalar(
            db,
            boss.schema,
            "SELECT start_after - created_on FROM {schema}.job WHERE id = %s",
            job_id,
        )
        assert offset == timedelta(minutes=5)
    assert await boss.fetch("q", batch_size=10) == []


@pytest.mark.parametrize("copy_threshold", [10_000, 10], ids=["unnest", "copy"])
async def test_send_many(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any], copy_threshold: int
) -> None:
    async with Boss(dsn, schema=schema_name, copy_threshold=copy_threshold) as boss:
        await make_queue(boss)
        payloads = [{"i": i, "text": "tab\there \\ back\\slash \n newline é"} for i in range(25)]
        ids = await boss.send_many("q", payloads, priority=2)
        assert len(set(ids)) == 25
        for job_id, payload in zip(ids, payloads, strict=True):
            job = await boss.get_job(job_id)
            assert job is not None and job.data == payload and job.priority == 2
        delayed = await boss.send_many("q", payloads, start_after=timedelta(hours=2))
        offset = await scalar(
            db,
            schema_name,
            "SELECT min(start_after - created_on) FROM {schema}.job WHERE id = ANY(%s)",
            delayed,
        )
        assert offset == timedelta(hours=2)
        at = datetime(2032, 1, 1, tzinfo=UTC)
        absolute = await boss.send_many("q", payloads, start_after=at)
        job = await boss.get_job(absolute[-1])
        assert job is not None and job.start_after == at
        # inside a caller's transaction: all or nothing
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            rolled_back = await boss.send_many("q", payloads, conn=conn)
            await conn.rollback()
            committed = await boss.send_many("q", payloads, conn=conn)
            await conn.commit()
        assert await boss.get_job(rolled_back[0]) is None
        assert await boss.get_job(committed[0]) is not None
        assert await count_jobs(db, schema_name) == 100


async def test_transactional_send(dsn: str, boss: Boss) -> None:
    await make_queue(boss)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        job_id = await boss.send("q", {"tx": 1}, conn=conn)
        assert await boss.get_job(job_id) is None  # not visible before commit
        await conn.rollback()
        assert await boss.get_job(job_id) is None
        kept = await boss.send("q", {"tx": 2}, conn=conn)
        assert await boss.get_job(kept) is None
        await conn.commit()
        assert await boss.get_job(kept) is not None


async def _notifications(conn: psycopg.AsyncConnection[Any], wait: float) -> list[str]:
    return [n.payload async for n in conn.notifies(timeout=wait)]


async def test_wake_up_only_after_commit(dsn: str, boss: Boss) -> None:
    await make_queue(boss)
    channel = f"{boss.schema}_jobs"
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(dsn) as conn,
    ):
        await listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        await boss.send("q", {}, conn=conn)
        await boss.send_many("q", [{}, {}], conn=conn)
        assert await _notifications(listener, 0.3) == []
        await conn.rollback()
        assert await _notifications(listener, 0.3) == []
        await boss.send("q", {}, conn=conn)
        assert await _notifications(listener, 0.3) == []
        await conn.commit()
        assert await _notifications(listener, 1.0) == ["q"]
        await boss.send("q", {})
        assert await _notifications(listener, 1.0) == ["q"]


async def test_singleton_duplicate_returns_the_existing_id(boss: Boss) -> None:
    await make_queue(boss)
    first = await boss.send("q", {"n": 1}, singleton_key="k")
    again = await boss.send("q", {"n": 2}, singleton_key="k")
    other = await boss.send("q", {"n": 3}, singleton_key="other")
    assert again == first != other
    [job] = await boss.fetch("q")
    assert await boss.send("q", {"n": 4}, singleton_key=job.singleton_key) in {first, other}
    assert await boss.complete(first)
    assert await boss.send("q", {"n": 5}, singleton_key="k") != first  # finished: a new one


async def test_singleton_under_50_concurrent_transactions(
    dsn: str, boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    start = asyncio.Event()

    async def one(i: int) -> Any:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            await start.wait()
            job_id = await boss.send("q", {"i": i}, conn=conn, singleton_key="same")
            await conn.commit()
            return job_id

    tasks = [asyncio.create_task(one(i)) for i in range(50)]
    await asyncio.sleep(0.2)
    start.set()
    ids = await asyncio.gather(*tasks)
    assert len(set(ids)) == 1
    assert await count_jobs(db, boss.schema) == 1


async def test_singleton_when_the_winner_rolls_back(
    dsn: str, boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    async with await psycopg.AsyncConnection.connect(dsn) as winner:
        lost = await boss.send("q", {"w": 1}, conn=winner, singleton_key="k")

        async def loser(i: int) -> Any:
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                job_id = await boss.send("q", {"l": i}, conn=conn, singleton_key="k")
                await conn.commit()
                return job_id

        waiting = [asyncio.create_task(loser(i)) for i in range(10)]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in waiting)  # blocked on the winner's row
        await winner.rollback()
        ids = await asyncio.gather(*waiting)
    assert len(set(ids)) == 1 and ids[0] != lost
    assert await count_jobs(db, boss.schema) == 1
    job = await boss.get_job(ids[0])
    assert job is not None and job.singleton_key == "k"


def test_sync_path(dsn: str, schema_name: str) -> None:
    from typed_queues.runtime import QueueSpec

    with SyncBoss(dsn, schema=schema_name, copy_threshold=5) as sync:
        sync.migrate()
        sync.create_queue(QueueSpec(name="q"))
        job_id = sync.send("q", {"a": 1}, priority=4, start_after=timedelta(seconds=30))
        job = sync.get_job(job_id)
        assert job is not None and job.data == {"a": 1} and job.priority == 4
        assert job.start_after - job.created_on == timedelta(seconds=30)
        assert sync.send("q", {"b": 1}, singleton_key="s") == sync.send("q", {}, singleton_key="s")
        small = sync.send_many("q", [{"i": i} for i in range(3)])
        big = sync.send_many("q", [{"i": i} for i in range(7)], start_after=timedelta(hours=1))
        assert all(sync.get_job(i) is not None for i in small + big)
        with psycopg.connect(dsn) as conn:
            gone = sync.send("q", {"tx": 1}, conn=conn)
            gone_many = sync.send_many("q", [{"tx": 2}] * 6, conn=conn)
            conn.rollback()
            kept = sync.send("q", {"tx": 3}, conn=conn)
            conn.commit()
            assert sync.get_job(kept, conn=conn) is not None
        assert sync.get_job(gone) is None and sync.get_job(gone_many[0]) is None


@pytest.mark.parametrize("shape", ["list", "generator"])
async def test_big_batch_streams_in_order(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any], shape: str
) -> None:
    # Past copy_threshold the items are encoded while the COPY runs (in groups of 250): every
    # job is there once, with the id returned at its position.
    async with Boss(dsn, schema=schema_name, copy_threshold=100) as boss:
        await make_queue(boss)
        total = 1234
        items = [{"n": n} for n in range(total)]
        source = items if shape == "list" else (item for item in items)
        ids = await boss.send_many("q", source, priority=3)
        assert len(ids) == total and len(set(ids)) == total
        assert ids == sorted(ids)  # ids are time-ordered, so the claim keeps the batch order
        stored = dict(await rows(db, schema_name, "SELECT id, (data->>'n')::int FROM {schema}.job"))
        assert [stored[job_id] for job_id in ids] == list(range(total))
        assert await scalar(db, schema_name, "SELECT min(priority) FROM {schema}.job") == 3


@pytest.mark.parametrize("bad_at", [0, 99, 100, 777])
async def test_bad_item_in_a_streamed_batch_writes_nothing(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any], bad_at: int
) -> None:
    async with Boss(dsn, schema=schema_name, copy_threshold=100, max_pool_size=1) as boss:
        await make_queue(boss)
        items: list[dict[str, Any]] = [{"n": n} for n in range(1000)]
        items[bad_at] = {"n": float("nan")}
        with pytest.raises(PayloadError, match=f"item {bad_at}: .*not JSON-serialisable"):
            await boss.send_many("q", (item for item in items))
        assert await count_jobs(db, schema_name) == 0
        # the rolled-back COPY left the (only) pooled connection usable
        ids = await boss.send_many("q", [{"n": n} for n in range(150)])
        assert await count_jobs(db, schema_name) == len(ids) == 150


async def test_sends_hold_no_pool_connection_between_calls(dsn: str, schema_name: str) -> None:
    # The send path keeps a connection of its own between sends: a pool of one is still free
    # for everything else (handlers' queries, get_job) right after a send.
    async with Boss(dsn, schema=schema_name, max_pool_size=1) as boss:
        await make_queue(boss)
        for n in range(3):
            job_id = await boss.send("q", {"n": n})
            job = await asyncio.wait_for(boss.get_job(job_id), 3)
            assert job is not None and job.data == {"n": n}
        assert len(await boss.send_many("q", [{"n": 9}] * 5)) == 5


def test_sync_big_batch_streams_and_a_bad_item_writes_nothing(dsn: str, schema_name: str) -> None:
    # The sync client shares the async one's request code: a batch past copy_threshold streams
    # from a generator (ids at their positions), and a bad item midway rolls all of it back.
    from typed_queues.runtime import QueueSpec

    with SyncBoss(dsn, schema=schema_name, copy_threshold=100) as sync:
        sync.migrate()
        sync.create_queue(QueueSpec(name="q"))
        ids = sync.send_many("q", ({"n": n} for n in range(1234)))
        assert len(set(ids)) == 1234
        for position in (0, 617, 1233):
            job = sync.get_job(ids[position])
            assert job is not None and job.data == {"n": position}
        bad: list[dict[str, Any]] = [{"n": n} for n in range(600)]
        bad[450] = {"n": "\x00"}
        with pytest.raises(PayloadError, match="item 450"):
            sync.send_many("q", iter(bad))
        assert sync.get_job(ids[-1]) is not None
    with psycopg.connect(dsn) as conn:
        query = psycopg.sql.SQL("SELECT count(*) FROM {}.job").format(
            psycopg.sql.Identifier(schema_name)
        )
        row = conn.execute(query).fetchone()
    assert row is not None and row[0] == 1234
