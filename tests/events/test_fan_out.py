"""Fan-out: an event sent to its queue is also written to every queue subscribed to it, in the
send's own statement (and so in the caller's transaction), resolved in the database."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, SyncBoss, ValidationError, make_envelope

BILLING = QueueSpec(name="billing.invoices")
EMAIL = QueueSpec(name="notifications.email", subscribe=("billing.invoice-created",))
LEDGER = QueueSpec(name="ledger.entries", subscribe=("billing.invoice-created",))
AUDIT = QueueSpec(name="audit.trail", subscribe=("billing.invoice-created", "billing.other"))


def invoice(n: int) -> dict[str, Any]:
    return make_envelope("invoice-created", {"invoice_id": n})


async def events_of(db: psycopg.AsyncConnection[Any], schema: str) -> Counter[str]:
    query = sql.SQL("SELECT queue FROM {}.job").format(sql.Identifier(schema))
    cur = await db.execute(query)
    return Counter(row[0] for row in await cur.fetchall())


async def test_a_send_writes_one_job_per_subscribed_queue(quick_boss: Boss) -> None:
    await quick_boss.create_queues([BILLING, EMAIL, LEDGER])
    job_id = await quick_boss.send("billing.invoices", invoice(1), priority=3)
    own = await quick_boss.jobs_of("billing.invoices")
    assert [job.id for job in own] == [job_id]
    for queue in ("notifications.email", "ledger.entries"):
        [copy] = await quick_boss.jobs_of(queue)
        assert copy.data == own[0].data  # the same envelope: event, payload and metadata
        job = await quick_boss.get_job(copy.id)
        assert job is not None and job.priority == 3
    # another event of the domain, and plain data, go to their queue only
    await quick_boss.send("billing.invoices", make_envelope("invoice-voided", {"n": 1}))
    await quick_boss.send("billing.invoices", {"event": "invoice-created"})  # no payload
    assert len(await quick_boss.jobs_of("notifications.email")) == 1


async def test_fan_out_commits_and_rolls_back_with_the_callers_transaction(
    quick_boss: Boss, dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    await quick_boss.create_queues([BILLING, EMAIL, LEDGER])
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.transaction():
            await quick_boss.send("billing.invoices", invoice(1), conn=conn)
            await quick_boss.send_many("billing.invoices", [invoice(2), invoice(3)], conn=conn)
            assert await events_of(db, schema_name) == Counter()  # not visible before commit
        assert await events_of(db, schema_name) == Counter(
            {"billing.invoices": 3, "notifications.email": 3, "ledger.entries": 3}
        )
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await quick_boss.send("billing.invoices", invoice(4), conn=conn)
                await quick_boss.send_many("billing.invoices", [invoice(5)], conn=conn)
                raise RuntimeError("the caller's own write failed")
    assert await events_of(db, schema_name) == Counter(
        {"billing.invoices": 3, "notifications.email": 3, "ledger.entries": 3}
    )


async def test_every_send_path_fans_out(quick_boss: Boss, dsn: str, schema_name: str) -> None:
    """Coalesced concurrent sends, batches (INSERT and COPY, streamed and in the caller's
    transaction) and the sync client."""
    await quick_boss.create_queues([BILLING, EMAIL])
    await asyncio.gather(*(quick_boss.send("billing.invoices", invoice(n)) for n in range(50)))
    await quick_boss.send_many("billing.invoices", [invoice(n) for n in range(10)])
    await quick_boss.send_many("billing.invoices", (invoice(n) for n in range(2500)))  # COPY
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await quick_boss.send_many("billing.invoices", [invoice(n) for n in range(2100)], conn=conn)
    with SyncBoss(dsn, schema=schema_name) as sync:
        sync.send("billing.invoices", invoice(1))
        sync.send_many("billing.invoices", [invoice(n) for n in range(3)])
        sync.send_many("billing.invoices", [invoice(n) for n in range(2000)])
    own = await quick_boss.jobs_of("billing.invoices")
    copies = await quick_boss.jobs_of("notifications.email")
    assert len(own) == len(copies) == 50 + 10 + 2500 + 2100 + 1 + 3 + 2000
    assert {job.data["payload"]["invoice_id"] for job in copies} == set(range(2500))


async def test_a_subscriber_added_later_receives_without_the_producer_restarting(
    dsn: str, schema_name: str, quick_boss: Boss
) -> None:
    await quick_boss.create_queues([BILLING])
    producer = Boss(dsn, schema=schema_name, schedules=False)  # started before the consumer
    await producer.start()
    try:
        await producer.send("billing.invoices", invoice(1))
        await quick_boss.create_queues([EMAIL])  # the consumer deploys, subscribing
        await producer.send("billing.invoices", invoice(2))
        received = await quick_boss.jobs_of("notifications.email")
        assert [job.data["payload"]["invoice_id"] for job in received] == [2]
        # the consumer stops subscribing: the next send reaches it no more
        await quick_boss.create_queues([QueueSpec(name="notifications.email")])
        await producer.send("billing.invoices", invoice(3))
        assert len(await quick_boss.jobs_of("notifications.email")) == 1
        assert len(await quick_boss.jobs_of("billing.invoices")) == 3
    finally:
        await producer.stop()


async def test_three_subscribers_each_get_one_job_per_send_under_concurrent_sends(
    dsn: str, schema_name: str, quick_boss: Boss
) -> None:
    await quick_boss.create_queues([BILLING, EMAIL, LEDGER, AUDIT])
    senders = [Boss(dsn, schema=schema_name, schedules=False) for _ in range(3)]
    for sender in senders:
        await sender.start()
    try:

        async def send_all(boss: Boss, base: int) -> None:
            for chunk in range(10):
                await asyncio.gather(
                    *(
                        boss.send("billing.invoices", invoice(base + chunk * 20 + n))
                        for n in range(20)
                    )
                )

        await asyncio.gather(*(send_all(s, 1000 * i) for i, s in enumerate(senders)))
    finally:
        for sender in senders:
            await sender.stop()
    sent = {
        job.data["payload"]["invoice_id"] for job in await quick_boss.jobs_of("billing.invoices")
    }
    assert len(sent) == 600
    for queue in ("notifications.email", "ledger.entries", "audit.trail"):
        got = Counter(job.data["payload"]["invoice_id"] for job in await quick_boss.jobs_of(queue))
        assert set(got) == sent and set(got.values()) == {1}, queue


async def test_singleton_keys_priority_and_delay_apply_per_destination(quick_boss: Boss) -> None:
    await quick_boss.create_queues([BILLING, EMAIL])
    first = await quick_boss.send("billing.invoices", invoice(1), singleton_key="inv-1")
    again = await quick_boss.send("billing.invoices", invoice(1), singleton_key="inv-1")
    assert again == first
    [copy] = await quick_boss.jobs_of("notifications.email")
    job = await quick_boss.get_job(copy.id)
    assert job is not None and job.singleton_key == "inv-1"
    # the subscriber finished its copy: the next send with the key reaches it again, while
    # the publisher's own job still holds the key on its queue
    [fetched] = await quick_boss.fetch("notifications.email")
    assert await quick_boss.complete(fetched)
    third = await quick_boss.send("billing.invoices", invoice(1), singleton_key="inv-1")
    assert third == first
    assert len(await quick_boss.jobs_of("notifications.email")) == 2
    delayed = await quick_boss.send(
        "billing.invoices", invoice(2), start_after=timedelta(hours=1), priority=-2
    )
    [copy_id] = [
        job.id
        for job in await quick_boss.jobs_of("notifications.email")
        if job.data["payload"]["invoice_id"] == 2
    ]
    own, copy_job = await quick_boss.get_job(delayed), await quick_boss.get_job(copy_id)
    assert own is not None and copy_job is not None
    assert copy_job.start_after == own.start_after and copy_job.priority == -2


def test_subscriptions_are_checked() -> None:
    with pytest.raises(ValidationError, match=r'must be "domain\.event"'):
        QueueSpec(name="a.b", subscribe=("invoice-created",))
    with pytest.raises(ValidationError, match="tuple"):
        QueueSpec(name="a.b", subscribe="billing.invoice-created")  # type: ignore[arg-type]


async def test_a_retried_send_writes_no_copy_twice(quick_boss: Boss, schema_name: str) -> None:
    """The statement run again (a send retried after its connection was lost, unsure whether
    the first try committed) finds the job and its copies there already."""
    from typed_queues.runtime.client.requests import make_row
    from typed_queues.runtime.db import Store

    await quick_boss.create_queues([BILLING, EMAIL, LEDGER])
    row = make_row("billing.invoices", invoice(1), 1_000_000, None, None)
    store = Store(schema_name)
    async with quick_boss.connection() as conn:
        assert await store.job_insert(conn, row.insert(store.sql)) == row.id
        assert await store.job_insert(conn, row.insert(store.sql)) is None  # nothing written
    for queue in ("billing.invoices", "notifications.email", "ledger.entries"):
        assert len(await quick_boss.jobs_of(queue)) == 1
