"""The peers' environments, installed by the harness under bench/.cache.

* Python peers: one virtualenv each (bench/.cache/venvs/<name>), the newest release from PyPI.
* pg-boss: the newest 12.x from npm into bench/.cache/node.

A full run upgrades to the newest release; a quick run reuses what the cache holds and installs
only what is missing. Any failure here makes that peer unavailable (with the reason), never a
failed benchmark.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Env", "install_node_package", "install_venv"]

INSTALL_TIMEOUT = 600


@dataclass(frozen=True, slots=True)
class Env:
    """Where a peer's interpreter lives, or why it is not available."""

    ok: bool
    executable: str = ""
    home: Path | None = None
    reason: str = ""
    seconds: float = 0.0


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {' | '.join(tail)}")


def _marker(home: Path) -> Path:
    return home / "bench-installed.json"


def install_venv(cache: Path, name: str, requirements: list[str], *, upgrade: bool) -> Env:
    """A virtualenv with `requirements`, made with this interpreter's `venv` module."""
    home = cache / "venvs" / name
    python = home / "bin" / "python"
    t0 = time.perf_counter()
    try:
        if _marker(home).exists() and python.exists() and not upgrade:
            return Env(True, str(python), home, seconds=time.perf_counter() - t0)
        if not python.exists():
            shutil.rmtree(home, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(home)])
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, "--upgrade", *requirements])
        _marker(home).write_text(json.dumps({"requirements": requirements}), encoding="utf-8")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return Env(False, reason=f"install failed: {exc}", seconds=time.perf_counter() - t0)
    return Env(True, str(python), home, seconds=time.perf_counter() - t0)


def install_node_package(
    cache: Path, package_json: Path, name: str, version_range: str, *, upgrade: bool
) -> Env:
    """`npm install name@range` into cache/node (beside the driver's package.json)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return Env(False, reason="node and npm are not on PATH")
    home = cache / "node"
    installed = home / "node_modules" / name / "package.json"
    t0 = time.perf_counter()
    try:
        if installed.exists() and not upgrade:
            return Env(True, node, home, seconds=time.perf_counter() - t0)
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package_json, home / "package.json")
        _run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--no-package-lock",
             f"{name}@{version_range}"],
            cwd=home,
        )  # fmt: skip
        if not installed.exists():
            raise RuntimeError(f"npm finished but {installed} is missing")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return Env(False, reason=f"install failed: {exc}", seconds=time.perf_counter() - t0)
    return Env(True, node, home, seconds=time.perf_counter() - t0)
