"""The fault schedule (drawn from the seed) and the injector that applies it.

Kinds: ``kill9`` (a worker is killed, then restarted), ``sigstop`` (a worker is paused for
longer than the lease, then resumed), ``pg_restart`` (``pg_ctl restart -m fast`` of the private
cluster), ``terminate`` (``pg_terminate_backend`` of random client connections), and through a
proxy (one process's, or all of them): ``latency``, ``stall`` and ``cut``.

The schedule (times, kinds, targets, durations) depends only on the seed and the length of the
soak, so a seed replays the same faults at the same offsets; what they hit inside the runtime
still depends on timing. Faults on one target run one at a time (a lock per worker, one for
the database, one for the proxies); faults on different targets overlap freely.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from .children import Child
from .cluster import PrivateCluster
from .config import LEASE_S
from .history import Recorder
from .proxy import Proxy

__all__ = ["KINDS", "Fault", "Injector", "make_schedule"]

#: Kinds and their weights in the schedule.
KINDS: dict[str, int] = {
    "kill9": 18,
    "sigstop": 18,
    "pg_restart": 7,
    "terminate": 15,
    "latency": 15,
    "stall": 15,
    "cut": 12,
}


@dataclass(frozen=True, slots=True)
class Fault:
    index: int
    at: float  # seconds after the load started
    kind: str
    target: str  # a worker, "db", or a proxy ("w1".."w3", "p2" or "all")
    duration: float = 0.0
    amount: float = 0.0  # latency in seconds, or how many backends to terminate
    pick: int = 0  # seed of the random choices made when the fault runs


def make_schedule(
    seed: int, seconds: float, workers: tuple[str, ...], proxied: tuple[str, ...]
) -> list[Fault]:
    rng = random.Random(f"{seed}:faults")
    kinds, weights = list(KINDS), list(KINDS.values())
    faults: list[Fault] = []
    at = rng.uniform(2.0, 4.0)
    while at < seconds - 1.0:
        kind = rng.choices(kinds, weights)[0]
        index = len(faults)
        pick = rng.randrange(2**31)
        if kind == "kill9":
            fault = Fault(index, at, kind, rng.choice(workers), rng.uniform(0.3, 3.0), pick=pick)
        elif kind == "sigstop":
            duration = LEASE_S + rng.uniform(0.5, 5.0)
            fault = Fault(index, at, kind, rng.choice(workers), duration, pick=pick)
        elif kind == "pg_restart":
            fault = Fault(index, at, kind, "db", pick=pick)
        elif kind == "terminate":
            fault = Fault(index, at, kind, "db", amount=rng.randint(1, 3), pick=pick)
        else:
            target = rng.choice([*proxied, "all"])
            duration = rng.uniform(2.0, 8.0) if kind == "latency" else rng.uniform(1.0, 7.0)
            amount = rng.uniform(0.02, 0.4) if kind == "latency" else 0.0
            if kind == "cut":
                duration = 0.0
            fault = Fault(index, at, kind, target, duration, amount, pick)
        faults.append(fault)
        at += rng.uniform(1.5, 6.0)
    return faults


class Injector:
    """Applies faults to the soak's processes, proxies and cluster, recording each one."""

    def __init__(
        self,
        *,
        workers: dict[str, Child],
        proxies: dict[str, Proxy],
        cluster: PrivateCluster,
        dsn: str,
        recorder: Recorder,
        restart: Callable[[Child], Awaitable[None]],
    ) -> None:
        self.workers = workers
        self.proxies = proxies
        self.cluster = cluster
        self.dsn = dsn
        self.recorder = recorder
        self.restart = restart
        self.locks: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in workers}
        self.locks["db"] = asyncio.Lock()
        self.locks["proxy"] = asyncio.Lock()
        self.applied = 0

    def lock_of(self, fault: Fault) -> asyncio.Lock:
        return self.locks["proxy" if fault.kind in ("latency", "stall", "cut") else fault.target]

    def record(self, fault: Fault, phase: str, **fields: Any) -> None:
        self.recorder.write(
            "fault",
            phase=phase,
            i=fault.index,
            kind=fault.kind,
            target=fault.target,
            dur=round(fault.duration, 3),
            **fields,
        )

    async def apply(self, fault: Fault) -> None:
        async with self.lock_of(fault):
            self.applied += 1
            await getattr(self, f"_{fault.kind}")(fault)

    async def _kill9(self, fault: Fault) -> None:
        child = self.workers[fault.target]
        if child.stopped:
            child.sigcont()
        self.record(fault, "begin", pid=child.pid)
        await child.kill9()
        await asyncio.sleep(fault.duration)
        await self.restart(child)
        self.record(fault, "end", pid=child.pid)

    async def _sigstop(self, fault: Fault) -> None:
        child = self.workers[fault.target]
        if not child.alive():
            self.record(fault, "skipped", why="not running")
            return
        self.record(fault, "begin", pid=child.pid)
        child.sigstop()
        try:
            await asyncio.sleep(fault.duration)
        finally:
            child.sigcont()
        self.record(fault, "end", pid=child.pid)

    async def _pg_restart(self, fault: Fault) -> None:
        self.record(fault, "begin")
        took = await asyncio.to_thread(self.cluster.restart)
        self.record(fault, "end", took=round(took, 3))

    async def _terminate(self, fault: Fault) -> None:
        rng = random.Random(fault.pick)
        try:
            async with await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, application_name="chaos-controller-fault"
            ) as conn:
                cur = await conn.execute(
                    "SELECT pid, application_name FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                    "AND application_name NOT LIKE 'chaos-controller%' ORDER BY pid"
                )
                candidates = await cur.fetchall()
                chosen = rng.sample(candidates, min(int(fault.amount), len(candidates)))
                for pid, _ in chosen:
                    await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        except psycopg.Error as exc:
            self.record(fault, "skipped", why=f"{type(exc).__name__}: {exc}")
            return
        self.record(fault, "begin", backends=[[pid, app] for pid, app in chosen])

    def _targets(self, fault: Fault) -> list[Proxy]:
        if fault.target == "all":
            return list(self.proxies.values())
        return [self.proxies[fault.target]]

    async def _latency(self, fault: Fault) -> None:
        self.record(fault, "begin", latency=round(fault.amount, 3))
        try:
            for proxy in self._targets(fault):
                proxy.set_latency(fault.amount)
            await asyncio.sleep(fault.duration)
        finally:
            for proxy in self._targets(fault):
                proxy.set_latency(0.0)
        self.record(fault, "end")

    async def _stall(self, fault: Fault) -> None:
        self.record(fault, "begin")
        try:
            for proxy in self._targets(fault):
                proxy.stall()
            await asyncio.sleep(fault.duration)
        finally:
            for proxy in self._targets(fault):
                proxy.resume()
        self.record(fault, "end")

    async def _cut(self, fault: Fault) -> None:
        cut = sum(proxy.cut() for proxy in self._targets(fault))
        self.record(fault, "begin", connections=cut)
