"""Driver processes the harness talks to while they run (bench/drivers/scale_driver.py roles).

A `Controlled` process prints `READY`, then `PROGRESS <n>` lines and `SAMPLE {json}` answers,
and finally `BENCH_RESULT {json}`; the harness writes `GO <t0>`, `SAMPLE`, `STOP` and, once it
has read what it needs while the process's connections are still open, `EXIT` to its stdin.
A thread per process reads its stdout so that none of them blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .runner import RESULT_PREFIX, StepError

__all__ = ["Controlled", "go_all", "stop_all"]


class Controlled:
    """One controlled driver process."""

    def __init__(self, name: str, cmd: list[str], stderr: Path | None = None) -> None:
        self.name = name
        self.progress = 0
        self.result: dict[str, Any] | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._samples: queue.Queue[dict[str, Any]] = queue.Queue()
        # stderr goes to `stderr` when given (kept for reading after the run), else to a
        # temporary file read only for an error's tail
        self._stderr = (
            stderr.open("w+b") if stderr is not None else tempfile.TemporaryFile()  # noqa: SIM115
        )
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            bufsize=1,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "READY":
                self._ready.set()
            elif word == "PROGRESS":
                self.progress = int(rest)
            elif word == "SAMPLE":
                self._samples.put(json.loads(rest))
            elif line.startswith(RESULT_PREFIX):
                self.result = json.loads(line[len(RESULT_PREFIX) :])
        self._done.set()
        self._ready.set()  # a process that died before READY must not be waited for

    def _error(self, what: str) -> StepError:
        self._stderr.seek(0)
        tail = " | ".join(self._stderr.read().decode(errors="replace").strip().splitlines()[-6:])
        error = (self.result or {}).get("error", "")
        return StepError(f"{self.name}: {what} {error} {tail}".strip())

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout) or self._done.is_set():
            raise self._error("not ready")

    def tell(self, line: str) -> None:
        if self._done.is_set():
            raise self._error("exited early")
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def sample(self, timeout: float = 10.0) -> dict[str, Any]:
        self.tell("SAMPLE")
        try:
            return self._samples.get(timeout=timeout)
        except queue.Empty:
            raise self._error("no SAMPLE answer") from None

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the result (the process holds its connections until `release()`); kill
        the process if it does not come."""
        deadline = time.monotonic() + timeout
        while self.result is None and not self._done.is_set():
            if time.monotonic() > deadline:
                self.kill()
                raise self._error(f"no result after {timeout:.0f} s")
            time.sleep(0.01)
        if not self.result or not self.result.get("ok"):
            raise self._error("failed")
        return self.result

    def release(self) -> None:
        """Let a process that printed its result close its connections and exit."""
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self.tell("EXIT")
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return not self._done.is_set()

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def go_all(procs: list[Controlled], ready_timeout: float = 120.0) -> float:
    """Wait until every process is ready, then start them all at one monotonic t0."""
    for p in procs:
        p.wait_ready(ready_timeout)
    t0 = time.monotonic()
    for p in procs:
        p.tell(f"GO {t0!r}")
    return t0


def stop_all(procs: list[Controlled], timeout: float = 120.0) -> list[dict[str, Any]]:
    """STOP every process and collect the results (the processes wait for `release()`)."""
    for p in procs:
        if p.alive():
            p.tell("STOP")
    return [p.finish(timeout) for p in procs]
