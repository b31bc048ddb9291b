"""``queues jobs``, ``queues dlq redrive`` and ``queues purge`` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import pytest

from typed_queues.runtime import Boss, JobId, JobState
from typed_queues.runtime.cli import main

from .ops_support import DEAD, WORK, make_queues


class _Terminal(io.StringIO):
    """Standard input that answers a confirmation question."""

    def isatty(self) -> bool:
        return True


def _run(*argv: str) -> int:
    return main(list(argv))


def _db(dsn: str, schema: str) -> list[str]:
    return ["--dsn", dsn, "--schema", schema]


def _setup(dsn: str, schema: str) -> dict[str, Any]:
    """Two failed jobs (dead-lettered), one queued, one completed."""

    async def fill() -> dict[str, Any]:
        async with Boss(dsn, schema=schema) as boss:
            await make_queues(boss)
            made: dict[str, Any] = {}
            made["failed"] = await boss.send_many(
                WORK, [{"event": "charge", "payload": {"n": n}, "metadata": {}} for n in range(2)]
            )
            for job in await boss.fetch(WORK, batch_size=2):
                assert await boss.fail(job, ValueError(f"declined {job.data['payload']['n']}"))
            made["queued"] = await boss.send(WORK, {"event": "refund", "payload": {}})
            made["done"] = await boss.send(WORK, {"event": "refund", "payload": {"x": 1}})
            for job in await boss.fetch(WORK, batch_size=2):
                if job.id == made["done"]:
                    assert await boss.complete(job)
                else:
                    assert await boss.cancel(job.id) and await boss.resume(job.id)
            copy = await boss.get_job(made["failed"][0])
            assert copy is not None
            made["copy"] = copy.dead_letter_id
            return made

    return asyncio.run(fill())


def _state(dsn: str, schema: str, job_id: JobId) -> JobState | None:
    async def read() -> JobState | None:
        async with Boss(dsn, schema=schema) as boss:
            job = await boss.get_job(job_id)
            return None if job is None else job.state

    return asyncio.run(read())


def test_jobs_list_text_json_and_pages(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = _setup(dsn, schema_name)
    capsys.readouterr()
    assert _run("jobs", "list", *_db(dsn, schema_name), "--state", "failed") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "queue", "state", "event", "retries", "created", "note"]
    assert len(lines) == 3
    assert all(str(job_id) in out for job_id in made["failed"])
    assert "ValueError: declined" in out

    assert _run("jobs", "list", *_db(dsn, schema_name), "--queue", DEAD, "--json") == 0
    page = json.loads(capsys.readouterr().out)
    assert {job["dead_letter_of"] for job in page["jobs"]} == {str(i) for i in made["failed"]}
    assert page["next"] is None

    seen: list[str] = []
    after: list[str] = []
    for _ in range(10):
        assert _run("jobs", "list", *_db(dsn, schema_name), "--limit", "2", "--json", *after) == 0
        page = json.loads(capsys.readouterr().out)
        seen.extend(job["id"] for job in page["jobs"])
        if page["next"] is None:
            break
        after = ["--after", page["next"]]
    assert len(seen) == len(set(seen)) == 6  # 4 in ops.work, 2 copies

    assert _run("jobs", "list", *_db(dsn, schema_name), "--event", "refund", "--json") == 0
    events = {job["event"] for job in json.loads(capsys.readouterr().out)["jobs"]}
    assert events == {"refund"}

    assert _run("jobs", "list", *_db(dsn, schema_name), "--limit", "1") == 0
    assert "more: add --after " in capsys.readouterr().out


def test_jobs_show_prints_every_attempt_and_the_links(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = _setup(dsn, schema_name)
    job_id = made["failed"][0]
    capsys.readouterr()
    assert _run("jobs", "show", *_db(dsn, schema_name), str(job_id)) == 0
    out = capsys.readouterr().out
    assert f"job {job_id}" in out
    assert "state:        failed" in out
    assert "attempts:     1 of at most 1" in out
    assert "attempt 1," in out and "ValueError: declined 0" in out
    assert f"dead letter:  copied to {made['copy']} in {DEAD}" in out
    assert '"event": "charge"' in out  # the envelope
    assert "    | ValueError: declined 0" in out  # the traceback (of an exception not raised)

    assert _run("jobs", "show", *_db(dsn, schema_name), str(made["copy"]), "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["dead_letter_of"] == str(job_id)
    assert document["queue"] == DEAD
    assert _run("jobs", "show", *_db(dsn, schema_name), str(job_id), "--json") == 0
    document = json.loads(capsys.readouterr().out)
    [error] = document["errors"]
    assert (error["attempt"], error["type"], error["message"]) == (1, "ValueError", "declined 0")
    assert error["worker"]["pid"] > 0
    assert error["dead_letter_id"] == str(made["copy"])

    missing = str(uuid.uuid4())
    assert _run("jobs", "show", *_db(dsn, schema_name), missing) == 1
    assert capsys.readouterr().err.strip() == (
        f"queues: error: no job {missing} in schema {schema_name!r}"
    )


def test_jobs_retry_cancel_resume_by_id(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = _setup(dsn, schema_name)
    first, second = made["failed"]
    capsys.readouterr()
    assert _run("jobs", "retry", *_db(dsn, schema_name), str(first), str(second)) == 0
    assert capsys.readouterr().out.splitlines() == [f"retried {first}", f"retried {second}"]
    assert _state(dsn, schema_name, made["copy"]) is JobState.COMPLETED  # settled

    # a job in the wrong state, and one that does not exist: exit 1, each said
    missing = uuid.uuid4()
    code = _run("jobs", "retry", *_db(dsn, schema_name), str(made["done"]), str(missing))
    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        f"not retried {made['done']}: it is completed: only a failed job can be retried",
        f"not retried {missing}: no such job",
    ]

    assert _run("jobs", "cancel", *_db(dsn, schema_name), str(made["queued"]), "--json") == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result == {"id": str(made["queued"]), "ok": True, "state": "cancelled", "reason": None}
    assert _run("jobs", "resume", *_db(dsn, schema_name), str(made["queued"])) == 0
    assert capsys.readouterr().out.strip() == f"resumed {made['queued']}"
    assert _state(dsn, schema_name, made["queued"]) is JobState.CREATED


def test_dlq_redrive_dry_run_then_for_real(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = _setup(dsn, schema_name)
    capsys.readouterr()
    assert _run("dlq", "redrive", DEAD, *_db(dsn, schema_name), "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"{DEAD}: 2 dead-letter copies; would requeue 2 original jobs, would settle 2 copies, "
        "left 0 alone"
    )
    assert all(_state(dsn, schema_name, job_id) is JobState.FAILED for job_id in made["failed"])

    assert _run("dlq", "redrive", DEAD, *_db(dsn, schema_name), "--limit", "1", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["requeued"], report["settled"], report["dry_run"]) == (1, 1, False)
    assert _run("dlq", "redrive", DEAD, *_db(dsn, schema_name)) == 0
    assert "requeued 1 original jobs" in capsys.readouterr().out
    assert all(_state(dsn, schema_name, job_id) is JobState.RETRY for job_id in made["failed"])


def test_purge_asks_first_and_refuses_active_jobs(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _setup(dsn, schema_name)
    capsys.readouterr()
    args = ["purge", WORK, *_db(dsn, schema_name), "--state", "failed"]

    assert _run(*args, "--dry-run") == 0
    assert capsys.readouterr().out.strip() == f"would delete 2 failed jobs of {WORK}"

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal: --yes is needed
    assert _run(*args) == 2
    assert "pass --yes" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert _run(*args) == 1
    captured = capsys.readouterr()
    assert f"delete 2 failed jobs of {WORK}? [y/N]" in captured.out
    assert "nothing was deleted" in captured.err
    assert _state(dsn, schema_name, made["failed"][0]) is JobState.FAILED

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert _run(*args) == 0
    assert capsys.readouterr().out.endswith(f"deleted 2 failed jobs of {WORK}\n")
    assert _state(dsn, schema_name, made["failed"][0]) is None

    assert _run("purge", WORK, *_db(dsn, schema_name), "--state", "completed", "--yes") == 0
    assert capsys.readouterr().out.strip() == f"deleted 1 completed jobs of {WORK}"
    older = ["--state", "created", "--older-than", "7d", "--yes", "--json"]
    assert _run("purge", WORK, *_db(dsn, schema_name), *older) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 0  # the queued one is newer

    assert _run("purge", WORK, *_db(dsn, schema_name), "--state", "active", "--yes") == 2
    assert "refusing to purge active jobs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jobs", "show", "not-a-uuid"], "invalid job id 'not-a-uuid': a job id is a UUID"),
        (["jobs", "retry", str(uuid.UUID(int=1)), "42"], "invalid job id '42'"),
        (["jobs", "list", "--queue", "bad name"], "invalid queue name 'bad name'"),
        (["jobs", "list", "--queue", "ops.nowhere"], 'unknown queue "ops.nowhere"'),
        (["jobs", "list", "--after", "garbage"], "invalid cursor 'garbage'"),
        (["jobs", "list", "--event", "x" * 300], "invalid event name"),
        (["dlq", "redrive", "ops.nowhere"], 'unknown queue "ops.nowhere"'),
        (["dlq", "redrive", "x;drop"], "invalid queue name 'x;drop'"),
        (["purge", "ops.nowhere", "--state", "failed", "--yes"], 'unknown queue "ops.nowhere"'),
    ],
)
def test_bad_ids_and_names_are_one_line_errors(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _setup(dsn, schema_name)
    capsys.readouterr()
    assert _run(*argv, *_db(dsn, schema_name)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("queues: error: ")
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jobs", "list", "--limit", "0"], "must be from 1 to 1000"),
        (["jobs", "list", "--state", "done"], "invalid choice: 'done'"),
        (["dlq", "redrive", "q", "--limit", "many"], "not an integer: 'many'"),
        (["purge", "q", "--state", "failed", "--older-than", "3 days"], "invalid duration"),
        (["purge", "q"], "the following arguments are required: --state"),
    ],
)
def test_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run(*argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unmigrated_schema_says_to_migrate(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("jobs", "list", *_db(dsn, schema_name)) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith(f"run `queues migrate --schema {schema_name}`")
