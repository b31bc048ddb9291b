"""``python -m tests.chaos``: the soak's entry point.

It pins the code under test (``pin``: a copy of the runtime and of this harness in the run
directory), then runs the controller (``controller``) from that copy, in place of this process.
``--recheck WORKDIR`` runs the checker again on a kept run, without pinning anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .pin import pin


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--code", default=None)
    parser.add_argument("--recheck", type=Path, default=None)
    parser.add_argument("-h", "--help", action="store_true")
    known, rest = parser.parse_known_args(argv)
    controller = [sys.executable, "-m", "tests.chaos.controller"]
    if known.help or known.recheck is not None:
        os.execv(sys.executable, [*controller, *argv])
    run_dir: Path = known.workdir or Path(tempfile.mkdtemp(prefix="chaos-run-"))
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    code_dir = run_dir / "code"
    if code_dir.exists():
        print(f"{code_dir} exists: give a new --workdir for each run", file=sys.stderr)
        return 2
    described = pin(code_dir, known.code)
    options = ["--workdir", str(run_dir), "--code-description", described]
    if known.code is not None:
        options += ["--code", known.code]
    if known.workdir is None:
        options.append("--remove-workdir")
    os.chdir(code_dir)
    os.execv(sys.executable, [*controller, *rest, *options])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
