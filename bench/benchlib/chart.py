"""latest.png: throughput per system (log scale) and wake-up latency, medians with min-max."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from .stats import METRICS, Summary

__all__ = ["chart_from_json", "write_chart"]

_THROUGHPUT = (
    "enqueue_serial",
    "enqueue_50",
    "enqueue_batch",
    "work_c10",
    "work_c50",
    "work_batch",
    "work_floor",
)
_LATENCY = ("latency_p50", "latency_p95")


def write_chart(path: Path, summary: dict[str, dict[str, Summary]], labels: dict[str, str]) -> None:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    titles = {m.key: m.title for m in METRICS}
    systems = [name for name in labels if any(name in summary.get(k, {}) for k in _THROUGHPUT)]
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [3, 1]}, constrained_layout=True
    )
    _bars(ax1, summary, _THROUGHPUT, systems, labels, titles)
    ax1.set_yscale("log")
    ax1.set_ylabel("jobs/s (log scale, higher is better)")
    ax1.set_title("Throughput: median of rounds, whiskers min-max")
    _bars(ax2, summary, _LATENCY, systems, labels, titles)
    ax2.set_ylabel("ms (lower is better)")
    ax2.set_title("Wake-up latency (send -> handler)")
    ax1.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(
    ax: Any,
    summary: dict[str, dict[str, Summary]],
    wanted: tuple[str, ...],
    systems: list[str],
    labels: dict[str, str],
    titles: dict[str, str],
) -> None:
    keys = [k for k in wanted if k in summary]
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs: list[float] = []
        heights: list[float] = []
        lows: list[float] = []
        highs: list[float] = []
        for j, key in enumerate(keys):
            s = summary[key].get(system)
            if s is None:
                continue
            xs.append(j + (i - (len(systems) - 1) / 2) * width)
            heights.append(s.median)
            lows.append(s.median - s.low)
            highs.append(s.high - s.median)
        ax.bar(xs, heights, width, yerr=[lows, highs], capsize=2, label=labels[system])
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([textwrap.fill(titles[k], 22) for k in keys], fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def chart_from_json(results: Path, path: Path) -> None:
    """Draw ``path`` again from a results file (``latest.json``) without running anything."""
    report = json.loads(results.read_text())
    summary = {
        metric: {
            system: Summary(
                s["median"],
                s["min"],
                s["max"],
                s["rounds"],
                None
                if "ratio_to_queues" not in s
                else tuple(s["ratio_to_queues"][k] for k in ("median", "min", "max")),  # type: ignore[arg-type]
            )
            for system, s in row.items()
        }
        for metric, row in report["summary"].items()
    }
    labels = {name: entry["label"] for name, entry in report["systems"].items()}
    write_chart(path, summary, labels)
