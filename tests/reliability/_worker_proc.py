"""A real worker process for the reliability tests.

Run as ``python -m tests.reliability._worker_proc '<json config>'`` with the project's venv. It
starts a ``Boss`` in the configured schema and one ``Worker`` per configured queue whose handler
records what it does in two tables of the same schema (created by the test beforehand):

* ``rel_started(job_id, attempt, pid, at)``: one committed row when an execution begins;
* ``rel_effects(job_id, attempt, pid, at)``: the side effect, one committed row per execution
  that got to its end (``recorder: "batched"`` commits them in small batches instead, for the
  load tests where no process is killed; ``recorder: "file"`` appends lines to ``record_file``
  and needs no connection at all).

The handler's behaviour comes from the job's data (keys are optional); a queue configured with
``"sync": true`` gets a sync handler through ``Boss.worker`` instead (it runs in a thread and
knows only ``sleep``, ``sleep_first`` and ``output``):

* ``sleep``: seconds to sleep on every attempt; ``sleep_first``: seconds on attempt 1 only;
* ``raise``: ``"error"``, ``"nul"`` (message with a NUL), ``"permanent"``, ``"systemexit"``,
  ``"keyboardinterrupt"``, ``"cancelled"``, ``"baseexception"``; ``raise_first`` raises only on
  attempt 1;
* ``output``: ``"unserialisable"``, ``"nan"``, ``"nul"``, ``"pid"`` or any JSON value to return;
* ``use_db``: true to call ``boss.get_job`` in a loop (the Boss's pool) instead of sleeping.

Other modes (``mode`` in the config): ``"migrate"`` migrates and exits; ``"send"`` sends the jobs
in ``sends`` and prints their ids. ``clock_offset`` (seconds) shifts this process's wall clock.

The process prints ``READY`` on stdout once its workers run and logs JSON lines on stderr. On
SIGTERM it stops its workers (the runtime's graceful stop); a second SIGTERM exits at once.
``cli_workers`` (built from ``$REL_WORKER_CONFIG``) serves ``queues worker --app`` instead, so
that the shutdown test drives the real command and its signal handling.
"""

from __future__ import annotations

import asyncio
import datetime as _datetime_module
import json
import math
import os
import signal
import sys
import time
import time as _time_module
from datetime import timedelta
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql

_DURATION_KEYS = frozenset(
    {
        "lease",
        "poll_interval",
        "shutdown_grace",
        "maintenance_interval",
        "heartbeat_interval",
        "expire_in",
        "retention",
        "completion_interval",
        "flush_interval",
    }
)


def _shift_clock(offset: float) -> None:
    """Shift this process's wall clock by ``offset`` seconds (``time`` and ``datetime``).

    Must run after psycopg is imported (its adapters keep the real ``datetime`` class) and before
    the runtime is imported (which then sees the shifted class). The monotonic clock is untouched,
    as it would be on a machine whose wall clock is wrong.
    """
    real_time = _time_module.time
    real_time_ns = _time_module.time_ns
    _time_module.time = lambda: real_time() + offset
    _time_module.time_ns = lambda: real_time_ns() + int(offset * 1e9)
    real = _datetime_module.datetime
    delta = timedelta(seconds=offset)

    class _Meta(type):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, real)

    class _ShiftedDatetime(real, metaclass=_Meta):  # type: ignore[misc,valid-type]
        @classmethod
        def now(cls, tz: _datetime_module.tzinfo | None = None) -> _datetime_module.datetime:
            return real.now(tz) + delta

        @classmethod
        def utcnow(cls) -> _datetime_module.datetime:
            return real.now(_datetime_module.UTC).replace(tzinfo=None) + delta

        @classmethod
        def today(cls) -> _datetime_module.datetime:
            return real.today() + delta

    _datetime_module.datetime = _ShiftedDatetime  # type: ignore[misc]


def _durations(options: dict[str, Any]) -> dict[str, Any]:
    """Config values are JSON: seconds become ``timedelta`` for the duration options."""
    return {
        key: timedelta(seconds=value) if key in _DURATION_KEYS and value is not None else value
        for key, value in options.items()
    }


