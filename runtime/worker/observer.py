"""What the worker machinery tells an observer (metrics), when one is set.

The hooks sit in the claim (``WorkerServices.claim``), the run (``Worker._execute``), the
result writes (``ResultWriter``) and the rescue (``Maintenance``). With no observer set, each
hook is one ``is None`` test: nothing is timed, counted or allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..db.rows import RescuedJob

__all__ = ["FailureOutcome", "WorkerObserver"]

FailureOutcome = tuple[object, str, bool]
"""A written failure: the job's tag, its new state (``retry`` or ``failed``) and whether a
dead-letter copy was made."""


class WorkerObserver(Protocol):
    def tag(self, queue: str, event: str | None) -> object:
        """An opaque handle on a job's labels, made once per run and handed back with its
        result (so the writer need not know queues or events)."""
        ...

    def claimed(self, queue: str, seconds: float, count: int) -> None:
        """A claim of ``queue`` returned ``count`` jobs after ``seconds``."""
        ...

    def handler_finished(self, tag: object, seconds: float, ok: bool) -> None:
        """A handler returned (``ok``) or raised after ``seconds``."""
        ...

    def completions_written(self, tags: Sequence[object], seconds: float) -> None:
        """One completion write took ``seconds`` and completed the jobs of ``tags`` (those
        whose claim was still current)."""
        ...

    def failures_written(self, outcomes: Sequence[FailureOutcome], seconds: float) -> None:
        """One failure write took ``seconds``; each job's outcome."""
        ...

    def rescued(self, jobs: Sequence[RescuedJob]) -> None:
        """A maintenance round of this process rescued ``jobs``."""
        ...
