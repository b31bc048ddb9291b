"""FastAPI: a lifespan that starts a ``Boss`` (and, if asked, workers) with the app and stops
it gracefully, and a dependency that gives endpoints the Boss.

    from typed_queues.runtime import Boss
    from typed_queues.runtime.integrations.fastapi import BossDep, queues_lifespan

    app = FastAPI(lifespan=queues_lifespan(Boss, workers=make_workers))

    @app.post("/invoices")
    async def create_invoice(boss: BossDep) -> ...:
        await enqueue_invoice_created(boss, ...)

Needs the ``fastapi`` extra (``pip install 'typed-queues[fastapi]'``).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from ..client import Boss
from ..worker import Worker, start_workers

__all__ = ["STATE_KEY", "BossDep", "get_boss", "queues_lifespan"]

#: The key of the Boss in the lifespan state (``request.state``) and in ``app.state``.
STATE_KEY = "queues_boss"

WorkerFactory = Callable[[Boss], Iterable[Worker] | Awaitable[Iterable[Worker]]]


def queues_lifespan(
    boss: Boss | Callable[[], Boss],
    *,
    workers: WorkerFactory | None = None,
    migrate: bool = True,
    shutdown_grace: float | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]:
    """A FastAPI ``lifespan``: start the Boss when the app starts, and its workers when
    ``workers`` (a sync or async function of the Boss returning Workers) is given; on
    shutdown stop the workers gracefully (running jobs get ``shutdown_grace`` seconds, by
    default each worker's own) and close the Boss.

    ``boss`` is a Boss or a function making one (``Boss`` itself, or a lambda with options):
    a function makes a fresh Boss every time the app starts (a Boss is bound to the event loop
    it started in, and a test client starts the app once per ``with``). The Boss is in the
    lifespan state (``request.state.queues_boss``, what ``BossDep`` reads) and in
    ``app.state.queues_boss``. To combine it with a lifespan of your own, enter it inside
    yours: ``async with queues_lifespan(...)(app) as state: yield {**state, ...}``.
    """
    if workers is not None and not callable(workers):
        raise TypeError(
            f"queues_lifespan(workers=...) takes a function of the Boss returning Workers, "
            f"got {type(workers).__name__}"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        instance = boss if isinstance(boss, Boss) else boss()
        if not isinstance(instance, Boss):
            raise TypeError(
                f"queues_lifespan(boss) takes a Boss or a function returning one, and that "
                f"function returned {type(instance).__name__}"
            )
        await instance.start(migrate=migrate)
        try:
            if workers is not None:
                await start_workers(*await _made_workers(workers, instance))
            setattr(app.state, STATE_KEY, instance)
            yield {STATE_KEY: instance}
        finally:
            await instance.stop(timeout=shutdown_grace)

    return lifespan


async def _made_workers(factory: WorkerFactory, boss: Boss) -> list[Worker]:
    made = factory(boss)
    if inspect.isawaitable(made):
        made = await made
    found = list(made)
    for worker in found:
        if not isinstance(worker, Worker):
            raise TypeError(
                f"queues_lifespan(workers=...) must return Workers (from generated *_worker "
                f"factories or boss.worker()), got {type(worker).__name__}"
            )
    return found


def get_boss(request: Request) -> Boss:
    """The app's Boss (a FastAPI dependency; ``BossDep`` is the annotated form)."""
    found = getattr(request.state, STATE_KEY, None) or getattr(request.app.state, STATE_KEY, None)
    if not isinstance(found, Boss):
        raise RuntimeError(
            "this app has no Boss: create it with FastAPI(lifespan=queues_lifespan(...))"
        )
    return found


BossDep = Annotated[Boss, Depends(get_boss)]
"""An endpoint parameter ``boss: BossDep`` receives the app's Boss."""
