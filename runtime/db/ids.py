"""Job ids: time-ordered UUIDs (version 7 layout) made in the process.

Ids made here sort by creation time (with a per-process sequence inside one millisecond), so
the primary key grows at its right edge and jobs of one batch keep their order as tie-breaker
in the claim. They are unique without the database: 62 random bits per id (the ``random``
module reseeds itself in forked children).
"""

from __future__ import annotations

import random
import time
import uuid

from ..jobs import JobId

__all__ = ["new_job_id", "new_job_ids"]

_last_ms = 0
_seq = 0
_VERSION_VARIANT = (0x7 << 76) | (0b10 << 62)


def _next_stamp() -> tuple[int, int]:
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _seq = ms, 0
    else:
        _seq += 1
        if _seq > 0xFFF:
            _last_ms, _seq = _last_ms + 1, 0
    return _last_ms, _seq


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_direct(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` without its argument checks (value is a valid 128-bit int)."""
    made: uuid.UUID = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", _UNKNOWN)
    return made


def _uuid_checked(value: int) -> uuid.UUID:
    return uuid.UUID(int=value)


# The shortcut relies on CPython's UUID layout (slots ``int`` and ``is_safe``); verify it once.
_uuid_of = (
    _uuid_direct
    if _uuid_direct(_VERSION_VARIANT | 1) == uuid.UUID(int=_VERSION_VARIANT | 1)
    else _uuid_checked
)


def new_job_id() -> JobId:
    """One new id."""
    ms, seq = _next_stamp()
    return JobId(_uuid_of((ms << 80) | (seq << 64) | _VERSION_VARIANT | random.getrandbits(62)))


def new_job_ids(count: int) -> list[JobId]:
    """``count`` new ids, in increasing order (``new_job_id`` in a loop, with the clock read
    once: a big batch takes the next sequence numbers, moving on a millisecond per 4096)."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _seq = ms, -1
    ms, seq = _last_ms, _seq
    bits = random.getrandbits
    make = _uuid_of
    ids: list[JobId] = []
    append = ids.append
    for _ in range(count):
        seq += 1
        if seq > 0xFFF:
            ms, seq = ms + 1, 0
        append(JobId(make((ms << 80) | (seq << 64) | _VERSION_VARIANT | bits(62))))
    _last_ms, _seq = ms, seq
    return ids
