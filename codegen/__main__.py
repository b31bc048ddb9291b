"""``python -m codegen generate [--catalogue queues.yaml] [--out generated] [--check]``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
