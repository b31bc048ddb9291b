#!/usr/bin/env python
"""The example project's manage.py: `python examples/django_project/manage.py queues_worker`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # the repository root, where examples/ and generated/ are importable from
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
