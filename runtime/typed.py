"""What the generated SDK (``queues generate``) is built on, so that it holds only what varies
per catalogue: the payload base class, the send helpers behind every ``enqueue_*`` function,
and the worker that a queue's routes describe.

The generated code calls these with its own names and types around them; they are usable by
hand too (``Route`` and ``build_worker`` for a worker of typed events, say).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any, NoReturn, TypeVar

from psycopg import AsyncConnection, Connection
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import SchemaSerializer

from . import (
    Boss,
    InvalidPayloadError,
    JobContext,
    JobId,
    PermanentJobError,
    SyncBoss,
    UnknownEventError,
    Worker,
    make_envelope,
    process_job,
)
from .client.requests import EncodedMany
from .db.encoding import json_text
from .worker.threads import DaemonThreads

__all__ = [
    "Payload",
    "Route",
    "build_worker",
    "envelope",
    "envelopes",
    "envelopes_json",
    "router",
    "send_event",
    "send_event_sync",
    "send_events",
    "send_events_sync",
]

_Model = TypeVar("_Model", bound=BaseModel)
_MAX_ERRORS = 5


class Payload(BaseModel):
    """Base class of the generated payload models: unknown fields are refused.

    That is ``additionalProperties: false`` in the catalogue, the usual case; the model of an
    object that allows other fields says so in its own ``model_config``.
    """

    model_config = ConfigDict(extra="forbid")


# -- sending ------------------------------------------------------------------------------------


def envelope(event: str, payload: BaseModel, source: str | None) -> dict[str, Any]:
    """The job data of one typed payload: the event, the payload as JSON with its fields named
    as in the catalogue (aliases), and the sender's ``source``."""
    return make_envelope(event, payload.model_dump(mode="json", by_alias=True), source=source)


def envelopes(
    event: str, payloads: Iterable[BaseModel], source: str | None
) -> list[dict[str, Any]]:
    """The job data of a batch of one event, built in one pass over ``payloads``.

    The envelopes share one ``metadata`` (one timestamp: the batch is sent at once).
    """
    return list(map(_Frame(event, source).envelope, payloads))


def envelopes_json(event: str, payloads: Iterable[BaseModel], source: str | None) -> EncodedMany:
    """``envelopes`` as the JSON texts the send stores, lazily (the send checks and streams
    them as they come), with one ``metadata`` for the batch, taken now.

    Each text is written in one pass, with no dict in between: the payload by pydantic's
    serialiser (``model_dump_json(by_alias=True)``) between the envelope's text before and
    after it. A payload whose text could differ from ``envelope``'s (as jsonb) is given as
    ``envelope``'s dict instead, which the engine encodes, or refuses, as it always did:

    * a non-finite float, which pydantic's JSON writes as ``null`` (or ``NaN``,
      ``Infinity``: the model's ``ser_json_inf_nan``) and the engine refuses: the payload of
      a model that may hold a float (or has serialisers of the user's, ``_json_exact``)
      whose text holds one of those words;
    * what pydantic's JSON refuses (lone surrogates: the engine says what is wrong there).
    """
    return EncodedMany(event, _texts(_Frame(event, source), payloads))


def _texts(frame: _Frame, payloads: Iterable[BaseModel]) -> Iterator[str | dict[str, Any]]:
    head, tail, envelope_of = frame.head, frame.tail, frame.envelope
    model: type[BaseModel] | None = None
    serializer: SchemaSerializer | None = None
    exact = False
    for payload in payloads:
        if type(payload) is not model:  # once per model (a batch has one, mostly)
            model = type(payload)
            serializer, exact = model.__pydantic_serializer__, _json_exact(model)
        assert serializer is not None
        try:
            raw = serializer.to_json(payload, by_alias=True)
        except Exception:  # the dict way raises it again, or the engine says what is wrong
            yield envelope_of(payload)
            continue
        if exact or not (b"null" in raw or b"NaN" in raw or b"Infinity" in raw):
            yield f"{head}{raw.decode()}{tail}"
        else:
            yield envelope_of(payload)


