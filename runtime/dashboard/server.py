"""``serve``: the dashboard as ``queues dashboard`` runs it: a Boss of its own on the database
(no workers, no maintenance, no migration) and uvicorn on the given address."""

from __future__ import annotations

import logging

import psycopg
import uvicorn

from ..client import Boss
from ..config import redact
from ..errors import QueuesError
from .app import create_app
from .security import check_bind, is_loopback

__all__ = ["serve"]

log = logging.getLogger("queues.dashboard")


async def serve(
    dsn: str,
    *,
    schema: str = "queues",
    host: str = "127.0.0.1",
    port: int = 8787,
    token: str | None = None,
) -> None:
    """Serve the dashboard until SIGINT or SIGTERM. Refuses (``ConfigurationError``) a
    non-loopback ``host`` without a ``token``; fails (``QueuesError``) when the schema holds
    no queue tables."""
    check_bind(host, token)
    boss = Boss(dsn, schema=schema, max_pool_size=4, maintenance=False, listen=False)
    await boss.start(migrate=False)
    try:
        try:
            await boss.queue_overview()  # the schema is there and readable, or stop now
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise QueuesError(
                f"schema {schema!r} is missing queue tables or columns ({type(exc).__name__}): "
                f"run `queues migrate --schema {schema}`"
            ) from None
        app = create_app(boss, token=token, dsn=dsn, loopback_only=is_loopback(host))
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            server_header=False,
            log_config=None,
        )
        shown = f"[{host}]" if ":" in host else host
        log.info(
            "dashboard of schema %r on %s: http://%s:%d/%s",
            schema,
            redact(dsn),
            shown,
            port,
            " (token required)" if token else "",
        )
        await uvicorn.Server(config).serve()
    finally:
        await boss.stop()
