"""``queues demo``: the whole SDK end to end, in a few seconds, with a short account at the end.

Migrates a schema of its own (``queues_demo``, dropped and recreated on every run), creates the
catalogue's queues, enqueues real jobs of three domains through the generated functions, runs
the generated workers with the handler classes of ``demo.handlers`` until every job has
settled, and prints what happened. Exit status 0 when everything went as expected, else 1.

With no DSN configured (``--dsn``, ``QUEUES_DSN``, ``DATABASE_URL``) it starts an embedded
PostgreSQL in a temporary directory, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from generated import QUEUES, create_queues
from generated.billing import invoices_worker, payments_worker
from generated.ingestion import imports_worker, webhooks_worker
from generated.notifications import billing_mail_worker, email_worker, push_worker
from typed_queues.runtime import Boss, JobState, QueueSpec, QueueStats, Worker, start_workers
from typed_queues.runtime.config import resolve_dsn
from typed_queues.runtime.logging_setup import configure_logging

from .handlers import (
    INTENDED_FAILURES,
    BillingMailJobs,
    EmailJobs,
    ImportJobs,
    InvoiceJobs,
    PaymentJobs,
    PushJobs,
    Recorder,
    WebhookJobs,
)
from .scenario import Enqueued, Expected, enqueue_all, expected_outcome

__all__ = ["main"]

_log = logging.getLogger("queues.demo")
_RETRY_DELAY = timedelta(milliseconds=200)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return 0 when every job ended as expected, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="queues demo",
        description=(
            "Run the SDK end to end: migrate, create the catalogue's queues, enqueue jobs of "
            "three domains, process them with real handlers (one retry and two dead letters on "
            "purpose) and print what happened. Uses an embedded PostgreSQL when no DSN is set."
        ),
    )
    parser.add_argument(
        "--dsn", help="PostgreSQL connection string (default: $QUEUES_DSN, else $DATABASE_URL)"
    )
    parser.add_argument(
        "--schema", default="queues_demo", help="schema to (re)create (default: queues_demo)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for jobs to settle"
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--quiet", action="store_true", help="hide the per-job log lines")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    handler = configure_logging(
        args.log_format, level=logging.WARNING if args.quiet else logging.INFO
    )
    handler.addFilter(_quiet_intended_failures)

    dsn = resolve_dsn(args.dsn)
    if dsn is not None:
        return asyncio.run(_run(dsn, args.schema, args.timeout, where="the configured database"))

    from typed_queues.runtime.embedded import EmbeddedPostgres

    print(
        "No DSN configured (--dsn, QUEUES_DSN, DATABASE_URL): starting an embedded PostgreSQL "
        "in a temporary directory.",
        flush=True,
    )
    with EmbeddedPostgres() as server:
        print(f"Embedded PostgreSQL ready in {server.startup_seconds or 0:.2f} s.", flush=True)
        where = "an embedded PostgreSQL (discarded on exit)"
        return asyncio.run(_run(server.dsn, args.schema, args.timeout, where=where))


def _quiet_intended_failures(record: logging.LogRecord) -> bool:
    """Keep the log line of a failure the demo causes on purpose, drop its traceback."""
    if record.exc_info and isinstance(record.exc_info[1], INTENDED_FAILURES):
        record.exc_info = None
        record.exc_text = None
    return True


def _demo_policy(spec: QueueSpec) -> QueueSpec:
    """The catalogue's policy with retry delays shortened, so the demo takes seconds."""
    retry = dataclasses.replace(
        spec.retry, delay=_RETRY_DELAY, max_delay=_RETRY_DELAY * 4, jitter=False
    )
    return dataclasses.replace(spec, retry=retry)


