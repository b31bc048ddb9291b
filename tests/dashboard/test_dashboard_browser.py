"""The dashboard in a real headless browser (the system's Chromium through Playwright) against
a real PostgreSQL: every page with real jobs, a retry from the page that a worker then runs
once, the other actions, the token, CSRF, and a hostile payload shown as text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss, JobContext, JobState

from .dash_support import (
    EMAIL,
    INVOICES,
    INVOICES_DEAD,
    SECRET,
    TOKEN,
    WEBHOOKS,
    chromium,
    envelope,
    failed_job,
    make_queues,
    populate,
    screenshot,
    serve,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("browser_available")


async def _text(page: Any, selector: str) -> str:
    """The text of the first match of ``selector``, its whitespace collapsed."""
    return " ".join(str(await page.locator(selector).first.inner_text()).split())


async def _count(page: Any, queue: str, state: str) -> str:
    """The count shown for ``queue`` and ``state`` in a table of queues."""
    return await _text(page.locator(f'tr[data-queue="{queue}"]'), f'a[data-state="{state}"]')


async def _job_ids(page: Any) -> set[str]:
    rows = page.locator("tr[data-job]")
    return set(await rows.evaluate_all("rows => rows.map(r => r.dataset.job)"))


async def test_every_page_renders_with_real_jobs(
    dash_boss: Boss, db: psycopg.AsyncConnection[Any], secret_dsn: str, tmp_path: Path
) -> None:
    made = await populate(dash_boss, db)
    async with serve(dash_boss, secret_dsn) as served, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        shown: list[str] = []

        async def visit(path: str, status: int = 200) -> None:
            response = await page.goto(served.url + path)
            assert response is not None and response.status == status, path
            shown.append(await page.content())

        # The queues: counts by state per queue, and the last hour's two charts.
        await visit("/")
        assert await _count(page, EMAIL, "created") == "40"
        assert await _count(page, EMAIL, "retry") == "1"
        assert await _count(page, WEBHOOKS, "active") == "1"
        assert await _count(page, INVOICES, "failed") == str(1 + 360 // 17)
        assert await page.locator("figure.chart svg rect.ok").count() >= 55
        assert await page.locator("figure.chart svg polyline.line").count() == 1
        assert "completed" in await _text(page, "figure.chart .summary")
        await screenshot(page, "queues", tmp_path)

        # One queue, then its failed jobs through the count's link.
        await visit(f"/queues/{INVOICES}")
        assert "Pause queue" in await page.content()
        await page.locator('a[data-state="failed"]').first.click()
        assert page.url.endswith(f"/jobs?queue={INVOICES}&state=failed")
        assert await page.locator("table.jobs tbody tr").count() == 1 + 360 // 17

        # Every job, a page at a time (keyset): the next page holds other jobs.
        await visit("/jobs")
        first = await _job_ids(page)
        assert len(first) == 50
        await screenshot(page, "jobs", tmp_path)
        await page.click("a.next")
        second = await _job_ids(page)
        assert second and not first & second

        # Search by id (straight to the job) and by event.
        await visit("/")
        await page.fill("input[name=q]", str(made["failed"]))
        await page.press("input[name=q]", "Enter")
        await page.wait_for_url(f"**/jobs/{made['failed']}")
        assert "ledger unavailable: connection refused" in await _text(page, "ol.errors")
        await screenshot(page, "job", tmp_path)
        await visit("/jobs?q=invoice-voided")
        assert await page.locator("tr[data-job]").count() == 2  # the job and its dead-letter copy

        # A job's detail: envelope, attempts, errors, and the dead-letter links both ways.
        await visit(f"/jobs/{made['failed']}")
        assert '"reason": "fraud"' in await _text(page, "pre.json")
        failed = await dash_boss.get_job(made["failed"])
        assert failed is not None and failed.dead_letter_id is not None
        await page.click(f'table.facts a[href="/jobs/{failed.dead_letter_id}"]')
        await page.wait_for_url(f"**/jobs/{failed.dead_letter_id}")
        assert str(made["failed"]) in await _text(page, "table.facts")
        await visit(f"/jobs/{made['retry']}")
        assert "SMTP server timed out" in await _text(page, "ol.errors")
        await visit(f"/jobs/{made['active']}")
        assert "Cancel" in await _text(page, ".actions")

        # Dead letters, and the redrive's confirmation (a dry run).
        await visit("/dead-letters")
        assert await _count(page, INVOICES_DEAD, "created") == "1"
        await screenshot(page, "dead-letters", tmp_path)
        await visit(f"/dead-letters/{INVOICES_DEAD}/redrive")
        assert "1 original jobs would be queued again" in await _text(page, "main")
        await visit(f"/jobs/{made['failed']}/retry")
        await screenshot(page, "confirm-retry", tmp_path)

        await visit("/schedules")
        digest = await _text(page, 'tr[data-schedule="nightly-digest"]')
        assert "cron 0 3 * * * (Europe/Paris)" in digest and "03:00:00" not in digest
        assert ":00:00 UTC" in digest  # its next run, 3 a.m. in Paris shown in UTC
        assert "every 5 min" in await _text(page, 'tr[data-schedule="webhook-poll"]')
        await screenshot(page, "schedules", tmp_path)
        await visit("/jobs/0190a5c4-7d2e-7c3a-9b1e-5f4a3c2b1a00", status=404)
        await visit("/queues/no.such-queue", status=404)

    # The DSN's password is on no page (the header shows the DSN with it masked).
    assert all(SECRET not in html for html in shown)
    assert any("postgres:***@" in html or "password=***" in html for html in shown)


async def test_a_retry_from_the_page_requeues_the_job_and_a_worker_runs_it_once(
    dash_boss: Boss, secret_dsn: str, tmp_path: Path
) -> None:
    await make_queues(dash_boss)
    job_id = await failed_job(
        dash_boss, INVOICES, envelope("invoice-voided", {"n": 7}), "ledger unavailable"
    )
    before = await dash_boss.get_job(job_id)
    assert before is not None and before.state is JobState.FAILED
    copy_id = before.dead_letter_id
    assert copy_id is not None
    async with serve(dash_boss, secret_dsn) as served, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{served.url}/jobs/{job_id}")
        await page.click(".actions a:has-text('Retry')")
        await page.wait_for_url(f"**/jobs/{job_id}/retry")
        assert (await dash_boss.get_job(job_id)).state is JobState.FAILED  # type: ignore[union-attr]
        await page.click("form.confirm button")
        await page.wait_for_load_state()
        assert await page.locator("h1").inner_text() == f"Job {job_id} retried"
        changes = await _text(page, "ul.changes")
        assert "state: failed → retry" in changes
        assert f"dead-letter copy {copy_id}" in changes and "settled" in changes
        await screenshot(page, "retried", tmp_path)

    copy = await dash_boss.get_job(copy_id)
    assert copy is not None and copy.state is JobState.COMPLETED  # settled, never to run
    runs: list[str] = []
    copies: list[str] = []

    async def run(job: JobContext) -> None:
        runs.append(str(job.id))

    async def run_copy(job: JobContext) -> None:
        copies.append(str(job.id))

    workers = [
        dash_boss.worker(INVOICES, run, concurrency=2),
        dash_boss.worker(INVOICES_DEAD, run_copy, concurrency=2),
    ]
    for worker in workers:
        await worker.start()

    async def finished() -> bool:
        job = await dash_boss.get_job(job_id)
        return job is not None and job.state is JobState.COMPLETED

    try:
        await wait_until(finished)
    finally:
        for worker in workers:
            await worker.stop()
    assert runs == [str(job_id)]
    assert copies == []


async def test_cancel_resume_pause_and_redrive_from_the_pages(
    dash_boss: Boss, secret_dsn: str, tmp_path: Path
) -> None:
    await make_queues(dash_boss)
    waiting = await dash_boss.send(EMAIL, envelope("email-requested", {"to": "a@example.com"}))
    dead = await failed_job(dash_boss, INVOICES, envelope("invoice-voided", {"n": 1}), "boom")
    async with serve(dash_boss, secret_dsn) as served, chromium() as browser:
        page = await browser.new_page()

        async def act(path: str) -> str:
            await page.goto(served.url + path)
            await page.click("form.confirm button")
            await page.wait_for_load_state()
            return await _text(page, "main")

        assert "state: created → cancelled" in await act(f"/jobs/{waiting}/cancel")
        assert (await dash_boss.get_job(waiting)).state is JobState.CANCELLED  # type: ignore[union-attr]
        assert "state: cancelled → created" in await act(f"/jobs/{waiting}/resume")
        assert (await dash_boss.get_job(waiting)).state is JobState.CREATED  # type: ignore[union-attr]

        assert "running → paused" in await act(f"/queues/{EMAIL}/pause")
        [email] = await dash_boss.queue_overview(EMAIL)
        assert email.paused
        await page.goto(f"{served.url}/")
        assert await page.locator(f'tr[data-queue="{EMAIL}"] .badge.paused').count() == 1
        assert "paused → running" in await act(f"/queues/{EMAIL}/resume")
        [email] = await dash_boss.queue_overview(EMAIL)
        assert not email.paused

        text = await act(f"/dead-letters/{INVOICES_DEAD}/redrive")
        assert "1 original jobs queued again" in text and "1 dead-letter copies settled" in text
        await screenshot(page, "redriven", tmp_path)
        assert (await dash_boss.get_job(dead)).state is JobState.RETRY  # type: ignore[union-attr]

        # An action that does not apply says so and changes nothing.
        await page.goto(f"{served.url}/jobs/{waiting}/retry")
        assert "Not possible now: the job is created" in await _text(page, "main")
        assert await page.locator("form.confirm").count() == 0


async def test_the_token_is_enforced(dash_boss: Boss, secret_dsn: str) -> None:
    await make_queues(dash_boss)
    job_id = await failed_job(dash_boss, INVOICES, envelope("invoice-voided", {"n": 2}), "boom")
    async with serve(dash_boss, secret_dsn, token=TOKEN) as served, chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        # Without the token: every page is a 401 sign-in page that shows nothing of the data.
        for path in ("/", "/jobs", f"/jobs/{job_id}", "/dead-letters", f"/jobs/{job_id}/retry"):
            response = await page.goto(served.url + path)
            assert response is not None and response.status == 401, path
            html = await page.content()
            assert "Sign in" in html and str(job_id) not in html.replace(f"/jobs/{job_id}", "")
            assert "127.0.0.1:" not in await _text(page, "header")
        # An action without the token (even with a valid CSRF token): 401, nothing changed.
        csrf = await page.locator("input[name=csrf]").get_attribute("value")
        response = await context.request.post(
            f"{served.url}/jobs/{job_id}/retry", form={"csrf": str(csrf)}
        )
        assert response.status == 401
        assert "Nothing was changed" in await response.text()
        assert (await dash_boss.get_job(job_id)).state is JobState.FAILED  # type: ignore[union-attr]

        # A wrong token is refused; the right one opens the page asked for.
        await page.goto(f"{served.url}/jobs/{job_id}")
        await page.fill("input[name=token]", "not-the-token-at-all")
        await page.click("form.confirm button")
        assert "That is not the token" in await _text(page, "main")
        await page.fill("input[name=token]", TOKEN)
        await page.click("form.confirm button")
        await page.wait_for_url(f"**/jobs/{job_id}")
        assert str(job_id) in await _text(page, "h1")  # the job's page, not the sign-in form
        assert await page.locator(".actions a:has-text('Retry')").count() == 1

        # Scripts pass the token in a header (no cookie, no CSRF token).
        api = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
        response = await api.request.post(f"{served.url}/jobs/{job_id}/retry", form={})
        assert response.status == 200
        assert (await dash_boss.get_job(job_id)).state is JobState.RETRY  # type: ignore[union-attr]
        wrong = await browser.new_context(extra_http_headers={"Authorization": "Bearer nope"})
        assert (await wrong.request.get(f"{served.url}/")).status == 401


async def test_a_post_without_the_form_token_is_refused(dash_boss: Boss, secret_dsn: str) -> None:
    await make_queues(dash_boss)
    job_id = await failed_job(dash_boss, INVOICES, envelope("invoice-voided", {"n": 3}), "boom")
    async with serve(dash_boss, secret_dsn) as served, chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{served.url}/jobs/{job_id}/retry")  # the session cookie is set
        url = f"{served.url}/jobs/{job_id}/retry"
        for form in ({}, {"csrf": "forged-value"}):
            response = await context.request.post(url, form=form)
            assert response.status == 403
            assert "CSRF token" in await response.text()
        # The right token from another site's page (Origin says so) is refused too.
        csrf = str(await page.locator("input[name=csrf]").get_attribute("value"))
        response = await context.request.post(
            url, form={"csrf": csrf}, headers={"Origin": "http://evil.example"}
        )
        assert response.status == 403
        # A form on another page that posts to the dashboard, submitted in the browser.
        await page.set_content(
            f'<form method="post" action="{url}"><button id="go">win a prize</button></form>'
        )
        async with page.expect_navigation() as navigation:
            await page.click("#go")
        response = await navigation.value
        assert response is not None and response.status == 403
        assert (await dash_boss.get_job(job_id)).state is JobState.FAILED  # type: ignore[union-attr]


async def test_a_hostile_payload_is_shown_as_text(dash_boss: Boss, secret_dsn: str) -> None:
    await make_queues(dash_boss)
    hostile = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    job_id = await failed_job(
        dash_boss,
        WEBHOOKS,
        {"event": "<b>evil</b>", "payload": {"note": hostile}},
        "<script>window.__pwned = 3</script> in the error",
    )
    async with serve(dash_boss, secret_dsn) as served, chromium() as browser:
        page = await browser.new_page()
        for path in (f"/jobs/{job_id}", f"/jobs?queue={WEBHOOKS}", f"/jobs/{job_id}/retry"):
            await page.goto(served.url + path)
            assert await page.evaluate("window.__pwned") is None
            assert await page.locator("main script, main img").count() == 0
            assert await page.locator("main b", has_text=re.compile(r"^evil$")).count() == 0
        await page.goto(f"{served.url}/jobs/{job_id}")
        assert hostile in await _text(page, "pre.json")
        assert "<script>window.__pwned = 3</script> in the error" in await _text(page, "ol.errors")
        await page.goto(f"{served.url}/jobs?queue={WEBHOOKS}")
        assert "<b>evil</b>" in await _text(page, "table.jobs")
