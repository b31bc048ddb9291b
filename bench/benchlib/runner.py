"""Runs: one system, one kind of work, a fresh database, the driver in subprocesses.

Each driver invocation is its own process, so the worker's peak RSS is that process's own
(`os.wait4`), and each system's start-up and schema install stay out of the timed part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import db
from .envs import Env
from .systems import System

__all__ = ["FLOOR_BATCH", "RUN_KINDS", "Context", "Sample", "StepError", "run_driver"]

RESULT_PREFIX = "BENCH_RESULT "
RunKind = Callable[["System", Env, "Context"], list["Sample"]]
MB = 1024 * 1024


class StepError(Exception):
    """A driver step failed (its own check, a crash or a timeout)."""


@dataclass(frozen=True, slots=True)
class Context:
    dsn: str
    n: int
    latency_jobs: int
    latency_interval_ms: float
    round: int
    steady_check: bool  # run a second seed/work/cleanup cycle to see the size stay flat

    @property
    def timeout_s(self) -> float:
        return 60 + self.n / 40


@dataclass(slots=True)
class Sample:
    system: str
    round: int
    metric: str
    value: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StepResult:
    data: dict[str, Any]
    rss_mb: float
    wall_s: float


def run_driver(system: System, env: Env, spec: dict[str, Any], timeout: float) -> StepResult:
    """Run one phase of a driver; raise StepError unless it reported ok."""
    cmd = system.command(env, spec)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        status, usage, reaped = 0, None, False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = True
                    break
                if time.monotonic() > deadline:
                    raise StepError(
                        f"{system.name} {spec['phase']}: timed out after {timeout:.0f}s"
                    )
                time.sleep(0.02)
        finally:
            if not reaped:  # timed out, or the harness itself is stopping
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    results = [
        line[len(RESULT_PREFIX) :] for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    if not results:
        tail = " | ".join(stderr.strip().splitlines()[-6:])
        raise StepError(f"{system.name} {spec['phase']}: exit {proc.returncode}, no result: {tail}")
    data: dict[str, Any] = json.loads(results[-1])
    if not data.get("ok"):
        raise StepError(f"{system.name} {spec['phase']}: {data.get('error', 'failed')}")
    rss_kb = usage.ru_maxrss if usage is not None else 0
    return StepResult(data, rss_kb / 1024, wall)


def _step(system: System, env: Env, ctx: Context, dsn: str, phase: str, **spec: Any) -> StepResult:
    full = {"phase": phase, "dsn": dsn, "n": ctx.n, "timeout_s": ctx.timeout_s, **spec}
    return run_driver(system, env, full, ctx.timeout_s + 90)


def _sample(system: System, ctx: Context, metric: str, value: float, **extra: Any) -> Sample:
    return Sample(system.name, ctx.round, metric, value, extra)


def _enqueue(metric: str, phase: str, concurrency: int = 1) -> RunKind:
    def run(system: System, env: Env, ctx: Context) -> list[Sample]:
        with db.fresh_database(ctx.dsn, system.name) as dsn:
            res = _step(system, env, ctx, dsn, phase, concurrency=concurrency)
        return [_sample(system, ctx, metric, res.data["rate"], seconds=res.data["seconds"])]

    return run


def _seed_and_work(
    system: System, env: Env, ctx: Context, dsn: str, concurrency: int, **spec: Any
) -> StepResult:
    _step(system, env, ctx, dsn, "seed")
    db.analyze(dsn)  # as autovacuum would have, for a backlog this size
    return _step(system, env, ctx, dsn, "work", concurrency=concurrency, **spec)


def _work(metric: str, concurrency: int, measure: bool = False) -> RunKind:
    def run(system: System, env: Env, ctx: Context) -> list[Sample]:
        with db.fresh_database(ctx.dsn, system.name) as dsn:
            res = _seed_and_work(system, env, ctx, dsn, concurrency)
            samples = [
                _sample(system, ctx, metric, res.data["rate"], seconds=res.data["seconds"]),
            ]
            if measure:
                samples += _sizes(system, env, ctx, dsn, res)
        return samples

    return run


def _cleanup_size(system: System, env: Env, ctx: Context, dsn: str) -> tuple[float, int]:
    left = _step(system, env, ctx, dsn, "cleanup").data.get("finished_rows_left", -1)
    db.vacuum(dsn)
    return db.database_size(dsn) / MB, int(left)


def _sizes(system: System, env: Env, ctx: Context, dsn: str, work: StepResult) -> list[Sample]:
    after_work = db.database_size(dsn) / MB
    after_cleanup, left = _cleanup_size(system, env, ctx, dsn)
    samples = [
        _sample(system, ctx, "worker_rss_mb", work.rss_mb),
        _sample(system, ctx, "db_mb_after_work", after_work),
        _sample(system, ctx, "db_mb_after_cleanup", after_cleanup, finished_rows_left=left),
    ]
    if ctx.steady_check:
        _seed_and_work(system, env, ctx, dsn, 50)
        second, left2 = _cleanup_size(system, env, ctx, dsn)
        samples.append(_sample(system, ctx, "db_mb_second_cycle", second, finished_rows_left=left2))
    return samples


def _work_batch(system: System, env: Env, ctx: Context) -> list[Sample]:
    best: Sample | None = None
    for variant in system.batch_variants:
        with db.fresh_database(ctx.dsn, system.name) as dsn:
            res = _seed_and_work(system, env, ctx, dsn, **variant)
        calls = res.data.get("handler_calls")
        sample = _sample(
            system, ctx, "work_batch", res.data["rate"], handler_calls=calls, **variant
        )
        if best is None or sample.value > best.value:
            best = sample
    return [best] if best else []


#: Jobs per claim and per completion statement in the processing floor (issue 17).
FLOOR_BATCH = 500


def _work_floor(system: System, env: Env, ctx: Context) -> list[Sample]:
    with db.fresh_database(ctx.dsn, system.name) as dsn:
        _step(system, env, ctx, dsn, "seed")
        db.analyze(dsn)
        res = _step(system, env, ctx, dsn, "drain", concurrency=FLOOR_BATCH)
    return [
        _sample(system, ctx, "work_floor", res.data["rate"], seconds=res.data["seconds"],
                batch=FLOOR_BATCH)
    ]  # fmt: skip


def _latency(system: System, env: Env, ctx: Context) -> list[Sample]:
    with db.fresh_database(ctx.dsn, system.name) as dsn:
        res = _step(
            system, env, ctx, dsn, "latency", n=ctx.latency_jobs, concurrency=10,
            interval_ms=ctx.latency_interval_ms, timeout_s=60,
        )  # fmt: skip
    extra = {"max_ms": res.data.get("max_ms"), "samples": res.data.get("samples")}
    return [
        _sample(system, ctx, "latency_p50", res.data["p50_ms"], **extra),
        _sample(system, ctx, "latency_p95", res.data["p95_ms"], **extra),
    ]


#: The kinds of run, in the order a round runs them; each runs every system before the next.
RUN_KINDS: dict[str, RunKind] = {
    "enqueue_serial": _enqueue("enqueue_serial", "send_serial"),
    "enqueue_50": _enqueue("enqueue_50", "send_concurrent", concurrency=50),
    "enqueue_batch": _enqueue("enqueue_batch", "send_batch"),
    "work_c10": _work("work_c10", 10),
    "work_c50": _work("work_c50", 50, measure=True),
    "work_batch": _work_batch,
    "work_floor": _work_floor,
    "latency": _latency,
}


# -- flow control (issue 12): limited and grouped queues, this project only --

from .flow import FLOW_KINDS  # noqa: E402  (flow.py reads this module's names when it runs)

RUN_KINDS.update(FLOW_KINDS)

# -- fan-out (issue 11): events with 3 subscribing queues, this project only --

from .fanout import FANOUT_KINDS  # noqa: E402  (as flow.py)

RUN_KINDS.update(FANOUT_KINDS)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
