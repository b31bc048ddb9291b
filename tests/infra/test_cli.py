"""The ``queues`` command: migrate, status, worker (signals, grace), dispatch, errors, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from typed_queues.runtime import Boss, JobId, JobState, QueueSpec
from typed_queues.runtime.cli import main
from typed_queues.runtime.logging_setup import JsonFormatter, TextFormatter

ROOT = Path(__file__).parents[2]
APP = "tests.infra.cli_app"
_DSN_VARS = ("QUEUES_DSN", "DATABASE_URL")


@pytest.fixture
def no_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _DSN_VARS:
        monkeypatch.delenv(name, raising=False)


def _only_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# -- migrate / status -------------------------------------------------------------------------


def test_migrate_then_status_shows_a_table(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--dsn", dsn, "--schema", schema_name]) == 0
    assert main(["migrate", "--dsn", dsn, "--schema", schema_name]) == 0  # idempotent

    async def fill() -> None:
        async with Boss(dsn, schema=schema_name) as boss:
            await boss.create_queue(QueueSpec(name="infra.status"))
            await boss.create_queue(QueueSpec(name="infra.empty"))
            await boss.send("infra.status", {"n": 1})
            await boss.send("infra.status", {"n": 2})

    asyncio.run(fill())
    capsys.readouterr()
    assert main(["status", "--dsn", dsn, "--schema", schema_name]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "queue",
        "created",
        "retry",
        "active",
        "completed",
        "failed",
        "dead-lettered",
        "oldest",
        "waiting",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in table[2:]}
    assert rows["infra.status"][:6] == ["2", "0", "0", "0", "0", "0"]
    assert rows["infra.status"][6] != "-"
    assert rows["infra.empty"] == ["0", "0", "0", "0", "0", "0", "-"]


def test_status_of_an_unmigrated_schema(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--dsn", dsn, "--schema", schema_name]) == 1
    assert "queues migrate" in capsys.readouterr().err


@pytest.mark.usefixtures("no_dsn")
@pytest.mark.parametrize(
    "argv",
    [["migrate"], ["status"], ["worker", "--app", f"{APP}:workers"]],
    ids=["migrate", "status", "worker"],
)
def test_no_dsn_is_a_clear_error_and_never_falls_back(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    line = _only_line(capsys.readouterr().err)
    assert "no database configured" in line and "QUEUES_DSN" in line


def test_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--dsn", "postgresql://postgres@127.0.0.1:1/nothing"]) == 1
    assert "cannot reach the database" in _only_line(capsys.readouterr().err)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_colon", "MODULE:ATTR"),
        ("tests.infra.no_such_module:x", "cannot import module"),
        (f"{APP}:missing", "has no attribute"),
        (f"{APP}:not_an_app", "not a Worker"),
    ],
)
def test_bad_app(
    app: str, message: str, dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["worker", "--app", app, "--dsn", dsn, "--schema", schema_name])
    assert code == 2
    assert message in _only_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv",
    [
        ["worker"],
        ["worker", "--app", "a:b", "--concurrency", "0"],
        ["worker", "--app", "a:b", "--shutdown-grace", "soon"],
        ["worker", "--app", "a:b", "--log-format", "xml"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_embedded_and_dsn_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["worker", "--app", f"{APP}:workers", "--embedded", "--dsn", "postgresql://x"])
    assert code == 2
    assert "exclude" in _only_line(capsys.readouterr().err)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("generate", "migrate", "worker", "status", "demo"):
        assert command in out


# -- lazy dispatch ----------------------------------------------------------------------------


def test_generate_is_dispatched_to_codegen(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 3

    fake = types.ModuleType("typed_queues.codegen.cli")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "typed_queues.codegen.cli", fake)
    assert main(["generate", "--check", "--catalogue", "x.yaml"]) == 3
    assert seen == [["--check", "--catalogue", "x.yaml"]]


def test_generate_without_the_codegen_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "typed_queues.codegen.cli", None)  # makes the import fail
    assert main(["generate"]) == 2
    assert "pip install 'typed-queues[codegen]'" in _only_line(capsys.readouterr().err)


def test_runtime_cli_does_not_import_codegen_or_generated() -> None:
    code = (
        "import sys, typed_queues.runtime.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('codegen', 'generated', 'demo')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- log formats ------------------------------------------------------------------------------


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "queues.jobs", logging.INFO, __file__, 1, "Finished: %s", ("x",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_emits_the_structured_fields() -> None:
    record = _record(
        job_id="j1",
        queue="q",
        event="e",
        entity_id="42",
        attempt=2,
        duration_ms=1.5,
        extra={"a": 1},
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Finished: x"
    assert entry["level"] == "INFO" and entry["logger"] == "queues.jobs"
    assert entry["ts"].endswith("Z")
    assert {k: entry[k] for k in ("job_id", "queue", "event", "entity_id", "attempt")} == {
        "job_id": "j1",
        "queue": "q",
        "event": "e",
        "entity_id": "42",
        "attempt": 2,
    }
    assert entry["duration_ms"] == 1.5
    assert entry["extra"] == {"a": 1}


def test_json_formatter_keeps_exceptions_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]


def test_text_formatter_appends_the_job_context() -> None:
    line = TextFormatter().format(_record(job_id="j1", queue="q", attempt=1))
    assert line.endswith("INFO queues.jobs: Finished: x [queue=q job_id=j1 attempt=1]")


# -- the worker command, as a real process ----------------------------------------------------


class _WorkerProcess:
    """``queues worker`` in a subprocess, its stderr collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "typed_queues.runtime.cli", "worker", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if any(text in line for line in self.lines):
                    return
                break
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the worker's output:\n" + "\n".join(self.lines))

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def exit_code(self, limit: float = 60.0) -> int:
        code = self.proc.wait(limit)
        self._reader.join(5)
        return code

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def worker_procs() -> Iterator[list[_WorkerProcess]]:
    started: list[_WorkerProcess] = []
    yield started
    for proc in started:
        proc.kill()


