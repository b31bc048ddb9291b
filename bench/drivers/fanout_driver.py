"""Fan-out (issue 11): sending events to a queue that other queues subscribe to.

Run by the harness as `python fanout_driver.py '<json spec>'` (bench/benchlib/fanout.py); prints
one `BENCH_RESULT {json}` line. The queue `bench.ticks` carries the event `tick`; `subscribers`
queues (`fanout.sub1`, ...) subscribe to `bench.tick`, so each send writes 1 + subscribers jobs
in one statement. Sends are event envelopes through `Boss.send` / `Boss.send_many`, as the
generated `enqueue_*` functions make them, timed until the last send returns:

* `fanout_serial`: `n` single sends, one at a time.
* `fanout_send50`: `n` single sends, 50 in flight (coalesced into multi-row statements).
* `fanout_batch`: one `send_many` of `n` events (COPY past the Boss's copy threshold, then one
  statement writes the copies).

With `plain: true` the data carries its payload under another key, so it is not an event: the
sends take the statements of plain data, which do not look at subscriptions (the comparison for
a send without subscribers). Reports jobs written per second (`rate`, copies included) and sends
per second; checks that every queue holds exactly `n` jobs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from typing import Any

import psycopg

from typed_queues.runtime import Boss, QueueSpec, make_envelope

SCHEMA = "queues"
RESULT_PREFIX = "BENCH_RESULT "
QUEUE = "bench.ticks"
LANES = 50


def _data(i: int, plain: bool) -> dict[str, Any]:
    data = make_envelope("tick", {"i": i}, source="bench")
    if plain:  # the same size and cost to build, but not an event (no "payload" key)
        data["body"] = data.pop("payload")
    return data


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    phase, dsn, n = spec["phase"], spec["dsn"], int(spec["n"])
    subscribers = int(spec.get("subscribers", 3))
    plain = bool(spec.get("plain", False))
    targets = [f"fanout.sub{k}" for k in range(1, subscribers + 1)]
    async with (
        Boss(dsn, schema=SCHEMA, max_pool_size=10, schedules=False) as boss,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
    ):
        await boss.create_queues(
            [QueueSpec(QUEUE), *(QueueSpec(t, subscribe=("bench.tick",)) for t in targets)]
        )
        started = time.perf_counter()
        if phase == "fanout_serial":
            for i in range(n):
                await boss.send(QUEUE, _data(i, plain))
        elif phase == "fanout_send50":
            counter = iter(range(n))

            async def lane() -> None:
                for i in counter:
                    await boss.send(QUEUE, _data(i, plain))

            await asyncio.gather(*(lane() for _ in range(LANES)))
        elif phase == "fanout_batch":
            await boss.send_many(QUEUE, (_data(i, plain) for i in range(n)))
        else:
            raise ValueError(f"unknown phase {phase!r}")
        seconds = time.perf_counter() - started
        cur = await conn.execute(
            f"SELECT queue, count(*) FROM {SCHEMA}.job GROUP BY queue"  # noqa: S608
        )
        counts = dict(await cur.fetchall())
    want = {QUEUE: n} | {t: (0 if plain else n) for t in targets}
    got = {queue: int(counts.get(queue, 0)) for queue in want}
    if got != want:
        raise AssertionError(f"jobs per queue: expected {want}, found {got}")
    written = sum(got.values())
    return {
        "seconds": seconds,
        "rate": written / seconds,
        "sends_per_s": n / seconds,
        "jobs_written": written,
        "subscribers": subscribers,
        "plain": plain,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        result = {"ok": True, **asyncio.run(_run(spec))}
    except Exception as exc:
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
