"""The processes of the scale curves (bench/benchlib/scale.py), one role per invocation.

    python scale_driver.py '<json spec>'

One-shot roles print one `BENCH_RESULT {json}` line and exit:

* `setup`: migrate, create the measured queue `bench.ticks` (through the generated SDK's
  `create_queues`, or a `QueueSpec` for the engine), optionally with a short retention, and
  `fill_queues` other queues holding `fill_per_queue` jobs each;
* `seed`: put `n` jobs on `bench.ticks` in batches (untimed backlog).

Controlled roles print `READY` and wait for `GO <t0>` on stdin (t0 on the system-wide
monotonic clock, the same in every process). They print their `BENCH_RESULT` and keep their
connections until `EXIT`, so that the harness can read their backends' CPU first:

* `enqueue`: one timed batch of `n` jobs (`enqueue_tick_many`, or `send_many` of dicts), after
  a warm-up send of 10 (the connection and queue cache are ready, as in a running service).

The next ones print `PROGRESS <count>` every 0.1 s and answer `SAMPLE` with one
`SAMPLE {json}` line, until `STOP`:

* `serve`: a worker of `bench.ticks` (the generated `ticks_worker`, a bare `Worker`, or the SQL
  floor's claim + complete loop) counting handler calls in bins of `BIN_S` since t0. In
  `latency` mode the job's `i` is its send time (monotonic microseconds) and the worker reports
  send -> handler start percentiles per SAMPLE window;
* `produce`: sends `rate` jobs per second in batches every 0.1 s, each job's `i` its send time.

The client CPU a role reports is its own process time between GO and STOP.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from typed_queues.runtime import Boss, JobContext, QueueSpec, Worker
from typed_queues.runtime.db.queries import queries_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULT_PREFIX, Spec
from floor_driver import LEASE, aggregated_claim
from queues_driver import QUEUE, SCHEMA, TickHandlers, load_sdk

BIN_S = 0.01
SEED_CHUNK = 50_000
TICK_S = 0.1


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _opt(spec: Spec, key: str, default: Any) -> Any:
    return (spec.extra or {}).get(key, default)


class Jobs:
    """Sends of one system: the generated SDK ("queues") or the engine with dicts."""

    def __init__(self, spec: Spec, boss: Boss) -> None:
        self.system = _opt(spec, "system", "queues")
        self.boss = boss
        self.sdk = load_sdk(spec) if self.system == "queues" else None

    async def create(self, retention_s: float | None) -> None:
        if self.sdk is not None:
            spec = self.sdk.bench.TICKS
            await self.sdk.create_queues(self.boss)
        else:
            spec = QueueSpec(QUEUE)
        if retention_s is not None:
            await self.boss.create_queue(
                QueueSpec(spec.name, spec.retry, spec.expire_in, timedelta(seconds=retention_s),
                          spec.dead_letter, spec.description)
            )  # fmt: skip

    async def send_many(self, values: Sequence[int]) -> int:
        if self.sdk is not None:
            tick = self.sdk.bench.Tick
            ids = await self.sdk.bench.enqueue_tick_many(self.boss, (tick(i=i) for i in values))
        else:
            ids = await self.boss.send_many(QUEUE, ({"i": i} for i in values))
        return len(ids)


class Control:
    """The stdin commands of a controlled role, read by a thread and queued on the loop."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(self.queue.put_nowait, line.strip())
            loop.call_soon_threadsafe(self.queue.put_nowait, "STOP")

        threading.Thread(target=read, daemon=True).start()

    async def go(self) -> float:
        while True:
            words = (await self.queue.get()).split()
            if words and words[0] == "GO":
                return float(words[1])

    async def result(self, result: dict[str, Any]) -> None:
        """Print the result, then hold the connections open until EXIT (or stdin closes), so
        that the harness reads the server's CPU of this process's backends before they end."""
        _say(RESULT_PREFIX + json.dumps({"ok": True, **result}))
        while (await self.queue.get()) not in {"EXIT", "STOP"}:
            pass

    async def until_stop(self, progress: Callable[[], int], sample: Callable[[], Any]) -> None:
        while True:
            try:
                line = await asyncio.wait_for(self.queue.get(), TICK_S)
            except TimeoutError:
                _say(f"PROGRESS {progress()}")
                continue
            if line == "STOP":
                return
            if line == "SAMPLE":
                _say("SAMPLE " + json.dumps(sample()))


class Tally:
    """Handler calls in time bins since t0, and send -> start latencies of one window."""

    def __init__(self, t0: float, latency: bool) -> None:
        self.t0 = t0
        self.count = 0
        self.bins: list[int] = []
        self.latency = latency
        self.window: list[float] = []

    def add(self, i: int, n: int = 1) -> None:
        now = time.monotonic()
        self.count += n
        k = int((now - self.t0) / BIN_S)
        bins = self.bins
        if k >= len(bins):
            bins.extend([0] * (k + 1 - len(bins)))
        bins[k] += n
        if self.latency:
            self.window.append(now * 1e6 - i)

    def sample(self) -> dict[str, Any]:
        window, self.window = sorted(self.window), []
        if not window:
            return {"count": self.count, "n": 0}

        def pick(q: float) -> float:
            return window[min(len(window) - 1, int(q * len(window)))] / 1000

        return {"count": self.count, "n": len(window), "p50_ms": pick(0.5),
                "p95_ms": pick(0.95), "max_ms": window[-1] / 1000}  # fmt: skip


