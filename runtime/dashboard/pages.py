"""The dashboard's pages (GET, read only): the queues with their counts and charts, one queue,
the job list and search, one job, the dead-letter queues, the schedules."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Final

from starlette.responses import Response

from ..client.operations import parse_job_id, parse_state
from ..client.overview import (
    DEFAULT_SEARCH_SCAN,
    EventSearch,
    QueueActivity,
    QueueOverview,
    activity_minutes,
)
from ..job_views import JobPage
from ..jobs import Job, JobState
from . import charts
from .app import HttpError, Visit, redirect
from .schedules import read_schedules

if TYPE_CHECKING:
    from .app import Dashboard

__all__ = ["Pages", "actions_for"]

#: Jobs per page of the job list.
PAGE_SIZE: Final = 50
#: What each action needs the job to be.
_ACTION_STATES: Final = {
    "retry": {JobState.FAILED},
    "cancel": {JobState.CREATED, JobState.RETRY, JobState.ACTIVE},
    "resume": {JobState.CANCELLED},
}


def actions_for(job: Job) -> list[str]:
    """The actions that apply to ``job`` in its state."""
    return [action for action, states in _ACTION_STATES.items() if job.state in states]


#: How long the last hour's activity is reused: its charts have a resolution of a minute, and
#: reading it costs a read of the jobs finished since maintenance last rolled up the minutes
#: (see bench/PROFILE.md).
ACTIVITY_TTL: Final = 15.0


class Pages:
    def __init__(self, dashboard: Dashboard) -> None:
        self.d = dashboard
        self._activity: dict[str | None, tuple[float, datetime, dict[str, QueueActivity]]] = {}

    async def _recent(
        self, queue: str | None, oldest_due: dict[str, datetime | None]
    ) -> tuple[datetime, dict[str, QueueActivity]]:
        """``Boss.queue_activity``, reused for ``ACTIVITY_TTL`` seconds."""
        cached = self._activity.get(queue)
        if cached is not None and time.monotonic() - cached[0] < ACTIVITY_TTL:
            return cached[1], cached[2]
        now, activity = await self.d.boss.queue_activity(queue, oldest_due=oldest_due)
        self._activity[queue] = (time.monotonic(), now, activity)
        return now, activity

    # -- queues --------------------------------------------------------------------------------

    async def overview(self, visit: Visit) -> Response:
        boss = self.d.boss
        queues = await boss.queue_overview()
        now, activity = await self._recent(None, {queue.name: queue.oldest_due for queue in queues})
        minutes = activity_minutes(now)
        total = charts.combined(list(activity.values()), minutes)
        rows = []
        for queue in queues:
            own = activity.get(queue.name)
            finished = [] if own is None else own.finished
            rows.append(
                {
                    "queue": queue,
                    "oldest": queue.oldest_waiting(now),
                    "done": 0 if own is None else sum(own.completed),
                    "spark": charts.sparkline(finished) if any(finished) else "",
                }
            )
        return self.d.html(
            visit,
            "overview.html",
            title="Queues",
            rows=rows,
            throughput=charts.throughput_chart(total),
            waiting=charts.wait_chart(total),
            db_now=now,
        )

    async def queue(self, visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        queue = await self._one_queue(name)
        now, activity = await self._recent(name, {queue.name: queue.oldest_due})
        own = activity.get(name) or charts.combined([], activity_minutes(now))
        return self.d.html(
            visit,
            "queue.html",
            title=name,
            queue=queue,
            oldest=queue.oldest_waiting(now),
            throughput=charts.throughput_chart(own),
            waiting=charts.wait_chart(own),
        )

    async def _one_queue(self, name: str) -> QueueOverview:
        found = await self.d.boss.queue_overview(name)
        if not found:
            raise HttpError(
                404,
                "No such queue",
                f'there is no queue "{name}" in schema "{self.d.boss.schema}"',
            )
        return found[0]

    # -- jobs ----------------------------------------------------------------------------------

    async def jobs(self, visit: Visit) -> Response:
        search = visit.param("q")
        if search is not None and _looks_like_id(search):
            return redirect(f"/jobs/{parse_job_id(search)}")
        queue = visit.param("queue")
        state = visit.param("state")
        event = visit.param("event") or search
        after = visit.param("after")
        if state is not None:
            state = parse_state(state).value
        filters = {"queue": queue or "", "state": state or "", "event": event or ""}
        if event is not None:
            # The event has no index: a bounded search of the newest jobs, not the list's
            # whole state ranges.
            found = await self.d.boss.search_event(
                event, queue=queue, state=state, after=after, limit=PAGE_SIZE
            )
            page = JobPage(found.jobs, None if found.next is None else str(found.next))
            searched: EventSearch | None = found
        else:
            page = await self.d.boss.list_jobs(
                queue=queue, state=state, limit=PAGE_SIZE, after=after
            )
            searched = None
        return self.d.html(
            visit,
            "jobs.html",
            title="Jobs",
            page=page,
            search=searched,
            scan=DEFAULT_SEARCH_SCAN,
            filters=filters,
            first_page=after is None,
            query=_query(filters),
        )

    async def job(self, visit: Visit) -> Response:
        job_id = parse_job_id(visit.request.path_params["job_id"])
        job = await self.d.boss.get_job(job_id)
        if job is None:
            raise HttpError(
                404,
                "No such job",
                f'there is no job {job_id} in schema "{self.d.boss.schema}" (finished jobs '
                "are deleted after their queue's retention)",
            )
        linked: dict[str, str | None] = {}
        for other in (job.dead_letter_id, job.dead_letter_of):
            if other is not None:
                found = await self.d.boss.get_job(other)
                linked[str(other)] = None if found is None else found.queue
        return self.d.html(
            visit,
            "job.html",
            title=f"Job {job.id}",
            job=job,
            event=job.data.get("event") if isinstance(job.data, dict) else None,
            attempts=_attempts(job),
            linked=linked,
            actions=actions_for(job),
        )

    # -- dead letters and schedules ----------------------------------------------------------

    async def dead_letters(self, visit: Visit) -> Response:
        queues = await self.d.boss.queue_overview()
        dead = [queue for queue in queues if queue.dead_letter_for]
        return self.d.html(visit, "dead_letters.html", title="Dead letters", queues=dead)

    async def schedules(self, visit: Visit) -> Response:
        listing = await read_schedules(self.d.boss)
        return self.d.html(visit, "schedules.html", title="Schedules", listing=listing)


def _looks_like_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _query(filters: dict[str, str]) -> str:
    """The filters as a query string (for the next page's link)."""
    import urllib.parse

    return urllib.parse.urlencode({k: v for k, v in filters.items() if v})


def _attempts(job: Job) -> int:
    """Attempts made so far (as ``queues jobs show`` counts them)."""
    waiting = job.state in (JobState.CREATED, JobState.RETRY)
    never_ran = job.state is JobState.CANCELLED and job.started_on is None
    return job.retry_count + (0 if waiting or never_ran else 1)
