"""The dashboard as a Starlette application: its routes, and the checks every request passes
before a page or an action runs (allowed host, session, token, CSRF), and the headers every
response gets.

``create_app(boss, ...)`` takes a started ``Boss``; the caller owns its lifetime
(``server.serve`` for ``queues dashboard``, a test's fixture otherwise).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..client import Boss
from ..config import REDACTED, dsn_password, redact
from ..errors import QueuesError, UnknownQueueError, ValidationError
from .render import TEMPLATES, environment
from .security import AUTH_COOKIE, SESSION_COOKIE, Guard, loopback_hosts

__all__ = ["Dashboard", "Visit", "create_app"]

log = logging.getLogger("queues.dashboard")

#: Largest form body accepted (the forms hold a token and a few short fields).
MAX_FORM_BYTES: Final = 16 * 1024
_HEADERS: Final = {
    # No script may run at all, whatever a page holds; styles only from the stylesheet.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class HttpError(Exception):
    """Ends a request with ``status`` and a page saying ``message``."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(slots=True)
class Visit:
    """One request as the handlers see it: who is asking and the form it sent."""

    request: Request
    session: str
    new_session: bool
    authenticated: bool
    #: The token came in the Authorization header (no cookie, no CSRF token needed).
    by_header: bool
    csrf: str
    form: dict[str, str]

    def param(self, name: str) -> str | None:
        """A query-string parameter, None when absent or blank."""
        value = self.request.query_params.get(name)
        return value.strip() if value and value.strip() else None


Handler = Callable[[Visit], Awaitable[Response]]


class Dashboard:
    """What the handlers share: the Boss, the templates, the guard and what pages show of the
    database (never its password)."""

    def __init__(self, boss: Boss, *, guard: Guard, database: str, password: str | None) -> None:
        self.boss = boss
        self.guard = guard
        self.database = database
        self._password = password
        self._env = environment()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def html(self, visit: Visit, template: str, *, status: int = 200, **context: Any) -> Response:
        """Render ``template`` for ``visit``; the DSN's password is masked if it shows up."""
        text = self._env.get_template(template).render(
            csrf=visit.csrf,
            schema=self.boss.schema,
            database=self.database,
            token_required=self.guard.token_required,
            authenticated=visit.authenticated,
            path=visit.request.url.path,
            now=self.now(),
            **context,
        )
        if self._password and len(self._password) >= 4:
            text = text.replace(self._password, REDACTED)
        return HTMLResponse(text, status_code=status)

    def error(self, visit: Visit, status: int, title: str, message: str) -> Response:
        return self.html(visit, "error.html", status=status, title=title, message=redact(message))


