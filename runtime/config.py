"""Configuration: where the database is.

The DSN rule of the design: the explicit argument, else ``QUEUES_DSN``, else ``DATABASE_URL``.
Nothing here falls back to an embedded server; only the demo and the test suite do that.
"""

from __future__ import annotations

import os
import re
from typing import Final

__all__ = [
    "DSN_ENV_VARS",
    "REDACTED",
    "database_env_var",
    "dsn_password",
    "other_database_dsn",
    "redact",
    "resolve_database_dsn",
    "resolve_dsn",
    "validate_database_name",
]

#: Environment variables consulted, in order, when no DSN is passed explicitly.
DSN_ENV_VARS: tuple[str, ...] = ("QUEUES_DSN", "DATABASE_URL")


def resolve_dsn(explicit: str | None) -> str | None:
    """Return the DSN to use: ``explicit``, else ``$QUEUES_DSN``, else ``$DATABASE_URL``.

    Empty strings count as unset. Returns ``None`` when nothing is configured.
    """
    if explicit:
        return explicit
    for name in DSN_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


# -- databases of domains ------------------------------------------------------------------------

_DATABASE_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")


def validate_database_name(name: object) -> str:
    """Return ``name`` if it can name a domain's database (``database: ledger`` in the
    catalogue), else raise ``ConfigurationError``."""
    if not isinstance(name, str) or not _DATABASE_RE.fullmatch(name):
        from .errors import ConfigurationError

        raise ConfigurationError(
            f"invalid database name {name!r}: use lowercase letters, digits and '_', starting "
            "with a letter, at most 40 characters (it names the variable QUEUES_DSN_<NAME>)"
        )
    return name


def database_env_var(name: str) -> str:
    """The environment variable that holds the DSN of database ``name``: ``QUEUES_DSN_LEDGER``."""
    return "QUEUES_DSN_" + validate_database_name(name).upper()


def resolve_database_dsn(name: str, explicit: str | None = None) -> str | None:
    """The DSN of database ``name``: ``explicit``, else ``$QUEUES_DSN_<NAME>``; None when
    neither is set (the domain then lives on the default database)."""
    if explicit:
        return explicit
    return os.environ.get(database_env_var(name), "").strip() or None


def other_database_dsn(name: str, explicit: str | None, home_dsn: str | None) -> str | None:
    """The DSN of database ``name`` when it is another server than ``home_dsn``'s; None when
    it is that one (the same DSN, or none set: the fallback to the default database)."""
    dsn = resolve_database_dsn(name, explicit)
    return None if dsn == home_dsn else dsn


# -- secrets ------------------------------------------------------------------------------------

_URL_PASSWORD: Final = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@\s]*@", re.I)
_KEYWORD_PASSWORD: Final = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.I
)
#: What a password is replaced with.
REDACTED: Final = "***"


def redact(text: str, dsn: str | None = None) -> str:
    """``text`` with every password it may carry replaced by ``***``: the password part of a
    URL (``postgresql://user:secret@host``), a ``password=...`` keyword, and the password of
    ``dsn`` wherever it appears."""
    if not text:
        return text
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED + "@", text)
    if "assword" in text or "ASSWORD" in text:
        text = _KEYWORD_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    secret = dsn_password(dsn) if dsn else None
    if secret and len(secret) >= 4 and secret in text:
        text = text.replace(secret, REDACTED)
    return text


def dsn_password(dsn: str) -> str | None:
    """The password written in ``dsn`` (URL or keyword form), if any."""
    match = _URL_PASSWORD.search(dsn)
    if match is not None:
        from urllib.parse import unquote

        raw = dsn[match.end("head") : match.end() - 1]
        return unquote(raw) or None
    match = _KEYWORD_PASSWORD.search(dsn)
    if match is not None:
        value = match.group(0)[len(match["head"]) :]
        if value.startswith("'") and value.endswith("'"):
            value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        return value or None
    return None
