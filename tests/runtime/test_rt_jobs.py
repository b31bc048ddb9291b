"""The envelope, JobContext and the job wrapper's log records."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import pytest

from typed_queues.runtime import ENVELOPE_VERSION, JobContext, JobId, make_envelope, process_job


def test_make_envelope() -> None:
    envelope = make_envelope("invoice-created", {"invoice_id": "i-1"}, source="billing-api")
    assert envelope["event"] == "invoice-created"
    assert envelope["payload"] == {"invoice_id": "i-1"}
    metadata = envelope["metadata"]
    assert metadata["source"] == "billing-api" and metadata["version"] == ENVELOPE_VERSION == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", metadata["timestamp"])
    assert make_envelope("e", {})["metadata"]["source"] == "queues"


def test_job_context_of_an_envelope_and_of_plain_data() -> None:
    job_id = JobId(uuid.uuid4())
    ctx = JobContext(job_id, "billing.invoices", make_envelope("e", {"a": 1}), attempt=2)
    assert (ctx.event, ctx.payload, ctx.attempt, ctx.queue) == (
        "e",
        {"a": 1},
        2,
        "billing.invoices",
    )
    assert ctx.metadata["version"] == "1"
    assert ctx.logger.extra == {
        "job_id": str(job_id),
        "queue": "billing.invoices",
        "event": "e",
        "attempt": 2,
    }
    plain = JobContext(job_id, "q", {"x": 1})
    assert (plain.event, plain.payload, plain.metadata, plain.attempt) == (None, {"x": 1}, {}, 1)


async def test_process_job_logs_start_finish_and_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="queues.jobs")
    job_id = JobId(uuid.uuid4())
    ctx = JobContext(job_id, "q", make_envelope("thing", {"id": "t-1"}))

    async def work() -> int:
        await asyncio.sleep(0)
        return 42

    assert await process_job(ctx, work, label="thing", entity_id="t-1") == 42

    async def broken() -> int:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await process_job(ctx, broken, entity_id="t-1")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "Starting: thing | ID: t-1"
    assert re.fullmatch(r"Finished: thing \| ID: t-1 in \d+\.\d ms", messages[1])
    assert messages[2] == "Starting: thing | ID: t-1"
    assert messages[3].startswith("Failed: thing | ID: t-1 after ") and "ValueError" in messages[3]
    for record in caplog.records:
        assert record.name == "queues.jobs"
        fields = record.__dict__
        assert (fields["job_id"], fields["queue"], fields["event"]) == (str(job_id), "q", "thing")
        assert (fields["entity_id"], fields["attempt"]) == ("t-1", 1)
        assert fields["metadata"]["version"] == "1"
    assert caplog.records[1].__dict__["duration_ms"] >= 0
    assert caplog.records[3].levelno == logging.ERROR and caplog.records[3].exc_info


async def test_process_job_without_entity_shows_the_job_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="queues.jobs")
    job_id = JobId(uuid.uuid4())

    async def work() -> None:
        return None

    await process_job(JobContext(job_id, "q", {"a": 1}), work)
    assert caplog.records[0].getMessage() == f"Starting: q | ID: {job_id}"
