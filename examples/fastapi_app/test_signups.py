"""The example app's tests, through FastAPI's test client against the real PostgreSQL, with
the queue's test helpers (``typed_queues.runtime.testing``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from generated.notifications import EMAIL, EmailRequested, email_worker
from typed_queues.runtime import Boss
from typed_queues.runtime.testing import drain, enqueued

from .app import Mailer, create_app

ADA = {"email": "ada@example.com", "name": "Ada"}


@pytest.fixture
def client(queues_dsn: str, queues_schema: str, queues_boss: Boss) -> Iterator[TestClient]:
    """The app on the test's own schema (its table too, so it is dropped with it); its own
    worker does not run: the tests drain the queue themselves."""
    app = create_app(queues_dsn, schema=queues_schema, app_schema=queues_schema, run_workers=False)
    with TestClient(app) as test_client:
        yield test_client


async def test_a_signup_enqueues_the_welcome_email(client: TestClient, queues_boss: Boss) -> None:
    response = client.post("/signups", json=ADA)

    assert response.status_code == 201, response.text
    [email] = await enqueued(
        queues_boss, queue=EMAIL, event="email-requested", model=EmailRequested
    )
    assert email.template == "welcome"
    assert email.recipient.email == "ada@example.com"
    assert str(email.recipient.user_id) == response.json()["user_id"]


async def test_a_failed_signup_rolls_back_the_user_and_the_email(
    client: TestClient, queues_boss: Boss
) -> None:
    response = client.post("/signups", json={**ADA, "referral_code": "NO-SUCH-CODE"})

    assert response.status_code == 400
    assert await enqueued(queues_boss, queue=EMAIL) == []  # the job rolled back with the user
    assert client.get("/users/count").json() == 0


async def test_the_worker_sends_the_welcome_email(client: TestClient, queues_boss: Boss) -> None:
    client.post("/signups", json=ADA)
    mailer = Mailer()

    drained = await drain(email_worker(queues_boss, mailer))

    drained.raise_failures()
    assert [str(sent.recipient.email) for sent in mailer.outbox] == ["ada@example.com"]


async def test_the_app_runs_its_email_worker_and_stops_it_on_shutdown(
    queues_dsn: str, queues_schema: str, queues_boss: Boss
) -> None:
    mailer = Mailer()
    app = create_app(queues_dsn, schema=queues_schema, app_schema=queues_schema, mailer=mailer)
    with TestClient(app) as test_client:
        test_client.post("/signups", json=ADA)
        deadline = time.monotonic() + 60
        while not mailer.outbox:  # the app's own worker, woken by the commit
            assert time.monotonic() < deadline, "the app's worker sent nothing"
            await asyncio.sleep(0.05)
    assert [str(sent.recipient.email) for sent in mailer.outbox] == ["ada@example.com"]
    assert (await queues_boss.queue_stats(EMAIL.name)).completed == 1
