"""The job list: filters, the order of each state, keyset pages, and bad arguments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss, JobId, JobState, QueueSpec, UnknownQueueError
from typed_queues.runtime.job_views import JobSummary

from .ops_support import DEAD, WORK, fast_boss, make_queues, rows

OTHER = "ops.other"
FLAKY = "ops.flaky"


async def _all_pages(boss: Boss, **filters: Any) -> list[JobSummary]:
    seen: list[JobSummary] = []
    after = None
    for _ in range(100):
        page = await boss.list_jobs(after=after, **filters)
        seen.extend(page.jobs)
        if page.next is None:
            return seen
        after = page.next
    raise AssertionError("the list never ended")


async def _mixed(boss: Boss) -> dict[str, list[JobId]]:
    """Jobs of every state but failed, in three queues."""
    await make_queues(boss)
    await boss.create_queue(QueueSpec(name=OTHER))
    await boss.create_queue(QueueSpec(name=FLAKY))  # three retries (the default)
    made: dict[str, list[JobId]] = {}
    made["created"] = await boss.send_many(
        WORK, [{"event": "a" if n % 2 else "b", "payload": {"n": n}} for n in range(7)]
    )
    made["urgent"] = [await boss.send(WORK, {"event": "a", "payload": {}}, priority=5)]
    made["later"] = [await boss.send(WORK, {"n": "later"}, start_after=timedelta(hours=1))]
    cancelled = await boss.send(WORK, {"n": "cancelled"})
    assert await boss.cancel(cancelled)
    made["cancelled"] = [cancelled]
    await boss.send_many(OTHER, [{"n": n} for n in range(3)])
    done = await boss.fetch(OTHER, batch_size=2)
    for job in done:
        assert await boss.complete(job)
    made["completed"] = [job.id for job in done]
    made["active"] = [job.id for job in await boss.fetch(OTHER)]
    made["retry"] = await boss.send_many(FLAKY, [{"n": n} for n in range(3)])
    for job in await boss.fetch(FLAKY, batch_size=3):
        assert await boss.fail(job, RuntimeError("boom"))
    return made


async def test_each_state_in_the_order_of_its_index(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        made = await _mixed(boss)

        created = await _all_pages(boss, queue=WORK, state="created", limit=3)
        assert created[0].id == made["urgent"][0]  # claim order: priority first
        assert [job.priority for job in created] == sorted(
            (job.priority for job in created), reverse=True
        )
        starts = [job.start_after for job in created[1:]]
        assert starts == sorted(starts)
        assert created[-1].id == made["later"][0]
        assert {job.state for job in created} == {JobState.CREATED}

        retry = await _all_pages(boss, state="retry", limit=2)
        assert sorted(job.id for job in retry) == sorted(made["retry"])
        assert all(job.error_type == "RuntimeError" for job in retry)
        assert all(job.error_message == "boom" for job in retry)

        completed = await _all_pages(boss, state="completed", limit=1)
        assert sorted(job.id for job in completed) == sorted(made["completed"])
        finished = [job.completed_on for job in completed if job.completed_on is not None]
        assert len(finished) == 2 and finished == sorted(finished, reverse=True)

        active = await _all_pages(boss, state="active")
        assert [job.id for job in active] == made["active"]
        cancelled = await _all_pages(boss, queue=WORK, state="cancelled")
        assert [job.id for job in cancelled] == made["cancelled"]


async def test_without_a_state_every_job_once_in_state_groups(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        made = await _mixed(boss)
        for limit in (1, 4, 1000):
            listed = await _all_pages(boss, limit=limit)
            ids = [job.id for job in listed]
            assert len(ids) == len(set(ids))
            assert set(ids) == {job_id for group in made.values() for job_id in group}
            order = [job.state for job in listed]
            groups = [JobState.ACTIVE, JobState.RETRY, JobState.CANCELLED, JobState.CREATED]
            groups.append(JobState.COMPLETED)
            assert sorted(order, key=groups.index) == order

        only_work = await _all_pages(boss, queue=WORK, limit=5)
        assert {job.queue for job in only_work} == {WORK}
        events = await _all_pages(boss, queue=WORK, event="a", limit=2)
        assert {job.event for job in events} == {"a"}
        assert len(events) == 4  # three of the batch, and the urgent one


async def test_dead_letter_links_and_errors_in_the_list(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        job_id = await boss.send(WORK, {"n": 1})
        [job] = await boss.fetch(WORK)
        assert await boss.fail(job, ValueError("no"))
        [failed] = (await boss.list_jobs(state="failed")).jobs
        assert failed.id == job_id
        assert (failed.error_type, failed.error_message) == ("ValueError", "no")
        [copy] = (await boss.list_jobs(queue=DEAD)).jobs
        assert failed.dead_letter_id == copy.id
        assert copy.dead_letter_of == job_id


async def test_bad_arguments_are_refused_before_any_sql(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        with pytest.raises(ValueError, match="unknown job state 'done': use one of created"):
            await boss.list_jobs(state="done")
        with pytest.raises(UnknownQueueError):
            await boss.list_jobs(queue="ops.none")
        with pytest.raises(ValueError, match="invalid queue name"):
            await boss.list_jobs(queue="a b")
        with pytest.raises(ValueError, match="limit must be an integer from 1 to 1000"):
            await boss.list_jobs(limit=0)
        with pytest.raises(ValueError, match="invalid cursor"):
            await boss.list_jobs(after="not-a-cursor")
        with pytest.raises(ValueError, match="invalid event name"):
            await boss.list_jobs(event="")
        await boss.send_many(WORK, [{"n": n} for n in range(3)])
        page = await boss.list_jobs(state="created", limit=1)
        assert page.next is not None
        with pytest.raises(ValueError, match="the cursor continues a list of created jobs"):
            await boss.list_jobs(state="failed", after=page.next)


# -- plans ------------------------------------------------------------------------------------

_LIST_PARAMS: dict[str, Any] = {
    "queue": None,
    "event": None,
    "limit": 51,
    "k_priority": None,
    "k_at": None,
    "k_id": None,
}


async def _plan(db: psycopg.AsyncConnection[Any], schema: str, name: str, **params: Any) -> str:
    from typed_queues.runtime.db.queries import queries_for

    query = queries_for(schema)[name]
    cur = await db.execute(b"EXPLAIN " + query, {**_LIST_PARAMS, **params})
    return "\n".join(row[0] for row in await cur.fetchall())


async def test_every_page_is_read_through_an_index_on_a_big_table(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        await boss.create_queue(QueueSpec(name=OTHER))
        for _ in range(6):
            await boss.send_many(WORK, [{"event": "e", "payload": {}} for _ in range(20_000)])
        await boss.send_many(OTHER, [{"n": n} for n in range(20_000)])
        # a big finished history, a few failures, cancellations, retries and running jobs
        await rows(
            db,
            schema_name,
            """UPDATE {schema}.job SET state = 'completed', completed_on = now()
               WHERE id IN (SELECT id FROM {schema}.job ORDER BY id LIMIT 90000)""",
        )
        await rows(
            db,
            schema_name,
            """UPDATE {schema}.job SET state = 'failed', completed_on = now()
               WHERE id IN (SELECT id FROM {schema}.job WHERE state = 'completed' LIMIT 50)""",
        )
        for state in ("cancelled", "retry", "active"):
            await rows(
                db,
                schema_name,
                "UPDATE {schema}.job SET state = %s, started_on = now(), completed_on = now() "
                "WHERE id IN (SELECT id FROM {schema}.job WHERE state = 'created' LIMIT 20)",
                state,
            )
        await db.execute(
            psycopg.sql.SQL("ANALYZE {}.job").format(psycopg.sql.Identifier(schema_name))
        )
        key = {"k_at": "2026-01-01T00:00:00Z", "k_id": "01a20000-0000-7000-8000-000000000000"}
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("job_list_created", {"queue": WORK}, "job_claim"),
            ("job_list_created", {"k_priority": 0, **key}, "job_claim"),
            ("job_list_retry", {"queue": WORK, **key}, "job_retry"),
            ("job_list_active", {}, "job_active"),
            ("job_list_completed", {"queue": WORK, **key}, "job_finished"),
            ("job_list_completed", {"event": "e"}, "job_finished"),
            ("job_list_failed", {"state": "failed"}, "job_failed"),
            ("job_list_failed", {"state": "cancelled", "queue": OTHER, **key}, "job_failed"),
        ]
        for name, params, index in cases:
            plan = await _plan(db, schema_name, name, **params)
            assert index in plan, (name, params, plan)
            assert "Seq Scan on job" not in plan, (name, params, plan)

        # and the pages themselves (every queue, each state)
        for state in JobState:
            page = await boss.list_jobs(state=state, limit=50)
            assert all(job.state is state for job in page.jobs)
        plan = await _plan(db, schema_name, "dlq_peek", queue=DEAD, limit=10)
        assert "Seq Scan on job" not in plan, plan
        # the gauges read the queued jobs once, not once per queue
        plan = await _plan(db, schema_name, "queue_depths")
        assert plan.count(" on job ") == 2, plan
        assert "Nested Loop" not in plan, plan