def _send(dsn: str, schema: str, data: dict[str, object]) -> JobId:
    async def go() -> JobId:
        async with Boss(dsn, schema=schema, maintenance=False, listen=False) as boss:
            return await boss.send("infra.echo", data)

    return asyncio.run(go())


def _state(dsn: str, schema: str, job_id: JobId) -> JobState:
    async def go() -> JobState:
        async with Boss(dsn, schema=schema, maintenance=False, listen=False) as boss:
            job = await boss.get_job(job_id)
            assert job is not None
            return job.state

    return asyncio.run(go())


def _wait_state(dsn: str, schema: str, job_id: JobId, *states: JobState) -> JobState:
    deadline = time.monotonic() + 60
    state = _state(dsn, schema, job_id)
    while state not in states and time.monotonic() < deadline:
        time.sleep(0.1)
        state = _state(dsn, schema, job_id)
    return state


def _start_worker(
    procs: list[_WorkerProcess], dsn: str, schema: str, *extra: str, app: str = "workers"
) -> _WorkerProcess:
    worker = _WorkerProcess(
        "--app", f"{APP}:{app}", "--dsn", dsn, "--schema", schema, "--log-format", "json", *extra
    )
    procs.append(worker)
    worker.wait_for("workers running")
    return worker


def test_worker_processes_jobs_and_stops_on_sigterm(
    dsn: str, schema_name: str, worker_procs: list[_WorkerProcess]
) -> None:
    worker = _start_worker(worker_procs, dsn, schema_name, "--concurrency", "3")
    job_id = _send(dsn, schema_name, {"hello": "world"})
    assert _wait_state(dsn, schema_name, job_id, JobState.COMPLETED) is JobState.COMPLETED
    worker.wait_for("Finished")
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    finished = [e for e in worker.json_lines() if str(e["message"]).startswith("Finished")]
    assert finished and finished[0]["job_id"] == str(job_id)
    assert finished[0]["queue"] == "infra.echo" and finished[0]["attempt"] == 1
    assert isinstance(finished[0]["duration_ms"], int | float)
    assert any("concurrency 3" in str(e["message"]) for e in worker.json_lines())


def test_worker_with_a_sync_factory_returning_one_worker(
    dsn: str, schema_name: str, worker_procs: list[_WorkerProcess]
) -> None:
    async def prepare() -> None:
        async with Boss(dsn, schema=schema_name) as boss:
            await boss.create_queue(QueueSpec(name="infra.echo"))

    asyncio.run(prepare())
    worker = _start_worker(worker_procs, dsn, schema_name, app="workers_sync")
    job_id = _send(dsn, schema_name, {"n": 1})
    assert _wait_state(dsn, schema_name, job_id, JobState.COMPLETED) is JobState.COMPLETED
    worker.signal(signal.SIGINT)
    assert worker.exit_code() == 0


def test_grace_runs_out_and_the_job_is_handed_back(
    dsn: str, schema_name: str, worker_procs: list[_WorkerProcess]
) -> None:
    worker = _start_worker(worker_procs, dsn, schema_name, "--shutdown-grace", "0.5")
    job_id = _send(dsn, schema_name, {"sleep": 120})
    assert _wait_state(dsn, schema_name, job_id, JobState.ACTIVE) is JobState.ACTIVE
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    assert _state(dsn, schema_name, job_id) in (JobState.CREATED, JobState.RETRY)


def test_a_second_signal_exits_at_once(
    dsn: str, schema_name: str, worker_procs: list[_WorkerProcess]
) -> None:
    worker = _start_worker(worker_procs, dsn, schema_name, "--shutdown-grace", "300")
    job_id = _send(dsn, schema_name, {"sleep": 300})
    assert _wait_state(dsn, schema_name, job_id, JobState.ACTIVE) is JobState.ACTIVE
    worker.signal(signal.SIGTERM)
    worker.wait_for("shutting down")
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 1
    assert any("exiting now" in str(e["message"]) for e in worker.json_lines())


def test_worker_embedded_is_explicit(worker_procs: list[_WorkerProcess]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _DSN_VARS}
    worker = _WorkerProcess("--app", f"{APP}:workers", "--embedded", env=env)
    worker_procs.append(worker)
    worker.wait_for("workers running")
    assert any("embedded PostgreSQL" in line for line in worker.lines)
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0


def test_module_level_cli_entry_point(dsn: str, schema_name: str) -> None:
    """``python -m typed_queues.runtime.cli`` and the console script share ``main``."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "typed_queues.runtime.cli",
            "migrate",
            "--dsn",
            dsn,
            "--schema",
            schema_name,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (schema_name,),
        ).fetchone()
    assert row is not None and row[0] > 0