class _Recorder:
    """Commits one row per event: immediately (``each``) or in small batches (``batched``)."""

    def __init__(self, dsn: str, schema: str, mode: str, path: str | None = None) -> None:
        self._schema = schema
        self._mode = mode
        self._fd = -1
        if mode == "file":
            assert path is not None, "recorder 'file' needs record_file"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pool = psycopg_pool.AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=1 if mode == "batched" else 2,
            kwargs={"autocommit": True},
            open=False,
        )
        self._pending: list[tuple[str, str, int]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._opened = False
        self._lock = asyncio.Lock()

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        async with self._lock:
            if not self._opened:
                await self._pool.open(wait=True)
                if self._mode == "batched":
                    self._flusher = asyncio.create_task(self._flush_loop())
                self._opened = True

    async def close(self) -> None:
        if not self._opened:
            return
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush()
        await self._pool.close()

    async def record(self, table: str, job_id: str, attempt: int) -> None:
        if self._mode == "file":
            os.write(self._fd, f"{table} {job_id} {attempt}\n".encode())
            return
        await self._ensure_open()
        if self._mode == "batched":
            self._pending.append((table, job_id, attempt))
            return
        statement = sql.SQL("INSERT INTO {}.{} (job_id, attempt, pid) VALUES (%s, %s, %s)").format(
            sql.Identifier(self._schema), sql.Identifier(table)
        )
        async with self._pool.connection() as conn:
            await conn.execute(statement, (job_id, attempt, os.getpid()))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            await self._flush()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        pid = os.getpid()
        async with self._pool.connection() as conn, conn.transaction():
            for table in ("rel_started", "rel_effects"):
                rows = [(job_id, attempt, pid) for t, job_id, attempt in pending if t == table]
                if not rows:
                    continue
                copy_sql = sql.SQL("COPY {}.{} (job_id, attempt, pid) FROM STDIN").format(
                    sql.Identifier(self._schema), sql.Identifier(table)
                )
                async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in rows:
                        await copy.write_row(row)


def _make_handler(boss: Any, recorder: _Recorder, record_start: bool) -> Any:
    from typed_queues.runtime import PermanentJobError

    async def handler(ctx: Any) -> object:
        data: dict[str, Any] = ctx.data if isinstance(ctx.data, dict) else {}
        job_id = str(ctx.id)
        attempt = int(ctx.attempt)
        if record_start:
            await recorder.record("rel_started", job_id, attempt)
        delay = float(data.get("sleep", 0))
        if attempt == 1:
            delay += float(data.get("sleep_first", 0))
        if data.get("use_db"):
            # Use the database (through the Boss's pool) all the time the job runs.
            end = time.monotonic() + delay
            while time.monotonic() < end:
                await boss.get_job(ctx.id)
        elif delay:
            await asyncio.sleep(delay)
        kind = data.get("raise")
        if kind is None and attempt == 1:
            kind = data.get("raise_first")
        if kind is not None:
            await recorder.record("rel_effects", job_id, attempt)
            _raise(kind, PermanentJobError)
        await recorder.record("rel_effects", job_id, attempt)
        return _output(data.get("output"))

    return handler


def _make_sync_handler(dsn: str, schema: str) -> Any:
    """The handler for ``Boss.worker`` with a sync processor (it runs in a thread): sleeps and
    records like the async one, on a connection of its own per call."""

    def record(table: str, job_id: str, attempt: int) -> None:
        statement = sql.SQL("INSERT INTO {}.{} (job_id, attempt, pid) VALUES (%s, %s, %s)").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement, (job_id, attempt, os.getpid()))

    def handler(ctx: Any) -> object:
        data: dict[str, Any] = ctx.data if isinstance(ctx.data, dict) else {}
        job_id, attempt = str(ctx.id), int(ctx.attempt)
        record("rel_started", job_id, attempt)
        delay = float(data.get("sleep", 0))
        if attempt == 1:
            delay += float(data.get("sleep_first", 0))
        time.sleep(delay)
        record("rel_effects", job_id, attempt)
        return _output(data.get("output"))

    return handler


def _raise(kind: str, permanent: type[Exception]) -> None:
    if kind == "error":
        raise RuntimeError("handler failed on purpose")
    if kind == "nul":
        raise RuntimeError("bad\x00message with a NUL \x00 inside")
    if kind == "permanent":
        raise permanent("permanent failure on purpose")
    if kind == "systemexit":
        raise SystemExit(3)
    if kind == "keyboardinterrupt":
        raise KeyboardInterrupt
    if kind == "cancelled":
        raise asyncio.CancelledError
    if kind == "baseexception":
        raise BaseException("a bare BaseException")
    raise AssertionError(f"unknown raise kind {kind!r}")


