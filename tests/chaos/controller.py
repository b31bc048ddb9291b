"""The soak's controller and entry point: ``python -m tests.chaos --minutes N --seed S``.

1. start a private PostgreSQL (``cluster``), migrate the soak schema, create the queues and
   install the transition audit (``audit``);
2. start one TCP proxy (``proxy``) per worker and one for producer p2; start 3 worker
   processes (through their proxies) and 2 producers (p1 direct, p2 proxied);
3. for N minutes, apply the seed's fault schedule (``faults``) while sampling the live
   singleton keys every second and restarting any process that died on its own;
4. heal everything (resume paused workers, clear the proxies, make sure the database is up),
   stop the producers, wait until every job of the worked queues is final, stop the workers;
5. check the history against the database (``checker``), print a summary and exit 0, or 1 on
   any violation (2 when the harness itself failed), printing the seed and the command that
   replays the run. The cluster, the proxies and every child process are gone at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from . import audit, config
from .checker import Report, check
from .children import Child
from .cluster import PrivateCluster
from .faults import Fault, Injector, make_schedule
from .history import Recorder, read_history
from .proxy import Proxy

DRAIN_TIMEOUT_S = 240.0
HEAL_TIMEOUT_S = 120.0
SAMPLE_EVERY_S = 1.0
SHOWN_PER_KIND = 5


DEFAULT_RATE = 30.0


def reproduce_command(args: argparse.Namespace) -> str:
    rate = "" if args.rate == DEFAULT_RATE else f" --rate {args.rate:g}"
    code = "" if args.code is None else f" --code {args.code}"
    return f"nox -s chaos -- --minutes {args.minutes:g} --seed {args.seed}{rate}{code}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the load")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="jobs/s, all producers")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the history and logs go (default: a temporary directory, "
        "removed after a passing run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the workdir after a pass")
    parser.add_argument(
        "--recheck",
        type=Path,
        default=None,
        metavar="WORKDIR",
        help="run no soak: check the history and snapshot a run left there",
    )
    parser.add_argument(
        "--code",
        default=None,
        metavar="REV",
        help="test the runtime of this git commit (default: the working tree as it is at the "
        "start); either way it is copied first, so edits during the run do not reach it",
    )
    parser.add_argument("--code-description", default="", help=argparse.SUPPRESS)
    parser.add_argument("--remove-workdir", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big") % 1_000_000
    if args.minutes <= 0 or args.rate <= 0:
        parser.error("--minutes and --rate must be positive")
    return args


def _with_app(dsn: str, app: str) -> str:
    return f"{dsn} application_name={app}"


class Soak:
    def __init__(self, args: argparse.Namespace, run_dir: Path) -> None:
        self.args = args
        self.run_dir = run_dir
        (run_dir / "history").mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(run_dir / "history" / "controller.jsonl")
        self.cluster = PrivateCluster()
        self.dsn = ""
        self.proxies: dict[str, Proxy] = {}
        self.workers: dict[str, Child] = {}
        self.producers: dict[str, Child] = {}
        self.injector: Injector | None = None
        self.drained = False
        self.fault_tasks: set[asyncio.Task[None]] = set()
        self.began = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.began:7.1f}s] {text}", flush=True)

    # -- setting up --------------------------------------------------------------------------

    async def setup(self) -> None:
        self.dsn = await asyncio.to_thread(self.cluster.start)
        self.say(f"private PostgreSQL on 127.0.0.1:{self.cluster.port} ({self.cluster.base})")
        boss = config.make_boss(_with_app(self.dsn, "chaos-controller-setup"))
        await boss.start()
        try:
            await boss.create_queues(config.QUEUE_SPECS)
        finally:
            await boss.stop()
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await audit.install(conn)
        for name in (*config.WORKERS, "p2"):
            proxy = Proxy(name, self.cluster.port)
            await proxy.start()
            self.proxies[name] = proxy
        for name in config.WORKERS:
            self.workers[name] = self.worker_child(name)
        for name in config.PRODUCERS:
            self.producers[name] = self.producer_child(name)

    def proxied_dsn(self, name: str) -> str:
        proxy = self.proxies[name]
        return (
            f"host=127.0.0.1 port={proxy.port} dbname=postgres user=postgres connect_timeout=5 "
            f"application_name=chaos-{name}"
        )

    def worker_child(self, name: str) -> Child:
        dsn = self.proxied_dsn(name)
        parent = str(os.getpid())

        def args(record: Path, incarnation: int) -> list[str]:
            return [name, dsn, str(record), parent]

        return Child(name, "tests.chaos.worker_proc", args, self.run_dir, self.recorder)

    def producer_child(self, name: str) -> Child:
        dsn = self.proxied_dsn(name) if name in self.proxies else _with_app(self.dsn, "chaos-p1")
        parent = str(os.getpid())
        rate = self.args.rate / len(config.PRODUCERS)
        seed = self.args.seed

        def args(record: Path, incarnation: int) -> list[str]:
            return [f"{name}.{incarnation}", dsn, str(record), str(seed), f"{rate:g}", parent]

        return Child(name, "tests.chaos.producer_proc", args, self.run_dir, self.recorder)

    async def restart(self, child: Child) -> None:
        child.spawn()
        try:
            await child.wait_ready()
        except RuntimeError as exc:
            self.say(f"{child.name} did not come back: {exc}")

    # -- running -----------------------------------------------------------------------------

    async def start_children(self) -> None:
        for child in self.workers.values():
            child.spawn()
        for child in self.workers.values():
            await child.wait_ready()
        self.say(f"{len(self.workers)} workers ready")
        for child in self.producers.values():
            child.spawn()
        for child in self.producers.values():
            await child.wait_ready()
        self.say(f"{len(self.producers)} producers running at {self.args.rate:g} jobs/s")

    async def sampler(self) -> None:
        """Every second: the singleton keys with more than one live job (should be none)."""
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(
                            self.dsn, autocommit=True, application_name="chaos-controller"
                        )
                    dups = await audit.singleton_duplicates(conn)
                    self.recorder.write("sample", dups=dups)
                except psycopg.Error:
                    if conn is not None:
                        await conn.close()
                    conn = None
                await asyncio.sleep(SAMPLE_EVERY_S)
        finally:
            if conn is not None:
                await conn.close()

    async def monitor(self) -> None:
        """Restart a child that died on its own (it is recorded as ``crashed``)."""
        assert self.injector is not None
        while True:
            await asyncio.sleep(0.5)
            for name, child in self.workers.items():
                if self.injector.locks[name].locked():
                    continue  # a fault is working on it
                if child.crashed():
                    self.say(f"worker {name} crashed: {child.output()[-500:]}")
                    async with self.injector.locks[name]:
                        await self.restart(child)
            for name, child in self.producers.items():
                if child.crashed():
                    self.say(f"producer {name} crashed: {child.output()[-500:]}")
                    await self.restart(child)

    async def run_faults(self, schedule: list[Fault], start: float) -> None:
        assert self.injector is not None
        injector = self.injector
        next_report = start + 60.0
        for fault in schedule:
            delay = start + fault.at - time.monotonic()
            while delay > 0:
                await asyncio.sleep(min(delay, max(0.0, next_report - time.monotonic()) + 0.01))
                if time.monotonic() >= next_report:
                    self.say(f"{injector.applied} faults so far")
                    next_report += 60.0
                delay = start + fault.at - time.monotonic()
            task = asyncio.create_task(injector.apply(fault))
            self.fault_tasks.add(task)
            task.add_done_callback(self.fault_tasks.discard)

    async def heal(self) -> None:
        """End the faults: wait for those under way, then leave everything working."""
        if self.fault_tasks:
            _, pending = await asyncio.wait(set(self.fault_tasks), timeout=HEAL_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for proxy in self.proxies.values():
            proxy.heal()
        for child in self.workers.values():
            child.sigcont()
        await asyncio.to_thread(self.cluster.ensure_running)
        for child in self.workers.values():
            if not child.alive():
                child.crashed()
                await self.restart(child)

    async def drain(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        left = -1
        while time.monotonic() < deadline:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, application_name="chaos-controller"
                ) as conn:
                    left = await audit.unfinished(conn)
            except psycopg.Error:
                left = -1
            if left == 0:
                self.drained = True
                return
            await asyncio.sleep(1.0)
        self.say(f"drain timed out with {left} jobs unfinished")

    async def soak(self) -> Report:
        await self.setup()
        seconds = self.args.minutes * 60.0
        schedule = make_schedule(self.args.seed, seconds, config.WORKERS, tuple(self.proxies))
        self.injector = Injector(
            workers=self.workers,
            proxies=self.proxies,
            cluster=self.cluster,
            dsn=self.dsn,
            recorder=self.recorder,
            restart=self.restart,
        )
        await self.start_children()
        helpers = [asyncio.create_task(self.sampler()), asyncio.create_task(self.monitor())]
        try:
            start = time.monotonic()
            self.say(f"load and {len(schedule)} scheduled faults for {self.args.minutes:g} min")
            faults = asyncio.create_task(self.run_faults(schedule, start))
            await asyncio.sleep(max(0.0, start + seconds - time.monotonic()))
            faults.cancel()
            await asyncio.gather(faults, return_exceptions=True)
            self.say(f"load over; {self.injector.applied} faults applied; healing")
            await self.heal()
            for child in self.producers.values():
                await child.terminate(30.0)
            self.say("producers stopped; draining")
            await self.drain()
            self.say("drained" if self.drained else "not drained")
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        for child in self.workers.values():
            await child.terminate(20.0)
        async with await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, application_name="chaos-controller"
        ) as conn:
            self.recorder.write("sample", dups=await audit.singleton_duplicates(conn))
            snap = await audit.snapshot(conn)
        snap.save(self.run_dir / "snapshot.json")
        (self.run_dir / "drained").write_text(f"{self.drained}\n")
        self.say("checking the history")
        return check(self.history, snap, drained=self.drained)

    def history(self) -> Iterator[dict[str, Any]]:
        return read_history(self.run_dir / "history")

    async def close(self) -> None:
        for child in [*self.producers.values(), *self.workers.values()]:
            child.cleanup()
        for proxy in self.proxies.values():
            await proxy.close()
        await asyncio.to_thread(self.cluster.stop)
        self.recorder.close()


def summary(report: Report, args: argparse.Namespace, run_dir: Path) -> str:
    lines = [
        f"chaos soak: seed {args.seed}, {args.minutes:g} min, rate {args.rate:g} jobs/s, "
        f"{len(config.WORKERS)} workers, lease {config.LEASE_S:g} s",
        f"code under test: {args.code_description or 'as installed'}",
    ]
    for key, value in report.figures.items():
        lines.append(f"  {key}: {value}")
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(report.faults.items()))
    lines.append(f"faults ({sum(report.faults.values())}): {faults or 'none'}")
    kinds = report.by_kind()
    lines.append(
        "violations: "
        + (", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) if kinds else "none")
    )
    shown: dict[str, int] = {}
    for violation in report.violations:
        shown[violation.kind] = shown.get(violation.kind, 0) + 1
        if shown[violation.kind] > SHOWN_PER_KIND:
            continue
        lines.append(f"- {violation.kind}: job {violation.job}: {violation.detail}")
        for line in report.lines.get(violation.job or "", [])[:40]:
            lines.append(f"    {line}")
    lines.append(f"history: {run_dir / 'history'}")
    return "\n".join(lines)


async def _main(args: argparse.Namespace, run_dir: Path) -> int:
    soak = Soak(args, run_dir)
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        report = await soak.soak()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(soak.close())
    text = summary(report, args, run_dir)
    print(text, flush=True)
    (run_dir / "summary.txt").write_text(text + "\n")
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "seed": args.seed,
                "minutes": args.minutes,
                "figures": report.figures,
                "faults": dict(report.faults),
                "violations": dict(report.by_kind()),
            },
            indent=2,
        )
    )
    return 0 if report.ok else 1


def recheck(args: argparse.Namespace) -> int:
    """Check a kept run again (history + snapshot.json), e.g. after changing the checker."""
    run_dir: Path = args.recheck
    snap = audit.Snapshot.load(run_dir / "snapshot.json")
    drained = (run_dir / "drained").read_text().strip() == "True"
    report = check(lambda: read_history(run_dir / "history"), snap, drained=drained)
    print(summary(report, args, run_dir), flush=True)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.recheck is not None:
        return recheck(args)
    run_dir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-run-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"chaos soak: seed {args.seed}, {args.minutes:g} min, workdir {run_dir}", flush=True)
    code = 2
    try:
        code = asyncio.run(_main(args, run_dir))
    except asyncio.CancelledError:
        print("interrupted (SIGTERM or SIGINT); everything the soak started is stopped")
    except Exception as exc:
        print(f"the soak itself failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc()
    if code == 0:
        print(f"PASS (seed {args.seed})", flush=True)
        if (args.workdir is None or args.remove_workdir) and not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(
            f"FAIL (exit {code}): seed {args.seed}; history and logs kept in {run_dir}\n"
            f"reproduce with: {reproduce_command(args)}",
            flush=True,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
