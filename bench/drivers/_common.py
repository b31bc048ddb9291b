"""The phases every Python driver runs, written once against a small `System` protocol.

Standard library only: this module runs under the peers' own virtualenvs too. A driver module
defines a `System` and calls `main(make_system)`; the harness runs it as
`python <driver>.py '<json spec>'` and reads the one line starting with `BENCH_RESULT ` on stdout.
Every phase checks its own work (all jobs there or done, none handled twice) and reports
`{"ok": false, "error": ...}` instead of a figure when the check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Handler", "Spec", "System", "main"]

Handler = Callable[[int], None]
QUEUE = "bench"
POOL_SIZE = 10
RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True, slots=True)
class Spec:
    phase: str
    dsn: str
    n: int = 0
    concurrency: int = 1
    interval_ms: float = 10.0
    timeout_s: float = 120.0
    extra: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: str) -> Spec:
        data = json.loads(raw)
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__}
        return cls(**known, extra=data)


class System(Protocol):
    """One queue library, as the phases see it. Payloads are `{"i": <int>}`."""

    async def setup(self) -> None: ...  # connect; create schema and queue (idempotent)
    async def close(self) -> None: ...
    async def send(self, i: int) -> object: ...  # one job, one commit; returns its id
    async def send_batch(self, items: Sequence[int]) -> Sequence[object]: ...  # the batch API
    async def count_queued(self) -> int: ...  # jobs waiting to run
    async def count_done(self) -> int: ...  # jobs whose completion is committed
    async def start_worker(self, concurrency: int, handler: Handler) -> None: ...
    async def stop_worker(self) -> None: ...
    async def cleanup(self) -> int: ...  # retention pass; returns finished rows left
    def version(self) -> dict[str, Any]: ...


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _check_ids(ids: Sequence[object], n: int) -> None:
    if len(ids) != n or any(i is None for i in ids):
        raise AssertionError(f"expected {n} job ids, got {len(ids)}")
    if len({str(i) for i in ids}) != n:
        raise AssertionError("duplicate job ids")


async def _check_queued(system: System, n: int) -> None:
    queued = await system.count_queued()
    if queued != n:
        raise AssertionError(f"expected {n} queued jobs, found {queued}")


class _Tally:
    """Counts handler calls per job and signals when every job has been handled."""

    def __init__(self, n: int) -> None:
        self.counts = bytearray(n)
        self.handled = 0
        self.n = n
        self.started = [0.0] * n
        self.done = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def __call__(self, i: int) -> None:  # may run in a worker thread
        self.started[i] = time.perf_counter()
        self.counts[i] = min(self.counts[i] + 1, 255)
        self.handled += 1
        if self.handled >= self.n:
            self._loop.call_soon_threadsafe(self.done.set)

    def verify(self) -> None:
        missing = sum(1 for c in self.counts if c == 0)
        twice = sum(1 for c in self.counts if c > 1)
        if missing or twice:
            raise AssertionError(f"{missing} jobs never handled, {twice} handled more than once")


class _Clock:
    """Wall and process CPU seconds of the timed part of a phase."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.wall = self.cpu = 0.0

    def stop(self) -> float:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        return self.wall

    def result(self, n: int) -> dict[str, Any]:
        return {"seconds": self.wall, "rate": n / self.wall, "cpu_s": self.cpu}


async def _timed(coro: Awaitable[object]) -> _Clock:
    clock = _Clock()
    await coro
    clock.stop()
    return clock


async def _send_serial(system: System, spec: Spec) -> dict[str, Any]:
    ids: list[object] = []

    async def run() -> None:
        for i in range(spec.n):
            ids.append(await system.send(i))

    clock = await _timed(run())
    _check_ids(ids, spec.n)
    await _check_queued(system, spec.n)
    return clock.result(spec.n)


async def _send_concurrent(system: System, spec: Spec) -> dict[str, Any]:
    ids: list[object] = [None] * spec.n
    counter = iter(range(spec.n))

    async def lane() -> None:
        for i in counter:
            ids[i] = await system.send(i)

    lanes = [lane() for _ in range(min(spec.concurrency, spec.n))]
    clock = await _timed(asyncio.gather(*lanes))
    _check_ids(ids, spec.n)
    await _check_queued(system, spec.n)
    return clock.result(spec.n)


async def _send_batch(system: System, spec: Spec) -> dict[str, Any]:
    ids: list[object] = []

    async def run() -> None:
        ids.extend(await system.send_batch(range(spec.n)))

    clock = await _timed(run())
    _check_ids(ids, spec.n)
    await _check_queued(system, spec.n)
    return clock.result(spec.n)


