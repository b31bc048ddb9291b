"""``queues dlq redrive DLQ``: put dead-lettered jobs back in their queues, once each."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .ops_common import add_json, connected_boss, emit_json, run_async

__all__ = ["register"]

#: Copies listed one by one in the text output (all of them with --json).
_SHOWN = 20


def register(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add ``queues dlq ...`` to the ``queues`` parser."""
    dlq = commands.add_parser(
        "dlq",
        help="act on a dead-letter queue",
        description="Act on a dead-letter queue.",
    )
    sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    redrive = sub.add_parser(
        "redrive",
        parents=parents,
        help="put the dead-lettered jobs of a dead-letter queue back in their queues",
        description=(
            "Put the original of each dead-letter copy waiting in DLQ (or failed there) back "
            "in its queue, due now, and settle the copy (completed with a note) in the same "
            "transaction, so the job runs once more and the dead-letter queue's workers do not "
            "also run the copy. A copy being run right now is left to its worker."
        ),
    )
    redrive.add_argument(
        "dlq", metavar="DLQ", help="the dead-letter queue, e.g. billing.invoices-dead"
    )
    redrive.add_argument(
        "--limit", type=_positive, default=None, help="redrive at most this many (default: all)"
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="write nothing; say what would be redriven"
    )
    add_json(redrive)
    redrive.set_defaults(handler=_redrive)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100000, got {value}")
    return value


def _redrive(args: argparse.Namespace) -> int:
    async def run() -> Any:
        async with connected_boss(args) as boss:
            return await boss.redrive(args.dlq, args.limit, dry_run=args.dry_run)

    report = run_async(args, run)
    if args.json:
        emit_json(report.to_json())
        return 0
    verb = "would requeue" if report.dry_run else "requeued"
    settle = "would settle" if report.dry_run else "settled"
    print(
        f"{report.dead_letter_queue}: {len(report.items)} dead-letter copies; {verb} "
        f"{report.requeued} original jobs, {settle} {report.settled} copies, "
        f"left {report.skipped} alone"
    )
    for item in report.items[:_SHOWN]:
        target = "-" if item.original_id is None else f"{item.original_id} ({item.original_queue})"
        print(f"  {item.copy_id} -> {target}: {item.outcome}")
    if len(report.items) > _SHOWN:
        print(f"  ... and {len(report.items) - _SHOWN} more (--json lists them all)")
    return 0
