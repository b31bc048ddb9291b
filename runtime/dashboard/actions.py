"""The dashboard's actions: retry, cancel and resume a job, pause and resume a queue, redrive
a dead-letter queue; and signing in and out.

Each action is two steps: GET shows what it will do and asks for confirmation (a form that
carries the session's CSRF token); POST does it and reports what changed. ``app.py`` has
already checked the token and the CSRF token before a POST reaches these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from starlette.responses import Response

from ..client.operations import MAX_REDRIVE, parse_job_id
from ..jobs import Job, JobId, JobState
from .app import HttpError, Visit, redirect
from .pages import actions_for
from .security import AUTH_COOKIE

if TYPE_CHECKING:
    from .app import Dashboard

__all__ = ["Actions"]

#: Dead-letter copies a redrive's confirmation page looks at (a dry run).
PREVIEW: Final = 1000
_RULES: Final = {
    "retry": "only a failed job can be retried",
    "cancel": "only a queued or running job can be cancelled",
    "resume": "only a cancelled job can be resumed",
}
_DONE: Final = {"retry": "retried", "cancel": "cancelled", "resume": "resumed"}


class Actions:
    def __init__(self, dashboard: Dashboard) -> None:
        self.d = dashboard

    # -- jobs ----------------------------------------------------------------------------------

    async def job(self, visit: Visit) -> Response:
        action = visit.request.path_params["action"]
        if action not in _RULES:
            raise HttpError(404, "Not found", f"no job action {action[:40]!r}")
        job_id = parse_job_id(visit.request.path_params["job_id"])
        before = await self._job(job_id)
        if visit.request.method == "GET":
            return self.d.html(
                visit,
                "confirm_job.html",
                title=f"{action.capitalize()} job {job_id}?",
                job=before,
                action=action,
                allowed=action in actions_for(before),
                rule=_RULES[action],
            )
        boss = self.d.boss
        if action == "retry":
            done = await boss.retry(job_id)
        elif action == "cancel":
            done = await boss.cancel(job_id)
        else:
            done = await boss.resume(job_id)
        after = await boss.get_job(job_id)
        changes = _job_changes(before, after) if done else []
        if done and action == "retry" and before.dead_letter_id is not None:
            copy = await boss.get_job(before.dead_letter_id)
            if copy is not None:
                changes.append(_copy_note(copy))
        return self.d.html(
            visit,
            "result.html",
            title=f"Job {job_id} {_DONE[action]}" if done else "Nothing changed",
            done=done,
            changes=changes,
            reason=None if done else _not_done(action, after),
            links=[(f"/jobs/{job_id}", "the job"), (f"/jobs?queue={before.queue}", before.queue)],
        )

    async def _job(self, job_id: JobId) -> Job:
        job = await self.d.boss.get_job(job_id)
        if job is None:
            raise HttpError(404, "No such job", f"there is no job {job_id}")
        return job

    # -- queues --------------------------------------------------------------------------------

    async def queue(self, visit: Visit) -> Response:
        action = visit.request.path_params["action"]
        if action not in ("pause", "resume"):
            raise HttpError(404, "Not found", f"no queue action {action[:40]!r}")
        name = visit.request.path_params["name"]
        found = await self.d.boss.queue_overview(name)
        if not found:
            raise HttpError(404, "No such queue", f'there is no queue "{name}"')
        before = found[0]
        if visit.request.method == "GET":
            return self.d.html(
                visit,
                "confirm_queue.html",
                title=f"{action.capitalize()} {name}?",
                queue=before,
                action=action,
            )
        if action == "pause":
            await self.d.boss.pause_queue(name)
        else:
            await self.d.boss.resume_queue(name)
        paused = action == "pause"
        changed = before.paused != paused
        if not changed:
            changes = [f"{name} was already {'paused' if paused else 'running'}"]
        elif paused:
            changes = [
                f"{name}: running → paused. No job of it starts any more (workers notice "
                "within their poll interval); running jobs finish; sends are still accepted."
            ]
        else:
            changes = [f"{name}: paused → running. Its workers were notified."]
        return self.d.html(
            visit,
            "result.html",
            title=f"{name} {'paused' if paused else 'resumed'}" if changed else "Nothing changed",
            done=changed,
            changes=changes,
            reason=None,
            links=[(f"/queues/{name}", name)],
        )

    # -- dead letters --------------------------------------------------------------------------

    async def redrive(self, visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        boss = self.d.boss
        if visit.request.method == "GET":
            preview = await boss.redrive(name, PREVIEW, dry_run=True)
            return self.d.html(
                visit,
                "confirm_redrive.html",
                title=f"Redrive {name}?",
                name=name,
                preview=preview,
                preview_size=PREVIEW,
                most=MAX_REDRIVE,
            )
        limit = _limit(visit.form.get("limit"))
        report = await boss.redrive(name, limit)
        changes = [
            f"{report.requeued:,} original jobs queued again, due now",
            f"{report.settled:,} dead-letter copies settled (completed with a note), so they "
            "do not run as well",
        ]
        if report.skipped:
            changes.append(
                f"{report.skipped:,} copies left alone: their original job no longer exists"
            )
        return self.d.html(
            visit,
            "result.html",
            title=f"{name} redriven" if report.items else "Nothing to redrive",
            done=bool(report.items),
            changes=changes if report.items else [],
            reason=None if report.items else f"{name} holds no dead-letter copy to redrive",
            items=report.items[:50],
            links=[(f"/jobs?queue={name}", name), ("/dead-letters", "dead letters")],
        )

    # -- signing in and out --------------------------------------------------------------------

    async def login(self, visit: Visit) -> Response:
        guard = self.d.guard
        target = _safe_next(visit.form.get("next") or visit.param("next"))
        if not guard.token_required:
            return redirect(target)
        if visit.request.method == "GET":
            return self.d.html(visit, "login.html", next=target, failed=False, title="Sign in")
        if not guard.token_matches(visit.form.get("token")):
            return self.d.html(
                visit, "login.html", status=401, next=target, failed=True, title="Sign in"
            )
        response = redirect(target)
        response.set_cookie(
            AUTH_COOKIE,
            guard.auth_cookie(visit.session),
            httponly=True,
            samesite="lax",
            secure=visit.request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(self, visit: Visit) -> Response:
        response = redirect("/login")
        response.delete_cookie(AUTH_COOKIE, path="/")
        return response


def _limit(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_REDRIVE:
        raise HttpError(
            400,
            "Bad limit",
            f"the limit must be a whole number from 1 to {MAX_REDRIVE:,}, or empty for all; "
            f"got {text[:20]!r}. Nothing was changed.",
        )
    return value


def _safe_next(target: str | None) -> str:
    """A path of this site to go to after signing in (never another site's address)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _job_changes(before: Job, after: Job | None) -> list[str]:
    if after is None:
        return [f"job {before.id} no longer exists"]
    changes = [f"state: {before.state.value} → {after.state.value}"]
    if after.state in (JobState.CREATED, JobState.RETRY):
        changes.append(f"due at {after.start_after.isoformat(timespec='seconds')}")
    if before.state is JobState.ACTIVE and after.state is JobState.CANCELLED:
        changes.append("its running handler is cancelled at its worker's next heartbeat")
    return changes


def _copy_note(copy: Job) -> str:
    output: Any = copy.output
    if copy.state is JobState.COMPLETED and isinstance(output, dict) and output.get("redriven"):
        return (
            f"its dead-letter copy {copy.id} in {copy.queue} was settled (completed with a "
            "note), so it does not run as well"
        )
    return f"its dead-letter copy {copy.id} in {copy.queue} is {copy.state.value}"


def _not_done(action: str, job: Job | None) -> str:
    if job is None:
        return "the job no longer exists"
    return f"the job is {job.state.value}: {_RULES[action]}"
