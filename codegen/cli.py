"""``queues generate [--catalogue queues.yaml] [--out generated] [--check]``.

The runtime's CLI dispatches ``queues generate ...`` here lazily; so does
``python -m typed_queues.codegen``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queues generate",
        description="Generate the typed SDK package from the queue catalogue.",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=Path("queues.yaml"),
        help="the catalogue file (default: queues.yaml)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("generated"),
        help="the output package directory (default: generated)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; print a diff and exit 1 when the output is stale",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the generator; returns the process exit code (0 ok, 1 invalid or stale)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["generate"]:
        args_list = args_list[1:]
    args = _parser().parse_args(args_list)

    from .errors import CatalogueInvalid
    from .generator import generate_files
    from .writer import WriteRefused, diff_tree, write_tree

    catalogue: Path = args.catalogue
    out: Path = args.out
    try:
        files = generate_files(catalogue)
    except CatalogueInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        count = len(exc.errors)
        print(
            f"{count} error{'s' if count != 1 else ''} in {catalogue}; nothing was generated",
            file=sys.stderr,
        )
        return 1
    try:
        if args.check:
            changes, diff = diff_tree(out, files, out.as_posix())
            if changes.stale:
                sys.stdout.write(diff)
                print(
                    f"{out} is stale: run `queues generate --catalogue {catalogue} --out {out}`",
                    file=sys.stderr,
                )
                return 1
            print(f"{out} is up to date with {catalogue} ({len(files)} files)")
            return 0
        changes = write_tree(out, files)
    except WriteRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{out}: {len(changes.created)} created, {len(changes.updated)} updated, "
        f"{len(changes.removed)} removed, {len(changes.unchanged)} unchanged"
    )
    return 0
