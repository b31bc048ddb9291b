"""What OpenTelemetry support costs per job when no tracer is configured (and when one is).

    python bench/tracing_overhead.py

Measures, in nanoseconds per call (median of 7 rounds of timeit):

- ``make_envelope`` as it was before tracing (the baseline, copied here), as it is without the
  ``opentelemetry-api`` package (a plain install), with the package but no span active (no
  tracer provider, or the SDK's), and inside an active span (recording ``traceparent``);
- the worker's per-job check ``job_tracer()`` with no tracer provider set, and the whole job
  span (``run_in_span`` around a no-op coroutine) with the SDK and no exporter.

Nothing here asserts speed; the figures go to bench/PROFILE.md.
"""

from __future__ import annotations

import asyncio
import statistics
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util._once import Once

from typed_queues.runtime import JobContext, JobId, make_envelope
from typed_queues.runtime import tracing as tracing_module
from typed_queues.runtime.jobs import ENVELOPE_VERSION
from typed_queues.runtime.tracing import forget_tracer, job_tracer, run_in_span

ROUNDS = 7
NUMBER = 100_000
PAYLOAD = {"invoice_id": "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f", "amount_cents": 1200}


def baseline_envelope(event: str, payload: dict[str, Any], *, source: str | None = None) -> Any:
    """``make_envelope`` before trace context was added (for comparison)."""
    return {
        "event": event,
        "payload": payload if isinstance(payload, dict) else dict(payload),
        "metadata": {
            "source": source or "queues",
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "version": ENVELOPE_VERSION,
        },
    }


def per_call_ns(action: Callable[[], object], number: int = NUMBER) -> float:
    runs = timeit.repeat(action, number=number, repeat=ROUNDS)
    return statistics.median(runs) / number * 1e9


def set_provider(provider: TracerProvider | None) -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    if provider is not None:
        trace.set_tracer_provider(provider)
    forget_tracer()


def main() -> None:
    rows: list[tuple[str, float]] = []

    def measure(name: str, action: Callable[[], object], number: int = NUMBER) -> None:
        rows.append((name, per_call_ns(action, number)))

    set_provider(None)
    measure("make_envelope before tracing (baseline)", lambda: baseline_envelope("e", PAYLOAD))
    saved = tracing_module._propagator
    tracing_module._propagator = None  # as without the opentelemetry-api package
    measure("make_envelope, no opentelemetry-api", lambda: make_envelope("e", PAYLOAD))
    measure("job_tracer(), no opentelemetry-api", job_tracer)
    tracing_module._propagator = saved
    forget_tracer()
    measure("make_envelope, API, no provider, no span", lambda: make_envelope("e", PAYLOAD))
    measure("job_tracer(), API, no provider", job_tracer)

    provider = TracerProvider()  # the SDK, no exporter
    set_provider(provider)
    measure("make_envelope, SDK provider, no span", lambda: make_envelope("e", PAYLOAD))
    tracer = trace.get_tracer("bench")
    with tracer.start_as_current_span("request"):
        measure("make_envelope inside a span (records it)", lambda: make_envelope("e", PAYLOAD))
    measure("job_tracer(), SDK provider", job_tracer)

    ctx = JobContext(JobId(uuid.uuid4()), "bench", make_envelope("e", PAYLOAD))
    job_span_tracer = job_tracer()
    assert job_span_tracer is not None

    async def nothing() -> None:
        return None

    async def spans(count: int) -> None:
        for _ in range(count):
            await run_in_span(job_span_tracer, ctx, nothing)

    async def bare(count: int) -> None:
        for _ in range(count):
            await nothing()

    loop = asyncio.new_event_loop()
    count = 20_000
    with_span = per_call_ns(lambda: loop.run_until_complete(spans(count)), 1) / count
    without = per_call_ns(lambda: loop.run_until_complete(bare(count)), 1) / count
    loop.close()
    rows.append(("a job's span (run_in_span), SDK, no exporter", with_span - without))
    set_provider(None)

    width = max(len(name) for name, _ in rows)
    for name, ns in rows:
        print(f"{name.ljust(width)}  {ns:8.0f} ns")


if __name__ == "__main__":
    main()
