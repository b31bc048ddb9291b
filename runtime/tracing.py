"""OpenTelemetry traces across the queue: the enqueuing caller's trace context travels in the
envelope's metadata (W3C ``traceparent`` / ``tracestate``), and the worker runs each job in a
span that continues it.

Only ``opentelemetry-api`` is used (``pip install 'typed-queues[tracing]'``); the SDK, its
exporters and the tracer provider are the application's choice. Without the package, or
without a tracer provider set, both halves do nothing beyond a check:
``bench/tracing_overhead.py`` measures it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .failures import MAX_MESSAGE, MAX_TRACEBACK, summarize

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from .jobs import JobContext

__all__ = ["TRACE_KEYS", "forget_tracer", "job_tracer", "run_in_span", "trace_context"]

#: The envelope metadata keys that carry the trace context.
TRACE_KEYS: Final = ("traceparent", "tracestate")
#: The instrumentation scope of the worker's spans.
TRACER_NAME: Final = "typed_queues"

T = TypeVar("T")

try:  # the API is an optional dependency: everything below is a no-op without it
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _propagator: TraceContextTextMapPropagator | None = TraceContextTextMapPropagator()
    _no_tracing: tuple[type, ...] = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)
except ImportError:  # pragma: no cover - exercised by a plain install
    _trace = None  # type: ignore[assignment]
    _propagator = None
    _no_tracing = ()

_tracers: dict[int, Tracer] = {}
#: The tracer ``job_tracer`` found (None: none configured) and until when (monotonic) that
#: answer stands: looking the provider up costs ~0.8 us, more than the rest of the check.
_cached: tuple[Tracer | None, float] = (None, 0.0)
#: Seconds a ``job_tracer`` answer is reused; a provider set later is seen within this.
_RECHECK_S: Final = 1.0


def trace_context() -> dict[str, str] | None:
    """The caller's W3C trace context (``traceparent`` and, if any, ``tracestate``) when a
    span is active, else None."""
    if _propagator is None or not _trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {key: carrier[key] for key in TRACE_KEYS if key in carrier} or None


def job_tracer() -> Tracer | None:
    """The tracer for job spans, or None when no tracer provider is configured (looked up at
    most once a second)."""
    global _cached
    if _propagator is None:
        return None
    tracer, until = _cached
    now = time.monotonic()
    if now < until:
        return tracer
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _no_tracing):
        tracer = None
    else:
        key = id(provider)
        tracer = _tracers.get(key)
        if tracer is None:
            _tracers.clear()  # a new provider replaces the old one
            tracer = _tracers[key] = provider.get_tracer(TRACER_NAME)
    _cached = (tracer, now + _RECHECK_S)
    return tracer


def forget_tracer() -> None:
    """Look the tracer provider up again at the next job (after setting one, in tests)."""
    global _cached
    _cached = (None, 0.0)


def _parent(metadata: Mapping[str, Any]) -> Any:
    assert _propagator is not None
    carrier = {key: metadata[key] for key in TRACE_KEYS if isinstance(metadata.get(key), str)}
    return _propagator.extract(carrier) if carrier else None


async def run_in_span(tracer: Tracer, ctx: JobContext, action: Callable[[], Awaitable[T]]) -> T:
    """Run ``action`` in a consumer span ``process <queue>``, the child of the trace context
    the job was enqueued in (a new trace when it has none), with the job's queue, event, id
    and attempt as attributes. An error is recorded (bounded) and re-raised."""
    attributes: dict[str, Any] = {
        "messaging.system": "typed_queues",
        "messaging.operation": "process",
        "messaging.destination.name": ctx.queue,
        "messaging.message.id": str(ctx.id),
        "queues.job.id": str(ctx.id),
        "queues.queue": ctx.queue,
        "queues.job.attempt": ctx.attempt,
    }
    if ctx.event is not None:
        attributes["queues.event"] = ctx.event
    with tracer.start_as_current_span(
        f"process {ctx.queue}",
        context=_parent(ctx.metadata),
        kind=_trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            return await action()
        except BaseException as exc:
            summary = summarize(exc, message_limit=MAX_MESSAGE, traceback_limit=MAX_TRACEBACK)
            span.add_event(
                "exception",
                {
                    "exception.type": summary.type,
                    "exception.message": summary.message,
                    "exception.stacktrace": summary.traceback,
                },
            )
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, summary.line[:200]))
            raise
