"""The test helpers (``typed_queues.runtime.testing``) on the repository's generated package:
``drain`` runs generated workers' jobs in the test's loop, ``enqueued`` reads typed payloads
back, and the fixtures give a started Boss on a schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest

from generated import QUEUES
from generated.notifications import (
    EMAIL,
    EmailRequested,
    PushRequested,
    email_worker,
    enqueue_email_requested,
    enqueue_email_requested_sync,
    enqueue_push_requested,
    push_worker,
)
from typed_queues.runtime import Boss, JobContext, JobState, QueueSpec, SyncBoss
from typed_queues.runtime.testing import drain, enqueued, enqueued_sync


@pytest.fixture
def queues_specs() -> Sequence[QueueSpec]:
    return QUEUES


def email(template: str = "welcome", *, to: str = "ada@example.com") -> EmailRequested:
    return EmailRequested.model_validate(
        {
            "message_id": str(uuid.uuid4()),
            "recipient": {"user_id": str(uuid.uuid4()), "email": to},
            "template": template,
        }
    )


class Outbox:
    """Email handlers that remember what they sent, and fail for one address."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def on_email_requested(self, payload: EmailRequested, job: JobContext) -> None:
        if payload.recipient.email == "bounce@example.com":
            raise RuntimeError("mailbox unavailable")
        self.sent.append(str(payload.recipient.email))


async def test_the_boss_fixture_is_started_on_a_schema_of_its_own(
    queues_boss: Boss, queues_schema: str
) -> None:
    assert queues_boss.started
    assert queues_boss.schema == queues_schema
    assert {s.queue for s in await queues_boss.all_queue_stats()} == {q.name for q in QUEUES}


async def test_enqueued_returns_the_typed_payloads_oldest_first(queues_boss: Boss) -> None:
    first, second = email(to="a@example.com"), email("password-reset", to="b@example.com")
    await enqueue_email_requested(queues_boss, first)
    await enqueue_email_requested(queues_boss, second)

    found = await enqueued(queues_boss, queue=EMAIL, event="email-requested", model=EmailRequested)
    assert found == [first, second]
    raw = await enqueued(queues_boss, queue="notifications.email")
    assert [item["recipient"]["email"] for item in raw] == ["a@example.com", "b@example.com"]
    assert await enqueued(queues_boss, queue=EMAIL, event="no-such-event") == []


async def test_enqueued_with_the_wrong_model_names_the_job(queues_boss: Boss) -> None:
    await enqueue_email_requested(queues_boss, email())
    with pytest.raises(AssertionError, match=r"does not hold a PushRequested.*pass event="):
        await enqueued(queues_boss, queue=EMAIL, model=PushRequested)


async def test_drain_runs_the_jobs_of_generated_workers_until_none_is_due(
    queues_boss: Boss,
) -> None:
    outbox = Outbox()
    await enqueue_email_requested(queues_boss, email(to="a@example.com"))
    await enqueue_email_requested(queues_boss, email(to="b@example.com"))

    drained = await drain(email_worker(queues_boss, outbox))

    assert outbox.sent == ["a@example.com", "b@example.com"]
    assert len(drained) == 2
    assert [run.state for run in drained.runs] == [JobState.COMPLETED, JobState.COMPLETED]
    assert [run.event for run in drained.runs] == ["email-requested", "email-requested"]
    assert drained.failed == []
    drained.raise_failures()  # nothing failed: no error
    assert (await queues_boss.queue_stats(EMAIL.name)).completed == 2
    # nothing is due any more
    assert len(await drain(email_worker(queues_boss, outbox))) == 0


async def test_drain_reports_failures_and_retries_only_when_advanced(queues_boss: Boss) -> None:
    outbox = Outbox()
    await enqueue_email_requested(queues_boss, email(to="bounce@example.com"))

    drained = await drain(email_worker(queues_boss, outbox))
    [run] = drained.failed
    assert isinstance(run.error, RuntimeError)
    assert run.attempt == 1
    assert run.state == JobState.RETRY  # the queue retries after a delay: not due yet
    with pytest.raises(RuntimeError, match="mailbox unavailable") as raised:
        drained.raise_failures()
    assert any("attempt 1" in note for note in raised.value.__notes__)

    # advance=True makes the retries due at once, until they are spent (limit 4 on email)
    drained = await drain(email_worker(queues_boss, outbox), advance=True)
    assert [run.attempt for run in drained.runs] == [2, 3, 4, 5]
    assert drained.runs[-1].state == JobState.FAILED
    # the exhausted job went to the dead-letter queue
    [dead] = await enqueued(queues_boss, queue="notifications.undeliverable")
    assert dead["recipient"]["email"] == "bounce@example.com"


