"""The typed worker factories pass the runtime ``Worker``'s options through, defaults intact."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import pytest

from generated.billing import invoices_worker
from generated.notifications import email_worker
from typed_queues.runtime import Boss, JobContext, Worker

_HANDLERS: Any = object()  # never called: these workers are not started
_OPTIONS = ("concurrency", "label", "batch_size", "poll_interval", "shutdown_grace")


def _settings(worker: Worker) -> dict[str, Any]:
    return {name: getattr(worker, name) for name in _OPTIONS}


async def _nothing(job: JobContext) -> None:
    return None


@pytest.fixture
def boss() -> Boss:
    return Boss("postgresql://nobody@127.0.0.1:1/unused", poll_interval=3)  # no I/O


@pytest.mark.parametrize("factory", [invoices_worker, email_worker])
def test_factories_take_every_keyword_option_of_the_worker(factory: Any) -> None:
    def keyword_only(function: Any) -> list[str]:
        parameters = inspect.signature(function).parameters.values()
        return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]

    assert keyword_only(factory) == keyword_only(Worker.__init__)


def test_defaults_are_the_workers_own(boss: Boss) -> None:
    generated = invoices_worker(boss, _HANDLERS)
    direct = Worker(boss, "billing.invoices", _nothing)
    assert _settings(generated) == _settings(direct)
    assert generated.queue == "billing.invoices"
    assert generated.poll_interval == 3  # the Boss's default, as for a plain Worker


def test_options_reach_the_worker(boss: Boss) -> None:
    worker = invoices_worker(
        boss,
        _HANDLERS,
        concurrency=3,
        label="invoices-2",
        batch_size=2,
        poll_interval=timedelta(milliseconds=250),
        shutdown_grace=0,
    )
    assert _settings(worker) == {
        "concurrency": 3,
        "label": "invoices-2",
        "batch_size": 2,
        "poll_interval": 0.25,
        "shutdown_grace": 0.0,
    }
    assert email_worker(boss, _HANDLERS, shutdown_grace=7.5).shutdown_grace == 7.5
