"""Shared helpers of the generator tests (a plain module, so no second ``conftest``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden"


def run_module(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m typed_queues.codegen ...`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "typed_queues.codegen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def run_ruff(path: Path) -> tuple[int, str]:
    """``ruff check`` and ``ruff format --check`` with the repository's configuration.

    Run from the repository root so that ``runtime`` counts as first-party for isort.
    """
    outputs: list[str] = []
    code = 0
    config = ["--no-cache", "--config", str(REPO / "pyproject.toml"), str(path)]
    commands = (["check", *config], ["format", "--check", *config])
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        code |= done.returncode
        outputs.append(done.stdout + done.stderr)
    return code, "\n".join(outputs)
