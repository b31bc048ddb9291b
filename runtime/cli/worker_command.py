"""``queues worker --app MODULE:ATTR``: load the app's workers, run them until a signal."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..logging_setup import configure_logging
from .common import UsageError, require_dsn
from .metrics_option import check_metrics_options, worker_metrics

if TYPE_CHECKING:
    from ..client import Boss
    from ..worker import Worker

__all__ = ["run_worker_command"]

_log = logging.getLogger("queues.cli")


def run_worker_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, level=args.log_level)
    check_metrics_options(args)
    if args.embedded and args.dsn:
        raise UsageError("--embedded and --dsn exclude each other")
    module_name, _, attr = str(args.app).partition(":")
    if not module_name or not attr:
        raise UsageError(
            f"--app must look like MODULE:ATTR (e.g. myapp.jobs:workers), got {args.app!r}"
        )

    embedded = None
    if args.embedded:
        from ..embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres()
        embedded.start()
        _log.warning(
            "using an embedded PostgreSQL (development only; its data is discarded on exit)"
        )
        os.environ["QUEUES_DSN"] = embedded.dsn  # also for a Boss the app builds itself
    elif args.dsn:
        os.environ["QUEUES_DSN"] = args.dsn
    try:
        target = _load_app(module_name, attr)
        return asyncio.run(_run_workers(target, args))
    finally:
        if embedded is not None:
            embedded.stop()


def _load_app(module_name: str, attr: str) -> object:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the app lives in the working dir
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(f"--app: cannot import module {module_name!r} ({exc})") from None
        raise
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"--app: module {module_name!r} has no attribute {attr!r}") from None
    return target


async def _run_workers(target: object, args: argparse.Namespace) -> int:
    from ..client import Boss
    from ..worker import Worker, start_workers

    workers: list[Worker] = []
    stop = _install_stop_signals(workers)
    owned: Boss | None = None
    if isinstance(target, Worker) or _is_worker_list(target):
        if args.schema:
            raise UsageError(
                "--schema applies only when --app names a factory; ready-made workers use "
                "the Boss they were built with"
            )
        workers[:] = _as_workers(target, args.app)
        bosses = _bosses_of(workers)
        for boss in bosses:
            await boss.start(migrate=not args.no_migrate)
    elif callable(target):
        dsn = require_dsn(None)  # --dsn / --embedded were exported as QUEUES_DSN
        owned = Boss(dsn, schema=args.schema or "queues")
        await owned.start(migrate=not args.no_migrate)
        bosses = [owned]
        try:
            workers[:] = _as_workers(await _call_factory(target, owned, args.concurrency), args.app)
        except BaseException:
            await owned.stop()
            raise
    else:
        raise UsageError(
            f"--app {args.app!r} is a {type(target).__name__}, not a Worker, a list of Workers "
            "or a factory taking the Boss"
        )

    if args.concurrency is not None:
        for worker in workers:
            _set_concurrency(worker, args.concurrency)
    try:
        async with worker_metrics(args, bosses):
            await start_workers(*workers)
            await stop.wait()
            _log.info(
                "stopping: no new jobs are claimed; running jobs have %ss", args.shutdown_grace
            )
            await asyncio.gather(*(w.stop(timeout=args.shutdown_grace) for w in workers))
    finally:
        for boss in bosses:
            await boss.stop(timeout=args.shutdown_grace)
    _log.info("stopped")
    return 0


def _is_worker_list(target: object) -> bool:
    from ..worker import Worker

    return isinstance(target, list | tuple) and all(isinstance(w, Worker) for w in target)


def _as_workers(result: object, app: str) -> list[Worker]:
    from ..worker import Worker

    if isinstance(result, Worker):
        return [result]
    if _is_worker_list(result) and isinstance(result, list | tuple) and result:
        return list(result)
    raise UsageError(
        f"--app {app!r} must give a Worker or a non-empty list of Workers, "
        f"got {type(result).__name__}"
    )


def _bosses_of(workers: list[Worker]) -> list[Boss]:
    bosses: list[Boss] = []
    for worker in workers:
        boss = worker.boss
        if not any(boss is known for known in bosses):
            bosses.append(boss)
    return bosses


async def _call_factory(factory: Callable[..., Any], boss: Boss, concurrency: int | None) -> object:
    kwargs: dict[str, Any] = {}
    if concurrency is not None and _accepts_keyword(factory, "concurrency"):
        kwargs["concurrency"] = concurrency
    result = factory(boss, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _set_concurrency(worker: Worker, concurrency: int) -> None:
    worker.concurrency = concurrency


def _install_stop_signals(workers: list[Worker]) -> asyncio.Event:
    """An event set by the first SIGTERM/SIGINT, which also stops ``workers`` claiming right
    away (no claim starts after the signal); a second signal exits the process at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            _log.warning("%s again: exiting now; unfinished jobs are retried later", signum.name)
            _exit_now()
        _log.info("%s received: shutting down (send it again to exit at once)", signum.name)
        for worker in workers:
            worker.stop_claiming()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def _exit_now() -> NoReturn:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)
