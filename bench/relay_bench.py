"""Delivery of a subscription across two servers (``delivery: at-least-once``) against the same
subscription on one server (atomic fan-out), as jobs/s reaching the subscriber's handler.

    python bench/relay_bench.py [--jobs 20000] [--rounds 3]

The default server is ``QUEUES_TEST_DSN`` (or ``QUEUES_DSN``); the second one is the embedded
PostgreSQL of the ``embedded`` extra, started here. Each round, interleaved:

- ``one server``: 20,000 events sent in one batch to ``ledger.entries`` with a subscriber on
  the same server; then the subscriber's worker (concurrency 50) runs them all;
- ``two servers``: the same with the ledger domain on the second server: the copies wait in
  the outbox there, and the subscriber's worker (on the default server) runs them through its
  relay (one write per copy on the subscriber's server, one read on the publisher's).

The clock runs from the worker's start to the last handler call. Nothing here asserts speed;
the figures go to bench/PROFILE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

import psycopg

from typed_queues.runtime import (
    Boss,
    JobContext,
    QueueSpec,
    RemoteSubscription,
    Worker,
    make_envelope,
)
from typed_queues.runtime.embedded import EmbeddedPostgres

LEDGER = QueueSpec(name="ledger.entries", database="ledger")
RECEIPTS = QueueSpec(
    name="mail.receipts",
    remote_subscriptions=(RemoteSubscription("ledger.entry-booked", "ledger"),),
)


async def _round(home: str, ledger_dsn: str, jobs: int) -> float:
    schema = f"b_{uuid.uuid4().hex[:10]}"
    boss = Boss(home, schema=schema, databases={"ledger": ledger_dsn}, maintenance=False)
    try:
        async with boss:
            await boss.create_queues([LEDGER, RECEIPTS])
            events = [make_envelope("entry-booked", {"n": n}) for n in range(jobs)]
            await boss.database("ledger").send_many("ledger.entries", events)
            done = asyncio.Event()
            seen = 0

            async def handle(job: JobContext) -> None:
                nonlocal seen
                seen += 1
                if seen == jobs:
                    done.set()

            boss.relay_from(boss.database("ledger"), "mail.receipts")
            worker = Worker(boss, "mail.receipts", handle, concurrency=50)
            started = time.perf_counter()
            await worker.start()
            await asyncio.wait_for(done.wait(), 600)
            elapsed = time.perf_counter() - started
            await worker.stop()
            return jobs / elapsed
    finally:
        for dsn in {home, ledger_dsn}:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    home = os.environ.get("QUEUES_TEST_DSN") or os.environ["QUEUES_DSN"]
    results: dict[str, list[float]] = {"one server": [], "two servers": []}
    with EmbeddedPostgres(tcp=True) as second:
        for _ in range(args.rounds):
            results["one server"].append(await _round(home, home, args.jobs))
            results["two servers"].append(await _round(home, second.dsn, args.jobs))
    base = statistics.median(results["one server"])
    print(f"{args.jobs} events, {args.rounds} rounds interleaved; jobs/s reaching the handler")
    for name, rates in results.items():
        median = statistics.median(rates)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(f"{name:12} {median:10,.0f} ({spread})  x{median / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
