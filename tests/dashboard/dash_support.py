"""Helpers of the dashboard tests: the app served by a real uvicorn on a loopback port, the
system's Chromium driven by Playwright, and jobs in every state to look at."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from typed_queues.runtime import Boss, JobId, QueueSpec, RetryPolicy

CHROMIUM: Final = Path("/usr/bin/chromium")
#: What the browser is started with: the system's Chromium, nothing downloaded, no sandbox
#: (the tests run as root), nothing talking to the network behind the test's back.
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: A password the test server accepts (it trusts local connections) and no page may show.
SECRET: Final = "Dash-S3cret-pw-7731"
TOKEN: Final = "test-token-0123456789abcdef"
#: Where the README's screenshots go when QUEUES_UPDATE_SCREENSHOTS=1.
SCREENSHOTS: Final = Path(__file__).parents[2] / "docs" / "dashboard"

INVOICES: Final = "billing.invoices"
INVOICES_DEAD: Final = "billing.invoices-dead"
EMAIL: Final = "notifications.email"
WEBHOOKS: Final = "ingestion.webhooks"


def with_password(dsn: str, password: str = SECRET) -> str:
    """``dsn`` with a password in it (any password works against the test server)."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.scheme.startswith("postgres"):
        user = parts.username or "postgres"
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))
    return f"{dsn} password={password}"


@dataclass
class Served:
    """A dashboard served on ``url`` over ``boss``."""

    url: str
    boss: Boss
    dsn: str


@asynccontextmanager
async def serve(boss: Boss, dsn: str, *, token: str | None = None) -> AsyncIterator[Served]:
    """The dashboard over ``boss`` on a free loopback port, with a real uvicorn."""
    import uvicorn

    from typed_queues.runtime.dashboard import create_app

    app = create_app(boss, token=token, dsn=dsn)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("the dashboard's server stopped before it started")
        if time.monotonic() > deadline:
            raise AssertionError("the dashboard's server did not start within 30 s")
        await asyncio.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", boss, dsn)
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """The system's Chromium, headless, through Playwright (never a downloaded browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


#: The screenshots the README shows.
README_SHOTS: Final = {"queues", "job", "confirm-retry", "dead-letters"}


async def screenshot(page: Any, name: str, tmp: Path) -> Path:
    """A PNG of ``page``: the README's pictures into docs/dashboard/ when
    QUEUES_UPDATE_SCREENSHOTS=1 (then `pngquant` them), the rest into the test's folder."""
    update = os.environ.get("QUEUES_UPDATE_SCREENSHOTS") == "1"
    folder = SCREENSHOTS if update and name in README_SHOTS else tmp
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path


def retry_now(limit: int) -> RetryPolicy:
    return RetryPolicy(limit=limit, delay=timedelta(0), backoff="fixed", jitter=False)


async def make_queues(boss: Boss) -> None:
    await boss.create_queues(
        [
            QueueSpec(
                name=INVOICES,
                retry=retry_now(0),
                dead_letter=INVOICES_DEAD,
                description="Invoice lifecycle, from issuing to voiding.",
            ),
            QueueSpec(name=INVOICES_DEAD, description="Invoice jobs whose retries ran out."),
            QueueSpec(name=EMAIL, retry=retry_now(3), description="Transactional email."),
            QueueSpec(name=WEBHOOKS, description="Inbound webhooks to ingest."),
        ]
    )


def envelope(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "payload": payload, "metadata": {"source": "dashboard-test"}}


async def failed_job(boss: Boss, queue: str, data: dict[str, Any], error: str) -> JobId:
    """A job of ``queue`` that failed for good (with its dead-letter copy, if the queue has
    one): sent, fetched and failed through the public API."""
    job_id = await boss.send(queue, data)
    while True:
        fetched = await boss.fetch(queue, 100)
        mine = [job for job in fetched if job.id == job_id]
        for job in fetched:
            if job.id != job_id:
                await boss.complete(job)
        if mine:
            break
    await boss.fail(mine[0], RuntimeError(error))
    return job_id


async def populate(boss: Boss, db: psycopg.AsyncConnection[Any]) -> dict[str, JobId]:
    """Jobs of every state in four queues, and an hour of history (completed and failed jobs
    whose times are spread over the last hour), as a person on call would see them."""
    await make_queues(boss)
    made: dict[str, JobId] = {}
    made["failed"] = await failed_job(
        boss,
        INVOICES,
        envelope("invoice-voided", {"invoice_id": "7f1c2d3e", "reason": "fraud"}),
        "ledger unavailable: connection refused",
    )
    made["completed"] = await boss.send(INVOICES, envelope("invoice-created", {"n": 1}))
    [job] = await boss.fetch(INVOICES)
    await boss.complete(job, {"ledger_entry": 991})
    made["retry"] = await boss.send(EMAIL, envelope("email-requested", {"to": "a@example.com"}))
    [job] = await boss.fetch(EMAIL)
    await boss.fail(job, TimeoutError("SMTP server timed out"))
    made["active"] = await boss.send(WEBHOOKS, envelope("webhook-received", {"id": 1}))
    await boss.fetch(WEBHOOKS)
    made["cancelled"] = await boss.send(WEBHOOKS, envelope("webhook-received", {"id": 2}))
    await boss.cancel(made["cancelled"])
    ids = await boss.send_many(
        EMAIL, [envelope("email-requested", {"to": f"user{n}@example.com"}) for n in range(40)]
    )
    made["created"] = ids[0]
    await boss.schedule(
        "nightly-digest",
        EMAIL,
        {"day_offset": 1},
        event="digest-due",
        cron="0 3 * * *",
        timezone="Europe/Paris",
    )
    await boss.schedule("webhook-poll", WEBHOOKS, {"source": "crm"}, every=timedelta(minutes=5))
    await _history(boss.schema, db)
    return made


async def _history(schema: str, db: psycopg.AsyncConnection[Any]) -> None:
    """Finished jobs spread over the last hour (the charts' data), written directly."""
    query = sql.SQL(
        """
        INSERT INTO {schema}.job (queue, state, data, created_on, start_after, started_on,
                                  completed_on, output)
        SELECT q.queue,
               CASE WHEN i %% 17 = 0 THEN 'failed' ELSE 'completed' END::{schema}.job_state,
               jsonb_build_object('event', q.event, 'payload', jsonb_build_object('n', i)),
               t - make_interval(secs => 5 + (i %% 7) * 20),
               t - make_interval(secs => 5 + (i %% 7) * 20),
               t - interval '2 seconds', t,
               CASE WHEN i %% 17 = 0 THEN jsonb_build_object('error', jsonb_build_object(
                   'type', 'UpstreamError', 'message', 'upstream answered 503')) END
        FROM (VALUES (%s, 'email-requested'), (%s, 'invoice-created')) AS q(queue, event),
             generate_series(1, 360) AS i,
             LATERAL (SELECT now() - make_interval(secs => i * 10 + hashtext(q.queue) %% 5))
                 AS w(t)
        """
    ).format(schema=sql.Identifier(schema))
    await db.execute(query, (EMAIL, INVOICES))


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 30.0, every: float = 0.05
) -> None:
    """Poll ``check`` until it is true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)
