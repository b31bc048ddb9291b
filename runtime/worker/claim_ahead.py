"""How many jobs a worker claims at once: its free slots, plus some claimed ahead.

Pure (no I/O, no clock): the worker tells it what happened (a claim's result, a job's
duration) and asks it how many to claim next. Claiming ahead lets fast jobs share claims and
completion commits: besides the free slots, the worker holds as many jobs as its handlers
finish in ``budget_s`` (none for slow handlers), so no held job waits much longer than that.
The next claim goes out when half of the held jobs have started, so it runs while the rest
do; after a claim that drained the queue, only once all have started.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ClaimAhead"]

#: How long, at the rate the handlers finish, the jobs claimed ahead should last.
DEFAULT_BUDGET_S: Final = 0.05
#: Most jobs claimed ahead of the free slots, however fast the handlers are.
DEFAULT_MAX_AHEAD: Final = 500
#: Weight of the newest job's duration in the smoothed duration.
_SMOOTHING: Final = 0.1


class ClaimAhead:
    __slots__ = (
        "_budget_s",
        "_max_ahead",
        "ahead",
        "batch_size",
        "concurrency",
        "drained",
        "job_s",
    )

    def __init__(
        self,
        concurrency: int,
        batch_size: int | None = None,
        *,
        budget_s: float = DEFAULT_BUDGET_S,
        max_ahead: int = DEFAULT_MAX_AHEAD,
    ) -> None:
        self.concurrency = concurrency
        self.batch_size = batch_size
        self._budget_s = budget_s
        self._max_ahead = max_ahead
        #: Jobs to hold beyond the free slots now.
        self.ahead = 0
        #: The last claim returned fewer jobs than asked: the queue is drained for now.
        self.drained = False
        #: How long a job takes from start to finish, smoothed (None until one finished).
        self.job_s: float | None = None

    def want(self, running: int, held: int) -> int:
        """How many to claim now (<= 0: none), with ``running`` jobs and ``held`` waiting."""
        want = self.concurrency - running + self.ahead - held
        if self.batch_size is not None:
            want = min(want, self.batch_size)
        if held and (self.drained or held > self.ahead // 2):
            return 0
        return want

    def claimed(self, asked: int, got: int) -> None:
        """A claim for ``asked`` jobs returned ``got``."""
        self.drained = got < asked
        if self.drained:
            self.ahead = 0
        else:
            self.ahead = min(self.limit(), 2 * self.ahead or self.concurrency)

    def finished(self, took_s: float) -> None:
        """A job ran for ``took_s`` seconds."""
        self.job_s = (
            took_s if self.job_s is None else (1 - _SMOOTHING) * self.job_s + _SMOOTHING * took_s
        )

    def handlers_slow(self) -> None:
        """Held jobs waited too long for a slot: hold none until claims fill up again."""
        self.ahead = 0

    def limit(self) -> int:
        """Jobs to hold beyond the free slots: as many as the handlers finish in the budget,
        up to ``max_ahead``."""
        if self.job_s is None:
            return 0
        finished_per_s = self.concurrency / max(self.job_s, 1e-6)
        return min(self._max_ahead, int(finished_per_s * self._budget_s))
