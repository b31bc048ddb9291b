"""The scale curves of issue 17: `python bench/run.py --scale` (`nox -s bench -- --scale`).

Four parts, each on fresh databases, each driving this project as users call it (the SDK
generated from the benchmark catalogue) through bench/drivers/scale_driver.py:

* backlog: with 10k, 100k and 1M jobs queued on `bench.ticks`, one timed batch enqueue of
  `jobs` more, then one worker process handling `jobs` of them; for the SDK, the bare engine
  and the SQL floor (claim + complete 500 per statement, no handler) in turn, each after its
  own top-up enqueue, so each worker starts with backlog + `jobs` queued;
* queues: the same with 100k jobs spread over 1, 100 and 1,000 queues (the measured queue
  holds its share, the rest sits in other queues);
* processes: `process_jobs` queued, handled by 1, 4 and 16 worker processes at once;
* sustained: a producer at about half the measured maximum and one worker, for
  `sustained_minutes`, with the queue's retention short enough that finished jobs are deleted
  many times over; every `sample_s` it records the job table's and indexes' sizes, dead tuples,
  vacuum counters, the claim's cost (EXPLAIN ANALYZE, rolled back) and the send -> handler
  latency of the jobs handled in that window.

The first three parts hold one database per point and measure them in `rounds` rounds, each
round starting at another point, so that a point's figures are medians and the host's drifting
load is spread over all points alike. Throughput is handler calls per second between 10% and
90% of the jobs (start-up and the tail are left out); client CPU is the driver processes' own
CPU time, server CPU that of the run's PostgreSQL backends (benchlib/cpu.py), both per job
handled or sent.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from . import db
from .cpu import BackendCpu
from .dbstats import WaitSampler, claim_probe, counters, table_state
from .envs import Env
from .procs import Controlled, go_all, stop_all
from .runner import FLOOR_BATCH, StepError, log, run_driver
from .systems import GeneratedSdk
from .variants import apply_variant

__all__ = ["PARTS", "ScaleOptions", "run_scale"]

PARTS = ("backlog", "queues", "processes", "sustained")
DRIVER = GeneratedSdk("scale", "scale curves", ours=True, notes="bench/drivers/scale_driver.py")
#: Pools of each worker process in the curves: small, so that 16 processes fit the server's
#: max_connections next to other users (a worker process holds 4 connections: client pool,
#: worker pool, claims, listener; 3 in the processes part, which does not listen).
POOLS = {"max_pool_size": 2, "worker_pool_size": 2}
CONNECTIONS_PER_PROCESS = 3
#: Connections left free for others on a shared server while the processes part runs.
SPARE_CONNECTIONS = 15


@dataclass(slots=True)
class ScaleOptions:
    dsn: str
    cache: Path
    parts: list[str] = field(default_factory=lambda: list(PARTS))
    jobs: int = 20_000
    concurrency: int = 50
    backlogs: list[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    backlog_systems: list[str] = field(default_factory=lambda: ["queues", "engine", "floor"])
    queue_counts: list[int] = field(default_factory=lambda: [1, 100, 1_000])
    queue_backlog: int = 100_000
    processes: list[int] = field(default_factory=lambda: [1, 4, 16])
    process_jobs: int = 60_000
    sustained_minutes: float = 20.0
    sustained_rate: float | None = None
    sustained_retention_s: float = 60.0
    sample_s: float = 30.0
    rounds: int = 3
    #: Parts of an earlier run (scale.json), for the sustained rate when the curves do not run.
    previous: dict[str, Any] = field(default_factory=dict)
    #: An experimental change of the job table for the sustained run (benchlib/variants.py).
    variant: str | None = None


class _Run:
    """One scale run: the driver's environment and the helpers every part uses."""

    def __init__(self, opts: ScaleOptions) -> None:
        self.opts = opts
        self.env: Env = DRIVER.prepare(opts.cache, upgrade=False)
        if not self.env.ok:
            raise SystemExit(f"cannot run the scale curves: {self.env.reason}")

    def spec(self, dsn: str, role: str, **extra: Any) -> dict[str, Any]:
        return {"phase": role, "dsn": dsn, **POOLS, **extra}

    def one(self, dsn: str, role: str, timeout: float = 900, **extra: Any) -> dict[str, Any]:
        return run_driver(DRIVER, self.env, self.spec(dsn, role, **extra), timeout).data

    @contextlib.contextmanager
    def database(self, label: str = "scale") -> Iterator[tuple[str, str]]:
        """A fresh database (`label`: lowercase letters and `_`, unique among those open)."""
        db.wait_ready(self.opts.dsn)
        with db.fresh_database(self.opts.dsn, label) as dsn:
            yield dsn, dsn.rsplit("/", 1)[1].split("?")[0]

    def databases(self, stack: contextlib.ExitStack, part: str, n: int) -> list[tuple[str, str]]:
        """`n` fresh databases open at once, so that the rounds can go from one to the next."""
        return [stack.enter_context(self.database(f"scale_{part}_{chr(97 + k)}")) for k in range(n)]

    def rounds(self, points: list[Any]) -> Iterator[tuple[int, Any, int]]:
        """(round, point, index) for every round, each round starting one point further on,
        so that no point is always measured first (the host's load drifts)."""
        for r in range(1, self.opts.rounds + 1):
            shift = (r - 1) % len(points)
            for k in [*range(shift, len(points)), *range(shift)]:
                yield r, points[k], k

    def setup(self, dsn: str, **extra: Any) -> None:
        self.one(dsn, "setup", **extra)

    def seed(self, dsn: str, n: int, system: str = "queues") -> None:
        if n:
            took = self.one(dsn, "seed", n=n, system=system)["seconds"]
            log(f"  seeded {n:,} jobs in {took:.1f} s")
        db.analyze(dsn)  # as autovacuum would have, for a backlog this size

    def enqueue(self, dsn: str, dbname: str, system: str) -> dict[str, Any]:
        n = self.opts.jobs
        cmd = DRIVER.command(self.env, self.spec(dsn, "enqueue", n=n, system=system))
        proc = Controlled(f"{system} enqueue", cmd)
        try:
            proc.wait_ready(180)
            with BackendCpu(dbname, interval=0.1) as server:
                go_all([proc])
                data = proc.finish(600)
                server.sample()
            proc.release()
        finally:
            proc.kill()
        return {"rate": data["rate"], "client_us": 1e6 * data["cpu_s"] / n,
                "server_us": 1e6 * server.seconds / n}  # fmt: skip

    def serve(
        self, dsn: str, dbname: str, system: str, processes: int, target: int, **extra: Any
    ) -> dict[str, Any]:
        """`processes` worker processes until `target` jobs were handled; rates and CPU."""
        o = self.opts
        concurrency = FLOOR_BATCH if system == "floor" else self.opts.concurrency
        cmd = DRIVER.command(
            self.env, self.spec(dsn, "serve", system=system, concurrency=concurrency, **extra)
        )
        procs = [Controlled(f"{system} worker {k + 1}", cmd) for k in range(processes)]
        try:
            for p in procs:
                p.wait_ready(180)
            before = counters(dsn)
            with BackendCpu(dbname, interval=0.1) as server, WaitSampler(o.dsn, dbname) as waits:
                t0 = go_all(procs)
                _wait_for(lambda: sum(p.progress for p in procs), target, procs)
                results = stop_all(procs)
                server.sample()
            for p in procs:
                p.release()
            after = counters(dsn)
        finally:
            for p in procs:
                p.kill()
        handled = sum(r["handled"] for r in results)
        rates = _rates(results, target)
        return {
            **rates,
            "processes": processes,
            "handled": handled,
            "client_us": 1e6 * sum(r["cpu_s"] for r in results) / handled,
            "server_us": 1e6 * server.seconds / handled,
            "wall_s": time.monotonic() - t0,
            # what the database did for it: per job, and the backends' waits
            "per_job": {k: round((after[k] - before[k]) / handled, 3) for k in after},
            "waits": waits.shares(),
        }


