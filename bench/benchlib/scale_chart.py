"""scale.png: the scale curves drawn from scale.json (whichever parts it holds): medians over
the rounds, whiskers from the lowest to the highest round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .scale_report import points

__all__ = ["write_scale_chart"]

_STYLE = {"queues": "-o", "engine": "--s", "floor": ":^"}
_VARIANT_COLORS = {"eager-autovacuum": "tab:green", "live-partition": "tab:red"}


def write_scale_chart(path: Path, doc: dict[str, Any]) -> None:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    parts = doc["parts"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9), constrained_layout=True)
    (a, b, c), (d, e, f) = axes
    if "backlog" in parts:
        _backlog(a, parts["backlog"])
    if "queues" in parts:
        _by(b, parts["queues"]["rows"], "queues", "queues holding the backlog")
    if "processes" in parts:
        _by(c, parts["processes"]["rows"], "processes", "worker processes", enqueue=False)
    if "sustained" in parts:
        _sustained(d, e, f, parts["sustained"])
    for name in sorted(parts):
        if name.startswith("sustained-"):
            _variant(d, e, f, parts[name])
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        if not ax.has_data():
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _line(ax: Any, xs: list[int], runs: list[dict[str, Any]], style: str, scale: float = 1.0,
          **kw: Any) -> None:  # fmt: skip
    """Medians joined by a line, whiskers from the lowest to the highest round."""
    ys = [r["rate"] / scale for r in runs]
    err = [[(r["rate"] - r["low"]) / scale for r in runs],
           [(r["high"] - r["rate"]) / scale for r in runs]]  # fmt: skip
    ax.errorbar(xs, ys, yerr=err, fmt=style, capsize=3, **kw)


def _backlog(ax: Any, part: dict[str, Any]) -> None:
    grouped = points(part["rows"], "backlog")
    for system in dict.fromkeys(r["system"] for r in grouped):
        rows = sorted((r for r in grouped if r["system"] == system), key=lambda r: r["backlog"])
        xs = [r["backlog"] for r in rows]
        _line(ax, xs, [r["process"] for r in rows], _STYLE.get(system, "-"),
              label=f"process: {system}")  # fmt: skip
        if system != "floor":
            _line(ax, xs, [r["enqueue"] for r in rows], _STYLE.get(system, "-"), 10, alpha=0.5,
                  label=f"enqueue / 10: {rows[0]['sender']}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("jobs already queued (log scale)")
    ax.set_ylabel("jobs/s")
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput against the backlog")
    ax.legend(fontsize=8)


def _by(ax: Any, rows: list[dict[str, Any]], key: str, label: str, *, enqueue: bool = True) -> None:
    rows = sorted(points(rows, key), key=lambda r: r[key])
    xs = [r[key] for r in rows]
    _line(ax, xs, [r["process"] for r in rows], "-o", label="process")
    if enqueue:
        _line(ax, xs, [r["enqueue"] for r in rows], "-o", 10, alpha=0.5, label="enqueue / 10")
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:,}" for x in xs])
    ax.set_xlabel(label)
    ax.set_ylabel("jobs/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput against the {label}")
    ax.legend(fontsize=8)


def _sustained(d: Any, e: Any, f: Any, part: dict[str, Any]) -> None:
    samples = part["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    tables = [s["table"] for s in samples]
    d.plot(minutes, [t["heap_mb"] for t in tables], color="tab:blue", label="job heap")
    d.plot(minutes, [t["indexes_mb"] for t in tables], color="tab:orange", label="job indexes")
    d.plot(minutes, [t["toast_mb"] for t in tables], color="tab:gray", label="job TOAST")
    d.set_title(f"Sustained {part['rate_target']:,.0f} jobs/s: sizes")
    d.set_xlabel("minutes")
    d.set_ylabel("MiB")
    d.set_ylim(bottom=0)
    d.legend(fontsize=8)
    e.plot(minutes, [t["dead_tuples"] for t in tables], color="tab:blue", label="dead tuples")
    e.plot(minutes, [t["live_tuples"] for t in tables], color="tab:orange",
           label="live tuples (estimate)")  # fmt: skip
    e.set_title("Sustained: tuples of the job table")
    e.set_xlabel("minutes")
    e.set_ylim(bottom=0)
    e.legend(fontsize=8)
    f.plot(minutes, [s["latency"].get("p50_ms", 0) for s in samples], color="tab:blue",
           label="send -> handler p50")  # fmt: skip
    f.plot(minutes, [s["latency"].get("p95_ms", 0) for s in samples], color="tab:purple",
           label="send -> handler p95")  # fmt: skip
    f.set_title("Sustained: pick-up latency (left), claim cost (right)")
    f.set_xlabel("minutes")
    f.set_ylabel("send -> handler, ms (log scale)")
    f.set_yscale("log")
    f.legend(fontsize=8, loc="upper left")
    claim = f.twinx()
    claim.plot(minutes, [s["claim_probe"]["exec_ms"] for s in samples], "k:",
               label="claim of 50 (EXPLAIN ANALYZE)")  # fmt: skip
    claim.set_ylabel("claim execution, ms")
    claim.set_ylim(bottom=0)
    claim.legend(fontsize=8, loc="upper right")


def _variant(d: Any, e: Any, f: Any, part: dict[str, Any]) -> None:
    """An experiment's sustained run, dashed over the product's (benchlib/variants.py)."""
    samples = part["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    tag = part["variant"]
    color = _VARIANT_COLORS.get(tag, "gray")
    d.plot(minutes, [s["table"]["heap_mb"] for s in samples], "--", color=color,
           label=f"heap ({tag})")  # fmt: skip
    e.plot(minutes, [s["table"]["dead_tuples"] for s in samples], "--", color=color,
           label=f"dead ({tag})")  # fmt: skip
    f.plot(minutes, [s["latency"].get("p50_ms", 0) for s in samples], "--", color=color,
           label=f"p50 ({tag})")  # fmt: skip
    for ax in (d, e, f):
        ax.legend(fontsize=8, loc="upper left")
