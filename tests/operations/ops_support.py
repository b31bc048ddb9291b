"""Helpers of the operations tests."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

WORK = "ops.work"
DEAD = "ops.work-dead"


def retry_policy(limit: int) -> RetryPolicy:
    """``limit`` retries, each due at once."""
    return RetryPolicy(limit=limit, delay=timedelta(0), backoff="fixed", jitter=False)


async def make_queues(boss: Boss, *, retry_limit: int = 0) -> None:
    """``ops.work`` (dead-lettering into ``ops.work-dead``) and ``ops.work-dead``."""
    await boss.create_queues(
        [
            QueueSpec(name=WORK, retry=retry_policy(retry_limit), dead_letter=DEAD),
            QueueSpec(name=DEAD, retry=retry_policy(0)),
        ]
    )


def fast_boss(dsn: str, schema: str, **options: Any) -> Boss:
    """A Boss whose workers poll often (retries are due at once but not notified)."""
    options.setdefault("poll_interval", timedelta(milliseconds=100))
    return Boss(dsn, schema=schema, **options)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 30.0, every: float = 0.05
) -> None:
    """Poll ``check`` until it is true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


async def rows(
    conn: psycopg.AsyncConnection[Any], schema: str, template: LiteralString, *params: Any
) -> list[tuple[Any, ...]]:
    """Run ``template`` with ``{schema}`` replaced by the quoted schema name."""
    query = sql.SQL(template).format(schema=sql.Identifier(schema))
    cur = await conn.execute(query, params)
    return await cur.fetchall() if cur.description else []


def scrape(port: int) -> str:
    """The text of ``http://127.0.0.1:PORT/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        metric, _, value = line.rpartition(" ")
        found, _, rest = metric.partition("{")
        if found != name:
            continue
        pairs = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if {key: raw.strip('"') for key, raw in pairs.items()} == labels:
            return float(value)
    return None
