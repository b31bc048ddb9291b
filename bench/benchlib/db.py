"""The harness's own database chores: fresh databases, sizes, ANALYZE/VACUUM, server facts."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = [
    "analyze",
    "database_size",
    "drop_stale",
    "dsn_for",
    "fresh_database",
    "server_facts",
    "vacuum",
    "wait_ready",
]


def dsn_for(dsn: str, dbname: str) -> str:
    """`dsn` pointed at `dbname`, as a postgresql:// URL (node-postgres and asyncpg need one)."""
    params = conninfo_to_dict(make_conninfo(dsn, dbname=dbname))
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}@" if password else f"{user}@" if user else ""
    host = str(params.pop("host", "localhost"))
    port = params.pop("port", None)
    if host.startswith("/"):  # a socket directory goes in the query
        params["host"], host = host, ""
        if port:
            params["port"], port = port, None
    netloc = f"{auth}{host}" + (f":{port}" if port else "")
    name = quote(str(params.pop("dbname")), safe="")
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"postgresql://{netloc}/{name}" + (f"?{query}" if query else "")


def _admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def _drop(dsn: str, name: str) -> None:
    with _admin(dsn) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def fresh_database(dsn: str, system: str) -> Iterator[str]:
    """Create an empty database for one run of one system; drop it afterwards."""
    name = f"bench_{system}_{os.getpid()}"
    _drop(dsn, name)
    with _admin(dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield dsn_for(dsn, name)
    finally:
        _drop(dsn, name)


def wait_ready(dsn: str, timeout: float = 300.0) -> None:
    """Block until the server accepts connections (a shared server may be restarting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _admin(dsn) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def drop_stale(dsn: str) -> list[str]:
    """Drop databases left by harness processes that no longer run (bench_<system>_<pid>)."""
    with _admin(dsn) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^bench_[a-z_]+_[0-9]+$'"
        )]  # fmt: skip
    dropped = []
    for name in names:
        pid = int(name.rsplit("_", 1)[1])
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            _drop(dsn, name)
            dropped.append(name)
    return dropped


def database_size(dsn: str) -> int:
    """Bytes of the database `dsn` points at."""
    with _admin(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def analyze(dsn: str) -> None:
    with _admin(dsn) as conn:
        conn.execute("ANALYZE")


def vacuum(dsn: str) -> None:
    """Plain VACUUM (what autovacuum does): frees dead rows for reuse, never rewrites."""
    with _admin(dsn) as conn:
        conn.execute("VACUUM")


def server_facts(dsn: str) -> dict[str, str]:
    with _admin(dsn) as conn:
        facts = {"version": str(conn.execute("SHOW server_version").fetchone()[0])}  # type: ignore[index]
        for setting in ("synchronous_commit", "fsync", "shared_buffers", "max_connections",
                        "autovacuum", "autovacuum_naptime"):  # fmt: skip
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            facts[setting] = str(row[0]) if row else "?"
    params = conninfo_to_dict(dsn)
    facts["host"] = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
    return facts
