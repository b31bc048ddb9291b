"""Pin the code under test for one soak: a private copy of the runtime and of this harness.

The repository's working tree is shared and may change while a soak runs (a worker restarted
after ``kill -9`` would otherwise import whatever the tree holds at that moment, maybe a newer
schema than the database was migrated to). So before anything starts, ``pin`` copies
``typed_queues/`` and ``runtime/`` (from the working tree, or from a git commit with
``--code REV``) and ``tests/chaos/`` into the run directory, and every soak process runs from
that copy (its working directory comes first on ``sys.path``). Standard library only: this runs
before the runtime is imported.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

__all__ = ["ROOT", "pin"]

ROOT = Path(__file__).resolve().parents[2]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "test_*.py")


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def pin(dest: Path, rev: str | None) -> str:
    """Copy the code under test into ``dest``; returns a description of what was copied."""
    dest.mkdir(parents=True, exist_ok=False)
    if rev is None:
        shutil.copytree(ROOT / "runtime", dest / "runtime", ignore=_IGNORE)
        shutil.copytree(ROOT / "typed_queues", dest / "typed_queues", symlinks=True, ignore=_IGNORE)
        _copy_harness(dest)
        try:
            head = _git("rev-parse", "--short=12", "HEAD")
            dirty = _git("status", "--porcelain", "--", "runtime", "typed_queues")
        except (OSError, subprocess.SubprocessError):
            return "the working tree (not a git checkout)"
        changes = "with uncommitted changes" if dirty else "clean"
        return f"the working tree at {head} ({changes} in runtime/)"
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha, "runtime", "typed_queues"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    _copy_harness(dest)
    return f"commit {sha[:12]}"


def _copy_harness(dest: Path) -> None:
    shutil.copytree(ROOT / "tests" / "chaos", dest / "tests" / "chaos", ignore=_IGNORE)
