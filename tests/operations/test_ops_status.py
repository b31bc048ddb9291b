"""``queues status``: a paused queue is marked in the table, and ``--json`` prints the same
facts (counts, paused, schedules, warnings) as data."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from typed_queues.runtime import Boss, QueueSpec, Schedule
from typed_queues.runtime.cli import main


async def _setup(dsn: str, schema: str) -> None:
    tick = Schedule(name="ops.tick", queue="ops.a", event="tick", every=timedelta(minutes=5))
    async with Boss(dsn, schema=schema) as boss:
        await boss.create_queues(
            [QueueSpec(name="ops.a", schedules=(tick,)), QueueSpec(name="ops.b")]
        )
        await boss.send("ops.a", {"n": 1})
        await boss.send("ops.b", {"n": 2})
        await boss.send("ops.b", {"n": 3})
        await boss.pause_queue("ops.b")


def test_status_marks_paused_queues_and_prints_json(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_setup(dsn, schema_name))
    capsys.readouterr()
    assert main(["status", "--dsn", dsn, "--schema", schema_name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ops.b (paused) ") for line in lines), lines
    assert any(line.startswith("ops.a ") for line in lines), lines

    assert main(["status", "--dsn", dsn, "--schema", schema_name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["ops.a"]["paused"] is False and queues["ops.a"]["created"] == 1
    assert queues["ops.b"]["paused"] is True and queues["ops.b"]["created"] == 2
    assert queues["ops.b"]["oldest_waiting_s"] >= 0
    [schedule] = data["schedules"]
    assert (schedule["name"], schedule["queue"], schedule["every_s"]) == ("ops.tick", "ops.a", 300)
    assert isinstance(data["warnings"], list)
