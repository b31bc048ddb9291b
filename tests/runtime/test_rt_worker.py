"""The worker: concurrency, outputs, failures of every kind, expiry, threads, wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from rt_support import NO_RETRY_DELAY, count_jobs, make_queue, wait_until

from typed_queues.runtime import (
    Boss,
    JobContext,
    JobId,
    JobState,
    PermanentJobError,
    RetryPolicy,
    UnknownQueueError,
    Worker,
    start_workers,
)

pytest_plugins = ["rt_fixtures"]


async def _state(boss: Boss, job_id: JobId) -> JobState | None:
    job = await boss.get_job(job_id)
    return None if job is None else job.state


async def _wait_state(boss: Boss, job_id: JobId, state: JobState, within: float = 15) -> None:
    async def reached() -> bool:
        return await _state(boss, job_id) is state

    await wait_until(reached, within=within)


async def test_runs_up_to_concurrency_and_stores_outputs(fast_boss: Boss) -> None:
    await make_queue(fast_boss)
    running = 0
    peak = 0

    async def handler(ctx: JobContext) -> object:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return {"double": ctx.payload["n"] * 2}

    ids = await fast_boss.send_many("q", [{"n": n} for n in range(30)])
    worker = Worker(fast_boss, "q", handler, concurrency=5)
    await worker.start()
    for job_id in ids:
        await _wait_state(fast_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    assert peak == 5
    for n, job_id in enumerate(ids):
        job = await fast_boss.get_job(job_id)
        assert job is not None and job.output == {"double": n * 2}
        assert job.retry_count == 0 and job.fence == 1


async def test_failures_retry_then_fail_and_permanent_errors_skip_retries(
    fast_boss: Boss,
) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    attempts: dict[str, list[int]] = {}

    async def handler(ctx: JobContext) -> None:
        attempts.setdefault(ctx.data["kind"], []).append(ctx.attempt)
        if ctx.data["kind"] == "flaky" and ctx.attempt < 3:
            raise RuntimeError("not yet")
        if ctx.data["kind"] == "broken":
            raise RuntimeError("always")
        if ctx.data["kind"] == "permanent":
            raise PermanentJobError("no point retrying")

    flaky = await fast_boss.send("q", {"kind": "flaky"})
    broken = await fast_boss.send("q", {"kind": "broken"})
    permanent = await fast_boss.send("q", {"kind": "permanent"})
    worker = Worker(fast_boss, "q", handler)
    await worker.start()
    await _wait_state(fast_boss, flaky, JobState.COMPLETED)
    await _wait_state(fast_boss, broken, JobState.FAILED)
    await _wait_state(fast_boss, permanent, JobState.FAILED)
    await worker.stop()
    assert attempts == {"flaky": [1, 2, 3], "broken": [1, 2, 3], "permanent": [1]}
    job = await fast_boss.get_job(permanent)
    assert job is not None and job.output["error"]["type"] == "PermanentJobError"
    assert job.retry_count == 0


@pytest.mark.parametrize(
    "exc",
    [
        SystemExit(3),
        KeyboardInterrupt(),
        asyncio.CancelledError(),
        BaseException("bare"),
        GeneratorExit(),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_base_exceptions_do_not_kill_the_worker(fast_boss: Boss, exc: BaseException) -> None:
    await make_queue(fast_boss, retry=RetryPolicy(limit=0))

    async def handler(ctx: JobContext) -> str:
        if ctx.data.get("raise"):
            raise exc
        return "fine"

    bad = await fast_boss.send("q", {"raise": True})
    worker = Worker(fast_boss, "q", handler)
    await worker.start()
    await _wait_state(fast_boss, bad, JobState.FAILED)
    good = await fast_boss.send("q", {})
    await _wait_state(fast_boss, good, JobState.COMPLETED)
    assert worker.running
    await worker.stop()
    job = await fast_boss.get_job(bad)
    assert job is not None and job.output["error"]["type"] == type(exc).__name__


async def test_odd_outputs_still_complete(fast_boss: Boss) -> None:
    await make_queue(fast_boss)
    outputs: dict[str, object] = {
        "object": object(),
        "nan": {"value": float("nan")},
        "nul": {"text": "a\x00b", "k\x00": 1},
        "set": {1, 2},
        "none": None,
        "list": [1, "two"],
    }

    async def handler(ctx: JobContext) -> object:
        return outputs[ctx.data["kind"]]

    ids = {kind: await fast_boss.send("q", {"kind": kind}) for kind in outputs}
    worker = Worker(fast_boss, "q", handler)
    await worker.start()
    for job_id in ids.values():
        await _wait_state(fast_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    stored = {kind: (await fast_boss.get_job(job_id)).output for kind, job_id in ids.items()}  # type: ignore[union-attr]
    assert "unserialisable_output" in stored["object"]
    assert "unserialisable_output" in stored["nan"]
    assert "unserialisable_output" in stored["set"]
    assert stored["nul"] == {"text": "a\\x00b", "k\\x00": 1}
    assert stored["none"] is None
    assert stored["list"] == [1, "two"]


async def test_nul_and_huge_error_messages_are_sanitised(fast_boss: Boss) -> None:
    await make_queue(fast_boss, retry=RetryPolicy(limit=0))

    async def handler(ctx: JobContext) -> None:
        raise RuntimeError("bad\x00message " + "x" * 10_000)

    job_id = await fast_boss.send("q", {})
    worker = Worker(fast_boss, "q", handler)
    await worker.start()
    await _wait_state(fast_boss, job_id, JobState.FAILED)
    await worker.stop()
    job = await fast_boss.get_job(job_id)
    assert job is not None
    message = job.output["error"]["message"]
    assert message.startswith("bad\\x00message") and len(message) <= 2000
    assert "\x00" not in job.output["error"]["traceback"]


async def test_expire_in_cancels_the_attempt(fast_boss: Boss) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY, expire_in=timedelta(milliseconds=300))
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        if ctx.attempt == 1:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    job_id = await fast_boss.send("q", {})
    worker = Worker(fast_boss, "q", handler)
    await worker.start()
    await _wait_state(fast_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    assert seen == ["cancelled"]
    job = await fast_boss.get_job(job_id)
    assert job is not None and job.retry_count == 1


async def test_sync_processors_run_in_threads_inside_process_job(
    fast_boss: Boss, caplog: pytest.LogCaptureFixture
) -> None:
    await make_queue(fast_boss)
    threads: set[str] = set()

    def handler(ctx: JobContext) -> dict[str, Any]:
        threads.add(threading.current_thread().name)
        if ctx.payload.get("fail"):
            raise ValueError("sync failure")
        return {"seen": ctx.payload["n"]}

    caplog.set_level(logging.INFO, logger="queues.jobs")
    ok = await fast_boss.send("q", {"event": "thing-done", "payload": {"n": 1}, "metadata": {}})
    bad = await fast_boss.send("q", {"payload": {"fail": True}, "event": "thing-done"})
    worker = fast_boss.worker("q", handler, concurrency=2, label="things")
    await worker.start()
    await _wait_state(fast_boss, ok, JobState.COMPLETED)
    await _wait_state(fast_boss, bad, JobState.RETRY)
    await worker.stop()
    assert threads and all(name.startswith("queues-things") for name in threads)
    job = await fast_boss.get_job(ok)
    assert job is not None and job.output == {"seen": 1}
    records = [r for r in caplog.records if r.name == "queues.jobs"]
    started = [r for r in records if r.getMessage().startswith("Starting: things")]
    finished = [r for r in records if r.getMessage().startswith("Finished: things")]
    failed = [r for r in records if r.getMessage().startswith("Failed: things")]
    assert started and finished and failed
    assert finished[0].__dict__["job_id"] == str(ok)
    assert finished[0].__dict__["event"] == "thing-done"
    assert finished[0].__dict__["attempt"] == 1
    assert isinstance(finished[0].__dict__["duration_ms"], float)


async def test_async_processor_through_the_factory(fast_boss: Boss) -> None:
    await make_queue(fast_boss)

    async def handler(ctx: JobContext) -> str:
        return "async"

    job_id = await fast_boss.send("q", {})
    worker = fast_boss.worker("q", handler)
    await worker.start()
    await _wait_state(fast_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    assert (await fast_boss.get_job(job_id)).output == "async"  # type: ignore[union-attr]


async def test_an_idle_worker_wakes_on_notify(dsn: str, schema_name: str) -> None:
    async with Boss(dsn, schema=schema_name, poll_interval=60) as boss:
        await make_queue(boss)
        started = asyncio.Event()

        async def handler(ctx: JobContext) -> None:
            started.set()

        worker = Worker(boss, "q", handler)
        await worker.start()
        await asyncio.sleep(0.5)  # the first claim found nothing: now it waits up to 60 s
        await boss.send("q", {})
        await asyncio.wait_for(started.wait(), 10)  # far sooner than the poll interval
        await worker.stop()


async def test_polling_without_listen(dsn: str, schema_name: str) -> None:
    async with Boss(dsn, schema=schema_name, listen=False, poll_interval=0.1) as boss:
        await make_queue(boss)
        done = asyncio.Event()

        async def handler(ctx: JobContext) -> None:
            done.set()

        worker = Worker(boss, "q", handler)
        await worker.start()
        assert boss.worker_services is not None and boss.worker_services.listener is None
        await asyncio.sleep(0.3)
        await boss.send("q", {})
        await asyncio.wait_for(done.wait(), 10)
        await worker.stop()


async def test_start_workers_logs_once_and_stops_on_failure(
    fast_boss: Boss, caplog: pytest.LogCaptureFixture, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(fast_boss, "a")
    await make_queue(fast_boss, "b")

    async def handler(ctx: JobContext) -> None:
        return None

    caplog.set_level(logging.INFO, logger="queues")
    first, second = Worker(fast_boss, "a", handler), Worker(fast_boss, "b", handler, label="bee")
    await start_workers(first, second)
    running = [r.getMessage() for r in caplog.records if "workers running" in r.getMessage()]
    assert running == ["2 workers running: a (concurrency 10), bee (concurrency 10)"]
    await first.stop()
    await second.stop()

    ok = Worker(fast_boss, "a", handler)
    missing = Worker(fast_boss, "missing", handler)
    with pytest.raises(UnknownQueueError) as info:
        await start_workers(ok, missing)
    assert any("missing" in note for note in info.value.__notes__)
    assert not ok.running
    await fast_boss.send("a", {})
    await asyncio.sleep(0.5)
    assert await count_jobs(db, fast_boss.schema, "created") == 1  # nobody processes it


async def test_expiry_is_recorded_even_if_the_handler_ignores_cancellation(
    fast_boss: Boss,
) -> None:
    await make_queue(fast_boss, retry=RetryPolicy(limit=0), expire_in=timedelta(milliseconds=300))
    release = asyncio.Event()

    async def stubborn(ctx: JobContext) -> str:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)
        return "too late"

    job_id = await fast_boss.send("q", {})
    worker = Worker(fast_boss, "q", stubborn)
    await worker.start()
    await _wait_state(fast_boss, job_id, JobState.FAILED)
    release.set()
    await worker.stop()
    job = await fast_boss.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert job.output["error"]["type"] == "JobExpired"


async def test_handlers_get_the_data_as_stored(fast_boss: Boss) -> None:
    """Claimed jobs' data is decoded by the claim's own jsonb loader: every kind of JSON value
    a handler gets equals what the default loader reads back (``get_job``)."""
    await make_queue(fast_boss)
    samples: list[dict[str, Any]] = [
        {"event": "e", "payload": {"n": 1}, "metadata": {"source": "t", "version": "1"}},
        {"big": 123456789012345678901234567890, "neg": -0, "tiny": 1e-300, "f": 1.5},
        {"long": 0.1000000000000000055511151231257827, "exp": 1.5e308, "zero": 0.0},
        {"text": 'é ☃ 😀 \\ " \n \t', "empty": "", "nested": {"a": [1, [2, {"b": None}]]}},
        {"flags": [True, False, None], "list": [], "obj": {}},
    ]
    ids = await fast_boss.send_many("q", samples)
    seen: dict[JobId, tuple[dict[str, Any], Any, str | None]] = {}

    async def handler(ctx: JobContext) -> None:
        seen[ctx.id] = (ctx.data, ctx.payload, ctx.event)

    worker = Worker(fast_boss, "q", handler, concurrency=5)
    await worker.start()
    for job_id in ids:
        await _wait_state(fast_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    for job_id in ids:
        job = await fast_boss.get_job(job_id)
        assert job is not None
        data, payload, event = seen[job_id]
        assert data == job.data
        assert payload == (job.data["payload"] if "event" in job.data else job.data)
        assert event == job.data.get("event")


_SEEN: contextvars.ContextVar[int | None] = contextvars.ContextVar("_SEEN", default=None)


async def test_each_job_has_its_own_context_and_one_task_from_start_to_end(
    fast_boss: Boss,
) -> None:
    """Jobs that finish without awaiting share a runner task but never each other's context
    variables; a job that awaits keeps the one task it started on (what ``asyncio.timeout``
    and ``current_task`` rely on), and its timeout cancels it alone."""
    await make_queue(fast_boss, retry=RetryPolicy(limit=0))
    ids = await fast_boss.send_many("q", [{"n": n} for n in range(60)])
    leaked: list[int] = []
    switched: list[int] = []
    finished: list[int] = []

    async def handler(ctx: JobContext) -> int:
        n = int(ctx.payload["n"])
        before = _SEEN.get()
        if before is not None:
            leaked.append(n)
        _SEEN.set(n)
        if n % 3:
            task = asyncio.current_task()
            if n == 10:
                async with asyncio.timeout(0.05):
                    await asyncio.sleep(30)
            await asyncio.sleep(0.01)
            if asyncio.current_task() is not task or _SEEN.get() != n:
                switched.append(n)
        finished.append(n)
        return n

    worker = Worker(fast_boss, "q", handler, concurrency=8)
    await worker.start()
    for n, job_id in enumerate(ids):
        await _wait_state(fast_boss, job_id, JobState.FAILED if n == 10 else JobState.COMPLETED)
    await worker.stop()
    assert leaked == [] and switched == []
    assert sorted(finished) == [n for n in range(60) if n != 10]
    failed = await fast_boss.get_job(ids[10])
    assert failed is not None and failed.errors[-1].type == "TimeoutError"
