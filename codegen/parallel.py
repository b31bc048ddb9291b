"""Run the per-domain model jobs (``payloads.build_module``), in forked processes when it pays.

A job costs datamodel-code-generator about 5 ms per model plus, when the domain has examples,
about 2 ms per model to build the models and check them; all of it holds the GIL. The first
job in a process also costs about 0.6 s of datamodel-code-generator imports and warm-up.

For a big catalogue the runner forks ONE helper process at once (``ModelsRunner.__init__``),
which pays that warm-up while the parent parses and validates the YAML. When the jobs arrive,
the warm helper forks its siblings, which start warm (a fork copies the imported modules),
and the group splits the domains. So the warm-up is paid once and off the critical path,
instead of once per worker. Small catalogues run in-process. The output does not depend on
how the work was split.

Results are also kept in a small in-process cache keyed on the job, so generating the same
catalogue again in one process (tests, ``--check`` after a write) skips the models.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Self

from .payloads import GeneratedModule, ModelsJob, build_module

__all__ = ["PARALLEL_MIN_BYTES", "ModelsRunner", "Pending"]

PARALLEL_MIN_BYTES = 40_000  # about 35 events of YAML; below it a helper costs more than it saves
_MAX_WORKERS = 4
_CACHE_SIZE = 32
_CACHE: OrderedDict[bytes, GeneratedModule] = OrderedDict()

# touches the code paths of a typical catalogue: enums, formats, refs, nested objects, arrays,
# and an example built and validated
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
                    "j": {"type": "string", "format": "date"},
                    "k": {"type": "string", "format": "uri"},
                },
            },
            "Part": {"type": "string", "enum": ["p", "q"]},
        },
        "$ref": "#/$defs/Warm",
    },
    class_name="Warm",
    header="#",
    domain="warm-up",
    examples={
        "Warm": {
            "a": "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f",
            "b": "p",
            "d": [{"e": 1}],
            "f": "2026-01-01T00:00:00Z",
            "h": "a@example.com",
        }
    },
)


class ModelsRunner:
    """``with ModelsRunner(size_hint) as runner: modules = runner.run(jobs)``.

    Or ``pending = runner.submit(jobs)``, other work, then ``pending.result()``: with a helper
    process the models are generated meanwhile.
    """

    def __init__(self, size_hint: int) -> None:
        self._helper: BaseProcess | None = None
        self._conn: Connection | None = None
        workers = min(os.cpu_count() or 1, _MAX_WORKERS)
        # a daemonic process (a multiprocessing pool's worker, say) may not start children
        daemonic = mp.current_process().daemon
        if size_hint >= PARALLEL_MIN_BYTES and workers >= 2 and _forkable() and not daemonic:
            context = mp.get_context("fork")
            ours, theirs = context.Pipe()
            helper = context.Process(
                target=_helper_main, args=(theirs, workers), name="queues-codegen", daemon=True
            )
            helper.start()
            theirs.close()
            self._helper, self._conn = helper, ours

    def run(self, jobs: Sequence[ModelsJob]) -> list[GeneratedModule]:
        """The module of every job, in order."""
        return self.submit(jobs).result()

    def submit(self, jobs: Sequence[ModelsJob]) -> Pending:
        """Hand the jobs not in the cache to the helper, if there is one; returns at once."""
        keys = [_key(job) for job in jobs]
        found = {i: _CACHE[key] for i, key in enumerate(keys) if key in _CACHE}
        missing = [i for i in range(len(jobs)) if i not in found]
        sent = False
        if missing and self._conn is not None:
            try:
                self._conn.send([jobs[i] for i in missing])
                sent = True
            except OSError:  # the helper is gone: the work is done here
                self.close()
        return Pending(self, list(jobs), keys, found, missing, sent)

    def _receive(self) -> list[GeneratedModule] | None:
        """The helper's answer; None when it died (the caller does the work itself)."""
        if self._conn is None:
            return None
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self.close()
            return None
        if status == "error":
            raise value
        modules: list[GeneratedModule] = value
        return modules

    def close(self) -> None:
        """Stop the helper: done after its reply, or never sent work (an invalid catalogue)."""
        helper, conn = self._helper, self._conn
        self._helper = self._conn = None
        if conn is not None:
            conn.close()
        if helper is None:
            return
        if helper.is_alive():
            helper.terminate()
        helper.join(2)
        if helper.is_alive():  # pragma: no cover - SIGTERM blocked by the embedding app
            helper.kill()
            helper.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Pending:
    """Jobs submitted to a ``ModelsRunner``; ``result()`` waits for (or builds) the modules."""

    def __init__(
        self,
        runner: ModelsRunner,
        jobs: list[ModelsJob],
        keys: list[bytes],
        found: dict[int, GeneratedModule],
        missing: list[int],
        sent: bool,
    ) -> None:
        self._runner = runner
        self._jobs = jobs
        self._keys = keys
        self._found = found
        self._missing = missing
        self._sent = sent

    def result(self) -> list[GeneratedModule]:
        """The module of every job, in order."""
        built = self._runner._receive() if self._sent else None
        if built is None:
            built = [build_module(self._jobs[i]) for i in self._missing]
        found = {**self._found, **dict(zip(self._missing, built, strict=True))}
        modules = [found[index] for index in range(len(self._jobs))]
        for key, module in zip(self._keys, modules, strict=True):
            _remember(key, module)
        return modules


