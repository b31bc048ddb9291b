"""Settings of the example project. The database comes from ``DJANGO_DATABASE_DSN`` (a libpq
connection string; default ``dbname=django_example``), the queue schema from
``QUEUES_SCHEMA``."""

from __future__ import annotations

import os

from psycopg.conninfo import conninfo_to_dict

_database = conninfo_to_dict(os.environ.get("DJANGO_DATABASE_DSN", "dbname=django_example"))

SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "examples.django_project.project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIDDLEWARE: list[str] = []
INSTALLED_APPS = [
    "examples.django_project.invoices",
    "typed_queues.runtime.integrations.django",  # manage.py queues_worker
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",  # psycopg 3
        "NAME": str(_database.get("dbname", "")),
        "USER": str(_database.get("user", "")),
        "PASSWORD": str(_database.get("password", "")),
        "HOST": str(_database.get("host", "")),
        "PORT": str(_database.get("port", "")),
    }
}

# The queue: its schema in this database, and the workers manage.py queues_worker runs.
QUEUES_SCHEMA = os.environ.get("QUEUES_SCHEMA", "queues")
QUEUES_WORKERS = "examples.django_project.invoices.jobs:workers"
