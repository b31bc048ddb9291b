"""A short chaos soak end to end (about 45 s of load with a fixed seed): the harness starts its
private PostgreSQL, workers, producers and proxies, injects faults, drains, checks the history,
and leaves no process or cluster behind. It needs no database of the suite's own."""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261201


def _missing() -> str | None:
    """Why this machine cannot run the soak (it needs PostgreSQL's server binaries, and a
    ``postgres`` user to run them as when we are root), or None."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


@pytest.mark.timeout(600)
def test_chaos_soak_smoke(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "tests.chaos", "--minutes", "0.75", "--seed", str(SEED)]
    argv += ["--workdir", str(run_dir)]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=480)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the controller cleans up on SIGTERM
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"the soak did not finish in time:\n{output[-6000:]}")
    assert proc.returncode == 0, output[-8000:]
    assert "violations: none" in output
    assert re.search(r"faults \([1-9]\d*\)", output), output
    completed = re.search(r"completed: (\d+)", output)
    assert completed and int(completed.group(1)) > 100, output
    cluster = re.search(r"private PostgreSQL on 127\.0\.0\.1:\d+ \((\S+)\)", output)
    assert cluster, output
    assert not Path(cluster.group(1)).exists(), "the private cluster's directory was left behind"
    assert (run_dir / "summary.json").is_file()