def _output(spec: Any) -> object:
    if spec == "unserialisable":
        return object()
    if spec == "nan":
        return {"value": math.nan}
    if spec == "nul":
        return {"text": "a\x00b"}
    if spec == "pid":
        return {"pid": os.getpid()}
    return spec


def _build(config: dict[str, Any]) -> tuple[Any, list[Any], _Recorder]:
    """The Boss, its Workers and the recorder described by ``config`` (nothing started)."""
    from typed_queues.runtime import Boss, Worker

    dsn = config["dsn"]
    schema = config["schema"]
    boss = Boss(dsn, schema=schema, **_durations(config.get("boss", {})))
    recorder = _Recorder(dsn, schema, config.get("recorder", "each"), config.get("record_file"))
    handler = _make_handler(boss, recorder, config.get("record_start", True))
    sync_handler = _make_sync_handler(dsn, schema)
    workers = [
        boss.worker(
            spec["name"],
            sync_handler,
            concurrency=spec.get("concurrency", 10),
            **_durations(spec.get("worker", {})),
        )
        if spec.get("sync")
        else Worker(
            boss,
            spec["name"],
            handler,
            concurrency=spec.get("concurrency", 10),
            **_durations(spec.get("worker", {})),
        )
        for spec in config["queues"]
    ]
    return boss, workers, recorder


def __getattr__(name: str) -> Any:
    """``cli_workers``: the workers of ``$REL_WORKER_CONFIG``, for ``queues worker --app``."""
    if name == "cli_workers":
        _boss, workers, _recorder = _build(json.loads(os.environ["REL_WORKER_CONFIG"]))
        return workers
    raise AttributeError(name)


async def _run_worker(config: dict[str, Any]) -> int:
    boss, workers, recorder = _build(config)
    await boss.start()
    for worker in workers:
        await worker.start()

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_term() -> None:
        if stopping.is_set():
            print("SECOND SIGNAL: exiting at once", file=sys.stderr, flush=True)
            os._exit(2)
        stopping.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    print("READY", flush=True)
    await stopping.wait()
    print("STOPPING", flush=True)
    for worker in workers:
        await worker.stop()
    await boss.stop()
    await recorder.close()
    print("STOPPED", flush=True)
    return 0


def _wait_for_file(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.002)


async def _run_migrate(config: dict[str, Any]) -> int:
    from typed_queues.runtime import Boss

    boss = Boss(config["dsn"], schema=config["schema"], **_durations(config.get("boss", {})))
    print("WAITING", flush=True)
    if config.get("go_file"):
        await asyncio.to_thread(_wait_for_file, config["go_file"])
    try:
        await boss.start(migrate=True)
    except Exception as exc:
        print(f"MIGRATE FAILED {type(exc).__name__}: {exc}", flush=True)
        return 1
    await boss.stop()
    print("MIGRATED", flush=True)
    return 0


async def _run_send(config: dict[str, Any]) -> int:
    from typed_queues.runtime import Boss

    options = _durations(config.get("boss", {}))
    async with Boss(config["dsn"], schema=config["schema"], **options) as boss:
        for item in config["sends"]:
            delay = item.get("start_after_seconds")
            job_id = await boss.send(
                item["queue"],
                item["data"],
                start_after=None if delay is None else timedelta(seconds=delay),
            )
            print(f"SENT {job_id}", flush=True)
    return 0


def main() -> int:
    config: dict[str, Any] = json.loads(sys.argv[1])
    offset = float(config.get("clock_offset", 0))
    if offset:
        _shift_clock(offset)
    from typed_queues.runtime.logging_setup import configure_logging

    configure_logging("json", level=config.get("log_level", "INFO"))
    mode = config.get("mode", "worker")
    runner = {"worker": _run_worker, "migrate": _run_migrate, "send": _run_send}[mode]
    return asyncio.run(runner(config))


if __name__ == "__main__":
    assert psycopg  # imported before the clock shift on purpose
    sys.exit(main())
