"""CPU seconds of the PostgreSQL backends serving one database, read from /proc while a run goes.

A backend's process title names its database ("postgres: 15/main: user dbname host(port) ..."),
so sampling /proc every few milliseconds and keeping each matching pid's latest utime+stime
gives the server-side CPU of a run, apart from other databases' sessions on a shared server.
A backend that started after the measurement began counts from zero (its start time in
/proc/<pid>/stat says so), so only the CPU a backend uses after its last sample can be missed:
take a last `sample()` before the client disconnects when that matters.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["BackendCpu"]

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_and_start(pid: str) -> tuple[float, float] | None:
    """(utime + stime, start time since boot), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[19]) / _TICK


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


class BackendCpu:
    """`with BackendCpu(dbname) as cpu: ...; cpu.seconds` (backends seen while it ran)."""

    def __init__(self, dbname: str, interval: float = 0.02) -> None:
        self._needle = f" {dbname} ".encode()
        self._interval = interval
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()
        self._began = 0.0

    def sample(self) -> None:
        """Read every backend of the database now (also done every `interval` seconds)."""
        with self._lock:
            self._sample()

    def _sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            if not title.startswith(b"postgres:") or self._needle not in title:
                continue
            got = _cpu_and_start(entry.name)
            if got is not None:
                cpu, started = got
                # one clock tick of slack: a backend started with the measurement is new
                self._first.setdefault(entry.name, 0.0 if started >= self._began - 0.01 else cpu)
                self._last[entry.name] = cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> BackendCpu:
        self._began = _uptime()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        """CPU used by the database's backends since each was first seen."""
        return sum(self._last[pid] - self._first[pid] for pid in self._last)

    @property
    def backends(self) -> int:
        return len(self._last)
