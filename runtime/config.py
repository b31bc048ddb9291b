"""Configuration: where the database is.

The DSN rule of the design: the explicit argument, else ``QUEUES_DSN``, else ``DATABASE_URL``.
Nothing here falls back to an embedded server; only the demo and the test suite do that.
"""

from __future__ import annotations

import os

__all__ = ["DSN_ENV_VARS", "resolve_dsn"]

#: Environment variables consulted, in order, when no DSN is passed explicitly.
DSN_ENV_VARS: tuple[str, ...] = ("QUEUES_DSN", "DATABASE_URL")


def resolve_dsn(explicit: str | None) -> str | None:
    """Return the DSN to use: ``explicit``, else ``$QUEUES_DSN``, else ``$DATABASE_URL``.

    Empty strings count as unset. Returns ``None`` when nothing is configured.
    """
    if explicit:
        return explicit
    for name in DSN_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None
