"""The ``queues`` command: generate, migrate, worker, status, demo.

``generate`` and ``demo`` are dispatched lazily (``codegen.cli.main`` and ``demo.main``), so a
worker deployment needs neither the generator's dependencies nor the generated package.

Exit codes: 0 success, 1 failure at run time (database unreachable, a worker crashed, the demo
did not go as expected), 2 bad usage or configuration (unknown option, no DSN, bad ``--app``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from .config import resolve_dsn
from .logging_setup import configure_logging

if TYPE_CHECKING:
    from .client import Boss
    from .jobs import QueueStats
    from .worker import Worker

__all__ = ["main"]

_log = logging.getLogger("queues.cli")

_NO_DSN = (
    "no database configured: pass --dsn, or set QUEUES_DSN (or DATABASE_URL)"
    " to a PostgreSQL connection string"
)
_CODEGEN_MODULES = ("jinja2", "datamodel_code_generator", "ruamel", "black", "isort")


class _UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


class _Failure(Exception):
    """An expected failure at run time: reported in one line, exit code 1."""


# -- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``queues`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "generate":
        return _generate(args_list[1:])
    if args_list and args_list[0] == "demo":
        return _demo(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _UsageError as exc:
        return _error(str(exc), code=2)
    except _Failure as exc:
        return _error(str(exc), code=1)
    except KeyboardInterrupt:
        return _error("interrupted", code=1)
    except Exception as exc:
        return _report(exc)


def _error(message: str, *, code: int) -> int:
    print(f"queues: error: {message}", file=sys.stderr)
    return code


def _report(exc: Exception) -> int:
    """Turn an expected failure into one line; anything else keeps its traceback."""
    import psycopg

    from .errors import ConfigurationError, QueuesError, ValidationError

    if isinstance(exc, ConfigurationError | ValidationError):
        return _error(str(exc), code=2)
    if isinstance(exc, QueuesError):
        return _error(str(exc), code=1)
    if isinstance(exc, psycopg.OperationalError):
        first = (str(exc).strip().splitlines() or ["connection failed"])[0]
        return _error(f"cannot reach the database: {first}", code=1)
    if isinstance(exc, psycopg.Error):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _error(f"database error: {first}", code=1)
    raise exc


# -- the parser -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queues",
        description="A typed, code-generated job queue on PostgreSQL.",
        epilog="Run `queues COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser(
        "generate",
        help="generate the typed package from queues.yaml (needs the `codegen` extra)",
        add_help=False,
    )

    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--dsn", help="PostgreSQL connection string (default: $QUEUES_DSN, else $DATABASE_URL)"
    )
    database.add_argument(
        "--schema",
        default=None,
        help="schema holding the queue tables (default: queues)",
    )
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--log-format", choices=("text", "json"), default="text")
    logs.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
    )

    migrate = commands.add_parser(
        "migrate",
        parents=[database, logs],
        help="create or upgrade the queue schema",
        description="Create or upgrade the queue tables. Safe to run concurrently and repeatedly.",
    )
    migrate.set_defaults(handler=_migrate)

    worker = commands.add_parser(
        "worker",
        parents=[database, logs],
        help="run workers until SIGTERM/SIGINT",
        description=(
            "Run the workers named by --app until SIGTERM or SIGINT. The first signal stops "
            "claiming jobs, lets running ones finish for up to --shutdown-grace seconds and "
            "hands the rest back; a second signal exits at once."
        ),
    )
    worker.add_argument(
        "--app",
        required=True,
        metavar="MODULE:ATTR",
        help=(
            "a Worker, a list of Workers, or a (sync or async) factory taking the Boss and "
            "returning those, e.g. myapp.jobs:workers"
        ),
    )
    worker.add_argument(
        "--embedded",
        action="store_true",
        help="run against a throwaway embedded PostgreSQL (development only; data is discarded)",
    )
    worker.add_argument(
        "--concurrency",
        type=_positive_int,
        default=None,
        help="jobs each worker runs at once (overrides the app's setting)",
    )
    worker.add_argument(
        "--shutdown-grace",
        type=_non_negative_float,
        default=30.0,
        metavar="SECONDS",
        help="how long running jobs may finish after a stop signal (default: 30)",
    )
    worker.add_argument(
        "--no-migrate", action="store_true", help="do not migrate the schema on start"
    )
    worker.set_defaults(handler=_worker)

    status = commands.add_parser(
        "status",
        parents=[database, logs],
        help="show job counts per queue",
        description="A table of every queue's jobs by state.",
    )
    status.set_defaults(handler=_status)

    commands.add_parser(
        "demo",
        help="run the end-to-end demo (embedded PostgreSQL when no DSN is set)",
        add_help=False,
    )
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("queues")
    except PackageNotFoundError:
        return "unknown"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


# -- lazily dispatched commands ----------------------------------------------------------------


def _generate(argv: list[str]) -> int:
    try:
        from codegen.cli import main as codegen_main

        return int(codegen_main(argv) or 0)
    except ModuleNotFoundError as exc:  # the generator imports its dependencies lazily too
        missing = exc.name or "?"
        if missing.split(".")[0] in _CODEGEN_MODULES or missing.startswith("codegen"):
            return _error(
                f"`queues generate` needs the generator, which is not installed (no module "
                f"{missing!r}): pip install 'queues[codegen]'",
                code=2,
            )
        raise


def _demo(argv: list[str]) -> int:
    from demo import main as demo_main

    return int(demo_main(argv) or 0)


# -- migrate / status -------------------------------------------------------------------------


def _require_dsn(explicit: str | None) -> str:
    dsn = resolve_dsn(explicit)
    if dsn is None:
        raise _UsageError(_NO_DSN)
    return dsn


def _migrate(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, level=args.log_level)
    dsn = _require_dsn(args.dsn)
    schema = args.schema or "queues"
    asyncio.run(_run_migrate(dsn, schema))
    print(f"schema {schema!r} is up to date")
    return 0


async def _preflight(dsn: str) -> None:
    """Fail fast (one line, exit 1) when the database does not answer, instead of the pool's
    retries; a deployment's worker keeps the pool's patience."""
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=10)
    await conn.close()


async def _run_migrate(dsn: str, schema: str) -> None:
    from .client import Boss

    await _preflight(dsn)
    boss = Boss(dsn, schema=schema, max_pool_size=2, maintenance=False)
    await boss.start(migrate=False)
    try:
        await boss.migrate()
    finally:
        await boss.stop()


def _status(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, level=args.log_level)
    dsn = _require_dsn(args.dsn)
    schema = args.schema or "queues"
    stats = asyncio.run(_run_status(dsn, schema))
    print(render_status(stats, schema=schema))
    return 0


async def _run_status(dsn: str, schema: str) -> list[QueueStats]:
    import psycopg

    from .client import Boss

    await _preflight(dsn)
    boss = Boss(dsn, schema=schema, max_pool_size=2, maintenance=False, listen=False)
    await boss.start(migrate=False)
    try:
        return await boss.all_queue_stats()
    except psycopg.errors.UndefinedTable:
        raise _Failure(
            f"schema {schema!r} has no queue tables: run `queues migrate --schema {schema}`"
        ) from None
    finally:
        await boss.stop()


_STATUS_COLUMNS = (
    "queue",
    "created",
    "retry",
    "active",
    "completed",
    "failed",
    "dead-lettered",
    "oldest waiting",
)


def render_status(stats: Sequence[QueueStats], *, schema: str = "queues") -> str:
    """The ``queues status`` table: one row per queue, counts by state, oldest waiting job."""
    if not stats:
        return f"no queues in schema {schema!r} (create them with `create_queues(boss)`)"
    rows = [
        [
            s.queue,
            str(s.created),
            str(s.retry),
            str(s.active),
            str(s.completed),
            str(s.failed),
            str(s.dead_lettered),
            _age(s.oldest_waiting),
        ]
        for s in sorted(stats, key=lambda s: s.queue)
    ]
    widths = [
        max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(_STATUS_COLUMNS)
    ]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(_STATUS_COLUMNS), rule, *(line(row) for row in rows)])


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = max(age.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


# -- worker -----------------------------------------------------------------------------------


def _worker(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, level=args.log_level)
    if args.embedded and args.dsn:
        raise _UsageError("--embedded and --dsn exclude each other")
    module_name, _, attr = str(args.app).partition(":")
    if not module_name or not attr:
        raise _UsageError(
            f"--app must look like MODULE:ATTR (e.g. myapp.jobs:workers), got {args.app!r}"
        )

    embedded = None
    if args.embedded:
        from .embedded import EmbeddedPostgres

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
            raise _UsageError(f"--app: cannot import module {module_name!r} ({exc})") from None
        raise
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _UsageError(f"--app: module {module_name!r} has no attribute {attr!r}") from None
    return target


async def _run_workers(target: object, args: argparse.Namespace) -> int:
    from .client import Boss
    from .worker import Worker, start_workers

    stop = _install_stop_signals()
    owned: Boss | None = None
    if isinstance(target, Worker) or _is_worker_list(target):
        if args.schema:
            raise _UsageError(
                "--schema applies only when --app names a factory; ready-made workers use "
                "the Boss they were built with"
            )
        workers = _as_workers(target, args.app)
        bosses = _bosses_of(workers)
        for boss in bosses:
            await boss.start(migrate=not args.no_migrate)
    elif callable(target):
        dsn = _require_dsn(None)  # --dsn / --embedded were exported as QUEUES_DSN
        owned = Boss(dsn, schema=args.schema or "queues")
        await owned.start(migrate=not args.no_migrate)
        bosses = [owned]
        try:
            workers = _as_workers(await _call_factory(target, owned, args.concurrency), args.app)
        except BaseException:
            await owned.stop()
            raise
    else:
        raise _UsageError(
            f"--app {args.app!r} is a {type(target).__name__}, not a Worker, a list of Workers "
            "or a factory taking the Boss"
        )

    if args.concurrency is not None:
        for worker in workers:
            _set_concurrency(worker, args.concurrency)
    try:
        await start_workers(*workers)
        await stop.wait()
        _log.info("stopping: no new jobs are claimed; running jobs have %ss", args.shutdown_grace)
        await asyncio.gather(*(w.stop(timeout=args.shutdown_grace) for w in workers))
    finally:
        for boss in bosses:
            await boss.stop(timeout=args.shutdown_grace)
    _log.info("stopped")
    return 0


def _is_worker_list(target: object) -> bool:
    from .worker import Worker

    return isinstance(target, list | tuple) and all(isinstance(w, Worker) for w in target)


def _as_workers(result: object, app: str) -> list[Worker]:
    from .worker import Worker

    if isinstance(result, Worker):
        return [result]
    if _is_worker_list(result) and isinstance(result, list | tuple) and result:
        return list(result)
    raise _UsageError(
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


def _install_stop_signals() -> asyncio.Event:
    """An event set by the first SIGTERM/SIGINT; a second signal exits the process at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            _log.warning("%s again: exiting now; unfinished jobs are retried later", signum.name)
            _exit_now()
        _log.info("%s received: shutting down (send it again to exit at once)", signum.name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def _exit_now() -> NoReturn:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
