"""What is kept of a failure: the exception's type, a bounded message, a bounded traceback
summary (both with passwords of connection strings masked), and the worker (host and pid) it
happened in.

Used by the job wrapper's ``Failed:`` log line and by the error documents stored with a job,
so a handler raising an exception with a huge message writes neither a huge log line nor a
huge row. Bounds are in characters.
"""

from __future__ import annotations

import os
import socket
import traceback
from dataclasses import dataclass
from typing import Final

from .config import redact

__all__ = [
    "MAX_MESSAGE",
    "MAX_TRACEBACK",
    "MAX_TYPE",
    "FailureSummary",
    "bounded",
    "summarize",
    "worker_identity",
]

#: Longest exception message kept.
MAX_MESSAGE: Final = 2000
#: Longest traceback summary kept (its last frames: where the error was raised).
MAX_TRACEBACK: Final = 8000
#: Longest exception type name kept.
MAX_TYPE: Final = 200
#: Longest single line of a traceback kept (a frame's source line, an exception message).
_MAX_LINE: Final = 1000


def bounded(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    note = f"...[{len(text) - limit} characters cut]"
    return text[: max(0, limit - len(note))] + note


@dataclass(frozen=True, slots=True)
class FailureSummary:
    """A bounded description of one exception."""

    type: str
    message: str
    traceback: str

    @property
    def line(self) -> str:
        """``Type: message``, as a log line shows it."""
        return f"{self.type}: {self.message}" if self.message else self.type


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not break the worker
        return f"<{type(error).__name__} object (str failed)>"


def _traceback_text(error: BaseException, limit: int) -> str:
    try:
        chunks = traceback.TracebackException.from_exception(error).format()
        parts = [
            bounded(chunk, _MAX_LINE) + ("\n" if len(chunk) > _MAX_LINE else "") for chunk in chunks
        ]
    except Exception as exc:  # formatting user objects may fail
        return f"(traceback unavailable: {type(exc).__name__})"
    text = "".join(parts)
    if len(text) > limit:
        marker = "...[earlier frames cut]\n"
        text = marker + text[-(limit - len(marker)) :]
    return text


def summarize(
    error: BaseException,
    *,
    kind: str | None = None,
    message_limit: int = MAX_MESSAGE,
    traceback_limit: int = MAX_TRACEBACK,
) -> FailureSummary:
    """The bounded type, message and traceback of ``error`` (each line of the traceback is cut
    too, so a huge message leaves room for the frames)."""
    return FailureSummary(
        type=bounded(kind or type(error).__qualname__, MAX_TYPE),
        message=redact(bounded(_safe_str(error), message_limit)),
        traceback=redact(_traceback_text(error, traceback_limit)),
    )


_identity: tuple[int, dict[str, object]] | None = None


def worker_identity() -> dict[str, object]:
    """``{"host": ..., "pid": ...}`` of this process (recomputed after a fork)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, {"host": bounded(socket.gethostname(), 255), "pid": pid})
    return dict(_identity[1])
