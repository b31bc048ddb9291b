"""Profile this project's side of the benchmark: where the time of one job goes.

    python bench/profile_queues.py cpu        # per phase: wall, client CPU, server CPU per job
    python bench/profile_queues.py pyspy      # per system and phase: py-spy self time by function
    python bench/profile_queues.py explain    # claim plans and drain rates at 100k / 1M queued
    python bench/profile_queues.py wakeup     # the wake-up latency (e), hop by hop
    python bench/profile_queues.py typed      # the generated enqueue_*_many against the engine
    python bench/profile_queues.py deadhead   # the claim against jobs claimed since the last vacuum

Outputs go to bench/.cache/profile/ (py-spy raw stacks) and stdout; PROFILE.md is written from
them by hand. py-spy is installed into its own virtualenv under bench/.cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))

from benchlib import db  # noqa: E402
from benchlib.cpu import BackendCpu  # noqa: E402
from benchlib.pyspy import pyspy_path, record, summarize  # noqa: E402
from benchlib.runner import run_driver  # noqa: E402
from benchlib.systems import systems_by_name  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PHASES: dict[str, dict[str, Any]] = {
    "send_serial": {"phase": "send_serial"},
    "send_concurrent": {"phase": "send_concurrent", "concurrency": 50},
    "send_batch": {"phase": "send_batch"},
    "work_c10": {"phase": "work", "concurrency": 10},
    "work_c50": {"phase": "work", "concurrency": 50},
    "work_floor": {"phase": "drain", "concurrency": 500},  # the floor system only
}


def _spec(name: str, dsn: str, jobs: int) -> dict[str, Any]:
    return {**PHASES[name], "dsn": dsn, "n": jobs, "timeout_s": 600}


def _prepare(system_name: str, name: str, dsn: str, jobs: int) -> None:
    system = systems_by_name([system_name])[-1]
    env = system.prepare(BENCH / ".cache", upgrade=False)
    if PHASES[name]["phase"] in {"work", "drain"}:
        run_driver(system, env, {"phase": "seed", "dsn": dsn, "n": jobs, "timeout_s": 600}, 900)
        db.analyze(dsn)


def cpu(args: argparse.Namespace) -> None:
    """Wall time and CPU per job: the driver process (client) and its database's backends."""
    print(f"{'system':<8} {'phase':<16} {'jobs/s':>9} {'wall us/job':>12} "
          f"{'client us/job':>14} {'server us/job':>14} {'backends':>9}")  # fmt: skip
    for system_name in args.systems:
        system = systems_by_name([system_name])[-1]
        env = system.prepare(BENCH / ".cache", upgrade=False)
        for name in args.phases:
            if PHASES[name]["phase"] == "drain" and not system.drains:
                continue
            with db.fresh_database(args.dsn, f"prof_{system_name}") as dsn:
                _prepare(system_name, name, dsn, args.jobs)
                dbname = dsn.rsplit("/", 1)[1].split("?")[0]
                with BackendCpu(dbname) as server:
                    res = run_driver(system, env, _spec(name, dsn, args.jobs), 900)
                client = res.data["cpu_s"]
                n = args.jobs
                print(
                    f"{system_name:<8} {name:<16} {res.data['rate']:>9,.0f} "
                    f"{1e6 * res.data['seconds'] / n:>12.1f} {1e6 * client / n:>14.1f} "
                    f"{1e6 * server.seconds / n:>14.1f} {server.backends:>9}"
                )


def pyspy(args: argparse.Namespace) -> None:
    spy = pyspy_path(BENCH / ".cache")
    out_dir = BENCH / ".cache" / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    for system_name in args.systems:
        system = systems_by_name([system_name])[-1]
        env = system.prepare(BENCH / ".cache", upgrade=False)
        for name in args.phases:
            if PHASES[name]["phase"] == "drain" and not system.drains:
                continue
            with db.fresh_database(args.dsn, f"prof_{system_name}") as dsn:
                _prepare(system_name, name, dsn, args.jobs)
                raw = out_dir / f"{system_name}-{name}.txt"
                cmd = system.command(env, _spec(name, dsn, args.jobs))
                proc = record(spy, cmd, raw, args.rate)
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    continue
            _print_profile(f"{system_name} {name}", raw, args.top)


def _print_profile(title: str, raw: Path, top: int) -> None:
    prof = summarize(raw, top)
    print(f"\n## {title}: {prof.total} samples on CPU ({raw})")
    print("self time by function:")
    for func, count in prof.self_by_function:
        print(f"  {100 * count / prof.total:5.1f}%  {func}")
    print("inclusive time by file:")
    for module, count in prof.inclusive_by_module:
        print(f"  {100 * count / prof.total:5.1f}%  {module}")


