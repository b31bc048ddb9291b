"""Helpers of the runtime tests (imported by the test modules)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

NO_RETRY_DELAY = RetryPolicy(limit=2, delay=timedelta(0), backoff="fixed", jitter=False)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 15.0, every: float = 0.05
) -> None:
    """Poll ``check`` until it is true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return
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


async def scalar(
    conn: psycopg.AsyncConnection[Any], schema: str, template: LiteralString, *params: Any
) -> Any:
    found = await rows(conn, schema, template, *params)
    if not found:
        raise AssertionError("query returned no row")
    return found[0][0]


async def count_jobs(
    conn: psycopg.AsyncConnection[Any], schema: str, state: str | None = None
) -> int:
    if state is None:
        return int(await scalar(conn, schema, "SELECT count(*) FROM {schema}.job"))
    return int(
        await scalar(conn, schema, "SELECT count(*) FROM {schema}.job WHERE state = %s", state)
    )


async def make_queue(boss: Boss, name: str = "q", **kwargs: Any) -> QueueSpec:
    spec = QueueSpec(name=name, **kwargs)
    await boss.create_queue(spec)
    return spec
