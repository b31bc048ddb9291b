"""The ``queues`` command: generate, migrate, worker, status, demo.

``generate`` and ``demo`` are dispatched lazily (``codegen.cli.main`` and ``demo.main``), so a
worker deployment needs neither the generator's dependencies nor the generated package.

Exit codes: 0 success, 1 failure at run time (database unreachable, a worker crashed, the demo
did not go as expected), 2 bad usage or configuration (unknown option, no DSN, bad ``--app``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..config import redact, resolve_database_dsn
from ..errors import ConfigurationError
from ..logging_setup import configure_logging
from . import dashboard_command, dlq_command, jobs_command, purge_command, queue_command
from .common import Failure, UsageError, preflight, require_dsn
from .metrics_option import add_metrics_options
from .schedule_status import render_schedules
from .status import render_status, status_json
from .worker_command import run_worker_command

if TYPE_CHECKING:
    from ..client.events import ScheduleInfo
    from ..jobs import QueueStats

__all__ = ["main"]

_log = logging.getLogger("queues.cli")

_CODEGEN_MODULES = ("jinja2", "datamodel_code_generator", "ruamel", "black", "isort")


# -- entry point ------------------------------------------------------------------------------


def _route_database(args: argparse.Namespace) -> None:
    """``--database NAME`` becomes ``--dsn``: the DSN of that domain database."""
    name = getattr(args, "database", None)
    if name is None:
        return
    if args.dsn:
        raise UsageError("--database and --dsn exclude each other")
    try:
        args.dsn = resolve_database_dsn(name)
    except ConfigurationError as exc:
        raise UsageError(f"--database: {exc}") from None


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
        _route_database(args)
        return handler(args)
    except UsageError as exc:
        return _error(str(exc), code=2)
    except Failure as exc:
        return _error(str(exc), code=1)
    except KeyboardInterrupt:
        return _error("interrupted", code=1)
    except Exception as exc:
        return _report(exc)


def _error(message: str, *, code: int) -> int:
    print(f"queues: error: {redact(message)}", file=sys.stderr)
    return code


def _report(exc: Exception) -> int:
    """Turn an expected failure into one line; anything else keeps its traceback."""
    import psycopg

    from ..errors import ConfigurationError, QueuesError, ValidationError

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
        "--database",
        metavar="NAME",
        help="a domain's database (`database: NAME` in the catalogue): the DSN of "
        "$QUEUES_DSN_<NAME>, else the default one",
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
    add_metrics_options(worker)
    worker.set_defaults(handler=run_worker_command)

    status = commands.add_parser(
        "status",
        parents=[database, logs],
        help="show job counts per queue",
        description="A table of every queue's jobs by state.",
    )
    status.add_argument("--json", action="store_true", help="print the facts as JSON")
    status.set_defaults(handler=_status)

    # Operations (issue 13): jobs list|show|retry|cancel|resume, dlq redrive, purge.
    for module in (jobs_command, dlq_command, purge_command):
        module.register(commands, [database, logs])
    # Flow control (issue 12): queue pause|resume.
    queue_command.register(commands, [database, logs])
    # The web dashboard (issue 14).
    dashboard_command.register(commands, [database, logs])

    commands.add_parser(
        "demo",
        help="run the end-to-end demo (embedded PostgreSQL when no DSN is set)",
        add_help=False,
    )
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("typed-queues")
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
        from typed_queues.codegen.cli import main as codegen_main

        return int(codegen_main(argv) or 0)
    except ModuleNotFoundError as exc:  # the generator imports its dependencies lazily too
        missing = exc.name or "?"
        if missing.split(".")[0] in _CODEGEN_MODULES or missing.startswith("typed_queues.codegen"):
            return _error(
                f"`queues generate` needs the generator, which is not installed (no module "
                f"{missing!r}): pip install 'typed-queues[codegen]'",
                code=2,
            )
        raise


def _demo(argv: list[str]) -> int:
    try:
        from demo import main as demo_main
    except ModuleNotFoundError as exc:
        if exc.name != "demo":
            raise
        return _error(
            "`queues demo` runs the repository's demo/, which is not part of the installed "
            "package: run it from a checkout of the repository (`nox -s demo`)",
            code=2,
        )
    return int(demo_main(argv) or 0)


# -- migrate / status -------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, level=args.log_level)
    dsn = require_dsn(args.dsn)
    schema = args.schema or "queues"
    asyncio.run(_run_migrate(dsn, schema))
    print(f"schema {schema!r} is up to date")
    return 0


async def _run_migrate(dsn: str, schema: str) -> None:
    from ..client import Boss

    await preflight(dsn)
    boss = Boss(dsn, schema=schema, max_pool_size=2, maintenance=False)
    await boss.start(migrate=False)
    try:
        await boss.migrate()
    finally:
        await boss.stop()


def _status(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, level=args.log_level)
    dsn = require_dsn(args.dsn)
    schema = args.schema or "queues"
    stats, schedules, paused, warning = asyncio.run(_run_status(dsn, schema))
    if args.json:
        print(json.dumps(status_json(stats, schedules, paused, warning), indent=2))
        return 0
    print(render_status(stats, schema=schema, paused=paused))
    if schedules:  # (events) each schedule's next run
        print("\n" + render_schedules(schedules))
    if warning is not None:
        print(warning, file=sys.stderr)
    return 0


async def _run_status(
    dsn: str, schema: str
) -> tuple[list[QueueStats], list[ScheduleInfo], set[str], str | None]:
    import psycopg

    from ..client import Boss

    await preflight(dsn)
    boss = Boss(dsn, schema=schema, max_pool_size=2, maintenance=False, listen=False)
    await boss.start(migrate=False)
    try:
        stats = await boss.all_queue_stats()
        try:
            schedules = await boss.schedules()
        except psycopg.errors.UndefinedTable:  # a schema from before schedules (0004)
            schedules = []
        try:
            paused = await boss.paused_queues()
        except psycopg.errors.UndefinedColumn:  # a schema from before flow control (0003)
            paused = set()
        return stats, schedules, paused, await boss.autovacuum_warning()
    except psycopg.errors.UndefinedTable:
        raise Failure(
            f"schema {schema!r} has no queue tables: run `queues migrate --schema {schema}`"
        ) from None
    finally:
        await boss.stop()


# -- worker -----------------------------------------------------------------------------------
