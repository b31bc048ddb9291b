"""The database side of the history: an audit of job-state transitions, and snapshots.

``install`` adds row triggers to the soak schema's job table (in the private database only)
that append every insert and every change of state or fence to ``chaos_audit.transition`` in
the same transaction: a transition exists if and only if its write committed. A claim shows as
a change to ``active`` with the new fence and the lease it was given; a completion, a failure,
a rescue or a hand-back as a change away from ``active`` carrying the fence it applied to.
Heartbeats (which change neither) are not recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from . import config

__all__ = [
    "JobRow",
    "Snapshot",
    "Transition",
    "install",
    "singleton_duplicates",
    "snapshot",
    "unfinished",
]

_INSTALL = """
CREATE SCHEMA IF NOT EXISTS {audit};
CREATE TABLE IF NOT EXISTS {audit}.transition (
    seq         bigserial PRIMARY KEY,
    job_id      uuid NOT NULL,
    queue       text NOT NULL,
    old_state   text,
    new_state   text NOT NULL,
    fence       integer NOT NULL,
    retry_count integer NOT NULL,
    lease_until timestamptz,
    at          timestamptz NOT NULL DEFAULT now(),
    wall        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION {audit}.record() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO {audit}.transition
        (job_id, queue, old_state, new_state, fence, retry_count, lease_until)
    VALUES (NEW.id, NEW.queue, CASE WHEN TG_OP = 'UPDATE' THEN OLD.state::text END,
            NEW.state::text, NEW.fence, NEW.retry_count, NEW.lease_until);
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS chaos_audit_insert ON {schema}.job;
CREATE TRIGGER chaos_audit_insert AFTER INSERT ON {schema}.job
    FOR EACH ROW EXECUTE FUNCTION {audit}.record();
DROP TRIGGER IF EXISTS chaos_audit_update ON {schema}.job;
CREATE TRIGGER chaos_audit_update AFTER UPDATE ON {schema}.job
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.fence <> NEW.fence)
    EXECUTE FUNCTION {audit}.record();
"""


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    queue: str
    state: str
    retry_count: int
    fence: int
    tok: str | None
    singleton_key: str | None
    dead_letter_id: str | None
    output: Any


@dataclass(frozen=True, slots=True)
class Transition:
    seq: int
    job_id: str
    queue: str
    old_state: str | None
    new_state: str
    fence: int
    retry_count: int
    lease_until: float | None  # epoch seconds
    at: float  # the transaction's now(), epoch seconds


@dataclass(frozen=True, slots=True)
class Snapshot:
    rows: list[JobRow]
    transitions: list[Transition]
    retry_limits: dict[str, int]
    dead_letters: dict[str, str | None]

    def save(self, path: Path) -> None:
        """Write it as JSON (``load`` reads it back: the checker can run again offline)."""
        document = {
            "rows": [asdict(row) for row in self.rows],
            "transitions": [asdict(tr) for tr in self.transitions],
            "retry_limits": self.retry_limits,
            "dead_letters": self.dead_letters,
        }
        path.write_text(json.dumps(document, separators=(",", ":")))

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        document = json.loads(path.read_text())
        return cls(
            [JobRow(**row) for row in document["rows"]],
            [Transition(**tr) for tr in document["transitions"]],
            document["retry_limits"],
            document["dead_letters"],
        )


def _q(template: str) -> sql.Composed:
    return sql.SQL(template).format(
        schema=sql.Identifier(config.SCHEMA), audit=sql.Identifier(config.AUDIT_SCHEMA)
    )


async def install(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute(_q(_INSTALL))


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


async def snapshot(conn: psycopg.AsyncConnection[Any]) -> Snapshot:
    """Every job row, every transition and the queues' policies, as the checker reads them."""
    cur = await conn.execute(
        _q(
            "SELECT id::text, queue, state::text, retry_count, fence, data->>'tok', "
            "singleton_key, dead_letter_id::text, output FROM {schema}.job"
        )
    )
    rows = [JobRow(*row) for row in await cur.fetchall()]
    cur = await conn.execute(
        _q(
            "SELECT seq, job_id::text, queue, old_state, new_state, fence, retry_count, "
            "lease_until, at FROM {audit}.transition ORDER BY seq"
        )
    )
    transitions = [
        Transition(seq, job, queue, old, new, fence, retries, _epoch(lease), at.timestamp())
        for seq, job, queue, old, new, fence, retries, lease, at in await cur.fetchall()
    ]
    cur = await conn.execute(_q("SELECT name, retry_limit, dead_letter FROM {schema}.queue"))
    limits: dict[str, int] = {}
    dead: dict[str, str | None] = {}
    for name, limit, dead_letter in await cur.fetchall():
        limits[name], dead[name] = limit, dead_letter
    return Snapshot(rows, transitions, limits, dead)


async def singleton_duplicates(conn: psycopg.AsyncConnection[Any]) -> list[list[Any]]:
    """Singleton keys that have more than one queued-or-active job right now."""
    cur = await conn.execute(
        _q(
            "SELECT queue, singleton_key, count(*) FROM {schema}.job "
            "WHERE state <= 'active' AND singleton_key IS NOT NULL "
            "GROUP BY queue, singleton_key HAVING count(*) > 1"
        )
    )
    return [list(row) for row in await cur.fetchall()]


async def unfinished(conn: psycopg.AsyncConnection[Any]) -> int:
    """Jobs of the worked queues that are not final yet (queued, retrying or active)."""
    cur = await conn.execute(
        _q("SELECT count(*) FROM {schema}.job WHERE state <= 'active' AND queue = ANY(%s)"),
        (list(config.WORKED),),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0