def create_app(
    boss: Boss,
    *,
    token: str | None = None,
    dsn: str | None = None,
    loopback_only: bool = True,
    secret: bytes | None = None,
) -> Starlette:
    """The dashboard over a started ``boss``. ``token``: what every request must carry (see
    ``security``); ``dsn``: shown with its password masked; ``loopback_only``: answer only
    requests addressed to a loopback name (a dashboard bound to loopback)."""
    from .actions import Actions
    from .pages import Pages

    dashboard = Dashboard(
        boss,
        guard=Guard(token, secret=secret),
        database=redact(dsn) if dsn else "(configured database)",
        password=dsn_password(dsn) if dsn else None,
    )
    pages = Pages(dashboard)
    actions = Actions(dashboard)
    hosts = set(loopback_hosts()) if loopback_only else None

    def route(
        path: str, handler: Handler, *, methods: tuple[str, ...] = ("GET",), public: bool = False
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await _handle(dashboard, hosts, handler, request, public=public)

        return Route(path, endpoint, methods=list(methods))

    routes = [
        route("/", pages.overview),
        route("/queues/{name}", pages.queue),
        route("/jobs", pages.jobs),
        route("/jobs/{job_id}", pages.job),
        route("/dead-letters", pages.dead_letters),
        route("/schedules", pages.schedules),
        route("/jobs/{job_id}/{action:str}", actions.job, methods=("GET", "POST")),
        route("/queues/{name}/{action:str}", actions.queue, methods=("GET", "POST")),
        route("/dead-letters/{name}/redrive", actions.redrive, methods=("GET", "POST")),
        route("/login", actions.login, methods=("GET", "POST"), public=True),
        route("/logout", actions.logout, methods=("POST",), public=True),
        Route("/static/dashboard.css", _stylesheet, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _plain_error})


async def _plain_error(request: Request, exc: Exception) -> Response:
    """No route (404) or a wrong method (405): a short text, with the usual headers."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    return PlainTextResponse(f"{status} {detail}", status_code=status, headers=_HEADERS)


async def _stylesheet(request: Request) -> Response:
    text = (TEMPLATES / "dashboard.css").read_text(encoding="utf-8")
    return Response(
        text,
        media_type="text/css",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


async def _handle(
    dashboard: Dashboard,
    hosts: set[str] | None,
    handler: Handler,
    request: Request,
    *,
    public: bool,
) -> Response:
    guard = dashboard.guard
    session = request.cookies.get(SESSION_COOKIE)
    new_session = not guard.valid_session(session)
    if new_session:
        session = guard.new_session()
    assert session is not None
    by_header = guard.bearer_ok(request.headers.get("authorization"))
    authenticated = (
        not guard.token_required
        or by_header
        or guard.cookie_ok(session, request.cookies.get(AUTH_COOKIE))
    )
    visit = Visit(
        request=request,
        session=session,
        new_session=new_session,
        authenticated=authenticated,
        by_header=by_header,
        csrf=guard.csrf_token(session),
        form={},
    )
    try:
        _check_host(request, hosts)
        if request.method == "POST":
            visit.form = await _read_form(request)
            if not authenticated and not public:
                raise HttpError(
                    401,
                    "Token required",
                    "This action needs the dashboard's token: sign in first. Nothing was changed.",
                )
            if not by_header:
                _check_origin(request)
                if new_session or not guard.csrf_ok(session, visit.form.get("csrf")):
                    raise HttpError(
                        403,
                        "Refused",
                        "The form's CSRF token is missing or does not match this browser's "
                        "session (a form from another site, or an expired page): reload the "
                        "page and submit it again. Nothing was changed.",
                    )
        elif not authenticated and not public:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = dashboard.html(
                visit, "login.html", status=401, next=target, failed=False, title="Sign in"
            )
            return _finish(response, visit, request)
        response = await handler(visit)
    except HttpError as exc:
        response = dashboard.error(visit, exc.status, exc.title, exc.message)
    except UnknownQueueError as exc:
        response = dashboard.error(visit, 404, "No such queue", str(exc))
    except ValidationError as exc:
        response = dashboard.error(visit, 400, "Bad request", str(exc))
    except QueuesError as exc:
        response = dashboard.error(visit, 409, "Not done", str(exc))
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        schema = dashboard.boss.schema
        response = dashboard.error(
            visit,
            500,
            "Schema not migrated",
            f"schema {schema!r} is missing queue tables or columns ({type(exc).__name__}): "
            f"run `queues migrate --schema {schema}`",
        )
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["connection failed"])[0]
        response = dashboard.error(visit, 503, "Database unreachable", first)
    except Exception as exc:
        log.exception("dashboard: %s %s failed", request.method, request.url.path)
        response = dashboard.error(
            visit, 500, "Internal error", f"{type(exc).__name__}: {str(exc)[:500]}"
        )
    return _finish(response, visit, request)


def _finish(response: Response, visit: Visit, request: Request) -> Response:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if visit.new_session:
        response.set_cookie(
            SESSION_COOKIE,
            visit.session,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def _check_host(request: Request, hosts: set[str] | None) -> None:
    if hosts is None:
        return
    host = (request.headers.get("host") or "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name not in hosts:
        raise HttpError(
            400,
            "Unknown host",
            f"this dashboard listens on loopback and answers only to localhost, 127.0.0.1 "
            f"and [::1], not to {host[:100]!r}",
        )


def _check_origin(request: Request) -> None:
    """A POST whose Origin header names another site is refused (the CSRF token would refuse
    it too; this says why)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin.lower() != expected.lower():
        raise HttpError(
            403,
            "Refused",
            f"this form was sent from another site ({origin[:100]}), not from the dashboard. "
            "Nothing was changed.",
        )


async def _read_form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HttpError(413, "Too large", "the form is larger than the dashboard accepts")
    if not body:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise HttpError(
            415,
            "Unsupported form",
            f"forms are sent as application/x-www-form-urlencoded, not {kind or 'nothing'}",
        )
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50
        )
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "Bad form", "the form could not be read") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def redirect(location: str) -> Response:
    """303 to ``location`` (after a form)."""
    return RedirectResponse(location, status_code=303)
