"""Benchmark this project against pg-boss, pgqueuer, procrastinate and the raw SQL floor.

    python bench/run.py                 # full: 3 rounds of 20,000 jobs -> bench/results/latest.*
    python bench/run.py --quick         # a few seconds per system -> bench/results/quick/
    python bench/run.py --systems queues pgboss --kinds work_c10 latency --rounds 1
                                        # a partial run -> bench/.cache/results-partial/
    python bench/run.py --scale         # the scale curves (issue 17) -> bench/results/scale.*
    python bench/run.py --scale --scale-parts sustained --sustained-minutes 2
                                        # one part, shorter; it replaces that part in scale.json

The peers are installed by the harness under bench/.cache (PyPI virtualenvs, npm for pg-boss);
one that cannot be installed is reported as unavailable. Every system gets a fresh database per
run on the server at --dsn (the role must be allowed to CREATE DATABASE). The exit status is 1
when a run of this project or the floor failed, never because of a peer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(REPO))

import psycopg  # noqa: E402
from benchlib import db  # noqa: E402
from benchlib.codegen_bench import time_codegen  # noqa: E402
from benchlib.envs import Env  # noqa: E402
from benchlib.machine import machine_info  # noqa: E402
from benchlib.report import write_json, write_markdown  # noqa: E402
from benchlib.runner import RUN_KINDS, Context, Sample, StepError, log, run_driver  # noqa: E402
from benchlib.scale import PARTS, ScaleOptions, run_scale  # noqa: E402
from benchlib.stats import METRICS, summarize  # noqa: E402
from benchlib.systems import System, systems_by_name  # noqa: E402
from benchlib.targets import check_targets  # noqa: E402
from benchlib.variants import VARIANTS  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _runtime_tree() -> str:
    """A short hash of runtime/ (code and SQL): the version a run measured, dirty tree or not."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "runtime").rglob("*")):
        if path.suffix in {".py", ".sql"} and "__pycache__" not in path.parts:
            digest.update(path.relative_to(REPO).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


KINDS = [*RUN_KINDS, "codegen"]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 round of 1,000 jobs (CI smoke run)")
    p.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    p.add_argument("--jobs", type=int, help="jobs per run (default 20,000, quick 1,000)")
    p.add_argument("--systems", nargs="+", help="queues floor pgboss pgqueuer procrastinate")
    p.add_argument("--kinds", nargs="+", choices=KINDS, help="which runs (default all)")
    p.add_argument(
        "--dsn",
        default=os.environ.get("QUEUES_BENCH_DSN")
        or os.environ.get("QUEUES_TEST_DSN")
        or os.environ.get("QUEUES_DSN")
        or DEFAULT_DSN,
        help="a server where the role may CREATE DATABASE (default: $QUEUES_BENCH_DSN, "
        f"$QUEUES_TEST_DSN, $QUEUES_DSN, else {DEFAULT_DSN})",
    )
    p.add_argument("--out", type=Path, help="results folder (default bench/results[/quick])")
    p.add_argument("--cache", type=Path, default=BENCH / ".cache", help="peer installs")
    p.add_argument("--no-upgrade", action="store_true", help="reuse cached peer installs")
    p.add_argument(
        "--redraw", action="store_true", help="only draw latest.png again from latest.json"
    )
    s = p.add_argument_group("scale curves (--scale; never part of --quick)")
    s.add_argument("--scale", action="store_true", help="run the scale curves, not the table")
    s.add_argument(
        "--scale-parts",
        nargs="+",
        default=list(PARTS),
        choices=PARTS,
        help="which parts (default all)",
    )
    s.add_argument(
        "--scale-jobs",
        type=int,
        default=20_000,
        help="jobs enqueued and handled per point (default 20,000)",
    )
    s.add_argument("--scale-concurrency", type=int, default=50, help="per worker (default 50)")
    s.add_argument("--scale-rounds", type=int, default=3, help="rounds of the curves (default 3)")
    s.add_argument("--scale-backlogs", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    s.add_argument(
        "--scale-backlog-systems",
        nargs="+",
        default=["queues", "engine", "floor"],
        choices=["queues", "engine", "floor"],
    )
    s.add_argument("--scale-queues", nargs="+", type=int, default=[1, 100, 1_000])
    s.add_argument("--scale-queue-backlog", type=int, default=100_000)
    s.add_argument("--scale-processes", nargs="+", type=int, default=[1, 4, 16])
    s.add_argument("--scale-process-jobs", type=int, default=60_000)
    s.add_argument("--sustained-minutes", type=float, default=20.0)
    s.add_argument(
        "--sustained-rate", type=float, help="jobs/s (default: half the worker's measured maximum)"
    )
    s.add_argument(
        "--sustained-retention",
        type=float,
        default=60.0,
        help="seconds finished jobs are kept (default 60)",
    )
    s.add_argument(
        "--sustained-variant",
        choices=VARIANTS,
        help="an experimental change of the job table (benchlib/variants.py)",
    )
    s.add_argument(
        "--scale-sample",
        type=float,
        default=30.0,
        help="seconds between sustained samples (default 30)",
    )
    return p.parse_args(argv)


def _prepare(systems: list[System], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Install each system's environment and ask its driver for its version."""
    info: dict[str, dict[str, Any]] = {}
    upgrade = not (args.quick or args.no_upgrade)
    for system in systems:
        entry: dict[str, Any] = {"label": system.label, "notes": system.notes, "ours": system.ours}
        env = system.prepare(args.cache, upgrade=upgrade)
        if env.ok:
            try:
                data = run_driver(system, env, {"phase": "version", "dsn": args.dsn}, 120).data
                entry["version"] = data.pop("version")
                entry["details"] = {k: v for k, v in data.items() if k != "ok"}
            except StepError as exc:
                env = Env(False, reason=str(exc))
        entry.update(available=env.ok, reason=env.reason, env=env, install_s=round(env.seconds, 1))
        log(
            f"{system.name}: "
            + (entry.get("version", "") if env.ok else f"UNAVAILABLE {env.reason}")
        )
        if not env.ok and system.ours:
            raise SystemExit(f"cannot run {system.name}: {env.reason}")
        info[system.name] = entry
    return info


def _attempt(system: System, env: Env, ctx: Context, kind: str) -> list[Sample]:
    """One run, tried a second time when the first fails (a shared server may restart)."""
    db.wait_ready(ctx.dsn)
    try:
        return RUN_KINDS[kind](system, env, ctx)
    except (StepError, psycopg.OperationalError) as exc:
        log(f"[round {ctx.round}] {kind} {system.name}: failed ({exc}); trying once more")
        time.sleep(2)
        db.wait_ready(ctx.dsn)
        return RUN_KINDS[kind](system, env, ctx)


def _rounds(
    systems: list[System], info: dict[str, dict[str, Any]], args: argparse.Namespace,
    rounds: int, jobs: int, kinds: list[str],
) -> tuple[list[Sample], list[dict[str, Any]]]:  # fmt: skip
    samples: list[Sample] = []
    errors: list[dict[str, Any]] = []
    ready = [s for s in systems if info[s.name]["available"]]
    for r in range(1, rounds + 1):
        order = ready[(r - 1) % len(ready) :] + ready[: (r - 1) % len(ready)]
        ctx = Context(args.dsn, jobs, 50 if args.quick else 200, 10.0, r, steady_check=r == 1)
        for kind in kinds:
            if kind == "codegen":
                if "queues" in info:
                    samples.append(Sample("queues", r, "codegen_s", time_codegen(REPO, 200)))
                    log(f"[round {r}/{rounds}] codegen queues: {samples[-1].value:.2f} s")
                continue
            for system in order:
                if kind == "work_batch" and not system.batch_variants:
                    continue
                if kind == "work_floor" and not system.drains:
                    continue
                env: Env = info[system.name]["env"]
                t0 = time.perf_counter()
                try:
                    got = _attempt(system, env, ctx, kind)
                except Exception as exc:
                    if not isinstance(exc, StepError):
                        traceback.print_exc()
                    errors.append(
                        {"round": r, "system": system.name, "kind": kind, "error": str(exc)}
                    )
                    log(f"[round {r}/{rounds}] {kind} {system.name}: FAILED {exc}")
                    continue
                samples += got
                shown = ", ".join(f"{s.metric}={s.value:,.2f}" for s in got)
                took = time.perf_counter() - t0
                log(f"[round {r}/{rounds}] {kind} {system.name}: {shown} ({took:.1f} s)")
    return samples, errors


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip()


def _scale(args: argparse.Namespace, argv: list[str] | None) -> int:
    """The scale curves: run the chosen parts, merge them into scale.json, draw scale.md/png."""
    from benchlib.scale_report import merge_json, write_markdown

    out = args.out or BENCH / "results"
    out.mkdir(parents=True, exist_ok=True)
    if not args.redraw:
        signal.signal(signal.SIGTERM, _terminate)
        db.wait_ready(args.dsn, timeout=60)
        for name in db.drop_stale(args.dsn):
            log(f"dropped {name}, left by a harness that is gone")
        tree = _runtime_tree()
        previous = out / "scale.json"
        opts = ScaleOptions(
            args.dsn, args.cache, parts=args.scale_parts, jobs=args.scale_jobs,
            concurrency=args.scale_concurrency, backlogs=args.scale_backlogs,
            backlog_systems=args.scale_backlog_systems, queue_counts=args.scale_queues,
            queue_backlog=args.scale_queue_backlog, processes=args.scale_processes,
            process_jobs=args.scale_process_jobs, sustained_minutes=args.sustained_minutes,
            sustained_rate=args.sustained_rate, sustained_retention_s=args.sustained_retention,
            sample_s=args.scale_sample, rounds=args.scale_rounds,
            previous=json.loads(previous.read_text())["parts"] if previous.exists() else {},
            variant=args.sustained_variant,
        )  # fmt: skip
        parts = run_scale(opts)
        meta = {
            "command": "python bench/run.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "finished_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _commit(),
            "runtime_tree": tree if tree == _runtime_tree() else f"{tree} (changed during the run)",
            "machine": machine_info(),
            "postgres": db.server_facts(args.dsn),
        }
        doc = merge_json(out / "scale.json", parts, meta)
    else:
        doc = json.loads((out / "scale.json").read_text())
    text = write_markdown(out / "scale.md", doc)
    try:
        from benchlib.scale_chart import write_scale_chart

        write_scale_chart(out / "scale.png", doc)
    except ImportError as exc:
        log(f"no chart: {exc} (install matplotlib)")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.scale:
        if args.quick:
            raise SystemExit("--scale and --quick do not go together: the curves take minutes")
        return _scale(args, argv)
    rounds = args.rounds or (1 if args.quick else 3)
    jobs = args.jobs or (1_000 if args.quick else 20_000)
    kinds = args.kinds or KINDS
    systems = systems_by_name(args.systems)
    partial = bool(args.systems or args.kinds or args.jobs or (args.rounds and args.rounds < 3))
    out = args.out or (
        BENCH / "results" / "quick"
        if args.quick
        else args.cache / "results-partial"
        if partial
        else BENCH / "results"
    )
    out.mkdir(parents=True, exist_ok=True)
    if args.redraw:
        from benchlib.chart import chart_from_json

        chart_from_json(out / "latest.json", out / "latest.png")
        log(f"drew {out / 'latest.png'}")
        return 0
    started = time.time()
    log(f"benchmark: {rounds} round(s) x {jobs:,} jobs, results -> {out}")
    signal.signal(signal.SIGTERM, _terminate)  # so drivers are killed and databases dropped
    db.wait_ready(args.dsn, timeout=60)
    for name in db.drop_stale(args.dsn):
        log(f"dropped {name}, left by a harness that is gone")

    tree_before = _runtime_tree()
    info = _prepare(systems, args)
    samples, errors = _rounds(systems, info, args, rounds, jobs, kinds)
    tree_after = _runtime_tree()
    if tree_after != tree_before:
        log(f"runtime/ changed during the run ({tree_before} -> {tree_after})")
    db.wait_ready(args.dsn)
    summary = summarize(samples)
    checks = check_targets(samples)
    report: dict[str, Any] = {
        "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "finished_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.time() - started, 1),
        "config": {"rounds": rounds, "jobs": jobs, "latency_jobs": 50 if args.quick else 200,
                   "latency_interval_ms": 10.0, "kinds": kinds, "quick": args.quick},
        "machine": machine_info(),
        "postgres": db.server_facts(args.dsn),
        "systems": {k: {f: v for f, v in e.items() if f != "env"} for k, e in info.items()},
        "errors": errors,
        "runtime_tree": {"start": tree_before, "end": tree_after},
    }  # fmt: skip
    write_json(out / "latest.json", report, samples, summary, checks)
    text = write_markdown(out / "latest.md", report, summary, checks)
    try:
        from benchlib.chart import write_chart

        write_chart(out / "latest.png", summary, {k: e["label"] for k, e in info.items()})
    except ImportError as exc:
        log(f"no chart: {exc} (install matplotlib)")
    print(text)
    ours_failed = [e for e in errors if info[e["system"]]["ours"]]
    missing = [m.key for m in METRICS if m.key.startswith("enqueue") and m.key not in summary]
    if ours_failed:
        log(f"{len(ours_failed)} run(s) of this project or the floor failed")
        return 1
    if missing and set(kinds) >= {"enqueue_serial", "enqueue_50", "enqueue_batch"}:
        log(f"metrics missing: {missing}")
        return 1
    log(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
