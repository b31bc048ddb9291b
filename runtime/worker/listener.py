"""One LISTEN connection per process: wakes the workers of a queue when a job arrives.

The connection is re-opened with backoff when it is lost (a PostgreSQL restart, a network
fault) and re-subscribes; after every (re)connect all workers are woken once to catch up on
anything sent while nobody listened. Polling in the workers remains the fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from ..db import Store

__all__ = ["Listener"]

log = logging.getLogger("queues.listener")

#: Seconds without a notification after which the connection is checked with a query.
_LIVENESS_CHECK = 30.0


class Listener:
    def __init__(
        self,
        store: Store,
        conninfo: str,
        connect_kwargs: dict[str, Any],
        on_notify: Callable[[str], None],
        on_connect: Callable[[], None],
    ) -> None:
        self._store = store
        self._conninfo = conninfo
        self._kwargs = {
            **connect_kwargs,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        #: How many times the connection was (re)established.
        self.connections = 0
        #: Server process id of the current connection (for diagnostics and fault tests).
        self.backend_pid: int | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="queues-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.connected.clear()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            before = self.connections
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                if self.connections > before:  # it had worked: start the backoff afresh
                    delay = 0.05
                log.warning(
                    "notification connection lost (%s: %s); reconnecting in %.2fs "
                    "(workers poll meanwhile)",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        async with conn:
            await self._store.channel_listen(conn)
            self.connections += 1
            self.backend_pid = conn.info.backend_pid
            self.connected.set()
            self._on_connect()
            while True:
                async for notify in conn.notifies(timeout=_LIVENESS_CHECK):
                    self._on_notify(notify.payload)
                await self._store.ping(conn)
