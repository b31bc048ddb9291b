"""One adapter per system, all with the same interface: prepare an environment, then build the
command line that runs one phase of that system's driver.

The drivers (bench/drivers/*.py, bench/pgboss/driver.mjs) do the work and print one
`BENCH_RESULT {json}` line; see bench/drivers/_common.py for the phases.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .envs import Env, install_node_package, install_venv
from .sdk import generate_sdk

__all__ = ["SYSTEMS", "GeneratedSdk", "System", "systems_by_name"]

BENCH = Path(__file__).resolve().parents[1]
DRIVERS = BENCH / "drivers"


@dataclass(frozen=True)
class System:
    name: str
    label: str
    #: Ours (this project and the floor): an error fails the benchmark instead of being noted.
    ours: bool
    #: How it processes: what a handler call is, and the configuration used.
    notes: str
    #: Extra processing runs with batch handlers: {"batch_size": .., "concurrency": ..}.
    batch_variants: tuple[dict[str, int], ...] = ()
    #: Runs the processing floor (the `drain` phase: claim + complete in batches, no handler).
    drains: bool = False
    requirements: tuple[str, ...] = field(default=())

    def prepare(self, cache: Path, *, upgrade: bool) -> Env:
        return Env(True, sys.executable)

    def command(self, env: Env, spec: dict[str, Any]) -> list[str]:
        return [env.executable, str(DRIVERS / f"{self.name}_driver.py"), json.dumps(spec)]


@dataclass(frozen=True)
class GeneratedSdk(System):
    """This project through the SDK generated from the benchmark catalogue (benchlib/sdk.py)."""

    def prepare(self, cache: Path, *, upgrade: bool) -> Env:
        try:
            home = generate_sdk(cache)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            return Env(False, reason=str(exc))
        return Env(True, sys.executable, home)

    def command(self, env: Env, spec: dict[str, Any]) -> list[str]:
        return super().command(env, {**spec, "sdk_path": str(env.home)})


@dataclass(frozen=True)
class _PythonPeer(System):
    def prepare(self, cache: Path, *, upgrade: bool) -> Env:
        return install_venv(cache, self.name, list(self.requirements), upgrade=upgrade)


@dataclass(frozen=True)
class _PgBoss(System):
    def prepare(self, cache: Path, *, upgrade: bool) -> Env:
        package_json = BENCH / "pgboss" / "package.json"
        return install_node_package(cache, package_json, "pg-boss", "12", upgrade=upgrade)

    def command(self, env: Env, spec: dict[str, Any]) -> list[str]:
        spec = {**spec, "node_dir": str(env.home)}
        return [env.executable, str(BENCH / "pgboss" / "driver.mjs"), json.dumps(spec)]


SYSTEMS: tuple[System, ...] = (
    GeneratedSdk(
        "queues",
        "queues (generated SDK)",
        ours=True,
        notes="What users call: the SDK `queues generate` writes for the benchmark catalogue "
        "(event `tick`, payload {i}): enqueue_tick(boss, Tick(i=n)) and enqueue_tick_many(boss, "
        "models built in the timed part), ticks_worker(boss, handlers) with an async on_tick "
        "handler (payload validated by the model, run inside process_job); Boss pool 10.",
    ),
    System(
        "engine",
        "queues engine (Boss, Worker)",
        ours=True,
        notes="The engine under the SDK: Boss.send / Boss.send_many with {i} dicts (pool 10) and "
        "a bare runtime.Worker with an async no-op processor; one processor call per job.",
    ),
    System(
        "floor",
        "SQL floor",
        ours=True,
        drains=True,
        notes="runtime/db/sql/queries/jobs.sql through plain psycopg: send_one per job, COPY for "
        "the batch, one connection looping claim (limit = concurrency) -> handler per job -> "
        "complete_many. The processing floor row: one connection looping claim_work (500) -> "
        "complete_many with ids and fences passed back as array literals (no per-job Python).",
    ),
    _PgBoss(
        "pgboss",
        "pg-boss 12",
        ours=False,
        notes="Node driver, pool max 10, LISTEN/NOTIFY on. Per-job figures use work() with "
        "batchSize 1 and localConcurrency = concurrency in burst mode (burstWhenReadyExceeds 1, "
        "polling 0.5 s); 'batch' figures use batch handlers (one call per batch) and report "
        "the best of the configurations tried.",
        batch_variants=(
            {"batch_size": 500, "concurrency": 2},
            {"batch_size": 100, "concurrency": 4},
        ),
    ),
    _PythonPeer(
        "pgqueuer",
        "pgqueuer",
        ours=False,
        notes="asyncpg (its recommended driver); sends through an asyncpg pool of 10; one "
        "PgQueuer worker with max_concurrent_tasks = concurrency and batch_size = "
        "concurrency / 2 (its fastest allowed); one handler call per job.",
        requirements=("pgqueuer", "asyncpg"),
    ),
    _PythonPeer(
        "procrastinate",
        "procrastinate",
        ours=False,
        notes="PsycopgConnector (pool max 10), worker with concurrency = concurrency and "
        "listen_notify on; procrastinate fetches one job per query; one task call per job.",
        requirements=("procrastinate", "psycopg[binary,pool]"),
    ),
)


def systems_by_name(names: list[str] | None) -> list[System]:
    known = {s.name: s for s in SYSTEMS}
    if not names:
        return list(SYSTEMS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; choose from {sorted(known)}")
    chosen = [known[n] for n in names]
    if "queues" not in names:  # every ratio is to this project
        chosen.insert(0, known["queues"])
    return chosen
