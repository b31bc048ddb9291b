"""Domains on several PostgreSQL servers: which ``Boss`` serves each named database.

A domain that names a database in the catalogue (``database: ledger``) lives on the server of
``QUEUES_DSN_LEDGER`` (or ``Boss(databases={"ledger": dsn})``), else on the Boss's own. The
first Boss made by the application (the *home* Boss) opens one more Boss per other server when
it starts, with its own options, and hands them out by database name; the generated code asks
for them with ``boss.database(name)``. Two names on one DSN share one Boss, so their domains
stay on one server and their subscriptions stay atomic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..config import other_database_dsn, redact, validate_database_name
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .boss import Boss

__all__ = ["DatabaseRoutes", "declare_databases", "declared_databases"]

log = logging.getLogger("queues")

_DECLARED: set[str] = set()


def declare_databases(*names: str) -> None:
    """Declare the databases a catalogue's domains name. The generated package calls it when
    it is imported, so a Boss started afterwards opens them all."""
    for name in names:
        _DECLARED.add(validate_database_name(name))


def declared_databases() -> frozenset[str]:
    """The database names declared so far (by the generated packages imported)."""
    return frozenset(_DECLARED)


class DatabaseRoutes:
    """The Bosses of the other databases of one home Boss, by database name and by DSN."""

    def __init__(
        self, explicit: Mapping[str, str] | None, make_boss: Callable[[str], Boss]
    ) -> None:
        self._explicit = {
            validate_database_name(name): dsn for name, dsn in (explicit or {}).items()
        }
        self._make_boss = make_boss
        self._by_dsn: dict[str, Boss] = {}
        #: Database name -> its Boss, or None for the home Boss's own database.
        self._by_name: dict[str, Boss | None] = {}
        self._started = False

    def names(self) -> set[str]:
        return set(_DECLARED) | set(self._explicit)

    def route(self, name: str, home_dsn: str | None) -> Boss | None:
        """The Boss of database ``name``, or None when it is the home Boss's own database.

        Before ``start`` a database's Boss is made on first use (``start`` starts it); after
        it, a name that was not known then is refused, since its Boss could not be started.
        """
        if name in self._by_name:
            return self._by_name[name]
        validate_database_name(name)
        dsn = other_database_dsn(name, self._explicit.get(name), home_dsn)
        if dsn is None:
            self._by_name[name] = None
            return None
        if self._started and dsn not in self._by_dsn:
            raise ConfigurationError(
                f"database {name!r} was not known when this Boss started, so it was not "
                "opened: import the generated package (it declares its databases) before "
                f"starting the Boss, or pass Boss(databases={{{name!r}: dsn}})"
            )
        boss = self._by_dsn.get(dsn)
        if boss is None:
            boss = self._by_dsn[dsn] = self._make_boss(dsn)
        self._by_name[name] = boss
        return boss

    async def start(self, home_dsn: str, *, migrate: bool) -> None:
        """Open every known database's Boss (migrating it like the home one)."""
        for name in sorted(self.names()):
            self.route(name, home_dsn)
        started: list[Boss] = []
        try:
            for dsn, boss in self._by_dsn.items():
                try:
                    await boss.start(migrate=migrate)
                except BaseException as exc:
                    names = sorted(n for n, b in self._by_name.items() if b is boss)
                    exc.add_note(f"while opening database {', '.join(names)} ({redact(dsn, dsn)})")
                    raise
                started.append(boss)
        except BaseException:
            for boss in started:
                await boss.stop()
            raise
        self._started = True

    async def stop(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._started = False
        results = await asyncio.gather(
            *(boss.stop(timeout=timeout) for boss in self._by_dsn.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("stopping the Boss of another database failed: %r", result)