async def _reset_schema(dsn: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


async def _run(dsn: str, schema: str, settle_within: float, *, where: str) -> int:
    began = time.monotonic()
    await _reset_schema(dsn, schema)
    recorder = Recorder()
    async with Boss(dsn, schema=schema, poll_interval=0.1, source="queues-demo") as boss:
        await create_queues(boss)
        for spec in QUEUES:
            await boss.create_queue(_demo_policy(spec))
        paid_table = await _create_paid_table(boss, schema)
        workers = _workers(boss, recorder, paid_table)
        await start_workers(*workers)
        enqueued_at = time.monotonic()
        enqueued = await enqueue_all(boss)
        count = sum(len(ids) for ids in enqueued.ids.values())
        print(f"Enqueued {count} jobs on {len(enqueued.ids)} queues; processing...", flush=True)
        reminders = await _fire_a_schedule(boss, settle_within)
        expected = expected_outcome()
        mail = expected["notifications.billing-mail"]
        expected["notifications.billing-mail"] = dataclasses.replace(
            mail, completed=mail.completed + reminders
        )
        settled = await _wait_until_settled(boss, expected, settle_within)
        elapsed = time.monotonic() - enqueued_at
        await asyncio.gather(*(worker.stop(timeout=5) for worker in workers))
        stats = {s.queue: s for s in await boss.all_queue_stats()}
        retried = await _retried_jobs(boss, enqueued)
        events = await _events_account(boss, paid_table, recorder, reminders)
    account = _Account(schema, where, stats, retried, expected, elapsed, time.monotonic() - began)
    print(account.render(settled=settled))
    print("\n".join(events.lines))
    ok = settled and not account.mismatches() and not events.problems
    return 0 if ok else 1


def _workers(boss: Boss, recorder: Recorder, paid_table: sql.Composable) -> list[Worker]:
    return [
        invoices_worker(boss, InvoiceJobs(recorder), concurrency=4),
        payments_worker(boss, PaymentJobs(boss, recorder, paid_table), concurrency=4),
        email_worker(boss, EmailJobs(recorder), concurrency=4),
        billing_mail_worker(boss, BillingMailJobs(recorder), concurrency=4),
        push_worker(boss, PushJobs(recorder), concurrency=4),
        imports_worker(boss, ImportJobs(boss, recorder), concurrency=2),
        webhooks_worker(boss, WebhookJobs(recorder), concurrency=4),
    ]


def _is_settled(stats: dict[str, QueueStats], expected: dict[str, Expected]) -> bool:
    for queue, want in expected.items():
        got = stats.get(queue)
        if got is None or got.created or got.retry or got.active:
            return False
        if got.completed + got.failed < want.completed + want.failed:
            return False
    return True


async def _wait_until_settled(
    boss: Boss, expected: dict[str, Expected], settle_within: float
) -> bool:
    deadline = time.monotonic() + settle_within
    while time.monotonic() < deadline:
        stats = {s.queue: s for s in await boss.all_queue_stats()}
        if _is_settled(stats, expected):
            return True
        await asyncio.sleep(0.1)
    _log.error("jobs did not settle within %.0f s", settle_within)
    return False


async def _retried_jobs(boss: Boss, enqueued: Enqueued) -> dict[str, int]:
    """Per queue, how many of the jobs the demo enqueued needed more than one attempt."""
    retried: dict[str, int] = {}
    for queue, ids in enqueued.ids.items():
        for job_id in ids:
            job = await boss.get_job(job_id)
            if job is not None and job.retry_count > 0 and job.state in _FINAL:
                retried[queue] = retried.get(queue, 0) + 1
    return retried


_FINAL = frozenset({JobState.COMPLETED, JobState.FAILED})


@dataclasses.dataclass
class _Account:
    schema: str
    where: str
    stats: dict[str, QueueStats]
    retried: dict[str, int]
    expected: dict[str, Expected]
    elapsed: float
    total: float

    def _row(self, queue: str) -> Expected:
        got = self.stats.get(queue)
        if got is None:
            return Expected(completed=0)
        return Expected(
            completed=got.completed,
            failed=got.failed,
            retried=self.retried.get(queue, 0),
            dead_lettered=got.dead_lettered,
        )

    def mismatches(self) -> list[str]:
        problems = []
        for queue, want in self.expected.items():
            got = self._row(queue)
            if got != want:
                problems.append(f"{queue}: expected {_describe(want)}, got {_describe(got)}")
        for dead_queue, want_count in self._dead_letter_expectation().items():
            have = self.stats.get(dead_queue)
            count = have.created if have is not None else 0
            if count != want_count:
                problems.append(f"{dead_queue}: expected {want_count} dead letters, got {count}")
        return problems

    def _dead_letter_expectation(self) -> dict[str, int]:
        targets: dict[str, int] = {}
        for spec in QUEUES:
            if spec.dead_letter is not None and spec.name in self.expected:
                count = self.expected[spec.name].dead_lettered
                targets[spec.dead_letter] = targets.get(spec.dead_letter, 0) + count
        return targets

    def render(self, *, settled: bool) -> str:
        header = ("queue", "processed", "retried", "failed", "dead-lettered")
        rows = []
        for queue in self.expected:
            got = self._row(queue)
            rows.append(
                (
                    queue,
                    str(got.completed),
                    str(got.retried),
                    str(got.failed),
                    str(got.dead_lettered),
                )
            )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  " + "  ".join([first, *rest])

        processed = sum(self._row(q).completed for q in self.expected)
        retried = sum(self._row(q).retried for q in self.expected)
        dead = sum(self._row(q).dead_lettered for q in self.expected)
        lines = [
            "",
            f"queues demo: schema {self.schema!r} on {self.where}",
            "",
            line(header),
            "  " + "  ".join("-" * w for w in widths),
            *(line(row) for row in rows),
            "",
        ]
        for dead_queue in self._dead_letter_expectation():
            have = self.stats.get(dead_queue)
            lines.append(
                f"  {dead_queue}: {have.created if have else 0} job(s) waiting for a human"
            )
        lines += [
            "",
            f"  {processed} jobs processed, {retried} retried, {dead} dead-lettered "
            f"in {self.elapsed:.2f} s (whole run {self.total:.2f} s).",
        ]
        problems = self.mismatches()
        if not settled:
            problems.insert(0, "jobs were still queued or running when the demo gave up")
        if problems:
            lines += ["", "NOT as expected:", *(f"  - {p}" for p in problems)]
        else:
            lines += [
                "  As expected: one email succeeded on its second attempt; a push to a revoked",
                "  device and a malformed webhook went to their dead-letter queues.",
            ]
        return "\n".join(lines)


def _describe(outcome: Expected) -> str:
    return (
        f"{outcome.completed} processed, {outcome.retried} retried, {outcome.failed} failed, "
        f"{outcome.dead_lettered} dead-lettered"
    )


# -- events: fan-out, a follow-up committed with its job, a schedule --

_REMINDERS_NOW = "demo.reminders-now"


async def _create_paid_table(boss: Boss, schema: str) -> sql.Composable:
    """The application's own table that the payment handler writes in its job's transaction."""
    table = sql.Identifier(schema, "paid_invoices")
    async with boss.connection() as conn:
        await conn.execute(
            sql.SQL("CREATE TABLE {} (invoice_id uuid, payment_id uuid PRIMARY KEY)").format(table)
        )
    return table


async def _fire_a_schedule(boss: Boss, within: float) -> int:
    """Schedule the payment reminders every second at run time, wait until a worker process's
    scheduler fired one, and remove the schedule; return how many it fired."""
    await boss.schedule(
        _REMINDERS_NOW,
        "notifications.billing-mail",
        {"days_overdue": 7},
        event="reminders-due",
        every=timedelta(seconds=1),
    )
    deadline = time.monotonic() + within
    fired: list[object] = []
    while not fired and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        fired = list(await boss.jobs_of("notifications.billing-mail", event="reminders-due"))
    await boss.unschedule(_REMINDERS_NOW)
    return len(await boss.jobs_of("notifications.billing-mail", event="reminders-due"))


@dataclasses.dataclass
class _EventsAccount:
    lines: list[str]
    problems: list[str]


async def _events_account(
    boss: Boss, paid_table: sql.Composable, recorder: Recorder, reminders: int
) -> _EventsAccount:
    async with boss.connection() as conn:
        cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(paid_table))
        [(paid,)] = await cur.fetchall()
    receipts = recorder.receipts
    nightly = [info for info in await boss.schedules() if info.name.startswith("notifications.")]
    lags = []
    for fired in await boss.jobs_of("notifications.billing-mail", event="reminders-due"):
        job = await boss.get_job(fired.id)
        slot = datetime.fromisoformat(fired.data["metadata"]["slot"])
        if job is not None:
            lags.append((job.created_on - slot).total_seconds() * 1000)
    lines = [
        "",
        "  Events:",
        "  - fan-out: billing sent to its own queues only; notifications.billing-mail got a copy",
        f"    of each of them ({receipts['invoice-created']} invoice-created, "
        f"{receipts['payment-captured']} payment-captured) through its subscription.",
        f"  - follow-ups: {paid} payments were recorded in paid_invoices together with their",
        "    receipt email (enqueued with conn=conn) and their job's completion, each in one",
        "    transaction (job.transaction()).",
        f"  - schedule: {_REMINDERS_NOW} (every 1 s) fired {reminders} reminder run(s), written",
        f"    {max(lags, default=0):.0f} ms after its slot at most; then it was removed.",
        *(
            f"  - schedule: {info.name} ({info.schedule.rule}) next runs at "
            f"{info.next_run.isoformat()}."
            for info in nightly
        ),
    ]
    problems = []
    if paid != 3:
        problems.append(f"expected 3 rows in paid_invoices, found {paid}")
    if receipts["invoice-created"] != 4 or receipts["payment-captured"] != 3:
        problems.append(f"expected 4 + 3 subscribed copies handled, got {dict(receipts)}")
    if reminders < 1 or recorder.reminder_runs != reminders:
        problems.append(f"the schedule fired {reminders}, {recorder.reminder_runs} handled")
    if problems:
        lines += ["", "NOT as expected:", *(f"  - {p}" for p in problems)]
    return _EventsAccount(lines, problems)
