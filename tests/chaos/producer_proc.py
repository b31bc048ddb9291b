"""One soak producer process: ``python -m tests.chaos.producer_proc NAME DSN RECORD_FILE SEED
RATE PPID``.

At about RATE jobs/s it sends, at random from its seed: single jobs (some with a singleton
key, a delay or a priority), batches (``send_many``) and transactions on a connection of its
own that send with ``conn=`` and then commit or roll back. Before each operation it records an
``intent`` line (every item's unique token, queue and behaviour) and after it an ``outcome``
line: ``committed`` (with the ids returned), ``rolled_back`` (certainly not committed) or
``unknown`` (an error where the write may or may not have landed). SIGTERM ends it after the
operation under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from typed_queues.runtime import Boss

from . import config
from .history import Recorder
from .lifeline import die_with_parent

OP_TIMEOUT_S = 60.0
SINGLETON_KEYS = 6


@dataclass
class Item:
    """One job a producer sends: the data's token and behaviour, and the send's options."""

    tok: str
    queue: str
    ms: int
    fail: int
    perm: bool
    sk: str | None = None
    delay: float | None = None
    prio: int | None = None

    @property
    def data(self) -> dict[str, Any]:
        return {"tok": self.tok, "ms": self.ms, "fail": self.fail, "perm": self.perm}

    @property
    def start_after(self) -> timedelta | None:
        return None if self.delay is None else timedelta(seconds=self.delay)

    def record(self) -> dict[str, Any]:
        return {
            "tok": self.tok,
            "q": self.queue,
            "sk": self.sk,
            "fail": self.fail,
            "perm": self.perm,
            "ms": self.ms,
            "delay": self.delay,
            "prio": self.prio,
        }


class Producer:
    def __init__(self, name: str, boss: Boss, dsn: str, recorder: Recorder, rng: random.Random):
        self.name = name
        self.boss = boss
        self.dsn = dsn
        self.recorder = recorder
        self.rng = rng
        self.ops = 0
        self._conn: psycopg.AsyncConnection[Any] | None = None

    # -- what to send ------------------------------------------------------------------------

    def item(self, queue: str, *, singleton: bool = False) -> Item:
        rng = self.rng
        roll = rng.random()
        ms = rng.randint(10, 150) if roll < 0.7 else rng.randint(150, 800)
        if roll >= 0.95:
            ms = rng.randint(1000, 2500)
        if roll >= 0.98:  # longer than the lease: only heartbeats keep it
            ms = rng.randint(3500, 6000)
        fail_roll = rng.random()
        limit = config.RETRY_LIMITS[queue]
        fail = 0 if fail_roll < 0.85 else 1 if fail_roll < 0.95 else limit + 1
        item = Item(uuid.uuid4().hex, queue, ms, fail, rng.random() < 0.03)
        if singleton:
            item.sk = f"k{rng.randrange(SINGLETON_KEYS)}"
        return item

    def options(self, items: list[Item]) -> None:
        """Draw one delay and priority for ``items`` (a batch shares them)."""
        delay = round(self.rng.uniform(0.2, 3.0), 3) if self.rng.random() < 0.1 else None
        prio = self.rng.randint(-3, 3) if self.rng.random() < 0.3 else None
        for item in items:
            item.delay, item.prio = delay, prio

    def queue(self) -> str:
        return config.MAIN if self.rng.random() < 0.7 else config.STRICT

    def single(self) -> list[Item]:
        items = [self.item(self.queue(), singleton=self.rng.random() < 0.2)]
        self.options(items)
        return items

    def batch(self) -> list[Item]:
        queue = self.queue()
        items = [self.item(queue) for _ in range(self.rng.randint(2, 12))]
        self.options(items)
        return items

    # -- one operation -----------------------------------------------------------------------

    async def step(self) -> int:
        """One random operation; returns how many jobs it tried to send."""
        self.ops += 1
        op = f"{self.name}-{self.ops}"
        roll = self.rng.random()
        if roll < 0.4:
            items = self.single()
            await self.plain(op, "single", [items])
        elif roll < 0.65:
            items = self.batch()
            await self.plain(op, "batch", [items])
        else:
            groups = [
                self.single() if self.rng.random() < 0.6 else self.batch()
                for _ in range(self.rng.randint(1, 3))
            ]
            rollback = self.rng.random() < 0.3
            await self.transaction(op, groups, rollback)
            items = [item for group in groups for item in group]
        return len(items)

    def intent(self, op: str, mode: str, groups: list[list[Item]], rollback: bool) -> None:
        items = [item.record() for group in groups for item in group]
        self.recorder.write("intent", p=self.name, op=op, mode=mode, rollback=rollback, items=items)

    def outcome(self, op: str, result: str, ids: list[str | None], err: str | None) -> None:
        self.recorder.write("outcome", p=self.name, op=op, result=result, ids=ids, err=err)

    async def send_group(
        self, group: list[Item], conn: psycopg.AsyncConnection[Any] | None
    ) -> list[str]:
        first = group[0]
        if len(group) == 1:
            job_id = await self.boss.send(
                first.queue,
                first.data,
                conn=conn,
                start_after=first.start_after,
                priority=first.prio,
                singleton_key=first.sk,
            )
            return [str(job_id)]
        ids = await self.boss.send_many(
            first.queue,
            [item.data for item in group],
            conn=conn,
            start_after=first.start_after,
            priority=first.prio,
        )
        return [str(job_id) for job_id in ids]

    async def plain(self, op: str, mode: str, groups: list[list[Item]]) -> None:
        self.intent(op, mode, groups, False)
        try:
            ids = await asyncio.wait_for(self.send_group(groups[0], None), OP_TIMEOUT_S)
        except Exception as exc:
            self.outcome(op, "unknown", [], f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)
            return
        self.outcome(op, "committed", list(ids), None)

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                await self._conn.close()
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, application_name=f"chaos-{self.name}-tx"
            )
        return self._conn

    async def transaction(self, op: str, groups: list[list[Item]], rollback: bool) -> None:
        self.intent(op, "tx", groups, rollback)
        ids: list[str | None] = []
        committing = False
        try:
            async with asyncio.timeout(OP_TIMEOUT_S):
                conn = await self.connection()
                async with conn.transaction(force_rollback=rollback):
                    for group in groups:
                        ids.extend(await self.send_group(group, conn))
                    committing = True
        except Exception as exc:
            result = "unknown" if committing and not rollback else "rolled_back"
            self.outcome(op, result, ids, f"{type(exc).__name__}: {exc}")
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            await asyncio.sleep(0.2)
            return
        self.outcome(op, "rolled_back" if rollback else "committed", ids, None)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def start_boss(dsn: str) -> Boss:
    for _ in range(60):
        boss = config.make_boss(dsn)
        try:
            await boss.start(migrate=False)
            return boss
        except Exception as exc:
            logging.warning("producer: start failed (%r); retrying", exc)
            await asyncio.sleep(1.0)
    raise RuntimeError("the producer's Boss did not start within 60 attempts")


async def run(name: str, dsn: str, recorder: Recorder, seed: int, rate: float) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    boss = await start_boss(dsn)
    producer = Producer(name, boss, dsn, recorder, random.Random(f"{seed}:{name}"))
    print("READY", flush=True)
    try:
        while not stopping.is_set():
            sent = await producer.step()
            pause = sent / rate * producer.rng.uniform(0.5, 1.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), pause)
    finally:
        await producer.close()
        await asyncio.wait_for(boss.stop(), 60)
    print("STOPPED", flush=True)
    return 0


def main(argv: list[str]) -> int:
    name, dsn, record_file, seed, rate, parent = argv
    die_with_parent(int(parent))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    recorder = Recorder(Path(record_file))
    try:
        return asyncio.run(run(name, dsn, recorder, int(seed), float(rate)))
    finally:
        recorder.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
