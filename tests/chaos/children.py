"""The soak's child processes (workers and producers): start, signal, restart, watch.

Each child runs in its own process group with its output in files of the run directory, and
dies with the controller (``lifeline``). Every start and end is recorded as a ``proc`` line:
``started``, ``killed`` (by the controller: ``kill -9`` or a stop that timed out), ``exited``
(after a SIGTERM the controller sent) or ``crashed`` (exited on its own). A run's end time
falls back to its process's end when the run has no ``end`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .history import Recorder

__all__ = ["Child"]

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """One named child; ``spawn()`` starts a new incarnation (after a kill or a crash)."""

    def __init__(
        self,
        name: str,
        module: str,
        args: Callable[[Path, int], list[str]],
        run_dir: Path,
        recorder: Recorder,
    ) -> None:
        self.name = name
        self.module = module
        self._args = args  # (record file, incarnation) -> arguments after the module
        self.run_dir = run_dir
        self.recorder = recorder
        self.incarnation = 0
        self.popen: subprocess.Popen[bytes] | None = None
        self.stopped = False  # SIGSTOPped by a fault
        self._ended = True
        self._ending = False  # the controller is ending it: an exit is no crash

    @property
    def pid(self) -> int:
        return -1 if self.popen is None else self.popen.pid

    def _path(self, suffix: str) -> Path:
        return self.run_dir / "logs" / f"{self.name}.{self.incarnation}.{suffix}"

    def spawn(self) -> None:
        self.incarnation += 1
        record = self.run_dir / "history" / f"{self.name}.{self.incarnation}.jsonl"
        argv = [sys.executable, "-m", self.module, *self._args(record, self.incarnation)]
        with self._path("out").open("wb") as out, self._path("err").open("wb") as err:
            self.popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.stopped = False
        self._ended = False
        self._ending = False
        self.recorder.write(
            "proc", what="started", name=self.name, pid=self.pid, inc=self.incarnation
        )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self, suffix: str = "err") -> str:
        try:
            return self._path(suffix).read_text(errors="replace")
        except OSError:
            return ""

    async def wait_ready(self, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while "READY" not in self.output("out"):
            if not self.alive():
                raise RuntimeError(f"{self.name} exited before READY:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not READY after {timeout:.0f} s")
            await asyncio.sleep(0.1)

    def _end(self, what: str) -> None:
        if not self._ended and self.popen is not None:
            self._ended = True
            fields: dict[str, object] = {"rc": self.popen.returncode}
            if what == "crashed":
                fields["stderr"] = self.output()[-3000:]
            self.recorder.write("proc", what=what, name=self.name, pid=self.pid, **fields)

    def _signal(self, sig: signal.Signals) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def kill9(self) -> None:
        """``kill -9`` and wait until it is gone (the recorded end is after its death)."""
        self._ending = True
        self._signal(signal.SIGKILL)
        await self._wait(30.0)
        self.stopped = False
        self._end("killed")

    def sigstop(self) -> None:
        self._signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self) -> None:
        self._signal(signal.SIGCONT)
        self.stopped = False

    async def _wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def terminate(self, timeout: float) -> None:  # noqa: ASYNC109
        """SIGTERM (a graceful stop), then ``kill -9`` after ``timeout`` seconds."""
        if not self.alive():
            self.crashed()
            return
        self._ending = True
        self.sigcont()
        self._signal(signal.SIGTERM)
        if await self._wait(timeout):
            self._end("exited")
        else:
            await self.kill9()

    def crashed(self) -> bool:
        """True (and recorded once) when the process ended without the controller ending it."""
        if self.popen is None or self._ended or self._ending or self.alive():
            return False
        self._end("crashed")
        return True

    def cleanup(self) -> None:
        """Last resort: whatever is left is killed (synchronously)."""
        if self.alive():
            self._ending = True
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGKILL)
            assert self.popen is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=30)
            self._end("killed")
