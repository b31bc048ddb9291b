"""A connection of its own, with a cursor on it, for one hot path (sends, or claims).

A send after a send, or a claim after a claim, then pays neither a pool checkout nor the
making of a cursor (bench/PROFILE.md has what that saves). It is not taken from the pool, so
it can never keep the pool's connections from handlers, heartbeats or result writes: a call
that finds it busy (calls in flight at once) uses a pooled connection instead. It is opened on
first use and again after it breaks; ``close()`` closes it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

__all__ = ["DedicatedConnection"]

AsyncConn = psycopg.AsyncConnection[Any]
AsyncCursor = psycopg.AsyncCursor[Any]
AsyncPool = AsyncConnectionPool[AsyncConn]

#: Seconds to wait for the kept connection to open, as long as a pool waits for a connection.
_CONNECT_TIMEOUT = 10.0


class DedicatedConnection:
    """See the module doc. Like a pool's connections, it is replaced once it is older than
    ``max_lifetime`` seconds (so a server-side limit or a failover does not pin it forever)."""

    __slots__ = ("_busy", "_closed", "_conninfo", "_cursor", "_kwargs", "_max_lifetime", "_opened")

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_lifetime: float = 3600.0) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._max_lifetime = max_lifetime
        self._cursor: AsyncCursor | None = None
        self._opened = 0.0
        self._busy = False
        self._closed = False

    @property
    def backend_pid(self) -> int | None:
        """The server process of the connection now kept, if any (for diagnostics)."""
        return None if self._cursor is None else self._cursor.connection.info.backend_pid

    async def take(self, pool: AsyncPool) -> AsyncCursor:
        """The kept connection's cursor if it is free, else one on a pooled connection."""
        if self._busy or self._closed:
            conn = await pool.getconn()
            return conn.cursor()
        self._busy = True
        try:
            if self._cursor is not None and time.monotonic() - self._opened > self._max_lifetime:
                old, self._cursor = self._cursor, None
                await old.connection.close()
            if self._cursor is None:
                conn = await asyncio.wait_for(
                    psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs),
                    _CONNECT_TIMEOUT,
                )
                self._cursor = conn.cursor()
                self._opened = time.monotonic()
        except BaseException:
            self._busy = False
            raise
        return self._cursor

    async def done(self, pool: AsyncPool, cursor: AsyncCursor) -> None:
        """The call on ``cursor`` is over, well or not."""
        if cursor is not self._cursor:
            await pool.putconn(cursor.connection)
            return
        self._busy = False
        conn = cursor.connection
        # After an error or a cancellation it is kept only if it is idle and sound.
        if self._closed or conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            self._cursor = None
            await conn.close()

    async def close(self) -> None:
        """Close it now, or, if a call is using it, when that call is done."""
        self._closed = True
        if self._cursor is not None and not self._busy:
            cursor, self._cursor = self._cursor, None
            await cursor.connection.close()
