"""Write the rendered tree deterministically, or diff it against the disk (``--check``).

Files that carry the generated header but are no longer produced are removed; files
without the header are never removed and never overwritten (empty files excepted).
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .render import HEADER_PREFIX, HEADER_SUFFIX

__all__ = ["Changes", "WriteRefused", "diff_tree", "is_generated", "plan_changes", "write_tree"]


class WriteRefused(Exception):
    """A produced path is taken by a hand-written file."""


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return bool(self.created or self.updated or self.removed)


def is_generated(path: Path) -> bool:
    """Whether ``path``'s first line is the generator's header."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline().rstrip("\r\n")
    except OSError:
        return False
    return first.startswith(HEADER_PREFIX) and first.endswith(HEADER_SUFFIX)


def _existing_generated(out: Path) -> set[str]:
    found: set[str] = set()
    if not out.is_dir():
        return found
    for path in out.rglob("*.py"):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        if is_generated(path):
            found.add(path.relative_to(out).as_posix())
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def plan_changes(out: Path, files: dict[str, str]) -> Changes:
    """Compare ``files`` with ``out``; raises ``WriteRefused`` for hand-written collisions."""
    if out.exists() and not out.is_dir():
        raise WriteRefused(f"{out} exists and is not a directory")
    changes = Changes()
    refused: list[str] = []
    for relative, text in sorted(files.items()):
        target = out / relative
        current = _read(target) if target.is_file() else None
        if current is None:
            if target.exists():
                refused.append(f"{target} exists and is not a readable file")
            changes.created.append(relative)
        elif current == text:
            changes.unchanged.append(relative)
        elif current.strip() and relative.endswith(".py") and not is_generated(target):
            refused.append(f"{target} is not generated (no header); move it out of the way")
        else:
            changes.updated.append(relative)
    if refused:
        raise WriteRefused("; ".join(refused))
    changes.removed = sorted(_existing_generated(out) - set(files))
    return changes


def write_tree(out: Path, files: dict[str, str]) -> Changes:
    """Bring ``out`` in line with ``files``; returns what changed."""
    changes = plan_changes(out, files)
    for relative in changes.created + changes.updated:
        _write_atomic(out / relative, files[relative])
    for relative in changes.removed:
        (out / relative).unlink()
        _prune(out, (out / relative).parent)
    return changes


def diff_tree(out: Path, files: dict[str, str], label: str) -> tuple[Changes, str]:
    """What ``write_tree`` would change, as a unified diff (empty when current)."""
    changes = plan_changes(out, files)
    chunks: list[str] = []
    for relative in sorted(changes.created + changes.updated + changes.removed):
        target = out / relative
        old = (_read(target) or "") if relative not in changes.created else ""
        new = files.get(relative, "")
        before = f"a/{label}/{relative}" if relative not in changes.created else "/dev/null"
        after = f"b/{label}/{relative}" if relative in files else "/dev/null"
        chunks.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), before, after
            )
        )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in chunks)
    return changes, text


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8"))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _prune(out: Path, directory: Path) -> None:
    """Remove directories left empty (or holding only ``__pycache__``) under ``out``."""
    while directory != out and out in directory.parents:
        entries = [entry for entry in directory.iterdir() if entry.name != "__pycache__"]
        if entries:
            return
        shutil.rmtree(directory / "__pycache__", ignore_errors=True)
        directory.rmdir()
        directory = directory.parent
