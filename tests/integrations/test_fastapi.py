"""The FastAPI integration: the lifespan starts the Boss (and workers) with the app and stops
them on shutdown; ``BossDep`` gives endpoints the Boss. (The example app under
examples/fastapi_app has the end-to-end tests: transactional enqueue, rollback, workers.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from typed_queues.runtime import Boss, JobContext, QueueSpec, Worker
from typed_queues.runtime.integrations.fastapi import BossDep, queues_lifespan

QUEUE = "web.tasks"


def test_the_lifespan_starts_the_boss_and_workers_and_stops_them(
    dsn: str, schema_name: str
) -> None:
    made: list[Boss] = []
    started: list[Worker] = []

    def make_boss() -> Boss:
        made.append(Boss(dsn, schema=schema_name))
        return made[-1]

    async def make_workers(boss: Boss) -> list[Worker]:  # an async factory
        await boss.create_queue(QueueSpec(name=QUEUE))

        async def task(job: JobContext) -> None:
            pass

        started.append(boss.worker(QUEUE, task))
        return started

    app = FastAPI(lifespan=queues_lifespan(make_boss, workers=make_workers))

    @app.get("/state")
    async def state(boss: BossDep) -> dict[str, Any]:
        return {
            "schema": boss.schema,
            "started": boss.started,
            "workers": [w.running for w in started],
            "same": boss is app.state.queues_boss,
        }

    for _ in range(2):  # a fresh Boss each time the app starts
        with TestClient(app) as client:
            assert client.get("/state").json() == {
                "schema": schema_name,
                "started": True,
                "workers": [True],
                "same": True,
            }
        assert not made[-1].started
        assert not started[-1].running
        started.clear()
    assert len(made) == 2 and made[0] is not made[1]


def test_a_boss_instance_is_started_and_stopped(dsn: str, schema_name: str) -> None:
    boss = Boss(dsn, schema=schema_name)
    app = FastAPI(lifespan=queues_lifespan(boss))

    @app.get("/")
    async def schema(boss: BossDep) -> str:
        return boss.schema

    with TestClient(app) as client:
        assert boss.started
        assert client.get("/").json() == schema_name
    assert not boss.started


def test_an_app_without_the_lifespan_is_told_how_to_get_a_boss() -> None:
    app = FastAPI()

    @app.get("/")
    async def endpoint(boss: BossDep) -> str:
        return boss.schema

    with TestClient(app) as client, pytest.raises(RuntimeError, match="lifespan=queues_lifespan"):
        client.get("/")


def test_bad_worker_factories_are_refused(dsn: str, schema_name: str) -> None:
    with pytest.raises(TypeError, match="function of the Boss"):
        queues_lifespan(Boss, workers=[])  # type: ignore[arg-type]

    boss = Boss(dsn, schema=schema_name)
    app = FastAPI(lifespan=queues_lifespan(boss, workers=lambda boss: ["not a worker"]))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must return Workers"), TestClient(app):
        pass
    assert not boss.started  # the Boss was stopped again

    app = FastAPI(lifespan=queues_lifespan(lambda: "not a boss"))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="function returned str"), TestClient(app):
        pass
