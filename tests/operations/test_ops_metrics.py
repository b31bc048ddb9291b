"""Prometheus metrics: scraped over HTTP after known work, in-process and from
``queues worker --metrics-port``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from typed_queues.runtime import Boss, JobContext, JobState, QueueSpec
from typed_queues.runtime.cli import main
from typed_queues.runtime.metrics import PrometheusMetrics

from .ops_support import DEAD, WORK, make_queues, retry_policy, sample, scrape, wait_until

ROOT = Path(__file__).parents[2]
SLOW = "ops.slow"
IDLE = "ops.idle"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _scrape(port: int) -> str:
    return await asyncio.to_thread(scrape, port)


async def test_metrics_count_known_work(dsn: str, schema_name: str) -> None:
    boss = Boss(
        dsn,
        schema=schema_name,
        lease=timedelta(seconds=1),
        poll_interval=timedelta(milliseconds=100),
        maintenance_interval=timedelta(milliseconds=200),
    )
    metrics = PrometheusMetrics()
    async with boss:
        await make_queues(boss, retry_limit=1)
        await boss.create_queue(QueueSpec(name=SLOW, retry=retry_policy(0)))
        await boss.create_queue(QueueSpec(name=IDLE))
        boss.observe(metrics)
        metrics.watch(boss)
        server = metrics.serve(0, "127.0.0.1")
        try:
            await boss.send_many(WORK, [{"event": "ok", "payload": {}} for _ in range(4)])
            await boss.send_many(WORK, [{"event": "bad", "payload": {}} for _ in range(2)])

            async def work(job: JobContext) -> None:
                if job.event == "bad":
                    raise RuntimeError("always")

            release = asyncio.Event()

            async def slow(job: JobContext) -> None:
                services = boss.worker_services
                assert services is not None
                services.writer.suspend_heartbeats(job.id)  # as if its process froze
                await release.wait()

            workers = [boss.worker(WORK, work), boss.worker(SLOW, slow)]
            for worker in workers:
                await worker.start()
            slow_id = await boss.send(SLOW, {"event": "stuck", "payload": {}})
            await boss.send_many(IDLE, [{"n": n} for n in range(3)])

            async def rescued() -> bool:
                job = await boss.get_job(slow_id)
                return job is not None and job.state is JobState.FAILED

            await wait_until(rescued)
            release.set()

            async def all_counted() -> bool:
                text = await _scrape(server.port)
                return (
                    sample(text, "queues_jobs_completed_total", queue=WORK, event="ok") == 4
                    and sample(text, "queues_jobs_failed_total", queue=WORK, event="bad") == 2
                )

            await wait_until(all_counted)
            for worker in workers:
                await worker.stop()
            text = await _scrape(server.port)
        finally:
            server.close()

    def value(name: str, **labels: str) -> float | None:
        return sample(text, name, **labels)

    assert value("queues_jobs_completed_total", queue=WORK, event="ok") == 4
    assert value("queues_jobs_retried_total", queue=WORK, event="bad") == 2
    assert value("queues_jobs_failed_total", queue=WORK, event="bad") == 2
    assert value("queues_jobs_dead_lettered_total", queue=WORK, event="bad") == 2
    assert value("queues_jobs_failed_total", queue=WORK, event="ok") == 0
    assert value("queues_jobs_rescued_total", queue=SLOW, event="stuck") == 1
    assert value("queues_jobs_failed_total", queue=SLOW, event="stuck") == 1
    ok = value("queues_job_duration_seconds_count", queue=WORK, event="ok", outcome="ok")
    error = value("queues_job_duration_seconds_count", queue=WORK, event="bad", outcome="error")
    assert (ok, error) == (4, 4)
    assert (value("queues_jobs_claimed_total", queue=WORK) or 0) >= 8
    assert (value("queues_claim_duration_seconds_count", queue=WORK) or 0) >= 1
    assert (value("queues_result_write_duration_seconds_count", kind="completion") or 0) >= 1
    assert (value("queues_result_write_duration_seconds_count", kind="failure") or 0) >= 1
    # the gauges, read from the database at scrape time
    assert value("queues_queue_waiting_jobs", schema=schema_name, queue=IDLE) == 3
    assert value("queues_queue_due_jobs", schema=schema_name, queue=IDLE) == 3
    assert (value("queues_queue_oldest_due_seconds", schema=schema_name, queue=IDLE) or 0) > 0
    assert value("queues_queue_waiting_jobs", schema=schema_name, queue=WORK) == 0
    assert value("queues_queue_active_jobs", schema=schema_name, queue=WORK) == 0
    assert value("queues_queue_waiting_jobs", schema=schema_name, queue=DEAD) == 2


def test_event_labels_are_bounded_per_queue() -> None:
    metrics = PrometheusMetrics()
    tags = {metrics.tag(WORK, f"event-{n}") for n in range(60)}
    assert len(tags) == 51  # 50 events, then "other"
    assert metrics.tag(WORK, "event-59") is metrics.tag(WORK, "event-55")
    assert metrics.tag(WORK, None) is metrics.tag(WORK, "other")


def test_queues_worker_serves_metrics(dsn: str, schema_name: str) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "typed_queues.runtime.cli",
        "worker",
        "--app",
        "tests.operations.ops_app:workers",
        "--dsn",
        dsn,
        "--schema",
        schema_name,
        "--metrics-port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                text = scrape(port)
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                time.sleep(0.1)
        assert "queues_jobs_completed_total" in text

        async def send() -> None:
            async with Boss(dsn, schema=schema_name) as boss:
                await boss.send_many("ops.app", [{"event": "e", "payload": {}}] * 3)
                await boss.send("ops.app", {"event": "e", "payload": {"fail": True}})

        asyncio.run(send())
        while time.monotonic() < deadline:
            text = scrape(port)
            done = sample(text, "queues_jobs_completed_total", queue="ops.app", event="e")
            failed = sample(text, "queues_jobs_failed_total", queue="ops.app", event="e")
            if (done, failed) == (3, 1):
                break
            time.sleep(0.1)
        assert sample(text, "queues_jobs_completed_total", queue="ops.app", event="e") == 3
        assert sample(text, "queues_jobs_failed_total", queue="ops.app", event="e") == 1
        assert sample(text, "queues_queue_waiting_jobs", schema=schema_name, queue="ops.app") == 0
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert f"metrics at http://127.0.0.1:{port}/metrics" in output


def test_metrics_port_without_prometheus_client_is_a_clear_error(
    dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    argv = ["worker", "--app", "tests.operations.ops_app:workers", "--dsn", dsn]
    assert main([*argv, "--metrics-port", "9999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "queues: error: metrics need the prometheus-client package, which is not installed: "
        "pip install 'typed-queues[metrics]'"
    )


def test_a_busy_metrics_port_is_a_one_line_error(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["worker", "--app", "tests.operations.ops_app:workers", "--dsn", dsn]
        argv += ["--schema", schema_name, "--metrics-port", str(port)]
        argv += ["--metrics-host", "127.0.0.1"]
        assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"queues: error: cannot serve metrics on 127.0.0.1:{port}: ")
