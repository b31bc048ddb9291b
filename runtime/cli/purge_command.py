"""``queues purge QUEUE --state STATE [--older-than D]``: delete jobs, after confirmation."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..jobs import JobState
from .common import Failure, UsageError
from .ops_common import add_json, connected_boss, emit_json, parse_duration, run_async

__all__ = ["register"]


def register(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add ``queues purge`` to the ``queues`` parser."""
    purge = commands.add_parser(
        "purge",
        parents=parents,
        help="delete the jobs of a queue in one state (asks first)",
        description=(
            "Delete the jobs of QUEUE in STATE (finished ones by when they finished, queued "
            "ones by when they were created), in batches of 1000. Asks for confirmation "
            "unless --yes; refuses active jobs (cancel them first)."
        ),
    )
    purge.add_argument("queue", metavar="QUEUE", help="the queue, e.g. billing.invoices")
    purge.add_argument(
        "--state",
        required=True,
        choices=[state.value for state in JobState],
        help="which jobs to delete (not active: those are refused)",
    )
    purge.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="DURATION",
        help="only jobs older than this: 500ms, 30s, 15m, 2h or 7d",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    add_json(purge)
    purge.set_defaults(handler=_purge)


def _purge(args: argparse.Namespace) -> int:
    async def run() -> Any:
        async with connected_boss(args) as boss:
            counted = await boss.purge(
                args.queue, args.state, older_than=args.older_than, dry_run=True
            )
            if args.dry_run or counted.deleted == 0:
                return counted
            if not args.yes:
                _confirm(counted.deleted, args)
            return await boss.purge(args.queue, args.state, older_than=args.older_than)

    report = run_async(args, run)
    if args.json:
        emit_json(report.to_json())
        return 0
    age = f" older than {_shown(args.older_than)}" if args.older_than else ""
    if report.dry_run:
        print(f"would delete {report.deleted} {report.state.value} jobs of {report.queue}{age}")
    else:
        print(f"deleted {report.deleted} {report.state.value} jobs of {report.queue}{age}")
    return 0


def _confirm(count: int, args: argparse.Namespace) -> None:
    age = f" older than {_shown(args.older_than)}" if args.older_than else ""
    question = f"delete {count} {args.state} jobs of {args.queue}{age}? [y/N] "
    if not sys.stdin.isatty():
        raise UsageError(
            f"purge would delete {count} jobs and there is no terminal to confirm on: "
            "pass --yes (or --dry-run to only count)"
        )
    print(question, end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise Failure("purge not confirmed: nothing was deleted")


def _shown(duration: Any) -> str:
    seconds = duration.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
