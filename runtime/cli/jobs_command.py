"""``queues jobs list|show|retry|cancel|resume``: look at jobs and act on them by id."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..jobs import JobState
from .common import Failure, UsageError
from .ops_common import add_json, connected_boss, emit_json, run_async

if TYPE_CHECKING:
    from ..client import Boss
    from ..jobs import Job, JobId

__all__ = ["register"]

_STATES = [state.value for state in JobState]
_ACTIONS = {
    "retry": ("retried", "only a failed job can be retried"),
    "cancel": ("cancelled", "only a queued or active job can be cancelled"),
    "resume": ("resumed", "only a cancelled job can be resumed"),
}


def register(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add ``queues jobs ...`` to the ``queues`` parser."""
    jobs = commands.add_parser(
        "jobs",
        help="list, show, retry, cancel or resume jobs",
        description="Look at jobs and act on them by id.",
    )
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    listing = sub.add_parser(
        "list",
        parents=parents,
        help="list jobs, filtered by queue, state and event",
        description=(
            "List jobs, a page at a time. Each state is listed in the order of its index: "
            "active longest running first, retry next due first, created in claim order, "
            "finished most recent first. Without --state the states come in that order: "
            "active, retry, failed, cancelled, created, completed."
        ),
    )
    listing.add_argument("--queue", help="only jobs of this queue")
    listing.add_argument("--state", choices=_STATES, help="only jobs in this state")
    listing.add_argument("--event", help="only jobs of this event (e.g. invoice-created)")
    listing.add_argument(
        "--limit", type=_limit, default=50, help="jobs per page, 1 to 1000 (default: 50)"
    )
    listing.add_argument(
        "--after", metavar="CURSOR", help="the next page: the cursor the previous page printed"
    )
    add_json(listing)
    listing.set_defaults(handler=_list)

    show = sub.add_parser(
        "show",
        parents=parents,
        help="show one job: envelope, state, attempts, errors, dead-letter links",
    )
    show.add_argument("id", metavar="ID", help="the job's id (a UUID)")
    show.add_argument(
        "--tracebacks", action="store_true", help="print every attempt's traceback, not the last"
    )
    add_json(show)
    show.set_defaults(handler=_show)

    for action, (done, rule) in _ACTIONS.items():
        parser = sub.add_parser(
            action,
            parents=parents,
            help=f"{action} jobs by id ({rule})",
            description=(
                f"{action.capitalize()} each job given. Exit status 1 if any of them was not "
                f"{done} ({rule}, or no such job)."
                + (
                    " Retrying a dead-lettered job also settles its dead-letter copy, so the "
                    "job runs once more, not twice."
                    if action == "retry"
                    else ""
                )
            ),
        )
        parser.add_argument("ids", nargs="+", metavar="ID", help="job ids (UUIDs)")
        add_json(parser)
        parser.set_defaults(handler=_act, action=action)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 1000, got {value}")
    return value


def _job_ids(texts: Sequence[str]) -> list[JobId]:
    """Every id parsed before anything runs; the first bad one is a usage error."""
    from ..client.operations import parse_job_id
    from ..errors import ValidationError

    ids = []
    for text in texts:
        try:
            ids.append(parse_job_id(text))
        except ValidationError as exc:
            raise UsageError(str(exc)) from None
    return ids


# -- list -------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    async def run() -> Any:
        async with connected_boss(args) as boss:
            return await boss.list_jobs(
                queue=args.queue,
                state=args.state,
                event=args.event,
                limit=args.limit,
                after=args.after,
            )

    page = run_async(args, run)
    if args.json:
        emit_json(page.to_json())
        return 0
    if not page.jobs:
        print("no jobs")
    else:
        rows = [
            [
                str(job.id),
                job.queue,
                job.state.value,
                job.event or "-",
                str(job.retry_count),
                _short(job.created_on),
                _note(job),
            ]
            for job in page.jobs
        ]
        print(_table(["id", "queue", "state", "event", "retries", "created", "note"], rows))
    if page.next is not None:
        print(f"more: add --after {page.next}")
    return 0


def _note(job: Any) -> str:
    if job.error_message is not None or job.error_type is not None:
        text = f"{job.error_type or 'Error'}: {job.error_message or ''}".replace("\n", " ")
        return text if len(text) <= 80 else text[:77] + "..."
    if job.dead_letter_of is not None:
        return f"dead-letter copy of {job.dead_letter_of}"
    return ""


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(header).rstrip(), *(line(row).rstrip() for row in rows)])


