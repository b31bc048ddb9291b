"""Lost connections: the listener re-subscribes, workers and writes carry on, no restart."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
from rt_support import NO_RETRY_DELAY, count_jobs, make_queue, rows, wait_until

from typed_queues.runtime import Boss, JobContext, Worker

pytest_plugins = ["rt_fixtures"]


async def _terminate(db: psycopg.AsyncConnection[Any], app: str) -> int:
    cur = await db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (app,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _named(dsn: str) -> tuple[str, str]:
    """A unique application name, and ``dsn`` with it: the connections a test can find."""
    app = f"rt-{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in dsn else "?"
    return app, f"{dsn}{sep}application_name={app}"


async def _wait_all_closed(db: psycopg.AsyncConnection[Any], app: str) -> None:
    async def all_closed() -> bool:  # (a backend exits shortly after its client closes)
        cur = await db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        )
        return await cur.fetchone() == (0,)

    await wait_until(all_closed, within=5)


async def test_listener_comes_back_after_its_connection_is_killed(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async with Boss(dsn, schema=schema_name, poll_interval=60) as boss:
        await make_queue(boss)
        seen = asyncio.Queue[str]()

        async def handler(ctx: JobContext) -> None:
            await seen.put(ctx.data["n"])

        worker = Worker(boss, "q", handler)
        await worker.start()
        assert boss.worker_services is not None and boss.worker_services.listener is not None
        listener = boss.worker_services.listener
        await asyncio.wait_for(listener.connected.wait(), 10)
        await db.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))

        async def reconnected() -> bool:
            return listener.connections >= 2 and listener.connected.is_set()

        await wait_until(reconnected)
        await asyncio.sleep(0.3)  # the catch-up claim after reconnecting found nothing
        await boss.send("q", {"n": "after"})
        assert await asyncio.wait_for(seen.get(), 10) == "after"  # woken, not polled (60 s)
        await worker.stop()


async def test_work_goes_on_when_every_connection_is_killed(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    app, named_dsn = _named(dsn)
    async with Boss(
        named_dsn,
        schema=schema_name,
        poll_interval=0.2,
        maintenance_interval=0.3,
    ) as boss:
        await make_queue(boss, retry=NO_RETRY_DELAY)
        release = asyncio.Event()

        async def handler(ctx: JobContext) -> str:
            if ctx.data.get("wait"):
                await release.wait()
            return "ok"

        worker = Worker(boss, "q", handler, concurrency=5)
        await worker.start()
        await boss.send_many("q", [{"wait": True}] * 3)

        async def three_active() -> bool:
            return await count_jobs(db, schema_name, "active") == 3

        await wait_until(three_active)
        assert await _terminate(db, app) >= 3
        release.set()  # their completions are written over new connections
        for _ in range(3):  # sends retry on a lost connection
            await boss.send("q", {})

        async def all_done() -> bool:
            return await count_jobs(db, schema_name, "completed") == 6

        await wait_until(all_done, within=20)
        await worker.stop()


async def test_sends_survive_the_loss_of_the_kept_connection(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    # One send after another reuses the send path's own connection; when it is lost the next
    # send goes over a new one, and stop() closes every connection, that one too.
    app, named_dsn = _named(dsn)
    async with Boss(named_dsn, schema=schema_name) as boss:
        await make_queue(boss)
        first = await boss.send("q", {"n": 1})
        assert await _terminate(db, app) >= 1
        second = await boss.send("q", {"n": 2})
        third = await boss.send("q", {"n": 3})
        stored = await rows(db, schema_name, "SELECT id FROM {schema}.job")
        assert {row[0] for row in stored} == {first, second, third}
    await _wait_all_closed(db, app)


async def test_stop_while_a_send_is_in_flight_closes_its_connection(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    # Boss.stop() while a send uses the send path's own connection: the send still lands, and
    # that connection is closed once the send is done (not handed to the pool it is not from).
    app, named_dsn = _named(dsn)
    boss = Boss(named_dsn, schema=schema_name)
    await boss.start()
    await make_queue(boss)
    await boss.send("q", {"n": 0})  # opens the send path's connection
    kept = boss.send_connection
    assert kept is not None
    sending = asyncio.ensure_future(boss.send("q", {"n": 1}))
    await asyncio.sleep(0)  # the send has taken the connection and is waiting on the server
    await kept.close()
    await sending
    await boss.stop()
    assert await count_jobs(db, schema_name) == 2
    await _wait_all_closed(db, app)


async def test_reads_are_retried_after_idle_connections_were_killed(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    # pg_terminate_backend of every idle connection of the Boss (a failover, an idle timeout
    # on a proxy): the next read goes over a new connection instead of failing once.
    app, named_dsn = _named(dsn)
    async with Boss(named_dsn, schema=schema_name) as boss:
        await make_queue(boss)
        job_id = await boss.send("q", {"n": 1})
        assert await _terminate(db, app) >= 1
        job = await boss.get_job(job_id)
        assert job is not None and job.data == {"n": 1}
        assert await _terminate(db, app) >= 1
        stats = await boss.queue_stats("q")
        assert stats.created == 1


async def test_the_send_connection_is_replaced_after_its_lifetime(
    dsn: str, schema_name: str
) -> None:
    async with Boss(dsn, schema=schema_name, connection_lifetime=0.3) as boss:
        await make_queue(boss)
        await boss.send("q", {"n": 1})
        connection = boss.send_connection
        assert connection is not None
        first = connection.backend_pid
        await boss.send("q", {"n": 2})
        assert connection.backend_pid == first  # young: kept
        await asyncio.sleep(0.5)
        await boss.send("q", {"n": 3})
        assert first is not None and connection.backend_pid not in (None, first)
