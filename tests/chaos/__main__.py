"""``python -m tests.chaos``: the soak's entry point (see ``controller``)."""

from __future__ import annotations

import sys

from .controller import main

if __name__ == "__main__":
    sys.exit(main())