def _short(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone().isoformat(sep=" ", timespec="seconds")


# -- show -------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    from ..job_views import job_document

    [job_id] = _job_ids([args.id])

    async def run() -> tuple[Job | None, dict[str, str]]:
        async with connected_boss(args) as boss:
            job = await boss.get_job(job_id)
            queues: dict[str, str] = {}
            if job is not None:
                for other in (job.dead_letter_id, job.dead_letter_of):
                    linked = None if other is None else await boss.get_job(other)
                    if linked is not None:
                        queues[str(linked.id)] = linked.queue
            return job, queues

    job, linked = run_async(args, run)
    if job is None:
        raise Failure(f"no job {job_id} in schema {args.schema or 'queues'!r}")
    if args.json:
        emit_json(job_document(job))
        return 0
    print(_render_job(job, linked, all_tracebacks=args.tracebacks))
    return 0


def _render_job(job: Job, linked: dict[str, str], *, all_tracebacks: bool) -> str:
    event = job.data.get("event") if isinstance(job.data, dict) else None
    waiting = job.state in (JobState.CREATED, JobState.RETRY)
    never_ran = job.state is JobState.CANCELLED and job.started_on is None
    attempts = job.retry_count + (0 if waiting or never_ran else 1)
    lines = [
        f"job {job.id}",
        f"  queue:        {job.queue}",
        f"  state:        {job.state.value}",
        f"  event:        {event or '-'}",
        f"  priority:     {job.priority}",
        f"  attempts:     {attempts} of at most {job.retry_limit + 1}",
        f"  created:      {_short(job.created_on)}",
        f"  start after:  {_short(job.start_after)}",
        f"  started:      {_short(job.started_on)}",
        f"  finished:     {_short(job.completed_on)}",
    ]
    if job.singleton_key is not None:
        lines.append(f"  singleton:    {job.singleton_key}")
    if job.lease_until is not None:
        lines.append(f"  lease until:  {_short(job.lease_until)}")
    if job.dead_letter_id is not None:
        where = linked.get(str(job.dead_letter_id))
        lines.append(
            f"  dead letter:  copied to {job.dead_letter_id}"
            + (f" in {where}" if where else " (no longer stored)")
        )
    if job.dead_letter_of is not None:
        where = linked.get(str(job.dead_letter_of))
        lines.append(
            f"  copy of:      {job.dead_letter_of}"
            + (f" in {where}" if where else " (no longer stored)")
        )
    if job.errors:
        lines.append(f"errors ({len(job.errors)} failed attempts, oldest first):")
        for index, error in enumerate(job.errors):
            who = (
                f" on {error.worker_host}:{error.worker_pid}"
                if error.worker_host is not None
                else ""
            )
            lines.append(f"  attempt {error.attempt}, {_short(error.at)}{who}:")
            lines.append(f"    {error.type}: {error.message}".rstrip())
            if error.dead_letter_id is not None:
                lines.append(f"    -> dead-letter copy {error.dead_letter_id}")
            last = index == len(job.errors) - 1
            if error.traceback and (all_tracebacks or last):
                lines.extend("    | " + line for line in error.traceback.rstrip().splitlines())
    lines.append("envelope:")
    lines.extend("  " + line for line in _pretty(job.data).splitlines())
    if job.output is not None:
        lines.append("output:")
        lines.extend("  " + line for line in _pretty(job.output).splitlines())
    return "\n".join(lines)


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# -- retry / cancel / resume ------------------------------------------------------------------


def _act(args: argparse.Namespace) -> int:
    ids = _job_ids(args.ids)
    action: str = args.action
    done, rule = _ACTIONS[action]

    async def run() -> list[dict[str, Any]]:
        from ..errors import QueuesError

        results = []
        async with connected_boss(args) as boss:
            for job_id in ids:
                reason = None
                try:
                    ok = await _apply(boss, action, job_id)
                except QueuesError as exc:
                    ok, reason = False, str(exc)
                job = await boss.get_job(job_id)
                if not ok and reason is None:
                    reason = "no such job" if job is None else f"it is {job.state.value}: {rule}"
                results.append(
                    {
                        "id": str(job_id),
                        "ok": ok,
                        "state": None if job is None else job.state.value,
                        "reason": reason,
                    }
                )
        return results

    results = run_async(args, run)
    if args.json:
        emit_json(results)
    else:
        for result in results:
            if result["ok"]:
                print(f"{done} {result['id']}")
            else:
                print(f"not {done} {result['id']}: {result['reason']}")
    return 0 if all(result["ok"] for result in results) else 1


async def _apply(boss: Boss, action: str, job_id: JobId) -> bool:
    if action == "retry":
        return await boss.retry(job_id)
    if action == "cancel":
        return await boss.cancel(job_id)
    return await boss.resume(job_id)
