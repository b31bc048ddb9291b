"""Log output for the ``queues`` command: readable text or one JSON object per line.

The job wrapper (``process_job``) logs with structured ``extra`` fields (job_id, queue, event,
entity_id, attempt, duration_ms, ...). The JSON formatter emits every such field; the text
formatter appends the most useful ones after the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from .config import redact

__all__ = [
    "JOB_FIELDS",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
]

#: The structured fields the job wrapper attaches to its records, in display order.
JOB_FIELDS: Final = ("job_id", "queue", "event", "entity_id", "attempt", "duration_ms")
# The text format repeats only what the wrapper's messages do not already say.
_TEXT_FIELDS: Final = ("queue", "job_id", "attempt")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = _extras(record)
        for key in JOB_FIELDS:  # the job fields first, in a stable order
            if key in extras:
                entry[key] = extras.pop(key)
        entry.update(extras)
        if record.exc_info:
            # A preset exc_text is the bounded form (the job wrapper's failures).
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00.000Z INFO queues.jobs: message [queue=... job_id=... attempt=1]``.

    The label, entity id and duration are already in the job wrapper's messages; the JSON
    format carries every field.
    """

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        context = " ".join(f"{key}={extras[key]}" for key in _TEXT_FIELDS if key in extras)
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if context:
            line += f" [{context}]"
        if record.exc_info:
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))
        return line


class RedactingFilter(logging.Filter):
    """Replaces passwords (of DSNs and ``password=`` keywords) in a record's message and
    traceback text by ``***``; cheap for the usual record, which mentions neither."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging(
    log_format: Literal["text", "json"] = "text",
    *,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one handler on the root logger (replacing any earlier handlers) and return it."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