async def _floor_loop(spec: Spec, tally: Tally, stopping: asyncio.Event) -> None:
    """The processing floor: claim_work + complete_many, `concurrency` jobs per statement."""
    q = queries_for(SCHEMA)
    claim, complete = aggregated_claim(q["claim_work"]), q["complete_many"]
    batch = spec.concurrency
    params = {"queue": QUEUE, "limit": batch, "lease": LEASE}
    async with await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True) as conn:
        while not stopping.is_set():
            row = await (await conn.execute(claim, params, prepare=True)).fetchone()
            assert row is not None
            count, ids, fences = row
            if not count:
                await asyncio.sleep(0.05)
                continue
            outputs = "{" + ",".join(["NULL"] * count) + "}"
            await conn.execute(
                complete, {"ids": ids, "fences": fences, "outputs": outputs}, prepare=False
            )
            tally.add(0, count)


def _boss(spec: Spec) -> Boss:
    return Boss(
        spec.dsn,
        schema=SCHEMA,
        max_pool_size=_opt(spec, "max_pool_size", 10),
        worker_pool_size=_opt(spec, "worker_pool_size", 4),
        listen=bool(_opt(spec, "listen", True)),
    )


async def _serve(spec: Spec) -> None:
    system = _opt(spec, "system", "queues")
    latency = bool(_opt(spec, "latency", False))
    control = Control()
    boss = _boss(spec)
    await boss.start(migrate=False)
    tally = Tally(0.0, latency)
    worker: Worker | None = None
    if system == "queues":
        sdk = load_sdk(spec)
        worker = sdk.bench.ticks_worker(boss, TickHandlers(tally.add), concurrency=spec.concurrency)
    elif system == "engine":

        async def processor(ctx: JobContext) -> None:
            tally.add(ctx.payload["i"])

        worker = Worker(boss, QUEUE, processor, concurrency=spec.concurrency)
    _say("READY")
    tally.t0 = await control.go()
    cpu0 = time.process_time()
    stopping = asyncio.Event()
    floor: asyncio.Task[None] | None = None
    if worker is not None:
        await worker.start()
    else:
        floor = asyncio.create_task(_floor_loop(spec, tally, stopping))
    await control.until_stop(lambda: tally.count, tally.sample)
    cpu = time.process_time() - cpu0
    if worker is not None:
        await worker.stop()
    if floor is not None:
        stopping.set()
        await floor
    await control.result({"handled": tally.count, "cpu_s": cpu, "bin_s": BIN_S,
                          "bins": tally.bins})  # fmt: skip
    await boss.stop()
    return None


async def _produce(spec: Spec) -> None:
    rate = float(_opt(spec, "rate", 1000))
    control = Control()
    boss = _boss(spec)
    await boss.start(migrate=False)
    jobs = Jobs(spec, boss)
    sent = 0
    _say("READY")
    t0 = await control.go()
    cpu0 = time.process_time()

    async def run() -> None:
        nonlocal sent
        k = 0
        while True:
            k += 1
            due = int(rate * k * TICK_S) - sent
            if due > 0:
                now_us = int(time.monotonic() * 1e6)
                sent += await jobs.send_many([now_us] * due)
            delay = t0 + k * TICK_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    task = asyncio.create_task(run())
    await control.until_stop(lambda: sent, lambda: {"sent": sent})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    seconds = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    await control.result({"sent": sent, "seconds": seconds, "rate": sent / seconds, "cpu_s": cpu})
    await boss.stop()
    return None


async def _setup(spec: Spec) -> dict[str, Any]:
    async with _boss(spec) as boss:
        await Jobs(spec, boss).create(_opt(spec, "retention_s", None))
        fill: list[str] = _opt(spec, "fill_queues", [])
        per_queue = int(_opt(spec, "fill_per_queue", 0))
        await boss.create_queues([QueueSpec(name) for name in fill])
        for name in fill:
            if per_queue:
                await boss.send_many(name, ({"i": i} for i in range(per_queue)))
    return {"filled": len(fill) * per_queue}


async def _seed(spec: Spec) -> dict[str, Any]:
    t = time.perf_counter()
    async with _boss(spec) as boss:
        jobs = Jobs(spec, boss)
        done = 0
        while done < spec.n:
            chunk = min(SEED_CHUNK, spec.n - done)
            done += await jobs.send_many(range(done, done + chunk))
    return {"seconds": time.perf_counter() - t}


async def _enqueue(spec: Spec) -> None:
    control = Control()
    async with _boss(spec) as boss:
        jobs = Jobs(spec, boss)
        await jobs.send_many(range(10))  # the connection and the queue cache are warm
        _say("READY")
        await control.go()
        t, cpu = time.perf_counter(), time.process_time()
        sent = await jobs.send_many(range(spec.n))
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        if sent != spec.n:
            raise AssertionError(f"sent {spec.n} jobs, {sent} written")
        await control.result({"seconds": seconds, "rate": spec.n / seconds, "cpu_s": cpu})


ROLES: dict[str, Callable[[Spec], Coroutine[Any, Any, dict[str, Any] | None]]] = {
    "setup": _setup,
    "seed": _seed,
    "enqueue": _enqueue,
    "serve": _serve,
    "produce": _produce,
}


def main() -> None:
    spec = Spec.parse(sys.argv[1])
    role = ROLES.get(spec.phase)
    if role is None:
        raise SystemExit(f"unknown role {spec.phase!r}; choose from {sorted(ROLES)}")
    try:
        result = asyncio.run(role(spec))  # controlled roles print their own result
    except Exception as exc:
        import traceback

        traceback.print_exc()
        _say(RESULT_PREFIX + json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    if result is not None:
        _say(RESULT_PREFIX + json.dumps({"ok": True, **result}))


if __name__ == "__main__":
    main()