async def _explain(dsn: str, backlog: int, drain_batches: int) -> None:
    import psycopg

    from typed_queues.runtime import Boss, QueueSpec
    from typed_queues.runtime.db.queries import queries_for

    q = queries_for("queues")
    async with Boss(dsn) as boss:
        await boss.create_queue(QueueSpec("bench"))
        await boss.create_queue(QueueSpec("done"))
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        await conn.execute(
            "INSERT INTO queues.job (id, queue, data) SELECT gen_random_uuid(), 'bench',"
            " jsonb_build_object('i', g) FROM generate_series(1, %s) g",
            (backlog,),
        )
        await conn.execute(
            "INSERT INTO queues.job (id, queue, data, state, completed_on) SELECT"
            " gen_random_uuid(), 'done', '{}', 'completed', now() FROM generate_series(1, %s) g",
            (backlog // 5,),
        )
        await conn.execute("ANALYZE")
        params = {"queue": "bench", "limit": 50, "lease": timedelta(seconds=30)}
        claim = q["claim_work"].decode()
        for mode in ("auto", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            async with conn.transaction(force_rollback=True):
                cur = await conn.execute(
                    ("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + claim).encode(), params
                )
                plan = [row[0] for row in await cur.fetchall()]
            print(f"\n### claim, backlog {backlog:,}, plan_cache_mode={mode}")
            print("\n".join(plan))
        await conn.execute("SET plan_cache_mode = auto")
        rates = []
        t = time.perf_counter()
        step = max(1, drain_batches // 8)
        for k in range(drain_batches):
            cur = await conn.execute(q["claim_work"], params, prepare=True)
            rows = await cur.fetchall()
            await conn.execute(
                q["complete_many"],
                {"ids": [r[0] for r in rows], "fences": [r[1] for r in rows],
                 "outputs": [None] * len(rows)},
                prepare=True,
            )  # fmt: skip
            if (k + 1) % step == 0:
                now = time.perf_counter()
                rates.append(round(50 * step / (now - t)))
                t = now
        print(f"\nclaim 50 + complete_many, one connection, {drain_batches} batches, rows/s by "
              f"eighths: {rates}")  # fmt: skip
        async with conn.transaction(force_rollback=True):
            cur = await conn.execute(
                ("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + claim).encode(), params
            )
            plan = [row[0] for row in await cur.fetchall()]
        print(f"\n### claim after the drain (backlog {backlog:,})")
        print("\n".join(plan))


def explain(args: argparse.Namespace) -> None:
    for backlog in args.backlogs:
        with db.fresh_database(args.dsn, "prof_explain") as dsn:
            asyncio.run(_explain(dsn, backlog, args.drain_batches))


def wakeup(args: argparse.Namespace) -> None:
    # imported here: it wraps runtime internals that the runtime's refactors move (it still
    # names the modules before runtime/ was split into db, client and worker)
    from benchlib.wakeup import wakeup_breakdown

    with db.fresh_database(args.dsn, "prof_wakeup") as dsn:
        wakeup_breakdown(dsn)


def typed(args: argparse.Namespace) -> None:
    from benchlib.typed_profile import typed_breakdown

    with db.fresh_database(args.dsn, "prof_typed") as dsn:
        typed_breakdown(dsn, BENCH / ".cache", args.jobs, args.rounds)


def deadhead(args: argparse.Namespace) -> None:
    from benchlib.deadhead import dead_head

    with db.fresh_database(args.dsn, "prof_deadhead") as dsn:
        dead_head(dsn, args.queued, args.claimed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["cpu", "pyspy", "explain", "wakeup", "typed", "deadhead"])
    p.add_argument("--dsn", default=os.environ.get("QUEUES_TEST_DSN", DEFAULT_DSN))
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--phases", nargs="+", default=list(PHASES), choices=list(PHASES))
    p.add_argument("--systems", nargs="+", default=["queues", "floor"])
    p.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--backlogs", nargs="+", type=int, default=[100_000, 1_000_000])
    p.add_argument("--drain-batches", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5, help="typed: interleaved rounds")
    p.add_argument("--queued", type=int, default=1_200_000, help="deadhead: jobs queued")
    p.add_argument("--claimed", type=int, default=1_000_000, help="deadhead: claimed, no vacuum")
    args = p.parse_args()
    commands = {"cpu": cpu, "pyspy": pyspy, "explain": explain, "wakeup": wakeup, "typed": typed,
                "deadhead": deadhead}  # fmt: skip
    commands[args.what](args)


if __name__ == "__main__":
    main()
