"""The raw floor: the runtime's own SQL (runtime/db/sql/queries/jobs.sql) through plain psycopg.

Nothing around it: no validation, no coalescing, no worker machinery. The schema is created
by the runtime's migrations (untimed); after that every timed statement is one of the runtime's
named queries, run directly:

* single send: ``send_one`` on one autocommit connection, one commit per job;
* 50 in flight: ``send_one`` from 50 tasks over a pool of 10 connections;
* batch: ``copy_jobs`` (COPY, as the runtime does for big batches) plus one ``notify``;
* processing: one connection looping ``claim`` (up to `concurrency` jobs), the handler per job,
  then ``complete_many`` for the batch;
* the processing floor (``drain``): one connection looping the worker's own ``claim_work``
  (500 at a time) and ``complete_many`` with no per-job Python at all: the claim's ids and
  fences come back as two array literals (its final SELECT aggregated) and go straight into
  ``complete_many``. That is the most those two statements can do on one connection.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from typed_queues.runtime import Boss, QueueSpec
from typed_queues.runtime.db.ids import new_job_id
from typed_queues.runtime.db.queries import queries_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import POOL_SIZE, QUEUE, Handler, Spec, main

SCHEMA = "queues"
LEASE = timedelta(seconds=30)
Conn = psycopg.AsyncConnection[Any]


def _copy_columns(statement: bytes) -> list[str]:
    match = re.search(rb"\(([^)]*)\)", statement)
    if match is None:
        raise RuntimeError(f"no column list in {statement!r}")
    return [c.strip().decode() for c in match[1].split(b",")]


def aggregated_claim(claim: bytes) -> bytes:
    """``claim_work`` with its final SELECT replaced by one row: the number of jobs claimed and
    their ids and fences as array literals (no per-job row, no per-job Python object)."""
    head, sep, tail = claim.rpartition(b"\nSELECT ")
    if not sep or b"FROM claimed" not in tail:
        raise RuntimeError(
            "claim_work no longer ends with a SELECT from its `claimed` CTE: update "
            "aggregated_claim in bench/drivers/floor_driver.py to the new statement"
        )
    return (
        head + b"\nSELECT count(*)::int, array_agg(id)::text, array_agg(fence)::text FROM claimed"
    )


class FloorSystem:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.q = queries_for(SCHEMA)
        self.conn: Conn | None = None
        self.pool: AsyncConnectionPool[Conn] | None = None
        self.worker_task: asyncio.Task[None] | None = None
        self.stopping = False

    async def setup(self) -> None:
        async with Boss(self.spec.dsn, schema=SCHEMA) as boss:  # migrations only, untimed
            await boss.create_queue(QueueSpec(QUEUE))
        self.conn = await psycopg.AsyncConnection.connect(self.spec.dsn, autocommit=True)
        self.pool = AsyncConnectionPool(
            self.spec.dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
            kwargs={"autocommit": True},
        )  # fmt: skip
        await self.pool.open(wait=True)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.conn is not None:
            await self.conn.close()

    def _params(self, i: int) -> dict[str, Any]:
        return {
            "id": new_job_id(),
            "queue": QUEUE,
            "data": json.dumps({"i": i}),
            "priority": 0,
            "start_after": None,
            "delay": None,
            "singleton_key": None,
        }

    async def send(self, i: int) -> object:
        if self.spec.phase == "send_concurrent":
            assert self.pool is not None
            async with self.pool.connection() as conn:
                cur = await conn.execute(self.q["send_one"], self._params(i), prepare=True)
                row = await cur.fetchone()
        else:
            assert self.conn is not None
            cur = await self.conn.execute(self.q["send_one"], self._params(i), prepare=True)
            row = await cur.fetchone()
        assert row is not None
        return row[0]

    async def send_batch(self, items: Sequence[int]) -> Sequence[object]:
        assert self.conn is not None
        ids = [new_job_id() for _ in items]
        # The column order is whatever the runtime's copy_jobs statement names.
        fields = {"id": "{0}", "queue": QUEUE, "data": '{{"i": {1}}}', "priority": "0"}
        line = "\t".join(fields[c] for c in _copy_columns(self.q["copy_jobs"])) + "\n"
        text = "".join(line.format(job_id, i) for job_id, i in zip(ids, items, strict=True))
        async with self.conn.transaction():
            async with self.conn.cursor() as cur, cur.copy(self.q["copy_jobs"]) as copy:
                await copy.write(text)
            await self.conn.execute(self.q["notify"], {"queue": QUEUE})
        return ids

    async def _count(self, states: str) -> int:
        assert self.conn is not None
        cur = await self.conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.job WHERE queue = %s AND state IN ({states})",  # noqa: S608
            (QUEUE,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def count_queued(self) -> int:
        return await self._count("'created', 'retry'")

    async def count_done(self) -> int:
        return await self._count("'completed'")

    async def start_worker(self, concurrency: int, handler: Handler) -> None:
        self.stopping = False
        self.worker_task = asyncio.create_task(self._loop(concurrency, handler))

    async def _loop(self, concurrency: int, handler: Handler) -> None:
        conn = await psycopg.AsyncConnection.connect(self.spec.dsn, autocommit=True)
        listen = await psycopg.AsyncConnection.connect(self.spec.dsn, autocommit=True)
        await listen.execute(f'LISTEN "{self.q.channel}"')
        try:
            while not self.stopping:
                cur = await conn.execute(
                    self.q["claim"],
                    {"queue": QUEUE, "limit": concurrency, "lease": LEASE},
                    prepare=True,
                )
                rows = await cur.fetchall()
                if not rows:  # idle: wait for a notification (the latency phase)
                    async for _ in listen.notifies(timeout=0.5, stop_after=1):
                        pass
                    continue
                for row in rows:
                    handler(row[3]["i"])
                await conn.execute(
                    self.q["complete_many"],
                    {"ids": [r[0] for r in rows], "fences": [r[1] for r in rows],
                     "outputs": [None] * len(rows)},
                    prepare=True,
                )  # fmt: skip
        finally:
            await conn.close()
            await listen.close()

    async def drain(self, batch: int) -> None:
        """Claim and complete until the queue is empty, `batch` jobs per statement."""
        claim = aggregated_claim(self.q["claim_work"])
        complete = self.q["complete_many"]
        nulls = "{" + ",".join(["NULL"] * batch) + "}"
        params = {"queue": QUEUE, "limit": batch, "lease": LEASE}
        conn = await psycopg.AsyncConnection.connect(self.spec.dsn, autocommit=True)
        async with conn:
            while True:
                cur = await conn.execute(claim, params, prepare=True)
                row = await cur.fetchone()
                assert row is not None
                count, ids, fences = row
                if not count:
                    return
                outputs = nulls if count == batch else "{" + ",".join(["NULL"] * count) + "}"
                # complete_many runs unprepared, as the runtime runs it (custom plans)
                await conn.execute(
                    complete, {"ids": ids, "fences": fences, "outputs": outputs}, prepare=False
                )

    async def stop_worker(self) -> None:
        assert self.worker_task is not None
        self.stopping = True
        await self.worker_task

    async def cleanup(self) -> int:
        assert self.conn is not None
        await self.conn.execute(
            f"DELETE FROM {SCHEMA}.job WHERE queue = %s AND state > 'active'",  # noqa: S608
            (QUEUE,),
        )
        return await self._count("'completed', 'cancelled', 'failed'")

    def version(self) -> dict[str, Any]:
        return {
            "version": f"queries.sql of queues {version('typed-queues')}",
            "psycopg": version("psycopg"),
        }


if __name__ == "__main__":
    main(FloorSystem)
