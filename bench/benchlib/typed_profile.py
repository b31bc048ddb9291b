"""Where the generated batch enqueue spends its time against the engine (issue 17 item 3).

In one process, rounds interleaved so that every ratio is of the same minute:

* the client-side steps of `enqueue_<event>_many`, no database: building the models; the
  envelopes as JSON text in one pass (`typed.envelopes_json`, what the SDK sends) and the
  engine's checks of those texts; the envelopes as dicts (`typed.envelopes`, what the SDK sent
  before issue 17) and the engine's JSON encoding of them; against the engine's encoding of
  plain `{"i": n}` dicts; and, for comparison, pydantic serialising the whole batch in one call
  (`TypeAdapter(list[Model]).dump_json`);
* the whole sends against a database: `Boss.send_many` of `{"i": n}` dicts, of prebuilt
  envelope dicts, of prebuilt envelope texts (`EncodedMany`: what the bigger rows alone cost),
  `enqueue_tick_many` with the models built inside and outside the timing, and the envelope
  dicts of the models built inside (`typed.envelopes`: the SDK's send before).
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from typed_queues.runtime import Boss, make_envelope
from typed_queues.runtime.client.requests import EncodedMany
from typed_queues.runtime.db.encoding import encode_many

from .sdk import PACKAGE, QUEUE, generate_sdk

__all__ = ["typed_breakdown"]


def _client_steps(sdk: Any, n: int, rounds: int) -> dict[str, float]:
    from pydantic import TypeAdapter

    from typed_queues.runtime import typed

    tick = sdk.bench.Tick
    models = [tick(i=i) for i in range(n)]
    dumped = [m.model_dump(mode="json", by_alias=True) for m in models]
    envelopes = typed.envelopes("tick", models, None)
    texts = list(typed.envelopes_json("tick", models, None).items)
    plain = [{"i": i} for i in range(n)]
    batch = TypeAdapter(list[tick])  # type: ignore[valid-type]  # a model made at run time
    steps: dict[str, Callable[[], object]] = {
        "Tick(i=n) per item": lambda: [tick(i=i) for i in range(n)],
        "model_dump(mode='json', by_alias=True) per item": lambda: [
            m.model_dump(mode="json", by_alias=True) for m in models
        ],
        "typed.envelopes_json (the JSON texts, one pass; the SDK now)": lambda: list(
            typed.envelopes_json("tick", models, None).items
        ),
        "encode_many(encoded=True) of those texts (engine checks)": lambda: encode_many(
            QUEUE, texts, 1_000_000, encoded=True
        ),
        "typed.envelopes (model_dump + envelope dict; the SDK before)": lambda: typed.envelopes(
            "tick", models, None
        ),
        "make_envelope per item (engine helper)": lambda: [
            make_envelope("tick", d) for d in dumped
        ],
        "encode_many of the envelopes (engine JSON + checks)": lambda: encode_many(
            QUEUE, envelopes, 1_000_000
        ),
        "encode_many of {'i': n} dicts": lambda: encode_many(QUEUE, plain, 1_000_000),
        "TypeAdapter(list[Tick]).dump_json, whole batch": lambda: batch.dump_json(models),
        "model_dump_json per item": lambda: [m.model_dump_json() for m in models],
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):  # interleaved: every step once per round
        for name, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: 1e6 * statistics.median(taken) / n for name, taken in times.items()}


async def _sends(dsn: str, sdk: Any, n: int, rounds: int) -> dict[str, list[float]]:
    from typed_queues.runtime import typed

    tick = sdk.bench.Tick
    rates: dict[str, list[float]] = {}
    async with Boss(dsn) as boss:
        await sdk.create_queues(boss)
        await boss.send_many(QUEUE, [{"i": 0}])  # warm: connection, queue cache
        prebuilt_models = [tick(i=i) for i in range(n)]
        prebuilt_envelopes = [make_envelope("tick", {"i": i}) for i in range(n)]
        prebuilt_texts = list(typed.envelopes_json("tick", prebuilt_models, None).items)
        cases: dict[str, Callable[[], Any]] = {
            "engine: send_many({'i': n} dicts)": lambda: boss.send_many(
                QUEUE, ({"i": i} for i in range(n))
            ),
            "engine: send_many(prebuilt envelope dicts)": lambda: boss.send_many(
                QUEUE, prebuilt_envelopes
            ),
            "engine: send_many(EncodedMany of prebuilt envelope texts)": lambda: boss.send_many(
                QUEUE, EncodedMany("tick", prebuilt_texts)
            ),
            "SDK: enqueue_tick_many(Tick(i=n) built inside)": lambda: sdk.bench.enqueue_tick_many(
                boss, (tick(i=i) for i in range(n))
            ),
            "SDK: enqueue_tick_many(prebuilt models)": lambda: sdk.bench.enqueue_tick_many(
                boss, prebuilt_models
            ),
            "SDK before: send_many(typed.envelopes(Tick(i=n) built inside))": lambda: (
                boss.send_many(QUEUE, typed.envelopes("tick", (tick(i=i) for i in range(n)), None))
            ),
        }
        for _ in range(rounds):
            for name, make in cases.items():
                t = time.perf_counter()
                await make()
                rates.setdefault(name, []).append(n / (time.perf_counter() - t))
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute("TRUNCATE queues.job")
    return rates


def typed_breakdown(dsn: str, cache: Path, n: int = 20_000, rounds: int = 5) -> None:
    sys.path.insert(0, str(generate_sdk(cache)))
    sdk = importlib.import_module(PACKAGE)
    print(f"client-side steps, {n:,} items, median of {rounds} interleaved rounds (us per item):")
    for name, us in _client_steps(sdk, n, rounds).items():
        print(f"  {us:6.2f}  {name}")
    print(f"\nwhole sends of {n:,} jobs, rounds interleaved (jobs/s: median, min-max):")
    rates = asyncio.run(_sends(dsn, sdk, n, rounds))
    base = statistics.median(rates["engine: send_many({'i': n} dicts)"])
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"  {med:9,.0f} ({min(values):,.0f}-{max(values):,.0f})  x{med / base:.2f}  {name}")
