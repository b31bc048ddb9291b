"""The ``queues demo`` command: the SDK end to end against the catalogue in queues.yaml.

Hand-written (not generated); it lives outside ``runtime`` because it imports ``generated``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo (see ``demo.app``); return the exit status."""
    from .app import main as run

    return run(argv)
