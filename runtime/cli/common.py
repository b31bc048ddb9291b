"""What the ``queues`` subcommands share: their two failure kinds and the DSN rule."""

from __future__ import annotations

from ..config import resolve_dsn

__all__ = ["Failure", "UsageError", "preflight", "require_dsn"]

_NO_DSN = (
    "no database configured: pass --dsn, or set QUEUES_DSN (or DATABASE_URL)"
    " to a PostgreSQL connection string"
)


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


class Failure(Exception):
    """An expected failure at run time: reported in one line, exit code 1."""


def require_dsn(explicit: str | None) -> str:
    dsn = resolve_dsn(explicit)
    if dsn is None:
        raise UsageError(_NO_DSN)
    return dsn


async def preflight(dsn: str) -> None:
    """Fail fast (one line, exit 1) when the database does not answer, instead of the pool's
    retries; a deployment's worker keeps the pool's patience."""
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=10)
    await conn.close()
