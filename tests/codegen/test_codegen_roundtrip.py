"""Through the real PostgreSQL: generated enqueue -> generated worker -> typed handler.

Every event of the repository's catalogue travels with its catalogue ``example``; an unknown
event and an invalid payload each end ``failed`` (no retries, copied to the dead-letter queue)
with a clear reason, and never reach a handler.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from codegen_helpers import REPO
from pydantic import BaseModel

from generated import QUEUES, create_queues
from typed_queues.codegen import names
from typed_queues.codegen.catalogue import load_catalogue
from typed_queues.runtime import (
    Boss,
    Job,
    JobContext,
    JobId,
    JobState,
    SyncBoss,
    Worker,
    make_envelope,
)

FINAL = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}


@dataclass(frozen=True)
class EventCase:
    domain: str
    queue: str
    db_queue: str
    event: str
    example: dict[str, Any]

    @property
    def package(self) -> Any:
        return importlib.import_module(f"generated.{names.package_name(self.domain)}")

    @property
    def model(self) -> type[BaseModel]:
        model: type[BaseModel] = getattr(self.package, names.model_class(self.event))
        return model

    def enqueue(self, suffix: str = "") -> Callable[..., Any]:
        function: Callable[..., Any] = getattr(
            self.package, names.enqueue_names(self.event)[0] + suffix
        )
        return function


def catalogue_events() -> list[EventCase]:
    catalogue, _source = load_catalogue(REPO / "queues.yaml")
    cases = []
    for domain_name, domain in catalogue.domains.items():
        for queue_name, queue in domain.queues.items():
            for event_name, event in queue.events.items():
                assert event.example is not None, f"give {event_name} an example in queues.yaml"
                db_queue = names.db_queue_name(domain_name, queue_name)
                cases.append(
                    EventCase(domain_name, queue_name, db_queue, event_name, event.example)
                )
    return cases


class Recorder:
    """Answers every ``on_*`` method of any generated handler Protocol, recording the call."""

    def __init__(self, expected: int) -> None:
        self.calls: list[tuple[str, BaseModel, JobContext]] = []
        self.expected = expected
        self.done = asyncio.Event()

    def __getattr__(self, name: str) -> Callable[[BaseModel, JobContext], Awaitable[None]]:
        if not name.startswith("on_"):
            raise AttributeError(name)

        async def handle(payload: BaseModel, job: JobContext) -> None:
            self.calls.append((name, payload, job))
            if len(self.calls) >= self.expected:
                self.done.set()

        return handle


async def wait_final(boss: Boss, ids: Iterable[JobId]) -> dict[JobId, Job]:
    """Poll until every job is in a final state (a guard against hanging, not a timed assert)."""
    pending = list(ids)
    found: dict[JobId, Job] = {}
    async with asyncio.timeout(60):
        while pending:
            for job_id in list(pending):
                job = await boss.get_job(job_id)
                if job is not None and job.state in FINAL:
                    found[job_id] = job
                    pending.remove(job_id)
            if pending:
                await asyncio.sleep(0.05)
    return found


def start_all_workers(boss: Boss, recorder: Recorder, cases: list[EventCase]) -> list[Worker]:
    workers = []
    for domain, queue in sorted({(c.domain, c.queue) for c in cases}):
        package = importlib.import_module(f"generated.{names.package_name(domain)}")
        factory = getattr(package, names.worker_factory(queue))
        workers.append(factory(boss, cast(Any, recorder), concurrency=4))
    return workers


async def test_catalogue_and_generated_specs_agree() -> None:
    cases = catalogue_events()
    assert len(cases) >= 8
    assert {c.db_queue for c in cases} <= {spec.name for spec in QUEUES}
    assert any(spec.dead_letter for spec in QUEUES)


async def test_every_event_round_trips_with_its_typed_payload(boss: Boss) -> None:
    cases = catalogue_events()
    await create_queues(boss)
    sent: dict[JobId, EventCase] = {}
    for case in cases:
        payload = case.model.model_validate(case.example)
        sent[await case.enqueue()(boss, payload)] = case
        for job_id in await case.enqueue("_many")(boss, [payload, payload]):
            sent[job_id] = case
    recorder = Recorder(expected=len(sent))
    workers = start_all_workers(boss, recorder, cases)
    for worker in workers:
        await worker.start()
    try:
        async with asyncio.timeout(60):
            await recorder.done.wait()
        jobs = await wait_final(boss, sent)
    finally:
        for worker in workers:
            await worker.stop()

    assert all(job.state is JobState.COMPLETED for job in jobs.values()), jobs
    by_event: dict[str, list[tuple[str, BaseModel, JobContext]]] = {}
    for call in recorder.calls:
        if call[2].id not in sent:  # a copy on a subscribing queue (fan-out, tests/events)
            continue
        by_event.setdefault(call[2].event or "", []).append(call)
    assert sorted(by_event) == sorted(c.event for c in cases)
    for case in cases:
        calls = by_event[case.event]
        assert len(calls) == 3
        for method, payload, job in calls:
            assert method == names.handler_method(case.event)
            assert type(payload) is case.model  # the handler got the typed model, not a dict
            assert payload == case.model.model_validate(case.example)
            assert job.queue == case.db_queue
            assert sent[job.id] is case
            assert job.metadata["version"] == "1"


async def test_sync_enqueue_round_trips(boss: Boss, dsn: str, schema_name: str) -> None:
    cases = catalogue_events()
    await create_queues(boss)

    def send_all() -> list[JobId]:
        ids: list[JobId] = []
        with SyncBoss(dsn, schema=schema_name) as sync:
            for case in cases:
                payload = case.model.model_validate(case.example)
                ids.append(case.enqueue("_sync")(sync, payload))
                ids += case.enqueue("_many_sync")(sync, [payload])
        return ids

    ids = await asyncio.to_thread(send_all)
    recorder = Recorder(expected=len(ids))
    workers = start_all_workers(boss, recorder, cases)
    for worker in workers:
        await worker.start()
    try:
        jobs = await wait_final(boss, ids)
    finally:
        for worker in workers:
            await worker.stop()
    assert all(job.state is JobState.COMPLETED for job in jobs.values()), jobs
    own = [c for c in recorder.calls if c[2].id in ids]  # (not the copies of fan-out)
    assert sorted(c[2].event or "" for c in own) == sorted(c.event for c in cases for _ in range(2))


async def test_unknown_event_and_invalid_payload_fail_with_a_clear_reason(
    boss: Boss, caplog: pytest.LogCaptureFixture
) -> None:
    await create_queues(boss)
    unknown = await boss.send(
        "billing.invoices", make_envelope("invoice-exploded", {"invoice_id": "x"})
    )
    invalid = await boss.send(
        "billing.invoices",
        make_envelope("invoice-created", {"invoice_id": "not-a-uuid", "extra": 1}),
    )
    bare = await boss.send("billing.invoices", {"not": "an envelope"})
    recorder = Recorder(expected=1)
    from generated.billing import invoices_worker

    worker = invoices_worker(boss, cast(Any, recorder))
    caplog.set_level(logging.INFO, logger="queues.jobs")
    await worker.start()
    try:
        jobs = await wait_final(boss, [unknown, invalid, bare])
    finally:
        await worker.stop()

    assert recorder.calls == []
    for job in jobs.values():
        assert job.state is JobState.FAILED
        assert job.retry_count == 0  # a permanent failure: no retries
        assert job.dead_letter_id is not None
        copy = await boss.get_job(job.dead_letter_id)
        assert copy is not None and copy.queue == "billing.invoices-dead"
        assert copy.data == job.data

    error = jobs[unknown].output["error"]
    assert error["type"] == "UnknownEventError"
    assert error["message"] == (
        'unknown event "invoice-exploded" on queue "billing.invoices"; '
        'this worker handles "invoice-created", "invoice-voided"'
    )
    error = jobs[invalid].output["error"]
    assert error["type"] == "InvalidPayloadError"
    message = error["message"]
    assert message.startswith(
        'invalid payload for event "invoice-created" on queue "billing.invoices" '
        "(model InvoiceCreated): "
    )
    assert "invoice_id: Input should be a valid UUID" in message
    assert "number: Field required" in message
    assert "not-a-uuid" not in message  # input values (possibly personal data) stay out
    error = jobs[bare].output["error"]
    assert error["type"] == "UnknownEventError"
    assert error["message"].startswith('a job with no event on queue "billing.invoices"')

    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Failed:")]
    assert any(m.startswith(f"Failed: invoice-exploded | ID: {unknown}") for m in failures)
    # the raw entity id is logged even when the payload is invalid
    assert any(m.startswith("Failed: invoice-created | ID: not-a-uuid") for m in failures)