def _wait_for(count: Callable[[], int], target: int, procs: list[Controlled]) -> None:
    last, last_change = -1, time.monotonic()
    while (now := count()) < target:
        if now != last:
            last, last_change = now, time.monotonic()
        if time.monotonic() - last_change > 60:
            raise StepError(f"{now:,}/{target:,} jobs handled, then no progress for 60 s")
        if not all(p.alive() for p in procs):
            raise StepError(f"a worker process exited after {now:,}/{target:,} jobs")
        time.sleep(0.02)


def _rates(results: list[dict[str, Any]], target: int) -> dict[str, float]:
    """Jobs per second between 10% and 90% of `target` (merged bins of every process), and
    over the whole run up to `target`."""
    width = results[0]["bin_s"]
    merged = [0] * max(len(r["bins"]) for r in results)
    for r in results:
        for k, v in enumerate(r["bins"]):
            merged[k] += v
    marks: dict[float, float] = {}
    total = 0
    for k, v in enumerate(merged):
        total += v
        for q in (0.1, 0.9, 1.0):
            if q not in marks and total >= q * target:
                marks[q] = (k + 1) * width
    t10, t90, t100 = marks.get(0.1, 0.0), marks.get(0.9, 0.0), marks.get(1.0, 0.0)
    return {
        "rate": 0.8 * target / (t90 - t10) if t90 > t10 else 0.0,
        "rate_whole": target / t100 if t100 else 0.0,
        "first_s": t10,
    }