class _Frame:
    """The envelope of one send's payloads: its dict without payload, and its JSON text
    before and after the payload (the metadata, with the trace context, encoded once)."""

    __slots__ = ("first", "head", "tail")

    def __init__(self, event: str, source: str | None) -> None:
        self.first = make_envelope(event, {}, source=source)
        self.head = '{"event":' + json_text(event) + ',"payload":'
        self.tail = ',"metadata":' + json_text(self.first["metadata"]) + "}"

    def envelope(self, payload: BaseModel) -> dict[str, Any]:
        """The envelope as ``envelope`` builds it (the same metadata as the texts')."""
        return {**self.first, "payload": payload.model_dump(mode="json", by_alias=True)}


def _own_serialiser(serialization: object) -> bool:
    """Whether a schema's ``serialization`` runs a function that is not pydantic's own (the
    user's, which may return anything; pydantic's, for URLs and the like, return text)."""
    if not isinstance(serialization, dict):
        return False
    function = serialization.get("function")
    module = getattr(function, "__module__", None) or ""
    return function is not None and not module.startswith(("pydantic.", "pydantic_core."))


@cache
def _json_exact(model: type[BaseModel]) -> bool:
    """Whether ``model``'s JSON can never hold a non-finite float: its schema (nested
    models included) has no float and no serialiser of the user's."""
    try:
        return _no_float(model.__pydantic_core_schema__, {id(model)})
    except RecursionError:  # a schema too deep to walk: look for the words in its texts
        return False


def _no_float(node: object, seen: set[int]) -> bool:
    if isinstance(node, dict):
        if node.get("type") == "float" or _own_serialiser(node.get("serialization")):
            return False
        nested = node.get("cls")
        if (
            node.get("type") == "model"
            and isinstance(nested, type)
            and issubclass(nested, BaseModel)
            and id(nested) not in seen
        ):
            seen.add(id(nested))
            if not _no_float(nested.__pydantic_core_schema__, seen):
                return False
        return all(_no_float(value, seen) for value in node.values())
    if isinstance(node, list | tuple):
        return all(_no_float(value, seen) for value in node)
    return True


async def send_event(
    boss: Boss,
    queue: str,
    event: str,
    payload: BaseModel,
    *,
    conn: AsyncConnection[Any] | None = None,
    start_after: datetime | timedelta | None = None,
    priority: int | None = None,
    singleton_key: str | None = None,
    group_key: str | None = None,
    throttle: timedelta | None = None,
    debounce: timedelta | None = None,
    retry_limit: int | None = None,
    expire_in: timedelta | None = None,
) -> JobId:
    """Enqueue one ``event`` job on ``queue``; the options are those of ``Boss.send``."""
    return await boss.send(
        queue,
        envelope(event, payload, boss.source),
        conn=conn,
        start_after=start_after,
        priority=priority,
        singleton_key=singleton_key,
        group_key=group_key,
        throttle=throttle,
        debounce=debounce,
        retry_limit=retry_limit,
        expire_in=expire_in,
    )


async def send_events(
    boss: Boss,
    queue: str,
    event: str,
    payloads: Iterable[BaseModel],
    *,
    conn: AsyncConnection[Any] | None = None,
    start_after: datetime | timedelta | None = None,
    priority: int | None = None,
    group_key: str | None = None,
    retry_limit: int | None = None,
    expire_in: timedelta | None = None,
) -> list[JobId]:
    """Enqueue a batch of ``event`` jobs on ``queue``; the options are those of
    ``Boss.send_many``."""
    return await boss.send_many(
        queue,
        envelopes_json(event, payloads, boss.source),
        conn=conn,
        start_after=start_after,
        priority=priority,
        group_key=group_key,
        retry_limit=retry_limit,
        expire_in=expire_in,
    )


