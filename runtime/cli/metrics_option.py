"""``queues worker --metrics-port N``: Prometheus metrics of the worker process at
``http://HOST:N/metrics`` (``typed_queues.runtime.metrics``; needs the ``metrics`` extra)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .common import Failure

if TYPE_CHECKING:
    from ..client import Boss

__all__ = ["add_metrics_options", "check_metrics_options", "worker_metrics"]

_log = logging.getLogger("queues.cli")


def add_metrics_options(worker: argparse.ArgumentParser) -> None:
    worker.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs typed-queues[metrics])",
    )
    worker.add_argument(
        "--metrics-host",
        default="0.0.0.0",  # scraped from other hosts, like any exporter
        metavar="HOST",
        help="address the metrics endpoint listens on (default: 0.0.0.0)",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, got {value}")
    return value


def check_metrics_options(args: argparse.Namespace) -> None:
    """Fail before anything starts when metrics are asked for but cannot be served."""
    if args.metrics_port is not None:
        from ..metrics import require_prometheus

        require_prometheus()


@asynccontextmanager
async def worker_metrics(args: argparse.Namespace, bosses: Sequence[Boss]) -> AsyncIterator[None]:
    """While the block runs, ``bosses`` report to Prometheus metrics served on
    ``--metrics-port`` (nothing at all without the option)."""
    if args.metrics_port is None:
        yield
        return
    from ..metrics import PrometheusMetrics

    metrics = PrometheusMetrics()
    for boss in bosses:
        boss.observe(metrics)
        metrics.watch(boss)
    try:
        server = metrics.serve(args.metrics_port, args.metrics_host)
    except OSError as exc:
        raise Failure(
            f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: "
            f"{exc.strerror or exc}"
        ) from None
    _log.info("metrics at http://%s:%d/metrics", args.metrics_host, server.port)
    try:
        yield
    finally:
        server.close()
        for boss in bosses:
            boss.observe(None)