def _backlog(run: _Run) -> dict[str, Any]:
    o = run.opts
    rows: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        dbs = run.databases(stack, "backlog", len(o.backlogs))
        for backlog, (dsn, _) in zip(o.backlogs, dbs, strict=True):
            log(f"[scale] backlog {backlog:,}: seeding")
            run.setup(dsn)
            run.seed(dsn, backlog)
            probes.append({"backlog": backlog, "claim_probe": claim_probe(dsn),
                           "table": table_state(dsn, counts=False)})  # fmt: skip
        for r, backlog, k in run.rounds(o.backlogs):
            dsn, dbname = dbs[k]
            log(f"[scale] round {r}/{o.rounds}, backlog {backlog:,}")
            for system in o.backlog_systems:
                sender = "engine" if system == "engine" else "queues"
                enq = run.enqueue(dsn, dbname, sender)
                db.analyze(dsn)
                proc = run.serve(dsn, dbname, system, 1, o.jobs)
                rows.append({"round": r, "backlog": backlog, "system": system, "sender": sender,
                             "enqueue": enq, "process": proc,
                             "claim_probe_after": claim_probe(dsn)})  # fmt: skip
                log(f"  {system}: enqueue {enq['rate']:,.0f} jobs/s ({sender}), "
                    f"process {proc['rate']:,.0f} jobs/s")  # fmt: skip
    return {"jobs": o.jobs, "concurrency": o.concurrency, "floor_batch": FLOOR_BATCH,
            "rounds": o.rounds, "rows": rows, "probes": probes}  # fmt: skip


