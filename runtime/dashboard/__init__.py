"""The web dashboard (``queues dashboard``): the queues, their jobs and dead letters in a
browser, with retry, cancel, resume, redrive and pause behind a confirmation.

Needs the ``dashboard`` extra (Starlette, Jinja2, uvicorn). ``create_app`` is the ASGI
application over a started ``Boss``; ``serve`` runs it the way the command does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .security import check_bind, is_loopback

if TYPE_CHECKING:
    from .app import create_app
    from .server import serve

__all__ = ["EXTRA_MODULES", "check_bind", "create_app", "is_loopback", "serve"]

#: The modules of the ``dashboard`` extra.
EXTRA_MODULES = ("starlette", "jinja2", "uvicorn")


def __getattr__(name: str) -> Any:
    # Imported on first use, so that importing this package needs none of the extra.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(name)
