"""``queues queue pause|resume NAME``: stop and restart a queue's job starts (flow control)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .ops_common import add_json, connected_boss, emit_json, run_async

__all__ = ["register"]


def register(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add ``queues queue`` to the ``queues`` parser."""
    queue = commands.add_parser(
        "queue",
        help="pause or resume a queue",
        description="Pause or resume a queue.",
    )
    actions = queue.add_subparsers(dest="queue_action", metavar="ACTION", required=True)
    pause = actions.add_parser(
        "pause",
        parents=parents,
        help="stop starting jobs of a queue (sends are still accepted)",
        description=(
            "Pause QUEUE: sends are still accepted and kept, no job of it starts any more "
            "(running workers notice within their poll interval), running jobs finish."
        ),
    )
    resume = actions.add_parser(
        "resume",
        parents=parents,
        help="start jobs of a paused queue again",
        description="Resume QUEUE: its workers are notified and start its jobs again.",
    )
    for parser, paused in ((pause, True), (resume, False)):
        parser.add_argument("name", metavar="QUEUE", help="the queue, e.g. billing.invoices")
        add_json(parser)
        parser.set_defaults(handler=_pause if paused else _resume)


def _pause(args: argparse.Namespace) -> int:
    return _change(args, paused=True)


def _resume(args: argparse.Namespace) -> int:
    return _change(args, paused=False)


def _change(args: argparse.Namespace, *, paused: bool) -> int:
    async def run() -> None:
        async with connected_boss(args) as boss:
            if paused:
                await boss.pause_queue(args.name)
            else:
                await boss.resume_queue(args.name)

    run_async(args, run)
    if args.json:
        emit_json({"queue": args.name, "paused": paused})
    elif paused:
        print(
            f"queue {args.name} paused: no new job starts (workers notice within their poll "
            "interval); sends are still accepted"
        )
    else:
        print(f"queue {args.name} resumed")
    return 0
