"""py-spy, installed in its own virtualenv under bench/.cache, and a reader for its raw output.

`py-spy record --format raw` writes one line per distinct stack: `frame;frame;...;leaf count`,
each frame `function (file:line)`. `summarize` turns that into self time per function and
inclusive time per runtime module, the two views PROFILE.md needs; stacks inside an import
(the driver's start-up) are left out.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .envs import install_venv

__all__ = ["Profile", "pyspy_path", "record", "summarize"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def pyspy_path(cache: Path) -> Path:
    env = install_venv(cache, "pyspy", ["py-spy"], upgrade=False)
    if not env.ok or env.home is None:
        raise RuntimeError(f"py-spy is not available: {env.reason}")
    return env.home / "bin" / "py-spy"


def record(
    pyspy: Path, cmd: list[str], out: Path, rate: int = 1000
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` under py-spy (idle frames excluded: only time spent on CPU counts)."""
    return subprocess.run(
        [str(pyspy), "record", "--format", "raw", "--rate", str(rate), "-o", str(out), "--", *cmd],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    total: int
    self_by_function: list[tuple[str, int]]
    inclusive_by_module: list[tuple[str, int]]


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def summarize(raw: Path, top: int = 25) -> Profile:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [m.groupdict() for f in stack.split(";") if (m := _FRAME.match(f.strip()))]
        if not frames or any(f["file"].startswith("<frozen importlib") for f in frames):
            continue  # start-up imports are not the phase being profiled
        total += count
        leaf = frames[-1]
        self_time[f"{leaf['func']} ({_short(leaf['file'])})"] += count
        for module in {_short(f["file"]) for f in frames}:
            inclusive[module] += count
    return Profile(total, self_time.most_common(top), inclusive.most_common(top))