def _forkable() -> bool:
    """Fork only from a single-threaded process: a forked child inherits no other thread."""
    return "fork" in mp.get_all_start_methods() and threading.active_count() == 1


def _key(job: ModelsJob) -> bytes:
    return pickle.dumps(
        (job.root, job.class_name, job.header, job.domain, job.examples), protocol=5
    )


def _remember(key: bytes, module: GeneratedModule) -> None:
    _CACHE[key] = module
    _CACHE.move_to_end(key)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)


# -- in the helper process --------------------------------------------------------------------


def _helper_main(conn: Connection, workers: int) -> None:
    """Warm up, wait for the jobs, split them with forked siblings, send back the modules."""
    with contextlib.suppress(Exception):  # a real job reports the same problem properly
        build_module(_WARM_UP)
    try:
        jobs: list[ModelsJob] = conn.recv()
    except (EOFError, OSError):
        return
    try:
        reply: tuple[str, object] = ("ok", _run_shared(jobs, workers))
    except Exception as exc:
        reply = ("error", exc)
    try:
        conn.send(reply)
    except Exception as exc:  # an exception that does not pickle
        conn.send(("error", RuntimeError(f"model generation failed: {exc!r}")))


def _run_shared(jobs: list[ModelsJob], workers: int) -> list[GeneratedModule]:
    shares = _shares(jobs, workers if _forkable() else 1)
    siblings: list[tuple[int, Connection, list[int]]] = []
    for share in shares[1:]:
        reader, writer = mp.Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # the sibling: never returns into the helper's code
            code = 0
            try:
                reader.close()
                writer.send([build_module(jobs[i]) for i in share])
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        writer.close()
        siblings.append((pid, reader, share))
    results: dict[int, GeneratedModule] = {}
    for index in shares[0]:
        results[index] = build_module(jobs[index])
    for pid, reader, share in siblings:
        try:
            modules: list[GeneratedModule] = reader.recv()
        except (EOFError, OSError):  # the sibling failed: do its share here, errors and all
            modules = [build_module(jobs[i]) for i in share]
        finally:
            reader.close()
            os.waitpid(pid, 0)
        results.update(zip(share, modules, strict=True))
    return [results[i] for i in range(len(jobs))]


def _shares(jobs: list[ModelsJob], workers: int) -> list[list[int]]:
    """Split job indexes into at most ``workers`` shares of about equal cost, largest first."""
    costs = [len(json.dumps(job.root, default=str)) for job in jobs]
    count = max(1, min(workers, len(jobs)))
    shares: list[list[int]] = [[] for _ in range(count)]
    totals = [0] * count
    for index in sorted(range(len(jobs)), key=lambda i: -costs[i]):
        lightest = totals.index(min(totals))
        shares[lightest].append(index)
        totals[lightest] += costs[index]
    return shares