async def _seed(system: System, spec: Spec) -> dict[str, Any]:
    await system.send_batch(range(spec.n))
    await _check_queued(system, spec.n)
    return {}


async def _wait_handled(tally: _Tally, seconds: float, stall: float = 60.0) -> None:
    """Until every job was handled; fail at the deadline, or once no job was handled for
    `stall` seconds (a worker that died after a server restart never finishes)."""
    deadline = time.perf_counter() + seconds
    last, last_change = -1, time.perf_counter()
    while not tally.done.is_set():
        now = time.perf_counter()
        if tally.handled != last:
            last, last_change = tally.handled, now
        if now > deadline or now - last_change > stall:
            raise AssertionError(f"{tally.handled}/{tally.n} jobs handled, then no progress")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.done.wait(), 1.0)


async def _work(system: System, spec: Spec) -> dict[str, Any]:
    """(d): process n queued jobs; the clock stops once every completion is committed."""
    tally = _Tally(spec.n)
    before = await system.count_done()  # a second cycle on the same database starts above 0
    deadline = time.perf_counter() + spec.timeout_s
    clock = _Clock()
    await system.start_worker(spec.concurrency, tally)
    await _wait_handled(tally, spec.timeout_s)
    last, last_change = -1, time.perf_counter()
    while (done := await system.count_done() - before) < spec.n:
        now = time.perf_counter()
        if done != last:
            last, last_change = done, now
        # Every handler has run: completions that make no progress for 30 s are lost.
        if now > deadline or now - last_change > 30:
            raise AssertionError(f"only {done}/{spec.n} completions committed")
        await asyncio.sleep(0.002)
    clock.stop()
    await system.stop_worker()
    tally.verify()
    done = await system.count_done() - before
    if done != spec.n:
        raise AssertionError(f"expected {spec.n} completed jobs, found {done}")
    return clock.result(spec.n)


async def _drain(system: System, spec: Spec) -> dict[str, Any]:
    """The processing floor: claim and complete the n queued jobs `spec.concurrency` at a time
    with no handler (only systems with a `drain(batch)` method, the SQL floor); the clock stops
    once every completion is committed."""
    drain: Callable[[int], Awaitable[None]] | None = getattr(system, "drain", None)
    if drain is None:
        raise AssertionError(f"{type(system).__name__} has no drain phase")
    before = await system.count_done()
    clock = await _timed(drain(spec.concurrency))
    done = await system.count_done() - before
    if done != spec.n:
        raise AssertionError(f"expected {spec.n} completed jobs, found {done}")
    return clock.result(spec.n)


async def _latency(system: System, spec: Spec) -> dict[str, Any]:
    """(e): an idle worker; jobs sent interval_ms apart; send call -> handler start."""
    tally = _Tally(spec.n)
    sent = [0.0] * spec.n
    await system.start_worker(spec.concurrency, tally)
    await asyncio.sleep(1.0)  # let the worker go idle
    t0 = time.perf_counter()
    for i in range(spec.n):
        delay = t0 + i * spec.interval_ms / 1000 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[i] = time.perf_counter()
        await system.send(i)
    await _wait_handled(tally, spec.timeout_s, stall=spec.timeout_s)
    await system.stop_worker()
    tally.verify()
    lat = sorted((tally.started[i] - sent[i]) * 1000 for i in range(spec.n))
    return {
        "p50_ms": _percentile(lat, 0.5),
        "p95_ms": _percentile(lat, 0.95),
        "max_ms": lat[-1],
        "samples": spec.n,
    }


async def _cleanup(system: System, spec: Spec) -> dict[str, Any]:
    return {"finished_rows_left": await system.cleanup()}


async def _version(system: System, spec: Spec) -> dict[str, Any]:
    return system.version()


_PHASES: dict[str, Callable[[System, Spec], Awaitable[dict[str, Any]]]] = {
    "send_serial": _send_serial,
    "send_concurrent": _send_concurrent,
    "send_batch": _send_batch,
    "seed": _seed,
    "work": _work,
    "drain": _drain,
    "latency": _latency,
    "cleanup": _cleanup,
    "version": _version,
}


async def _run(make_system: Callable[[Spec], System], spec: Spec) -> dict[str, Any]:
    phase = _PHASES[spec.phase]
    system = make_system(spec)
    if spec.phase == "version":
        return await phase(system, spec)
    await system.setup()
    try:
        return await phase(system, spec)
    finally:
        await system.close()


def main(make_system: Callable[[Spec], System]) -> None:
    spec = Spec.parse(sys.argv[1])
    try:
        result = {"ok": True, **asyncio.run(_run(make_system, spec))}
    except Exception as exc:
        traceback.print_exc()
        _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)
    _emit(result)