def _queues(run: _Run) -> dict[str, Any]:
    o = run.opts
    rows = []
    with contextlib.ExitStack() as stack:
        dbs = run.databases(stack, "queues", len(o.queue_counts))
        for count, (dsn, _) in zip(o.queue_counts, dbs, strict=True):
            per = o.queue_backlog // count
            log(f"[scale] {o.queue_backlog:,} queued over {count:,} queue(s): seeding")
            fill = [f"fill.q{k:04d}" for k in range(count - 1)]
            run.setup(dsn, fill_queues=fill, fill_per_queue=per)
            run.seed(dsn, per)
        for r, count, k in run.rounds(o.queue_counts):
            dsn, dbname = dbs[k]
            enq = run.enqueue(dsn, dbname, "queues")
            db.analyze(dsn)
            proc = run.serve(dsn, dbname, "queues", 1, o.jobs)
            rows.append({"round": r, "queues": count, "per_queue": o.queue_backlog // count,
                         "enqueue": enq, "process": proc})  # fmt: skip
            log(f"[scale] round {r}/{o.rounds}, {count:,} queue(s): enqueue "
                f"{enq['rate']:,.0f} jobs/s, process {proc['rate']:,.0f} jobs/s")  # fmt: skip
    return {"jobs": o.jobs, "concurrency": o.concurrency, "backlog": o.queue_backlog,
            "rounds": o.rounds, "rows": rows}  # fmt: skip


def _free_connections(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity)::int"
        ).fetchone()
    return int(row[0]) if row else 0


def _processes(run: _Run) -> dict[str, Any]:
    o = run.opts
    rows: list[dict[str, Any]] = []
    counts = list(o.processes)
    free = _free_connections(o.dsn)
    for count in list(counts):
        if free < count * CONNECTIONS_PER_PROCESS + SPARE_CONNECTIONS:
            log(f"[scale] {count} processes: skipped, {free} connections free on the server")
            rows.append({"processes": count, "skipped": f"{free} connections free"})
            counts.remove(count)
    with contextlib.ExitStack() as stack:
        dbs = run.databases(stack, "processes", len(counts))
        for dsn, _ in dbs:
            run.setup(dsn)
        for r, count, k in run.rounds(counts):
            dsn, dbname = dbs[k]
            run.seed(dsn, o.process_jobs)
            # no LISTEN: the queue is never empty before the run ends, and it saves a
            # connection per process
            proc = run.serve(dsn, dbname, "queues", count, o.process_jobs, listen=False)
            rows.append({"round": r, "processes": count, "process": proc})
            log(f"[scale] round {r}/{o.rounds}, {count} worker process(es): "
                f"{proc['rate']:,.0f} jobs/s")  # fmt: skip
    return {"jobs": o.process_jobs, "concurrency": o.concurrency, "rounds": o.rounds,
            "rows": rows}  # fmt: skip


def _max_rate(run: _Run, done: dict[str, Any]) -> tuple[float, str]:
    """The SDK worker's processing rate: from this run's backlog curve, else measured."""
    for source, parts in (("this run", done), ("scale.json", run.opts.previous)):
        part = parts.get("backlog", {})
        mine = [r for r in part.get("rows", []) if r["system"] == "queues"]
        if mine:
            least = min(r["backlog"] for r in mine)
            rate = statistics.median(r["process"]["rate"] for r in mine if r["backlog"] == least)
            when = part.get("finished_utc", "")
            return rate, f"the backlog curve at {least:,} queued ({source} {when}), median"
    with run.database() as (dsn, dbname):
        run.setup(dsn)
        run.seed(dsn, run.opts.jobs)
        rate = run.serve(dsn, dbname, "queues", 1, run.opts.jobs)["rate"]
    return rate, f"measured before the run ({run.opts.jobs:,} jobs)"


