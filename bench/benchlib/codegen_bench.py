"""(f) Codegen time: `python -m typed_queues.codegen generate` on a generated catalogue of N events.

The catalogue has 5 domains x 4 queues x (N / 20) events, each event a small object payload
with a shared `$defs` reference, so the generator does the work a real catalogue asks of it.
The figure is the wall time of the whole command (interpreter start and imports included),
as a person running `queues generate` sees it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["catalogue_text", "time_codegen"]

_DOMAINS = ("billing", "orders", "shipping", "identity", "catalog")
_QUEUES = 4


def catalogue_text(events: int) -> str:
    per_queue = max(1, events // (len(_DOMAINS) * _QUEUES))
    lines = [
        "version: 1",
        "defaults:",
        "  retry: {limit: 3, delay: 5s, backoff: exponential, max_delay: 10m, jitter: true}",
        "  expire_in: 15m",
        "  retention: 7d",
        "domains:",
    ]
    for domain in _DOMAINS:
        lines += [
            f"  {domain}:",
            f"    description: Benchmark domain {domain}.",
            "    $defs:",
            "      Money:",
            "        type: object",
            "        additionalProperties: false",
            "        required: [amount_cents, currency]",
            "        properties:",
            "          amount_cents: {type: integer, minimum: 0}",
            "          currency: {type: string, enum: [EUR, USD, GBP]}",
            "    queues:",
        ]
        for q in range(1, _QUEUES + 1):
            lines += [f"      q{q}:", f"        description: Queue {q}.", "        events:"]
            for e in range(1, per_queue + 1):
                lines += [
                    f"          q{q}-event-{e:02d}:",
                    f"            description: Event {e} of queue {q}.",
                    "            entity_id: entity_id",
                    "            payload:",
                    "              type: object",
                    "              additionalProperties: false",
                    "              required: [entity_id, amount]",
                    "              properties:",
                    "                entity_id: {type: string, format: uuid}",
                    '                amount: {$ref: "#/$defs/Money"}',
                    "                note: {type: string, maxLength: 200}",
                    "                count: {type: integer, minimum: 0}",
                    "                tags: {type: array, items: {type: string}}",
                ]
    return "\n".join(lines) + "\n"


def time_codegen(repo: Path, events: int, python: str = sys.executable) -> float:
    """Seconds for one `python -m typed_queues.codegen generate` run; raises if it fails."""
    with tempfile.TemporaryDirectory(prefix="bench-codegen-") as tmp:
        catalogue = Path(tmp) / "catalogue.yaml"
        catalogue.write_text(catalogue_text(events), encoding="utf-8")
        out = Path(tmp) / "generated"
        cmd = [
            python,
            "-m",
            "typed_queues.codegen",
            "generate",
            "--catalogue",
            str(catalogue),
            "--out",
            str(out),
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"codegen failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        produced = list(out.rglob("*.py"))
        if len(produced) < len(_DOMAINS):
            raise RuntimeError(f"codegen wrote only {len(produced)} Python files")
        return seconds
