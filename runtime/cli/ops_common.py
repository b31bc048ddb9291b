"""What the operations commands (``jobs``, ``dlq``, ``purge``) share: a short-lived Boss on
the configured database, JSON output, and the parsing of durations."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from .common import Failure, preflight, require_dsn

if TYPE_CHECKING:
    from ..client import Boss

__all__ = [
    "add_json",
    "connected_boss",
    "emit_json",
    "parse_duration",
    "run_async",
    "schema_of",
]

_DURATION: Final = re.compile(r"(\d{1,9})(ms|s|m|h|d)")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """``500ms``, ``30s``, ``15m``, ``2h`` or ``7d`` (as in ``queues.yaml``), for argparse."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: write a positive number and a unit, like 500ms, 30s, "
            "15m, 2h or 7d"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one document) instead of text"
    )


def emit_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def schema_of(args: argparse.Namespace) -> str:
    return str(args.schema or "queues")


@asynccontextmanager
async def connected_boss(args: argparse.Namespace) -> AsyncIterator[Boss]:
    """A started Boss for one command (no workers, no maintenance, no migration), on the DSN
    of ``--dsn`` / ``QUEUES_DSN`` / ``DATABASE_URL``. A schema that was never migrated, or
    migrated by older code, is a one-line failure saying to run ``queues migrate``."""
    import psycopg

    from ..client import Boss

    dsn = require_dsn(args.dsn)
    schema = schema_of(args)
    await preflight(dsn)
    boss = Boss(dsn, schema=schema, max_pool_size=2, maintenance=False, listen=False)
    await boss.start(migrate=False)
    try:
        yield boss
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise Failure(
            f"schema {schema!r} is missing queue tables or columns ({type(exc).__name__}): "
            f"run `queues migrate --schema {schema}`"
        ) from None
    finally:
        await boss.stop()


def run_async(args: argparse.Namespace, action: Callable[[], Any]) -> Any:
    """Set up logging as ``--log-format``/``--log-level`` say, then ``asyncio.run(action())``."""
    import asyncio

    from ..logging_setup import configure_logging

    configure_logging(args.log_format, level=args.log_level)
    return asyncio.run(action())
