"""A TCP proxy on loopback (asyncio) between soak processes and the private PostgreSQL.

Each ``Proxy`` listens on its own free port of 127.0.0.1 and forwards every connection to the
database port. Its faults: ``latency`` (every chunk waits before it is forwarded), ``stall``
(nothing is forwarded, in either direction, until it ends; connections stay open and the data
is delivered afterwards) and ``cut`` (every open connection is aborted at once).
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Proxy"]

_CHUNK = 65536
_CONNECT_TIMEOUT_S = 5.0


class Proxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<upstream_port>."""

    def __init__(self, name: str, upstream_port: int) -> None:
        self.name = name
        self.upstream_port = upstream_port
        self.latency = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    # -- faults ------------------------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        self.latency = max(0.0, seconds)

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> int:
        """Abort every open connection; returns how many there were."""
        links = list(self._links)
        for client, upstream in links:
            client.transport.abort()
            upstream.transport.abort()
        return len(links)

    def heal(self) -> None:
        self.set_latency(0.0)
        self.resume()

    async def close(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    # -- forwarding --------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.upstream_port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            writer.transport.abort()  # the database is down: the client sees a reset
            return
        self.connections += 1
        link = (writer, up_writer)
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._links.discard(link)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    return
                if self.latency:
                    await asyncio.sleep(self.latency)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
