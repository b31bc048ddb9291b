"""The suite's no-DSN path: with QUEUES_TEST_DSN (and every other DSN variable) unset, the
``dsn`` fixture of tests/conftest.py starts an embedded PostgreSQL. Run a real round trip that
way in a subprocess, so that path cannot rot while CI runs against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .test_roundtrip import EXPECT_EMBEDDED

ROOT = Path(__file__).parents[2]
_DSN_VARS = ("QUEUES_TEST_DSN", "QUEUES_DSN", "DATABASE_URL")


def test_the_suite_runs_on_the_embedded_server_without_any_dsn() -> None:
    env = {key: value for key, value in os.environ.items() if key not in _DSN_VARS}
    env[EXPECT_EMBEDDED] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/infra/test_roundtrip.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