def send_event_sync(
    boss: SyncBoss,
    queue: str,
    event: str,
    payload: BaseModel,
    *,
    conn: Connection[Any] | None = None,
    start_after: datetime | timedelta | None = None,
    priority: int | None = None,
    singleton_key: str | None = None,
    group_key: str | None = None,
    throttle: timedelta | None = None,
    debounce: timedelta | None = None,
    retry_limit: int | None = None,
    expire_in: timedelta | None = None,
) -> JobId:
    """``send_event`` for a ``SyncBoss``."""
    return boss.send(
        queue,
        envelope(event, payload, boss.source),
        conn=conn,
        start_after=start_after,
        priority=priority,
        singleton_key=singleton_key,
        group_key=group_key,
        throttle=throttle,
        debounce=debounce,
        retry_limit=retry_limit,
        expire_in=expire_in,
    )


def send_events_sync(
    boss: SyncBoss,
    queue: str,
    event: str,
    payloads: Iterable[BaseModel],
    *,
    conn: Connection[Any] | None = None,
    start_after: datetime | timedelta | None = None,
    priority: int | None = None,
    group_key: str | None = None,
    retry_limit: int | None = None,
    expire_in: timedelta | None = None,
) -> list[JobId]:
    """``send_events`` for a ``SyncBoss``."""
    return boss.send_many(
        queue,
        envelopes_json(event, payloads, boss.source),
        conn=conn,
        start_after=start_after,
        priority=priority,
        group_key=group_key,
        retry_limit=retry_limit,
        expire_in=expire_in,
    )


