"""The soak's history: append-only JSONL files, one per process, one line per event.

Every line is one ``write(2)`` on a file opened with ``O_APPEND`` and nothing is buffered in
the process, so a ``kill -9`` loses no line that was written before it. Times are
``time.time()`` (all processes run on one machine, so they share the clock).

Line kinds (``ev``): ``intent`` and ``outcome`` (producers: what is about to be sent, then
whether it committed), ``start`` and ``end`` (workers: one handler run), ``fault`` (the
controller: one injected fault), ``proc`` (the controller: a process started or ended) and
``sample`` (the controller: one look at the live singleton keys).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Recorder", "read_history"]


class Recorder:
    """Appends JSON lines to one file; ``write`` is synchronous and unbuffered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, ev: str, **fields: Any) -> None:
        record = {"ev": ev, "t": time.time(), **fields}
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_history(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record of every ``*.jsonl`` file in ``directory`` (files in name order). A last
    line cut short by a kill (no newline, not JSON) is skipped."""
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.endswith("\n"):
                    break
                yield json.loads(line)
