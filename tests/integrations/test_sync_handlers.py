"""Generated worker factories take handler classes with plain (sync) methods (the
``*SyncHandlers`` Protocols) and run each call in a daemon thread of its own."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence

import pytest

from generated import QUEUES
from generated.notifications import EmailRequested, email_worker, enqueue_email_requested
from typed_queues.runtime import Boss, JobContext, JobState, QueueSpec
from typed_queues.runtime.testing import drain


@pytest.fixture
def queues_specs() -> Sequence[QueueSpec]:
    return QUEUES


def email(to: str) -> EmailRequested:
    return EmailRequested.model_validate(
        {
            "message_id": str(uuid.uuid4()),
            "recipient": {"user_id": str(uuid.uuid4()), "email": to},
            "template": "welcome",
        }
    )


class SyncOutbox:
    """``EmailSyncHandlers``: blocking code, as a Django or sync SQLAlchemy handler is."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.threads: list[str] = []

    def on_email_requested(self, payload: EmailRequested, job: JobContext) -> None:
        time.sleep(0.01)  # blocking, which is fine in a thread of its own
        if payload.recipient.email == "bounce@example.com":
            raise RuntimeError("mailbox unavailable")
        self.threads.append(threading.current_thread().name)
        self.sent.append(str(payload.recipient.email))


async def test_sync_handlers_run_in_threads_of_their_own(queues_boss: Boss) -> None:
    outbox = SyncOutbox()
    await enqueue_email_requested(queues_boss, email("a@example.com"))
    await enqueue_email_requested(queues_boss, email("b@example.com"))

    drained = await drain(email_worker(queues_boss, outbox))

    drained.raise_failures()
    assert outbox.sent == ["a@example.com", "b@example.com"]
    assert all(name.startswith("queues-notifications.email-") for name in outbox.threads)
    assert len(set(outbox.threads)) == 2  # one thread per call


async def test_a_failing_sync_handler_fails_its_job(queues_boss: Boss) -> None:
    await enqueue_email_requested(queues_boss, email("bounce@example.com"))

    drained = await drain(email_worker(queues_boss, SyncOutbox()))

    [run] = drained.failed
    assert isinstance(run.error, RuntimeError)
    assert run.state == JobState.RETRY


async def test_a_started_worker_runs_sync_handlers(queues_boss: Boss) -> None:
    outbox = SyncOutbox()
    worker = email_worker(queues_boss, outbox, concurrency=2)
    await worker.start()
    try:
        await enqueue_email_requested(queues_boss, email("a@example.com"))
        deadline = time.monotonic() + 60
        while not outbox.sent:
            assert time.monotonic() < deadline, "the worker ran nothing"
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert outbox.sent == ["a@example.com"]
