"""Settings every runtime connection shares."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["connection_kwargs"]


def connection_kwargs(dsn: str, application_name: str) -> dict[str, Any]:
    """Keyword arguments of every runtime connection: autocommit, and a recognisable name."""
    kwargs: dict[str, Any] = {"autocommit": True}
    if "application_name" not in psycopg.conninfo.conninfo_to_dict(dsn):
        kwargs["application_name"] = application_name
    return kwargs
