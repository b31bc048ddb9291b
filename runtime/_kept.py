"""One pooled connection, with a cursor on it, kept between the calls of one hot path.

A send after a send, or a claim after a claim, then pays neither the pool checkout nor the
making of a cursor (together ~20 us of a ~250 us round trip). Whoever finds the kept
connection taken (calls in flight at once) uses another from the pool. A call that fails gives
its connection back to the pool, which replaces it if it is broken; ``release()`` returns the
kept one, before the pool closes.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

__all__ = ["KeptConnection"]

AsyncConn = psycopg.AsyncConnection[Any]
AsyncCursor = psycopg.AsyncCursor[Any]


class KeptConnection:
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: AsyncCursor | None = None

    async def take(self, pool: AsyncConnectionPool[AsyncConn]) -> AsyncCursor:
        """The kept connection's cursor, or one on a connection from the pool."""
        cursor, self._held = self._held, None
        if cursor is None:
            conn = await pool.getconn()
            cursor = conn.cursor()
        return cursor

    async def keep(self, pool: AsyncConnectionPool[AsyncConn], cursor: AsyncCursor) -> None:
        """The call on ``cursor`` went well: keep its connection for the next call."""
        if self._held is None:
            self._held = cursor
        else:
            await pool.putconn(cursor.connection)

    async def drop(self, pool: AsyncConnectionPool[AsyncConn], cursor: AsyncCursor) -> None:
        """The call on ``cursor`` failed: its connection goes back to the pool."""
        await pool.putconn(cursor.connection)

    async def release(self, pool: AsyncConnectionPool[AsyncConn]) -> None:
        cursor, self._held = self._held, None
        if cursor is not None:
            await pool.putconn(cursor.connection)
