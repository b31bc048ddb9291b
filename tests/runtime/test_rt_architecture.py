"""The runtime's import rules: each folder depends only on the layers below it.

Read from the source with ``ast`` (no import side effects): the database layer imports nothing
above it, the worker reaches the client only for type checking, nothing imports the CLI, and
only the database layer runs SQL.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
REPO = RUNTIME.parent

#: Leaf modules every layer may use.
CORE = {
    "errors",
    "jobs",
    "options",
    "config",
    "logging_setup",
    "failures",
    "tracing",
    "job_views",
    "schedules",
}
#: What each layer (the top-level folder or module under runtime/) may import at run time.
ALLOWED: dict[str, set[str]] = {
    **{name: CORE for name in CORE},
    "db": CORE | {"db"},
    "policy": CORE | {"db"},
    "worker": CORE | {"db", "policy", "worker"},
    "client": CORE | {"db", "policy", "client", "worker"},
    "typed": CORE | {"db", "policy", "client", "worker", "__init__"},
    "testing": CORE | {"db", "policy", "client", "worker", "typed", "embedded", "__init__"},
    # Each integration is imported only by its user's FastAPI, Django or SQLAlchemy code.
    "integrations": CORE
    | {"db", "policy", "client", "worker", "typed", "integrations", "__init__"},
    "embedded": CORE,
    "cli": CORE | {"db", "policy", "client", "worker", "cli", "embedded", "metrics", "dashboard"},
    "__init__": CORE | {"db", "policy", "client", "worker"},
    "metrics": CORE | {"db", "worker"},
    # The web dashboard: a Boss's reads and actions behind Starlette; only the CLI imports it.
    "dashboard": CORE | {"db", "policy", "client", "worker", "dashboard"},
}


#: Command-line entry points outside cli/, which may import it: the Django management command
#: ``manage.py queues_worker`` is ``queues worker`` inside a Django project.
COMMANDS = {"integrations.django.management.commands.queues_worker"}


@dataclass(frozen=True)
class Import:
    module: str  # importing module, dotted below runtime ("worker.worker")
    target: str  # imported module, dotted below runtime ("client.boss")
    type_checking: bool
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(RUNTIME).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    return module.split(".")[0]


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "__init__":
        package = []
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    guarded.add(id(sub))
    found: list[Import] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                # `from . import X` imports from the package itself
                targets = [".".join([*base, *(node.module.split(".") if node.module else [])])]
            elif node.module and node.module.startswith("typed_queues.runtime"):
                targets = [node.module.removeprefix("typed_queues.runtime").lstrip(".")]
        elif isinstance(node, ast.Import):
            targets = [
                n.name.removeprefix("typed_queues.runtime").lstrip(".")
                for n in node.names
                if n.name.startswith("typed_queues.runtime")
            ]
        for target in targets:
            found.append(
                Import(name, target or "__init__", id(node) in guarded, getattr(node, "lineno", 0))
            )
    return found


def _all_imports() -> list[Import]:
    return [imp for path in sorted(RUNTIME.rglob("*.py")) for imp in _imports(path)]


def test_every_layer_imports_only_what_it_may() -> None:
    wrong = []
    for imp in _all_imports():
        layer, target = _layer(imp.module), _layer(imp.target)
        allowed = ALLOWED.get(layer)
        assert allowed is not None, f"runtime/{imp.module}: add its layer to ALLOWED"
        if imp.type_checking:
            continue
        if target not in allowed and not (target == "cli" and imp.module in COMMANDS):
            wrong.append(f"runtime/{imp.module}:{imp.line} imports {imp.target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_nothing_imports_the_cli() -> None:
    importers = {
        f"runtime/{imp.module}:{imp.line}"
        for imp in _all_imports()
        if _layer(imp.target) == "cli"
        and _layer(imp.module) != "cli"
        and imp.module not in COMMANDS
    }
    for folder in ("generated", "demo", "codegen"):
        for path in (REPO / folder).rglob("*.py"):
            if "runtime.cli" in path.read_text(encoding="utf-8"):
                importers.add(str(path.relative_to(REPO)))
    assert not importers


def test_the_database_layer_imports_nothing_above_it() -> None:
    above = {"client", "worker", "cli", "policy", "typed", "testing"}
    offending = [
        f"runtime/{imp.module}:{imp.line} -> {imp.target}"
        for imp in _all_imports()
        if _layer(imp.module) == "db" and _layer(imp.target) in above
    ]
    assert not offending


def test_only_the_store_runs_sql() -> None:
    runners = []
    for path in sorted(RUNTIME.rglob("*.py")):
        if path.parent.name == "db":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"execute", "executemany", "copy"}
            ):
                runners.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not runners, "SQL run outside runtime/db:\n" + "\n".join(runners)


@pytest.mark.parametrize("folder", ["tests", "generated", "demo", "bench", "codegen", "runtime"])
def test_nothing_imports_the_folders_by_their_bare_names(folder: str) -> None:
    # runtime/ and codegen/ are importable only as typed_queues.runtime / typed_queues.codegen;
    # a bare `import runtime` would load a second copy of every module.
    bare = []
    for path in sorted((REPO / folder).rglob("*.py")):
        if ".cache" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [n.name for n in node.names]
            if any(n.split(".")[0] in {"runtime", "codegen"} for n in names):
                bare.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}")
    assert not bare