async def test_drain_advances_by_a_window(queues_boss: Boss) -> None:
    outbox = Outbox()
    await enqueue_email_requested(
        queues_boss, email(to="soon@example.com"), start_after=timedelta(minutes=5)
    )
    await enqueue_email_requested(
        queues_boss, email(to="later@example.com"), start_after=timedelta(hours=2)
    )
    worker = email_worker(queues_boss, outbox)
    assert len(await drain(worker)) == 0
    assert len(await drain(worker, advance=timedelta(minutes=10))) == 1
    assert outbox.sent == ["soon@example.com"]
    assert len(await drain(worker, advance=True)) == 1
    assert outbox.sent == ["soon@example.com", "later@example.com"]


async def test_drain_runs_several_workers_and_what_their_handlers_enqueue(
    queues_boss: Boss,
) -> None:
    pushed: list[str] = []

    class EmailThenPush:
        async def on_email_requested(self, payload: EmailRequested, job: JobContext) -> None:
            await enqueue_push_requested(
                queues_boss,
                PushRequested(
                    message_id=uuid.uuid4(),
                    user_id=payload.recipient.user_id,
                    device_tokens=["token-0123456789"],
                    title="Mail sent",
                    body=str(payload.recipient.email),
                ),
            )

    class Pushes:
        async def on_push_requested(self, payload: PushRequested, job: JobContext) -> None:
            pushed.append(payload.body)

    await enqueue_email_requested(queues_boss, email(to="a@example.com"))
    drained = await drain(
        email_worker(queues_boss, EmailThenPush()), push_worker(queues_boss, Pushes())
    )
    assert [run.queue for run in drained.runs] == ["notifications.email", "notifications.push"]
    assert pushed == ["a@example.com"]


async def test_drain_stops_a_handler_that_enqueues_forever(queues_boss: Boss) -> None:
    class Forever:
        async def on_email_requested(self, payload: EmailRequested, job: JobContext) -> None:
            await enqueue_email_requested(queues_boss, email())

    await enqueue_email_requested(queues_boss, email())
    with pytest.raises(AssertionError, match="stopped after running 5 jobs"):
        await drain(email_worker(queues_boss, Forever()), max_jobs=5)


async def test_drain_refuses_bad_arguments(queues_boss: Boss) -> None:
    with pytest.raises(TypeError, match="at least one Worker"):
        await drain()
    with pytest.raises(TypeError, match="takes Workers"):
        await drain(Outbox())  # type: ignore[arg-type]
    worker = email_worker(queues_boss, Outbox())
    with pytest.raises(TypeError, match="advance must be"):
        await drain(worker, advance=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_jobs"):
        await drain(worker, max_jobs=0)


async def test_drain_refuses_a_started_worker(queues_boss: Boss) -> None:
    worker = email_worker(queues_boss, Outbox())
    await worker.start()
    try:
        with pytest.raises(Exception, match="is running"):
            await drain(worker)
    finally:
        await worker.stop()


def test_the_sync_fixture_and_enqueued_sync(queues_sync_boss: SyncBoss) -> None:
    sent = email(to="sync@example.com")
    enqueue_email_requested_sync(queues_sync_boss, sent)
    assert enqueued_sync(queues_sync_boss, queue=EMAIL, model=EmailRequested) == [sent]
    assert enqueued_sync(queues_sync_boss, queue=EMAIL, event="other") == []


async def test_enqueued_finds_the_event_model_of_the_generated_package(
    queues_boss: Boss,
) -> None:
    # With event= and no model=, the payloads come back as the model the generated package
    # declares for that event (its route tables register it when the package is imported).
    sent = email(to="typed@example.com")
    await enqueue_email_requested(queues_boss, sent)
    [found] = await enqueued(queues_boss, queue=EMAIL, event="email-requested")
    assert isinstance(found, EmailRequested) and found == sent
