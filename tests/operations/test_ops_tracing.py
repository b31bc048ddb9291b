"""OpenTelemetry: the enqueuing span's context travels in the envelope, and the worker's span
for the job continues it (exported to an in-memory exporter)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from typed_queues.runtime import JobContext, JobState, make_envelope
from typed_queues.runtime.tracing import forget_tracer, job_tracer, trace_context

from .ops_support import WORK, fast_boss, make_queues, wait_until


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """A tracer provider (the SDK, as an application would set it) exporting to memory; the
    global provider is restored afterwards."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(provider)
    forget_tracer()  # workers look the provider up once a second
    try:
        yield spans
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved
        forget_tracer()


def _named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [span for span in spans if span.name == name]
    return span


async def test_the_handler_span_continues_the_enqueue_span(
    dsn: str, schema_name: str, exporter: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("tests")
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        with tracer.start_as_current_span("POST /invoices"):
            envelope = make_envelope("invoice-created", {"n": 1})
            job_id = await boss.send(WORK, envelope)
        assert envelope["metadata"]["traceparent"].startswith("00-")

        async def handler(job: JobContext) -> None:
            with tracer.start_as_current_span("book ledger"):
                pass

        worker = boss.worker(WORK, handler)
        await worker.start()

        async def done() -> bool:
            job = await boss.get_job(job_id)
            return job is not None and job.state is JobState.COMPLETED

        await wait_until(done)
        await worker.stop()

    spans = exporter.get_finished_spans()
    request = _named(spans, "POST /invoices")
    process = _named(spans, f"process {WORK}")
    inner = _named(spans, "book ledger")
    assert process.context is not None and request.context is not None
    assert process.context.trace_id == request.context.trace_id  # one trace
    assert process.parent is not None and process.parent.span_id == request.context.span_id
    assert inner.parent is not None and inner.parent.span_id == process.context.span_id
    assert process.kind is SpanKind.CONSUMER
    attributes = dict(process.attributes or {})
    assert attributes["queues.queue"] == WORK
    assert attributes["queues.event"] == "invoice-created"
    assert attributes["queues.job.id"] == str(job_id)
    assert attributes["queues.job.attempt"] == 1
    assert process.status.status_code is StatusCode.UNSET


async def test_a_failing_job_records_a_bounded_error(
    dsn: str, schema_name: str, exporter: InMemorySpanExporter
) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        job_id = await boss.send(WORK, make_envelope("charge", {}))  # no span: a new trace

        async def handler(job: JobContext) -> None:
            raise ValueError("z" * 1_000_000)

        worker = boss.worker(WORK, handler)
        await worker.start()

        async def failed() -> bool:
            job = await boss.get_job(job_id)
            return job is not None and job.state is JobState.FAILED

        await wait_until(failed)
        await worker.stop()

    process = _named(exporter.get_finished_spans(), f"process {WORK}")
    assert process.parent is None
    assert process.status.status_code is StatusCode.ERROR
    [event] = process.events
    assert event.name == "exception"
    attributes = dict(event.attributes or {})
    assert attributes["exception.type"] == "ValueError"
    assert len(str(attributes["exception.message"])) <= 2000


def test_nothing_is_recorded_without_a_span_or_a_provider() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert job_tracer() is None
    assert trace_context() is None
    assert set(make_envelope("e", {})["metadata"]) == {"source", "timestamp", "version"}
