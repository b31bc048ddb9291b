"""Prometheus metrics of a worker process, with the ``prometheus-client`` library
(``pip install 'typed-queues[metrics]'``; imported only when metrics are asked for).

``PrometheusMetrics`` is a ``WorkerObserver``: ``boss.observe(metrics)`` makes the Boss's
workers report to it, and ``metrics.watch(boss)`` adds the queue gauges, read from the
database at scrape time. ``metrics.serve(port)`` exposes ``/metrics`` over HTTP (what
``queues worker --metrics-port N`` does).

Counters and histograms, by ``queue`` and ``event`` (an event name, ``""`` for jobs that are
not envelopes, ``"other"`` past 50 distinct events of one queue):

- ``queues_jobs_completed_total``, ``queues_jobs_failed_total`` (failed for good),
  ``queues_jobs_retried_total`` (a failed attempt that will be retried),
  ``queues_jobs_dead_lettered_total`` (copied to the dead-letter queue),
  ``queues_jobs_rescued_total`` (found by this process's maintenance with its lease expired or
  past ``expire_in``);
- ``queues_job_duration_seconds`` (histogram; ``outcome`` is ``ok`` or ``error``);
- ``queues_jobs_claimed_total`` and ``queues_claim_duration_seconds`` by ``queue``;
- ``queues_result_write_duration_seconds`` by ``kind`` (``completion``, ``failure``).

Gauges by ``schema`` and ``queue``, read when scraped (one index scan per queue):
``queues_queue_waiting_jobs``, ``queues_queue_due_jobs``, ``queues_queue_oldest_due_seconds``
and ``queues_queue_active_jobs``. Every process reports the same gauges: aggregate them with
``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .db.rows import RescuedJob
from .errors import ConfigurationError
from .worker.observer import FailureOutcome

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from .job_views import QueueDepth

__all__ = ["MetricsServer", "PrometheusMetrics", "require_prometheus"]

log = logging.getLogger("queues.metrics")

#: Distinct event labels kept per queue; later ones are counted as "other".
MAX_EVENTS_PER_QUEUE: Final = 50
#: How long a scrape waits for the queue gauges' query.
SCRAPE_TIMEOUT_S: Final = 5.0

_DURATION_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, float("inf"),
)  # fmt: skip
_LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    float("inf"),
)  # fmt: skip


def require_prometheus() -> Any:
    """The ``prometheus_client`` module, or ``ConfigurationError`` saying how to install it."""
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "metrics need the prometheus-client package, which is not installed: "
            "pip install 'typed-queues[metrics]'"
        ) from None
    return prometheus_client


@dataclass(slots=True, eq=False)
class _Tag:
    """The metric children of one (queue, event), looked up once."""

    completed: Any
    failed: Any
    retried: Any
    dead_lettered: Any
    rescued: Any
    took_ok: Any
    took_error: Any


class PrometheusMetrics:
    """The metrics of the workers of one process (see the module doc)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        prom = require_prometheus()
        self.registry: CollectorRegistry = (
            registry if registry is not None else prom.CollectorRegistry()
        )
        by_job = ["queue", "event"]

        def counter(name: str, text: str, labels: Sequence[str] = by_job) -> Any:
            return prom.Counter(name, text, labels, registry=self.registry)

        self._completed = counter("queues_jobs_completed", "Jobs completed.")
        self._failed = counter("queues_jobs_failed", "Jobs failed for good (no retry left).")
        self._retried = counter("queues_jobs_retried", "Failed attempts that will be retried.")
        self._dead_lettered = counter(
            "queues_jobs_dead_lettered", "Jobs copied to their dead-letter queue."
        )
        self._rescued = counter(
            "queues_jobs_rescued",
            "Jobs this process's maintenance rescued (lease expired or past expire_in).",
        )
        self._duration = prom.Histogram(
            "queues_job_duration_seconds",
            "Handler run time.",
            ["queue", "event", "outcome"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._claimed = counter("queues_jobs_claimed", "Jobs claimed.", ["queue"])
        self._claim_latency = prom.Histogram(
            "queues_claim_duration_seconds",
            "Time of one claim statement.",
            ["queue"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        write_latency = prom.Histogram(
            "queues_result_write_duration_seconds",
            "Time of one batched write of job results.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._write_completions = write_latency.labels("completion")
        self._write_failures = write_latency.labels("failure")
        self._tags: dict[tuple[str, str], _Tag] = {}
        self._events: dict[str, set[str]] = {}
        self._claim_children: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    # -- WorkerObserver ----------------------------------------------------------------------

    def tag(self, queue: str, event: str | None) -> _Tag:
        label = event or ""
        found = self._tags.get((queue, label))
        if found is not None:
            return found
        with self._lock:
            seen = self._events.setdefault(queue, set())
            if label not in seen and len(seen) >= MAX_EVENTS_PER_QUEUE:
                label = "other"  # bounded cardinality: events come from job data
            seen.add(label)
            found = self._tags.get((queue, label))
            if found is None:
                found = _Tag(
                    self._completed.labels(queue, label),
                    self._failed.labels(queue, label),
                    self._retried.labels(queue, label),
                    self._dead_lettered.labels(queue, label),
                    self._rescued.labels(queue, label),
                    self._duration.labels(queue, label, "ok"),
                    self._duration.labels(queue, label, "error"),
                )
                self._tags[(queue, label)] = found
        return found

    def claimed(self, queue: str, seconds: float, count: int) -> None:
        children = self._claim_children.get(queue)
        if children is None:
            children = (self._claimed.labels(queue), self._claim_latency.labels(queue))
            self._claim_children[queue] = children
        if count:
            children[0].inc(count)
        children[1].observe(seconds)

    def handler_finished(self, tag: object, seconds: float, ok: bool) -> None:
        if isinstance(tag, _Tag):
            (tag.took_ok if ok else tag.took_error).observe(seconds)

    def completions_written(self, tags: Sequence[object], seconds: float) -> None:
        self._write_completions.observe(seconds)
        for tag in tags:
            if isinstance(tag, _Tag):
                tag.completed.inc()

    def failures_written(self, outcomes: Sequence[FailureOutcome], seconds: float) -> None:
        self._write_failures.observe(seconds)
        for tag, new_state, dead_lettered in outcomes:
            if isinstance(tag, _Tag):
                self._count_failure(tag, new_state, dead_lettered)

    def rescued(self, jobs: Sequence[RescuedJob]) -> None:
        for job in jobs:
            tag = self.tag(job.queue, job.event)
            tag.rescued.inc()
            self._count_failure(tag, job.new_state, job.dead_lettered)

    @staticmethod
    def _count_failure(tag: _Tag, new_state: str, dead_lettered: bool) -> None:
        if new_state == "retry":
            tag.retried.inc()
        else:
            tag.failed.inc()
        if dead_lettered:
            tag.dead_lettered.inc()

    # -- queue gauges and the HTTP endpoint ----------------------------------------------------

    def watch(self, boss: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Report ``boss``'s queues (waiting, due, oldest due, active) at every scrape, read
        on ``loop`` (default: the running loop), where the Boss runs."""
        self.registry.register(
            _QueueGauges(boss, loop if loop is not None else asyncio.get_running_loop())
        )

    def serve(self, port: int, host: str = "0.0.0.0") -> MetricsServer:
        """Serve ``/metrics`` (Prometheus text) on ``host:port`` from a daemon thread."""
        prom = require_prometheus()
        server, thread = prom.start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    """The HTTP endpoint started by ``PrometheusMetrics.serve``."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _QueueGauges:
    """A collector that reads the queue depths when scraped (from the HTTP thread, running the
    query on the Boss's event loop)."""

    def __init__(self, boss: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._boss = boss
        self._loop = loop

    def describe(self) -> Iterator[Metric]:
        yield from self._families([])

    def collect(self) -> Iterator[Metric]:
        try:
            if threading.get_ident() == getattr(self._loop, "_thread_id", None):
                raise RuntimeError("scraped on the event loop's own thread")
            future = asyncio.run_coroutine_threadsafe(self._boss.queue_depths(), self._loop)
            depths = future.result(SCRAPE_TIMEOUT_S)
        except Exception as exc:
            log.warning("metrics: cannot read the queue depths (%s: %s)", type(exc).__name__, exc)
            depths = []
        yield from self._families(depths)

    def _families(self, depths: Sequence[QueueDepth]) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["schema", "queue"]
        families = {
            "waiting": GaugeMetricFamily(
                "queues_queue_waiting_jobs", "Queued jobs (created or retry).", labels=labels
            ),
            "due": GaugeMetricFamily(
                "queues_queue_due_jobs", "Queued jobs that are due now.", labels=labels
            ),
            "oldest": GaugeMetricFamily(
                "queues_queue_oldest_due_seconds",
                "How long the oldest due job has been waiting (0 when none is due).",
                labels=labels,
            ),
            "active": GaugeMetricFamily("queues_queue_active_jobs", "Running jobs.", labels=labels),
        }
        schema = str(getattr(self._boss, "schema", ""))
        for depth in depths:
            values = [schema, depth.queue]
            families["waiting"].add_metric(values, depth.waiting)
            families["due"].add_metric(values, depth.due)
            families["oldest"].add_metric(values, depth.oldest_due_seconds or 0.0)
            families["active"].add_metric(values, depth.active)
        yield from families.values()