# -- processing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """How a worker handles one event of its queue.

    A job whose ``data.event`` is ``event`` has its payload validated with ``model``, then
    ``handlers.<method>(payload, job)`` runs inside ``process_job``, which logs the job with
    the payload's ``entity_field`` (a field name as written in the catalogue) as its entity id.
    """

    event: str
    model: type[BaseModel]
    method: str
    entity_field: str | None = None

    def __post_init__(self) -> None:
        _EVENT_MODELS.setdefault(self.event, set()).add(self.model)


#: Event name -> the payload models that routes declared for it (filled as generated packages
#: are imported; an event name used by two domains with different models has two).
_EVENT_MODELS: dict[str, set[type[BaseModel]]] = {}


def event_model(event: str) -> type[BaseModel] | None:
    """The payload model of ``event`` from the generated packages imported so far; None when
    none declares it or two declare it with different models."""
    models = _EVENT_MODELS.get(event, set())
    return next(iter(models)) if len(models) == 1 else None


def build_worker(
    boss: Boss,
    queue: str,
    handlers: object,
    routes: Iterable[Route],
    *,
    concurrency: int = 10,
    label: str | None = None,
    batch_size: int | None = None,
    poll_interval: timedelta | float | None = None,
    shutdown_grace: timedelta | float | None = None,
) -> Worker:
    """A ``Worker`` of ``queue`` that calls ``handlers`` by event, as ``routes`` say.

    An invalid payload or an unknown event fails the job for good (no retries; it reaches the
    dead-letter queue) with the reason, and never reaches a handler. The keyword options are
    the ``Worker``'s; one left as None keeps the Worker's default.
    """
    process = router(queue, handlers, routes)
    if shutdown_grace is None:
        return Worker(
            boss,
            queue,
            process,
            concurrency=concurrency,
            label=label,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
    return Worker(
        boss,
        queue,
        process,
        concurrency=concurrency,
        label=label,
        batch_size=batch_size,
        poll_interval=poll_interval,
        shutdown_grace=shutdown_grace,
    )


def router(
    queue: str, handlers: object, routes: Iterable[Route]
) -> Callable[[JobContext], Awaitable[None]]:
    """What a ``build_worker`` worker runs for each job of ``queue``: the job's route, its
    payload validated, ``handlers``' method called inside ``process_job``.

    An invalid payload or an unknown event raises a ``PermanentJobError`` (logged as the
    job's failure), which fails the job without retries. A plain (sync) method runs in a
    daemon thread of its own per call (the generated ``*SyncHandlers`` Protocols).
    """
    table = {route.event: (route, _attribute(route)) for route in routes}
    known = ", ".join(f'"{event}"' for event in table)
    threads = DaemonThreads(f"queues-{queue}")
    sync_methods: dict[str, bool] = {}  # method name -> is it sync (asked once per name)

    async def process(job: JobContext) -> None:
        found = table.get(job.event) if job.event is not None else None
        if found is None:
            what = "a job with no event" if job.event is None else f'unknown event "{job.event}"'
            message = f'{what} on queue "{queue}"; this worker handles {known}'
            await _fail(job, UnknownEventError(message))
        route, attribute = found
        payload = _validated(job, route.model)
        if isinstance(payload, InvalidPayloadError):
            await _fail(job, payload, entity_id=_raw_entity_id(job, route.entity_field))
        # looked up per job (a handler object may provide its methods lazily)
        method: Callable[[BaseModel, JobContext], Any] = getattr(handlers, route.method)
        entity_id = None if attribute is None else str(getattr(payload, attribute))
        is_sync = sync_methods.get(route.method)
        if is_sync is None:
            is_sync = sync_methods[route.method] = not inspect.iscoroutinefunction(method)
        if is_sync:
            loop = asyncio.get_running_loop()
            await process_job(
                job,
                partial(loop.run_in_executor, threads, method, payload, job),
                label=route.event,
                entity_id=entity_id,
            )
            return
        # (a partial, not a lambda: one allocation per job instead of a closure's four)
        await process_job(
            job, partial(method, payload, job), label=route.event, entity_id=entity_id
        )

    return process


def _attribute(route: Route) -> str | None:
    """The model attribute of the route's entity field (a field may be renamed in Python)."""
    field = route.entity_field
    if field is None:
        return None
    for name, info in route.model.model_fields.items():
        if (info.alias or name) == field:
            return name
    raise ValueError(
        f'route of event "{route.event}": model {route.model.__name__} has no field "{field}"'
    )


def _validated(job: JobContext, model: type[_Model]) -> _Model | InvalidPayloadError:
    """The job's payload validated with ``model``, or the error that fails the job for good
    (synchronous: a valid payload, the usual case, costs no coroutine)."""
    try:
        return model.model_validate(job.payload)
    except PydanticValidationError as exc:
        # raised later, outside this except block, so that it carries no pydantic context
        # (the input values, possibly personal data)
        return InvalidPayloadError(_summary(job, model, exc))


async def _fail(
    job: JobContext, error: PermanentJobError, *, entity_id: str | None = None
) -> NoReturn:
    """Fail through ``process_job`` so that the failure is logged like any other job's."""

    async def reject() -> None:
        raise error

    await process_job(job, reject, label=job.event or "(no event)", entity_id=entity_id)
    raise error  # process_job re-raises; this line is for the type checker


def _summary(job: JobContext, model: type[BaseModel], exc: PydanticValidationError) -> str:
    problems = []
    for item in exc.errors(include_url=False, include_input=False)[:_MAX_ERRORS]:
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        problems.append(f"{where}: {item['msg']}")
    more = exc.error_count() - _MAX_ERRORS
    if more > 0:
        problems.append(f"and {more} more")
    return (
        f'invalid payload for event "{job.event}" on queue "{job.queue}" '
        f"(model {model.__name__}): " + "; ".join(problems)
    )


def _raw_entity_id(job: JobContext, field: str | None) -> str | None:
    """The entity field of a payload that failed validation, when it is a plain id."""
    payload = job.payload
    if field is None or not isinstance(payload, dict):
        return None
    value = payload.get(field)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
