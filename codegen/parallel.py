"""Run the per-domain datamodel-code-generator calls, in worker processes for big catalogues.

datamodel-code-generator costs about 10 ms per model, holds the GIL, and its first call in a
process imports about 0.6 s of its own modules. For a big catalogue the runner forks its
workers at once and warms them up (that import) while the parent parses and validates the
YAML; each domain is then one task. Small catalogues run in-process. The output does not
depend on how the work was split.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType
from typing import Self

from .payloads import ModelsJob, generate_module

__all__ = ["ModelsRunner"]

PARALLEL_MIN_BYTES = 40_000  # about 35 events of YAML; below it a pool costs more than it saves
_MAX_WORKERS = 4
# touches the code paths of a typical catalogue: enums, formats, refs, nested objects, arrays
_WARM_UP = ModelsJob(
    root={
        "$defs": {
            "Warm": {
                "type": "object",
                "description": "Warm.",
                "additionalProperties": False,
                "required": ["a", "b"],
                "properties": {
                    "a": {"type": "string", "format": "uuid"},
                    "b": {"$ref": "#/$defs/Part"},
                    "c": {"type": "string", "enum": ["x", "y"], "default": "x"},
                    "d": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {"e": {"type": "integer", "minimum": 1}},
                        },
                    },
                    "f": {"type": "string", "format": "date-time", "description": "F."},
                    "g": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                    "h": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
                    "i": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "Part": {"type": "string", "enum": ["p", "q"]},
        },
        "$ref": "#/$defs/Warm",
    },
    class_name="Warm",
    header="#",
)


def _warm_up() -> None:
    generate_module(_WARM_UP)


class ModelsRunner:
    """``with ModelsRunner(size_hint) as runner: texts = runner.run(jobs)``."""

    def __init__(self, size_hint: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        workers = min(os.cpu_count() or 1, _MAX_WORKERS)
        # fork only from a single-threaded process: a forked child inherits no other thread
        forkable = "fork" in mp.get_all_start_methods() and threading.active_count() == 1
        if size_hint >= PARALLEL_MIN_BYTES and workers >= 2 and forkable:
            self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
            for _ in range(workers):
                self._pool.submit(_warm_up)

    def run(self, jobs: Sequence[ModelsJob]) -> list[str]:
        """The ``models.py`` text of every job, in order."""
        if self._pool is None or len(jobs) < 2:
            return [generate_module(job) for job in jobs]
        # biggest domains first, so that the workers finish together
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].root["$defs"]))
        texts = [""] * len(jobs)
        results = self._pool.map(generate_module, [jobs[i] for i in order])
        for index, text in zip(order, results, strict=True):
            texts[index] = text
        return texts

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
