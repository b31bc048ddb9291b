"""Job data, outputs and error records as JSON text: validated before any SQL runs.

PostgreSQL's jsonb cannot hold NUL characters and the runtime caps the size of job data, so
both are checked here, with a fast path for the common case (a short, clean payload).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ..errors import PayloadError
from ..failures import MAX_MESSAGE, summarize, worker_identity

__all__ = [
    "encode_data",
    "encode_many",
    "encode_output",
    "encode_output_strict",
    "error_document",
    "json_text",
    "sanitize_text",
]

_encoder: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps() -> Callable[[object], str]:
    """``_encoder.encode`` without its per-call set-up (the C encoder, built once)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the plain encoder
        return _encoder.encode
    iterencode = make(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def dumps(value: object) -> str:
        return "".join(iterencode(value, 0))

    return dumps


_dumps: Final = _make_dumps()
#: Compact JSON text of JSON values (no checks: for text known to be clean, or checked after).
json_text: Final = _dumps
_ESCAPED_NUL: Final = "\\u0000"


def _find_nul(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) holding a NUL, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            if "\x00" in key_text:
                return f"{path} (a key)"
            found = _find_nul(item, f"{path}.{key_text}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}[{index}]")
            if found:
                return found
    return None


def encode_data(queue: str, data: object, max_bytes: int) -> str:
    """Serialise one job's data, or raise ``PayloadError`` saying what is wrong and the fix."""
    if type(data) is not dict:
        if not isinstance(data, Mapping):
            raise PayloadError(
                f'job data for queue "{queue}" must be a mapping (a JSON object), '
                f"got {type(data).__name__}"
            )
        data = dict(data)
    try:
        text = _dumps(data)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(
            f'job data for queue "{queue}" is not JSON-serialisable ({exc}): pass only '
            "JSON types (dict, list, str, int, float, bool, None; no NaN or infinity), "
            'e.g. model.model_dump(mode="json")'
        ) from None
    return _checked(queue, text, max_bytes, data)


def _checked(queue: str, text: str, max_bytes: int, data: object) -> str:
    """``text`` (the JSON of ``data``; None: parse it if needed) checked for what jsonb and
    the size limit refuse: for text the caller encoded already, the checks of ``encode_data``
    that JSON text can still fail (a NUL character, lone surrogates, the size), with the same
    errors; it is parsed only when it holds an escaped NUL, to tell where."""
    if _ESCAPED_NUL in text:
        where = _find_nul(json.loads(text) if data is None else data, "data")
        if where is not None:
            raise PayloadError(
                f'job data for queue "{queue}" contains a NUL character (\\u0000) in {where}: '
                "PostgreSQL cannot store it; remove or replace it before sending"
            )
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise PayloadError(
                f'job data for queue "{queue}" is not valid Unicode ({exc.reason}): '
                "remove lone surrogate characters"
            ) from None
    if size > max_bytes:
        raise PayloadError(
            f'job data for queue "{queue}" is {size} bytes, over the limit of {max_bytes}: '
            "store large content elsewhere and send a reference, or raise max_payload_bytes"
        )
    return text


def _check_or_encode(queue: str, item: object, max_bytes: int) -> str:
    if type(item) is str:
        return _checked(queue, item, max_bytes, None)
    return encode_data(queue, item, max_bytes)


def encode_many(
    queue: str, items: Iterable[object], max_bytes: int, start: int = 0, *, encoded: bool = False
) -> list[str]:
    """``encode_data`` of every item; the error names the first bad item's index (counted
    from ``start``). ``encoded``: the items are mostly JSON text already (``_checked``);
    an item that is not a str is data, encoded as usual."""
    one = _check_or_encode if encoded else encode_data
    texts: list[str] = []
    append = texts.append
    for index, item in enumerate(items, start):
        if (  # the common encoded item, checked here: clean ASCII text within the limit
            encoded
            and type(item) is str
            and _ESCAPED_NUL not in item
            and item.isascii()
            and len(item) <= max_bytes
        ):
            append(item)
            continue
        try:
            append(one(queue, item, max_bytes))
        except PayloadError as exc:
            raise PayloadError(f"item {index}: {exc}") from None
    return texts


def sanitize_text(text: str, limit: int) -> str:
    """Replace NUL characters and cut ``text`` to at most ``limit`` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 15] + "...[truncated]"
    return text


def _sanitize_value(value: Any) -> Any:
    if isinstance(value, str):
        return sanitize_text(value, len(value) + 20)
    if isinstance(value, dict):
        return {sanitize_text(str(k), 10_000): _sanitize_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize_value(v) for v in value]
    return value


def encode_output(value: object) -> str | None:
    """A handler's return value as JSON text; never raises.

    ``None`` stores nothing. NUL characters are replaced; a value that is not JSON is stored as
    ``{"unserialisable_output": <repr>, "error": <why>}`` so the job still completes.
    """
    if value is None:
        return None
    try:
        text = _dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        note = {
            "unserialisable_output": sanitize_text(_safe_repr(value), 1000),
            "error": sanitize_text(str(exc), MAX_MESSAGE),
        }
        return _encoder.encode(note)
    if _ESCAPED_NUL in text and _find_nul(value, "output") is not None:
        text = _encoder.encode(_sanitize_value(value))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def encode_output_strict(value: object) -> str | None:
    """An output given to ``Boss.complete``: JSON without NUL, or ``PayloadError``."""
    if value is None:
        return None
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"job output is not JSON-serialisable ({exc})") from None
    if _ESCAPED_NUL in text and _find_nul(value, "output") is not None:
        raise PayloadError("job output contains a NUL character (\\u0000): remove it")
    return text


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not break the worker
        return f"<{type(value).__name__} object (repr failed: {type(exc).__name__})>"


def error_document(
    error: str | BaseException, *, kind: str | None = None, worker: bool = True
) -> str:
    """The JSON stored as a failed attempt's output: ``{"error": {type, message, traceback,
    worker}}``, each part bounded (``failures.summarize``). ``worker`` (host and pid of this
    process) is left out with ``worker=False``, for failures decided elsewhere (a rescue)."""
    details: dict[str, Any]
    if isinstance(error, BaseException):
        summary = summarize(error, kind=kind)
        details = {
            "type": sanitize_text(summary.type, 200),
            "message": sanitize_text(summary.message, MAX_MESSAGE),
            "traceback": sanitize_text(summary.traceback, len(summary.traceback) + 20),
        }
    else:
        details = {"type": kind or "Error", "message": sanitize_text(str(error), MAX_MESSAGE)}
    if worker:
        details["worker"] = worker_identity()
    return _encoder.encode({"error": details})
