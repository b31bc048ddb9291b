"""The client's connections: the pool, opened by ``Boss.start()``, and the send path's own
dedicated connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..db import AsyncConn
from ..db.connect import connection_kwargs
from ..db.dedicated import DedicatedConnection
from ..errors import ConfigurationError

__all__ = ["ClientConnections"]

log = logging.getLogger("queues")
T = TypeVar("T")


class ClientConnections:
    def __init__(
        self, schema: str, max_pool_size: int, connect_timeout: float, lifetime: float
    ) -> None:
        self._schema = schema
        self._max_pool_size = max_pool_size
        self._lifetime = lifetime
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[AsyncConn] | None = None
        self.dsn: str | None = None
        #: The send path's own connection (see ``DedicatedConnection``).
        self.send: DedicatedConnection | None = None

    @property
    def open(self) -> bool:
        return self._pool is not None

    async def start(self, dsn: str) -> AsyncConnectionPool[AsyncConn]:
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=self._max_pool_size,
            kwargs=connection_kwargs(dsn, "queues"),
            max_lifetime=self._lifetime,
            open=False,
            name=f"queues-{self._schema}",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except BaseException:
            await pool.close()
            raise
        self._pool, self.dsn = pool, dsn
        self.send = DedicatedConnection(dsn, connection_kwargs(dsn, "queues"), self._lifetime)
        return pool

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if self.send is not None:
            send, self.send = self.send, None
            await send.close()
        if pool is not None:
            await pool.close()

    def pool(self) -> AsyncConnectionPool[AsyncConn]:
        if self._pool is None:
            raise ConfigurationError(
                "the Boss is not started: `await boss.start()` first "
                "(or use `async with Boss(...) as boss`)"
            )
        return self._pool

    def dedicated(self) -> DedicatedConnection:
        self.pool()
        assert self.send is not None  # (made with the pool)
        return self.send

    async def with_retry(self, action: Callable[[AsyncConn], Awaitable[T]]) -> T:
        """Run ``action`` on a pooled connection, again when the connection is lost. Only for
        idempotent work: reads, and sends whose ids are made here."""
        pool = self.pool()
        for attempt in range(3):
            try:
                async with pool.connection() as conn:
                    return await action(conn)
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise
                log.warning("database call failed (%s); retrying", exc)
                await asyncio.sleep(0.05 * 4**attempt)
        raise AssertionError("unreachable")
