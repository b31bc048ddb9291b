"""Where a worker's next claim starts in the claim order: past the last job it claimed, or
from the start.

Pure (no I/O, no clock): the worker passes the time (monotonic seconds) and tells it what each
claim returned. A claim is a non-HOT update, so the claim index keeps an entry for every job
claimed since the job table was last vacuumed, at the head of the order claims read in, and a
claim from the start walks over all of them (bench/PROFILE.md, issue 17). A claim from the
cursor (``claim_work_after``) starts after the last job this worker claimed and skips them.

It cannot see what sorts before the cursor: jobs of a higher priority, and jobs of the same
priority due earlier than the last one claimed (a retry whose backoff ended earlier, an explicit
``start_after`` in the past, jobs written by a transaction that began earlier, jobs another
claim skipped while they were locked). So the worker claims from the start:

* when it has no cursor (its first claim);
* at least every ``refresh_s``;
* when a claim from the cursor returned fewer jobs than asked: at once for the rest, unless it
  claimed from the start less than ``min_gap_s`` ago; then that claim is owed and ``due_in``
  says when (a worker that went idle wakes up for it).

A job that sorts before the cursor therefore waits at most about ``refresh_s`` longer than it
would have without the cursor, and is never skipped for good. Claims from the start stay rare
while the queue keeps the worker busy (about one per ``refresh_s``), and at most one per
``min_gap_s`` while it drains the queue.
"""

from __future__ import annotations

import math
from typing import Final

from ..db.rows import ClaimPosition

__all__ = ["ClaimCursor"]

#: Longest time between two claims from the start.
DEFAULT_REFRESH_S: Final = 1.0
#: Shortest time between two claims from the start after claims that came back short.
DEFAULT_MIN_GAP_S: Final = 0.25


class ClaimCursor:
    __slots__ = ("_last_start", "_owed", "min_gap_s", "position", "refresh_s")

    def __init__(self, *, refresh_s: float | None = None, min_gap_s: float | None = None) -> None:
        self.refresh_s = DEFAULT_REFRESH_S if refresh_s is None else refresh_s
        self.min_gap_s = DEFAULT_MIN_GAP_S if min_gap_s is None else min_gap_s
        #: The last job claimed (None: none yet, claim from the start).
        self.position: ClaimPosition | None = None
        self._last_start = -math.inf
        #: A claim from the cursor came back short and no claim from the start followed yet.
        self._owed = False

    def after(self, now: float) -> ClaimPosition | None:
        """Where the next claim starts: after this position, or from the start (None)."""
        since = now - self._last_start
        if self.position is None or since >= self.refresh_s:
            return None
        if self._owed and since >= self.min_gap_s:
            return None
        return self.position

    def claimed(
        self,
        after: ClaimPosition | None,
        asked: int,
        got: int,
        last: ClaimPosition | None,
        now: float,
    ) -> bool:
        """A claim that started after ``after`` (None: from the start) for ``asked`` jobs
        returned ``got``, the last of them at ``last``. True: claim the other ``asked - got``
        from the start now."""
        if last is not None:
            self.position = last
        if after is None:
            self._last_start = now
            self._owed = False
            return False
        if got >= asked:
            return False
        if now - self._last_start >= self.min_gap_s:
            return True
        self._owed = True
        return False

    def due_in(self, now: float) -> float:
        """Seconds until an owed claim from the start may run (inf: none is owed)."""
        if not self._owed:
            return math.inf
        return max(0.0, self._last_start + self.min_gap_s - now)
