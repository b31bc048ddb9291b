"""``manage.py queues_worker``: ``queues worker`` inside the Django project.

The project is set up first (models import, settings apply), the database is Django's (its
``DATABASES`` entry, unless ``--dsn``, ``QUEUES_DSN`` or ``DATABASE_URL`` says otherwise), the
schema ``settings.QUEUES_SCHEMA`` and the app ``settings.QUEUES_WORKERS`` unless given (a
schema applies to a factory ``--app``; ready-made Workers keep their Boss's). Signals, graceful
shutdown and log formats are those of ``queues worker``.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from typed_queues.runtime.cli import main
from typed_queues.runtime.config import resolve_dsn

from ... import database_dsn, queues_schema


class Command(BaseCommand):
    help = (
        "Run queue workers until SIGTERM/SIGINT (as `queues worker`), on Django's database: "
        "--app MODULE:ATTR names a Worker, a list of Workers or a factory taking the Boss "
        "(default: settings.QUEUES_WORKERS)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--app", metavar="MODULE:ATTR", default=None)
        parser.add_argument("--database", default="default", help="Django database alias")
        parser.add_argument("--dsn", default=None, help="connect here instead of --database")
        parser.add_argument("--schema", default=None, help="default: settings.QUEUES_SCHEMA")
        parser.add_argument("--concurrency", default=None)
        parser.add_argument("--shutdown-grace", default=None, metavar="SECONDS")
        parser.add_argument("--no-migrate", action="store_true")
        parser.add_argument("--log-format", choices=("text", "json"), default="text")
        parser.add_argument("--log-level", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        app = options["app"] or getattr(settings, "QUEUES_WORKERS", None)
        if not app:
            raise CommandError(
                "name the workers: --app MODULE:ATTR, or settings.QUEUES_WORKERS = 'MODULE:ATTR'"
            )
        dsn = options["dsn"] or resolve_dsn(None) or database_dsn(options["database"])
        argv = ["worker", "--app", str(app), "--dsn", dsn]
        if options["schema"] or hasattr(settings, "QUEUES_SCHEMA"):
            argv += ["--schema", options["schema"] or queues_schema()]
        for option in ("concurrency", "shutdown_grace"):
            if options[option] is not None:
                argv += ["--" + option.replace("_", "-"), str(options[option])]
        if options["no_migrate"]:
            argv.append("--no-migrate")
        argv += ["--log-format", options["log_format"], "--log-level", options["log_level"]]
        code = main(argv)
        if code:
            raise SystemExit(code)
