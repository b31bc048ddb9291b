"""``queues dashboard [--host] [--port] [--token]``: serve the web dashboard."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from .common import UsageError, preflight, require_dsn

__all__ = ["register"]

TOKEN_ENV = "QUEUES_DASHBOARD_TOKEN"


def register(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add ``queues dashboard`` to the ``queues`` parser."""
    dashboard = commands.add_parser(
        "dashboard",
        parents=parents,
        help="serve the web dashboard (needs the `dashboard` extra)",
        description=(
            "Serve the web dashboard: queues with counts and the last hour's charts, jobs, "
            "dead letters and schedules, with retry, cancel, resume, redrive and pause. Binds "
            "to 127.0.0.1 by default; any other address needs a token, which every request "
            "must then carry."
        ),
    )
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    dashboard.add_argument(
        "--port", type=_port, default=8787, help="port to listen on (default: 8787)"
    )
    dashboard.add_argument(
        "--token",
        default=None,
        help=(
            f"the token every request must carry (default: ${TOKEN_ENV}); required on a "
            "non-loopback --host. At least 16 characters."
        ),
    )
    dashboard.set_defaults(handler=_dashboard)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {value}")
    return value


def _dashboard(args: argparse.Namespace) -> int:
    import asyncio

    from ..dashboard import EXTRA_MODULES, check_bind
    from ..logging_setup import configure_logging

    try:
        from ..dashboard.server import serve
    except ModuleNotFoundError as exc:
        missing = (exc.name or "?").split(".")[0]
        if missing in EXTRA_MODULES:
            raise UsageError(
                f"`queues dashboard` needs the dashboard extra, which is not installed (no "
                f"module {missing!r}): pip install 'typed-queues[dashboard]'"
            ) from None
        raise
    token = args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None)
    check_bind(args.host, token)  # before anything connects (a configuration error: exit 2)
    dsn = require_dsn(args.dsn)
    schema = args.schema or "queues"
    configure_logging(args.log_format, level=args.log_level)

    async def run() -> None:
        await preflight(dsn)
        await serve(dsn, schema=schema, host=args.host, port=args.port, token=token)

    asyncio.run(run())
    return 0
