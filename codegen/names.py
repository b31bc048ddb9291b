"""Naming rules: catalogue names -> database names and Python names (the README's naming table).

- domain ``billing``: package ``billing``.
- queue ``invoices`` of ``billing``: database queue ``billing.invoices``; Protocols
  ``InvoicesHandlers`` (async methods) and ``InvoicesSyncHandlers`` (plain methods), worker
  factory ``invoices_worker``, spec constant ``INVOICES``, and ``_INVOICES_ROUTES``, the
  private tuple of its routes.
- event ``invoice-created``: ``data.event = "invoice-created"``; model ``InvoiceCreated``,
  ``enqueue_invoice_created`` (+ ``_many``, ``_sync``, ``_many_sync``), handler method
  ``on_invoice_created``.
"""

from __future__ import annotations

import builtins
import keyword
import re

from pydantic import BaseModel

__all__ = [
    "CATALOGUE_NAME",
    "CLASS_NAME",
    "DB_NAME_MAX",
    "DOMAIN_MAX",
    "EVENT_MAX",
    "PROPERTY_MAX",
    "PROPERTY_NAME",
    "QUEUE_MAX",
    "RESERVED_NAMES",
    "check_catalogue_name",
    "check_class_name",
    "check_property_name",
    "db_queue_name",
    "enqueue_names",
    "handler_method",
    "model_class",
    "package_name",
    "protocol_class",
    "queue_constant",
    "routes_constant",
    "snake",
    "sync_protocol_class",
    "worker_factory",
]

# Domain, queue and event names: lowercase ASCII words joined by single "-" or "_".
# Nothing else (no dots, quotes, spaces or control characters) can reach SQL or Python.
CATALOGUE_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
PROPERTY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

DOMAIN_MAX = 30
QUEUE_MAX = 40
EVENT_MAX = 40
CLASS_MAX = 64
PROPERTY_MAX = 48
DB_NAME_MAX = 63  # PostgreSQL's identifier limit; queue names stay inside it

# Names the generated modules import or rely on: a declared class may not shadow them.
_IMPORTED = {
    "annotations", "Annotated", "Any", "AnyUrl", "AsyncConnection", "AwareDatetime",
    "BaseModel", "Boss", "Callable", "ConfigDict", "Connection", "EmailStr", "Enum",
    "Field", "InvalidPayloadError", "Iterable", "IPv4Address", "IPv6Address", "JobContext",
    "JobId", "Literal", "Mapping", "Payload", "PermanentJobError", "Protocol", "QueueSpec",
    "RetryPolicy", "RootModel", "StrEnum", "SyncBoss", "TypeAliasType", "TypeVar",
    "UnknownEventError", "UUID", "ValidationError", "Worker", "date", "datetime",
    "make_envelope", "process_job", "time", "timedelta", "QUEUES", "create_queues",
}  # fmt: skip
RESERVED_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | frozenset(_IMPORTED)

# Public attributes of pydantic's BaseModel (and its protected prefixes): a payload field
# must not shadow them.
_BASEMODEL_ATTRIBUTES = frozenset(name for name in dir(BaseModel) if not name.startswith("_"))
_BASEMODEL_PREFIXES = ("model_validate", "model_dump")
_AMBIGUOUS = {"l", "O", "I"}


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[-_.]+", name) if word]


def snake(name: str) -> str:
    """``invoice-created`` -> ``invoice_created``."""
    return "_".join(_words(name)).lower()


def pascal(name: str) -> str:
    """``invoice-created`` -> ``InvoiceCreated``."""
    return "".join(word[:1].upper() + word[1:] for word in _words(name))


def package_name(domain: str) -> str:
    return snake(domain)


def db_queue_name(domain: str, queue: str) -> str:
    return f"{domain}.{queue}"


def protocol_class(queue: str) -> str:
    return f"{pascal(queue)}Handlers"


def sync_protocol_class(queue: str) -> str:
    """The Protocol of a queue's handlers written as plain (sync) methods."""
    return f"{pascal(queue)}SyncHandlers"


def worker_factory(queue: str) -> str:
    return f"{snake(queue)}_worker"


def queue_constant(queue: str) -> str:
    return snake(queue).upper()


def routes_constant(queue: str) -> str:
    """The private tuple of a queue's routes in ``handlers.py``."""
    return f"_{queue_constant(queue)}_ROUTES"


def model_class(event: str) -> str:
    return pascal(event)


def handler_method(event: str) -> str:
    return f"on_{snake(event)}"


def enqueue_names(event: str) -> tuple[str, str, str, str]:
    """Single, batch, sync and batch-sync enqueue function names of one event."""
    base = f"enqueue_{snake(event)}"
    return base, f"{base}_many", f"{base}_sync", f"{base}_many_sync"


def check_catalogue_name(kind: str, name: str, limit: int) -> str | None:
    """Why ``name`` is not a valid domain/queue/event name, or None."""
    if not CATALOGUE_NAME.fullmatch(name):
        return (
            f'invalid {kind} name "{_printable(name)}": use lowercase letters and digits, '
            'starting with a letter, words joined by single "-" or "_"'
        )
    if len(name) > limit:
        return f'{kind} name "{name}" is {len(name)} characters long; the limit is {limit}'
    return None


def check_class_name(name: str) -> str | None:
    """Why ``name`` is not a valid ``$defs`` class name, or None."""
    if not CLASS_NAME.fullmatch(name):
        return (
            f'invalid $defs name "{_printable(name)}": use PascalCase ASCII letters and digits, '
            "starting with an uppercase letter"
        )
    if len(name) > CLASS_MAX:
        return f'$defs name "{name}" is {len(name)} characters long; the limit is {CLASS_MAX}'
    if name in RESERVED_NAMES:
        return f'$defs name "{name}" is reserved in Python or in the generated code'
    return None


def check_property_name(name: str) -> str | None:
    """Why ``name`` cannot be a payload field (it must be usable as a Python attribute)."""
    if not PROPERTY_NAME.fullmatch(name):
        return (
            f'invalid property name "{_printable(name)}": use ASCII letters, digits and "_", '
            "starting with a letter (it becomes a Python attribute)"
        )
    if len(name) > PROPERTY_MAX:
        return f'property name "{name}" is {len(name)} characters long; the limit is {PROPERTY_MAX}'
    if keyword.iskeyword(name):
        return f'property name "{name}" is a Python keyword'
    if name in _BASEMODEL_ATTRIBUTES or name.startswith(_BASEMODEL_PREFIXES):
        return f'property name "{name}" shadows an attribute of pydantic\'s BaseModel'
    if name in _AMBIGUOUS:
        return f'property name "{name}" is ambiguous (l, O and I read as 1 and 0)'
    return None


def _printable(name: str) -> str:
    shown = name.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return shown if len(shown) <= 80 else shown[:77] + "..."
