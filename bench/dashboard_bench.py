"""How fast the dashboard's pages answer with 1,000,000 jobs in the table.

    python bench/dashboard_bench.py [--dsn DSN] [--jobs 1000000] [--rounds 20]

Fills a schema of its own (``dashboard_bench``, recreated) with jobs of every state in ten
queues and their dead-letter queues by COPY, runs ANALYZE (as autovacuum would), serves the
dashboard in process (httpx's ASGI transport: the application, its SQL and its templates, no
socket) and times every page, after rolling up the last hour's minutes as maintenance does
(job_minute, migration 0008): first just after the load (ANALYZE only, no page all-visible yet),
then after VACUUM (the steady state autovacuum keeps). It also prints the plan of each
dashboard statement and fails when one reads the job table by a sequential scan. Nothing here
is asserted as a speed: the figures go to bench/PROFILE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx  # the dev extra's HTTP client (httpx's API)
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typed_queues.runtime import Boss, QueueSpec
from typed_queues.runtime.dashboard import create_app
from typed_queues.runtime.dashboard import pages as pages_module

SCHEMA = "dashboard_bench"
QUEUES = [f"bench.q{n}" for n in range(10)]
_NONE3 = (None, None, None)


def _shares(total: int) -> dict[str, int]:
    """How many jobs of each kind: mostly completed history, a backlog, and the rest."""
    parts = {
        "completed_old": 0.70,
        "completed_hour": 0.06,
        "created": 0.17,
        "failed": 0.02,
        "dead_copies": 0.02,
        "retry": 0.01,
        "cancelled": 0.005,
        "active": 0.0005,
    }
    counts = {kind: int(total * share) for kind, share in parts.items()}
    counts["completed_old"] += total - sum(counts.values())
    return counts


def _rows(total: int, now: datetime) -> Any:
    """Every job as a COPY row: id, queue, state, priority, data, start_after, created_on,
    started_on, completed_on, output, errors, dead_letter_of."""
    rng = random.Random(14)
    error = json.dumps({"error": {"type": "UpstreamError", "message": "upstream answered 503"}})
    errors = json.dumps(
        [{"attempt": 1, "at": now.isoformat(), "type": "UpstreamError", "message": "503"}]
    )
    for kind, count in _shares(total).items():
        for n in range(count):
            queue = QUEUES[n % len(QUEUES)]
            event = f"event-{n % 7}" if n % 1000 else "rare-event"
            data = json.dumps({"event": event, "payload": {"n": n}})
            job_id = uuid.uuid4()
            if kind == "completed_old":
                done = now - timedelta(hours=1, seconds=rng.uniform(0, 6 * 86400))
                yield (
                    job_id,
                    queue,
                    "completed",
                    0,
                    data,
                    done,
                    done,
                    done,
                    done,
                    None,
                    None,
                    None,
                )
            elif kind == "completed_hour":
                done = now - timedelta(seconds=rng.uniform(0, 3600))
                due = done - timedelta(seconds=rng.uniform(0.1, 90))
                yield (job_id, queue, "completed", 0, data, due, due, done, done, None, None, None)
            elif kind == "created":
                due = now - timedelta(seconds=rng.uniform(0, 600))
                if n % 10 == 0:
                    due = now + timedelta(seconds=rng.uniform(60, 86400))
                prio = 5 if n % 50 == 0 else 0
                yield (job_id, queue, "created", prio, data, due, due, None, None, None, None, None)
            elif kind in ("failed", "cancelled"):
                done = now - timedelta(seconds=rng.uniform(0, 86400))
                out = error if kind == "failed" else None
                yield (job_id, queue, kind, 0, data, done, done, done, done, out, errors, None)
            elif kind == "dead_copies":
                due = now - timedelta(seconds=rng.uniform(0, 86400))
                dead = f"{queue}-dead"
                yield (
                    job_id,
                    dead,
                    "created",
                    0,
                    data,
                    due,
                    due,
                    None,
                    None,
                    None,
                    None,
                    uuid.uuid4(),
                )
            elif kind == "retry":
                due = now + timedelta(seconds=rng.uniform(1, 600))
                yield (job_id, queue, "retry", 0, data, due, due, None, None, error, errors, None)
            else:  # active
                started = now - timedelta(seconds=rng.uniform(0, 30))
                yield (
                    job_id,
                    queue,
                    "active",
                    0,
                    data,
                    started,
                    started,
                    started,
                    None,
                    None,
                    None,
                    None,
                )


async def fill(dsn: str, total: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
    async with Boss(dsn, schema=SCHEMA) as boss:
        specs = [QueueSpec(name=q, dead_letter=f"{q}-dead") for q in QUEUES]
        specs += [QueueSpec(name=f"{q}-dead") for q in QUEUES]
        await boss.create_queues(specs)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        copy_sql = sql.SQL(
            "COPY {}.job (id, queue, state, priority, data, start_after, created_on, started_on, "
            "completed_on, output, errors, dead_letter_of) FROM STDIN"
        ).format(sql.Identifier(SCHEMA))
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in _rows(total, now):
                copy.write_row(row)
        loaded = time.perf_counter() - started
        conn.execute(sql.SQL("ANALYZE {}.job").format(sql.Identifier(SCHEMA)))
    print(f"loaded {total:,} jobs by COPY in {loaded:.1f} s, then ANALYZE")


async def roll_up(dsn: str) -> None:
    """What maintenance does every interval: the minutes that ended go to job_minute."""
    from typed_queues.runtime.db import Store

    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
        written, _, mark = await Store(SCHEMA).job_minute_rollup(conn)
    took = (time.perf_counter() - started) * 1000
    print(f"rolled up the hour (as maintenance does): {written} rows up to {mark}, {took:.0f} ms")


def _explain_checks(dsn: str) -> list[str]:
    """The plan of every dashboard statement; the names of those that scan the job table."""
    from typed_queues.runtime.db.statements import Statements

    s = Statements(SCHEMA)
    since = datetime.now(UTC) - timedelta(minutes=59)
    statements = {
        "queue_counts_capped (all queues)": s.queue_counts_capped(None, 1000),
        "queue_counts_capped (one queue)": s.queue_counts_capped(QUEUES[0], 1000),
        "job_active_by_queue": s.job_active_by_queue(1000),
        "queue_state_estimates": s.queue_state_estimates(),
        "job_activity_minutes": s.job_activity_minutes(None, since, 100_000),
        "job_minute_rollup (maintenance)": s.job_minute_rollup(),
        "job_search_event": s.job_search_event("rare-event", QUEUES[3], None, None, 20_000, 51),
    }
    scans = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET jit = off")
        for name, stmt in statements.items():
            cur = conn.execute(b"EXPLAIN " + stmt.sql, stmt.params)
            plan = "\n".join(row[0] for row in cur.fetchall())
            seq = [line.strip() for line in plan.splitlines() if "Seq Scan on job " in line]
            indexes = sorted(
                {
                    word
                    for line in plan.splitlines()
                    for word in line.split()
                    if word.startswith("job_") and ("Index" in line)
                }
            )
            print(f"  {name}: indexes {', '.join(indexes) or '-'}" + (" SEQ SCAN" if seq else ""))
            if seq:
                scans.append(name)
    return scans


async def time_pages(dsn: str, rounds: int, label: str) -> dict[str, tuple[float, float]]:
    results: dict[str, tuple[float, float]] = {}
    ttl = pages_module.ACTIVITY_TTL
    async with Boss(dsn, schema=SCHEMA, listen=False, maintenance=False) as boss:
        app = create_app(boss, dsn=dsn)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = await boss.list_jobs(limit=50)
            second = await boss.list_jobs(queue=QUEUES[1], state="completed", limit=50)
            any_job = page.jobs[0].id
            paths = {
                "queues (counts; charts reused)": "/",
                "one queue (charts reused)": f"/queues/{QUEUES[0]}",
                "jobs, first page": "/jobs",
                "jobs, one queue, created": f"/jobs?queue={QUEUES[2]}&state=created",
                "jobs, completed, page 2 (keyset)": (
                    f"/jobs?queue={QUEUES[1]}&state=completed&after={second.next}"
                ),
                "jobs, event search (1 in 1000)": f"/jobs?queue={QUEUES[3]}&event=rare-event",
                "job detail": f"/jobs/{any_job}",
                "dead letters": "/dead-letters",
                "redrive confirmation (dry run of 1000)": f"/dead-letters/{QUEUES[0]}-dead/redrive",
                "schedules": "/schedules",
            }
            for name, path in paths.items():
                response = await client.get(path)  # warm: the connection and the cache
                assert response.status_code == 200, (path, response.status_code)
                times = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                results[name] = (statistics.median(times), p95)
                print(f"  [{label}] {name}: median {results[name][0]:.1f} ms, p95 {p95:.1f} ms")
            # The queues page and one queue's page when the activity is read anew (the first
            # view after the activity's 15 s reuse): the same application with the reuse off.
            setattr(pages_module, "ACTIVITY_TTL", 0.0)  # noqa: B010 (a Final, patched here only)
            try:
                for name, path in (
                    ("queues, activity read anew", "/"),
                    ("one queue, activity read anew", f"/queues/{QUEUES[0]}"),
                ):
                    times = []
                    for _ in range(rounds):
                        started = time.perf_counter()
                        response = await client.get(path)
                        times.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200
                    times.sort()
                    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                    results[name] = (statistics.median(times), p95)
                    print(f"  [{label}] {name}: median {results[name][0]:.1f} ms, p95 {p95:.1f} ms")
            finally:
                setattr(pages_module, "ACTIVITY_TTL", ttl)  # noqa: B010
            # And as a new application's first view: its templates are compiled then too.
            for name, path in (
                ("queues, a new application's first view", "/"),
                ("one queue, a new application's first view", f"/queues/{QUEUES[0]}"),
            ):
                times = []
                for _ in range(rounds):
                    fresh = httpx.ASGITransport(app=create_app(boss, dsn=dsn))
                    async with httpx.AsyncClient(
                        transport=fresh, base_url="http://127.0.0.1"
                    ) as cold:
                        started = time.perf_counter()
                        response = await cold.get(path)
                        times.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                results[name] = (statistics.median(times), p95)
                print(f"  [{label}] {name}: median {results[name][0]:.1f} ms, p95 {p95:.1f} ms")
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("QUEUES_DSN") or os.environ.get("QUEUES_TEST_DSN")
    )
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("pass --dsn or set QUEUES_DSN / QUEUES_TEST_DSN")
    await fill(args.dsn, args.jobs)
    await roll_up(args.dsn)
    print("plans (EXPLAIN):")
    scans = _explain_checks(args.dsn)
    cold = await time_pages(args.dsn, args.rounds, "after load + ANALYZE")
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}.job").format(sql.Identifier(SCHEMA)))
    warm = await time_pages(args.dsn, args.rounds, "after VACUUM")
    print("\n| page | after load + ANALYZE, median / p95 ms | after VACUUM, median / p95 ms |")
    print("|---|---|---|")
    for name in cold:
        c, w = cold[name], warm[name]
        print(f"| {name} | {c[0]:.1f} / {c[1]:.1f} | {w[0]:.1f} / {w[1]:.1f} |")
    if not args.keep:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    if scans:
        print(f"sequential scans of the job table in: {', '.join(scans)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
