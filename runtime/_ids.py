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

from .jobs import JobId

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


def new_job_id() -> JobId:
    """One new id."""
    ms, seq = _next_stamp()
    rand = random.getrandbits(62)
    return JobId(uuid.UUID(int=(ms << 80) | (seq << 64) | _VERSION_VARIANT | rand))


def new_job_ids(count: int) -> list[JobId]:
    """``count`` new ids, in increasing order."""
    return [new_job_id() for _ in range(count)]
