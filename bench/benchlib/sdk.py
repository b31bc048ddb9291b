"""The benchmark's own catalogue, generated at run time into the SDK a user would import.

One domain ``bench`` with one queue ``bench.ticks`` and one event ``tick`` whose payload is
``{"i": <int>}``, the payload every system of the benchmark carries. ``generate_sdk`` runs the
repository's generator (``queues generate``) on it, so the "queues" column measures the
``enqueue_tick`` / ``enqueue_tick_many`` functions and the ``ticks_worker`` factory exactly as
the current generator writes them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["CATALOGUE", "PACKAGE", "QUEUE", "generate_sdk"]

#: The import name of the generated package (under the folder ``generate_sdk`` returns).
PACKAGE = "tq_bench_sdk"
QUEUE = "bench.ticks"

CATALOGUE = """\
version: 1
domains:
  bench:
    description: The benchmark's jobs.
    queues:
      ticks:
        description: Benchmark jobs, one handler call each.
        events:
          tick:
            description: One benchmark job.
            payload:
              type: object
              additionalProperties: false
              required: [i]
              properties:
                i: {type: integer}
"""


def generate_sdk(cache: Path) -> Path:
    """Generate the benchmark SDK under ``cache``; return the folder to put on ``sys.path``."""
    home = cache / "sdk"
    home.mkdir(parents=True, exist_ok=True)
    catalogue = home / "bench-queues.yaml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    cmd = [
        sys.executable, "-m", "typed_queues.runtime.cli", "generate",
        "--catalogue", str(catalogue), "--out", str(home / PACKAGE),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"queues generate failed on the benchmark catalogue: {tail}")
    return home