def _sustained(run: _Run, done: dict[str, Any]) -> dict[str, Any]:
    o = run.opts
    if o.sustained_rate:
        rate, basis = o.sustained_rate, "given (--sustained-rate)"
    else:
        top, basis = _max_rate(run, done)
        rate, basis = round(top / 2, -2), f"half of {top:,.0f} jobs/s ({basis})"
    duration = 60 * o.sustained_minutes
    log(f"[scale] sustained: {rate:,.0f} jobs/s for {o.sustained_minutes:g} min, retention "
        f"{o.sustained_retention_s:g} s, a sample every {o.sample_s:g} s")  # fmt: skip
    samples: list[dict[str, Any]] = []
    with run.database() as (dsn, dbname):
        run.setup(dsn, retention_s=o.sustained_retention_s)
        if o.variant:
            apply_variant(dsn, o.variant)
        worker_cmd = DRIVER.command(run.env, run.spec(
            dsn, "serve", system="queues", concurrency=o.concurrency, latency=True))  # fmt: skip
        producer_cmd = DRIVER.command(run.env, run.spec(dsn, "produce", rate=rate))
        logs = o.cache / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        tag = f"sustained-{o.variant}" if o.variant else "sustained"
        worker = Controlled("sustained worker", worker_cmd, logs / f"{tag}-worker.log")
        producer = Controlled("sustained producer", producer_cmd, logs / f"{tag}-producer.log")
        procs = [worker, producer]
        try:
            with BackendCpu(dbname, interval=0.5) as server:
                t0 = go_all(procs)
                next_at, last = t0 + o.sample_s, (0, 0, t0)
                while next_at <= t0 + duration + 0.5:
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    if not all(p.alive() for p in procs):
                        raise StepError("a sustained-run process exited early")
                    now = time.monotonic()
                    latency = worker.sample()
                    sent, handled = producer.progress, worker.progress
                    sample = {
                        "t_s": round(now - t0, 1),
                        "sent_rate": (sent - last[0]) / (now - last[2]),
                        "handled_rate": (handled - last[1]) / (now - last[2]),
                        "latency": latency,
                        "table": table_state(dsn),
                        "claim_probe": claim_probe(dsn),
                    }
                    samples.append(sample)
                    last = (sent, handled, now)
                    log(_sample_line(sample))
                    next_at += o.sample_s
                producer_result, worker_result = stop_all([producer, worker], timeout=300)
                server.sample()
            for p in procs:
                p.release()
        finally:
            for p in procs:
                p.kill()
        handled = worker_result["handled"]
    return {
        "variant": o.variant,
        "rate_target": rate,
        "rate_basis": basis,
        "minutes": o.sustained_minutes,
        "retention_s": o.sustained_retention_s,
        "sample_s": o.sample_s,
        "concurrency": o.concurrency,
        "sent": producer_result["sent"],
        "handled": handled,
        "producer_client_us": 1e6 * producer_result["cpu_s"] / max(1, producer_result["sent"]),
        "worker_client_us": 1e6 * worker_result["cpu_s"] / max(1, handled),
        "server_us": 1e6 * server.seconds / max(1, handled),
        "samples": samples,
    }


def _sample_line(s: dict[str, Any]) -> str:
    t, lat, probe = s["table"], s["latency"], s["claim_probe"]
    return (
        f"  t={s['t_s']:>6.0f}s sent {s['sent_rate']:>7,.0f}/s handled {s['handled_rate']:>7,.0f}/s"
        f" queued {t['jobs'].get('created', 0):>7,} heap {t['heap_mb']:>6.1f} MiB indexes"
        f" {t['indexes_mb']:>6.1f} MiB dead {t['dead_tuples']:>8,} claim {probe['exec_ms']:.2f} ms"
        f" ({probe['buffers']} buffers) latency p50 {lat.get('p50_ms', 0):.1f} ms"
    )


def run_scale(opts: ScaleOptions) -> dict[str, Any]:
    """Run the chosen parts; {part: result} (the sustained run of a variant is the part
    `sustained-<variant>`)."""
    unknown = [p for p in opts.parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown scale part(s) {unknown}; choose from {list(PARTS)}")
    run = _Run(opts)
    done: dict[str, Any] = {}
    for part in PARTS:
        if part not in opts.parts:
            continue
        t = time.perf_counter()
        if part == "backlog":
            done[part] = _backlog(run)
        elif part == "queues":
            done[part] = _queues(run)
        elif part == "processes":
            done[part] = _processes(run)
        else:
            part = f"sustained-{opts.variant}" if opts.variant else part
            done[part] = _sustained(run, done)
        done[part]["duration_s"] = round(time.perf_counter() - t, 1)
    return done
