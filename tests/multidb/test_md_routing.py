"""Domains on two PostgreSQL servers: routing of queues, sends and workers by database name,
and subscriptions across the two delivered at least once through an outbox, written once.

Two real servers: the test server (``QUEUES_TEST_DSN``) and a second one started for the
session (tests/multidb/conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import (
    Boss,
    ConfigurationError,
    JobContext,
    QueueSpec,
    RemoteSubscription,
    Schedule,
    Worker,
    make_envelope,
)
from typed_queues.runtime.worker.relay import relay_processor

pytestmark = pytest.mark.asyncio


def _boss(dsn: str, schema: str, **kwargs: Any) -> Boss:
    return Boss(
        dsn,
        schema=schema,
        poll_interval=timedelta(milliseconds=200),
        lease=timedelta(seconds=3),
        maintenance=False,
        schedules=False,
        **kwargs,
    )


def _queues(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {str(r[0]) for r in conn.execute(f'SELECT name FROM "{schema}".queue')}  # noqa: S608


def _jobs(dsn: str, schema: str, queue: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f'SELECT id, state, data FROM "{schema}".job WHERE queue = %s ORDER BY id',  # noqa: S608
            (queue,),
        ).fetchall()


def _subscriptions(dsn: str, schema: str) -> set[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f'SELECT queue, domain, event FROM "{schema}".subscription')  # noqa: S608
        return {(str(q), str(d), str(e)) for q, d, e in rows}


LEDGER = QueueSpec(name="ledger.entries", database="ledger")
EMAIL = QueueSpec(
    name="notifications.email",
    remote_subscriptions=(RemoteSubscription("ledger.entry-booked", "ledger"),),
)


async def test_database_names_route_to_their_server_or_fall_back(
    dsn: str, second_dsn: str, schema_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUEUES_DSN_NOWHERE", raising=False)
    monkeypatch.setenv("QUEUES_DSN_MIRROR", second_dsn)
    async with _boss(dsn, schema_name, databases={"ledger": second_dsn}) as boss:
        ledger = boss.database("ledger")
        assert ledger is not boss and ledger.started
        assert boss.database(None) is boss
        assert boss.database("nowhere") is boss  # no QUEUES_DSN_NOWHERE: the default server
        # another name on the same server shares its Boss (its domains stay atomic together)
        assert boss.database("mirror") is ledger
        assert ledger.database("ledger") is ledger  # asked of a routed Boss: the same answer
        monkeypatch.setenv("QUEUES_DSN_LATE", dsn + "?application_name=late")
        with pytest.raises(ConfigurationError, match="'late' was not known when this Boss"):
            boss.database("late")
        with pytest.raises(ConfigurationError, match="invalid database name 'Bad-Name'"):
            boss.database("Bad-Name")
    assert not ledger.started  # stopped with the Boss that opened it


async def test_queues_sends_and_workers_go_to_the_domains_server(
    dsn: str, second_dsn: str, schema_name: str
) -> None:
    async with _boss(dsn, schema_name, databases={"ledger": second_dsn}) as boss:
        await boss.create_queues([LEDGER, QueueSpec(name="billing.invoices")])
        assert _queues(second_dsn, schema_name) == {"ledger.entries"}
        assert _queues(dsn, schema_name) == {"billing.invoices"}

        ledger = boss.database("ledger")
        job_id = await ledger.send("ledger.entries", {"amount": 5})
        assert [row[0] for row in _jobs(second_dsn, schema_name, "ledger.entries")] == [job_id]

        seen: list[Any] = []
        done = asyncio.Event()

        async def handle(job: JobContext) -> None:
            seen.append(job.data)
            done.set()

        worker = Worker(ledger, "ledger.entries", handle)
        await worker.start()
        await asyncio.wait_for(done.wait(), 10)
        await worker.stop()
        assert seen == [{"amount": 5}]
        [(_, state, _)] = _jobs(second_dsn, schema_name, "ledger.entries")
        assert state == "completed"


async def test_a_subscription_across_servers_is_relayed_once_per_copy(
    dsn: str, second_dsn: str, schema_name: str
) -> None:
    async with _boss(dsn, schema_name, databases={"ledger": second_dsn}) as boss:
        await boss.create_queues([LEDGER, EMAIL])
        # the outbox lives beside the publisher and subscribes there; the queue has no row
        assert _queues(second_dsn, schema_name) == {"ledger.entries", "notifications.email.outbox"}
        assert _subscriptions(second_dsn, schema_name) == {
            ("notifications.email.outbox", "ledger", "entry-booked")
        }
        assert _subscriptions(dsn, schema_name) == set()

        ledger = boss.database("ledger")
        sent = [
            await ledger.send("ledger.entries", make_envelope("entry-booked", {"n": n}))
            for n in range(20)
        ]
        outbox = _jobs(second_dsn, schema_name, "notifications.email.outbox")
        assert len(outbox) == 20

        received: list[tuple[Any, Any]] = []
        all_in = asyncio.Event()

        async def handle(job: JobContext) -> None:
            received.append((job.id, job.payload["n"]))
            if len(received) == 20:
                all_in.set()

        boss.relay_from(ledger, "notifications.email")
        worker = Worker(boss, "notifications.email", handle)
        await worker.start()
        await asyncio.wait_for(all_in.wait(), 20)
        await worker.stop()

        assert sorted(n for _, n in received) == list(range(20))
        # each job keeps its outbox copy's id (what makes a second relay write nothing)
        assert {job_id for job_id, _ in received} == {row[0] for row in outbox}
        assert not {job_id for job_id, _ in received} & set(sent)
        await _settled(second_dsn, schema_name, "notifications.email.outbox", 20)


async def _settled(dsn: str, schema: str, queue: str, count: int) -> None:
    for _ in range(100):
        states = [row[1] for row in _jobs(dsn, schema, queue)]
        if states == ["completed"] * count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{queue}: {states}")


async def test_a_relay_that_dies_after_writing_writes_nothing_twice(
    dsn: str, second_dsn: str, schema_name: str
) -> None:
    async with _boss(dsn, schema_name, databases={"ledger": second_dsn}) as boss:
        await boss.create_queues([LEDGER, EMAIL])
        ledger = boss.database("ledger")
        await ledger.send(
            "ledger.entries", make_envelope("entry-booked", {"n": 1}), singleton_key="k1"
        )
        relay = relay_processor(ledger, boss, "notifications.email")
        runs = 0

        async def dies_after_writing(job: JobContext) -> None:
            nonlocal runs
            runs += 1
            await relay(job)
            if runs == 1:
                raise RuntimeError("relay process killed between the write and the completion")

        worker = Worker(ledger, "notifications.email.outbox", dies_after_writing)
        await worker.start()
        await _settled(second_dsn, schema_name, "notifications.email.outbox", 1)
        await worker.stop()

        assert runs == 2
        [(job_id, state, data)] = _jobs(dsn, schema_name, "notifications.email")
        assert state == "created" and data["payload"] == {"n": 1}
        [(outbox_id, _, _)] = _jobs(second_dsn, schema_name, "notifications.email.outbox")
        assert job_id == outbox_id
        with psycopg.connect(dsn) as conn:
            [(key, priority)] = conn.execute(
                f'SELECT singleton_key, priority FROM "{schema_name}".job WHERE id = %s',  # noqa: S608
                (job_id,),
            ).fetchall()
        assert (key, priority) == ("k1", 0)


async def test_one_server_keeps_the_subscription_atomic(
    dsn: str, schema_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUEUES_DSN_LEDGER", raising=False)
    async with _boss(dsn, schema_name) as boss:
        await boss.create_queues([LEDGER, EMAIL])
        assert _queues(dsn, schema_name) == {"ledger.entries", "notifications.email"}
        assert _subscriptions(dsn, schema_name) == {
            ("notifications.email", "ledger", "entry-booked")
        }
        boss.relay_from(boss.database("ledger"), "notifications.email")  # same Boss: nothing
        await boss.send("ledger.entries", make_envelope("entry-booked", {"n": 1}))
        assert len(_jobs(dsn, schema_name, "notifications.email")) == 1


async def test_schedules_and_maintenance_run_on_the_domains_server(
    dsn: str, second_dsn: str, schema_name: str
) -> None:
    tick = Schedule(
        name="ledger.close-day",
        queue="ledger.entries",
        event="day-closed",
        every=timedelta(seconds=1),
    )
    spec = QueueSpec(name="ledger.entries", database="ledger", schedules=(tick,))
    boss = Boss(
        dsn,
        schema=schema_name,
        databases={"ledger": second_dsn},
        poll_interval=timedelta(milliseconds=200),
    )
    async with boss:
        await boss.create_queues([spec])
        with psycopg.connect(second_dsn) as conn:
            names = conn.execute(f'SELECT name FROM "{schema_name}".schedule').fetchall()  # noqa: S608
        assert names == [("ledger.close-day",)]
        fired = asyncio.Event()

        async def handle(job: JobContext) -> None:
            if job.event == "day-closed":
                fired.set()

        # a worker of the domain runs the scheduler and maintenance of that server
        worker = Worker(boss.database("ledger"), "ledger.entries", handle)
        await worker.start()
        await asyncio.wait_for(fired.wait(), 15)
        await worker.stop()
        assert await boss.database("ledger").run_maintenance() is not None
        assert _jobs(second_dsn, schema_name, "ledger.entries")
        assert _queues(dsn, schema_name) == set()  # nothing of the ledger on the default server


async def test_two_names_on_one_server_share_one_outbox(
    dsn: str, second_dsn: str, schema_name: str
) -> None:
    spec = QueueSpec(
        name="notifications.email",
        remote_subscriptions=(
            RemoteSubscription("ledger.entry-booked", "ledger"),
            RemoteSubscription("audit.entry-checked", "audit"),
        ),
    )
    databases = {"ledger": second_dsn, "audit": second_dsn}
    async with _boss(dsn, schema_name, databases=databases) as boss:
        await boss.create_queues([spec])
        assert _queues(second_dsn, schema_name) == {"notifications.email.outbox"}
        assert _subscriptions(second_dsn, schema_name) == {
            ("notifications.email.outbox", "ledger", "entry-booked"),
            ("notifications.email.outbox", "audit", "entry-checked"),
        }
