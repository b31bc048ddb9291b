"""The DSN's password never shows: not in command output or errors, logs, stored errors,
``status`` or metrics."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from typed_queues.runtime.cli import main
from typed_queues.runtime.config import dsn_password, redact
from typed_queues.runtime.logging_setup import configure_logging

from .ops_support import scrape

ROOT = Path(__file__).parents[2]
SECRET = "Sup3r-S3cret-pw"


def _with_password(dsn: str, password: str = SECRET) -> str:
    """``dsn`` with a password (the test server trusts every local connection, so any
    password is accepted and the commands really run)."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.scheme.startswith("postgres"):
        user = parts.username or "postgres"
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))
    return f"{dsn} password={password}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:hunter22@db:5432/x failed", "postgresql://app:***@db:5432/x failed"),
        ("postgres://u:p%40ss@h/d", "postgres://u:***@h/d"),
        ("host=db password=hunter22 user=app", "host=db password=*** user=app"),
        ("host=db password='a b\\' c' user=app", "host=db password=*** user=app"),
        ("postgresql://app@db/x (no password)", "postgresql://app@db/x (no password)"),
    ],
)
def test_redact_masks_passwords(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_masks_the_password_of_a_dsn_anywhere() -> None:
    dsn = "postgresql://app:hunter22@db/x"
    assert dsn_password(dsn) == "hunter22"
    assert redact("auth failed for hunter22", dsn) == "auth failed for ***"
    assert dsn_password("host=db password='a b'") == "a b"
    assert dsn_password("postgresql://app@db/x") is None


def test_logs_never_carry_a_password() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    try:
        log = logging.getLogger("queues.test")
        log.warning("reconnecting to %s", "postgresql://app:hunter22@db/x")
        try:
            raise RuntimeError("cannot reach postgresql://app:hunter22@db/x")
        except RuntimeError:
            log.exception("failed")
    finally:
        configure_logging("text", stream=sys.stderr)
    text = stream.getvalue()
    assert "hunter22" not in text
    assert text.count("postgresql://app:***@db/x") == 3


def test_commands_and_their_errors_never_show_the_password(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_dsn = _with_password(dsn)
    db = ["--dsn", secret_dsn, "--schema", schema_name]
    assert main(["migrate", *db]) == 0
    assert main(["status", *db]) == 0
    assert main(["jobs", "list", *db]) == 0
    assert main(["jobs", "list", *db, "--queue", "nowhere"]) == 2
    assert main(["dlq", "redrive", "nowhere", *db]) == 2
    assert main(["purge", "nowhere", "--state", "failed", "--yes", *db]) == 2
    unreachable = _with_password("postgresql://postgres@127.0.0.1:1/test")
    assert main(["status", "--dsn", unreachable]) == 1
    assert main(["status", "--dsn", unreachable + "?bogus=1"]) == 1
    assert main(["jobs", "list", "--dsn", f"host=127.0.0.1 port=1 password={SECRET} x"]) == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "queues: error:" in captured.err


def test_a_worker_never_logs_or_exports_the_password(dsn: str, schema_name: str) -> None:
    secret_dsn = _with_password(dsn)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "QUEUES_DSN": secret_dsn, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "typed_queues.runtime.cli",
        "worker",
        "--app",
        "tests.operations.ops_app:workers",
        "--schema",
        schema_name,
        "--metrics-port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
        "--log-level",
        "DEBUG",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    metrics = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                metrics = scrape(port)
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                time.sleep(0.1)
        assert "queues_queue_waiting_jobs" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert SECRET not in metrics
    assert SECRET not in output


async def test_stored_errors_and_the_failed_line_mask_passwords(
    dsn: str, schema_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from typed_queues.runtime import JobContext, JobState

    from .ops_support import WORK, fast_boss, make_queues, wait_until

    leaked = "postgresql://billing:hunter22@ledger-db/billing"
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        job_id = await boss.send(WORK, {"n": 1})

        async def handler(job: JobContext) -> None:
            raise ConnectionError(f"cannot reach {leaked}")

        worker = boss.worker(WORK, handler)
        with caplog.at_level(logging.ERROR, logger="queues.jobs"):
            await worker.start()

            async def failed() -> bool:
                job = await boss.get_job(job_id)
                return job is not None and job.state is JobState.FAILED

            await wait_until(failed)
            await worker.stop()
        job = await boss.get_job(job_id)
    assert job is not None
    [error] = job.errors
    assert error.message == "cannot reach postgresql://billing:***@ledger-db/billing"
    assert "hunter22" not in (error.traceback or "")
    assert "hunter22" not in str(job.output)
    lines = [record.getMessage() for record in caplog.records if "Failed:" in record.msg]
    assert lines and all("hunter22" not in line and "billing:***@" in line for line in lines)
