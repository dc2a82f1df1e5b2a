#!/usr/bin/env python3
"""Start-up benchmark: asyncrun vs pyflyte (flytekit 1.16.31) on the same machine, side by side.

    python scripts/bench/startup.py [--runs 7] [--pyflyte PATH] [--setup] [--json PATH]

Measures wall time of three commands for each tool, alternating A B A B … so that both see the same
machine state, and reports medians, the ratio, and whether the target (asyncrun <= 1/4 of pyflyte)
is met:
  1. `run --help`
  2. `run hello.py wf --help`
  3. `run hello.py wf` (a local run of the hello workflow)
  4. asyncrun running the flytekit twin of hello.py itself (target: asyncrun <= pyflyte)
  5. `python -c "import asyncrun.client"` vs `python -c "import flyte"` (Flyte 2's SDK, in
     `.bench-venv/flyte`): what an async app pays to start using the client (target: <= 0.7x)

pyflyte is looked up with --pyflyte, then `.bench-venv/flytekit/bin/pyflyte`; `--setup` creates
that virtualenv with flytekit 1.16.31 first (and `.bench-venv/flyte` with Flyte 2's SDK). Without
pyflyte only asyncrun is measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import (
    BENCH_VENV,
    FLYTEKIT,
    FLYTEKIT_HELLO,
    ROOT,
    Case,
    Target,
    asyncrun_bin,
    flyte2_python,
    flytekit_bin,
    machine,
    timed,
    write_results,
)

TARGET_RATIO = 0.25
IMPORT_TARGET = 0.7  # import asyncrun.client vs import flyte

ASYNCRUN_HELLO = (ROOT / "examples" / "hello.py").read_text()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pyflyte", help="path to a pyflyte executable (flytekit 1.16.31)")
    parser.add_argument("--setup", action="store_true", help=f"create {BENCH_VENV} with {FLYTEKIT}")
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()

    asyncrun = str(asyncrun_bin() / "asyncrun")
    fk_bin = flytekit_bin(str(Path(args.pyflyte).parent) if args.pyflyte else None, setup=args.setup)
    pyflyte = fk_bin / "pyflyte" if fk_bin else None

    work = Path(tempfile.mkdtemp(prefix="asyncrun-bench-"))
    (work / "a").mkdir()
    (work / "f").mkdir()
    (work / "a" / "hello.py").write_text(ASYNCRUN_HELLO)
    (work / "f" / "hello.py").write_text(FLYTEKIT_HELLO)
    env = {**os.environ, "ASYNCRUN_HOME": str(work / "state"), "HOME": str(work)}

    cases = {
        "run --help": ["run", "--help"],
        "run hello.py wf --help": ["run", "hello.py", "wf", "--help"],
        "run hello.py wf (local)": ["run", "hello.py", "wf"],
    }
    # asyncrun on the flytekit file itself: both import flytekit, so the target is parity.
    flytekit_cases = {"run flytekit hello.py wf (local)": ["run", "hello.py", "wf"]}
    print(f"machine: {machine()}")
    print(f"asyncrun: {asyncrun}")
    print(f"pyflyte:  {pyflyte or 'not found (use --setup or --pyflyte)'}")
    print(f"runs per command: {args.runs}, alternating asyncrun / pyflyte\n")
    met_all = True
    results: list[Case] = []
    target = Target(f"asyncrun / pyflyte <= {TARGET_RATIO:.2f}", "ratio", "<=", TARGET_RATIO)
    header = (
        f"{'command':<34} {'asyncrun (s)':>12} {'pyflyte (s)':>12} {'ratio':>7}  target <= {TARGET_RATIO:.2f}"
    )
    print(header)
    print("-" * len(header))
    parity = Target("asyncrun / pyflyte <= 1.0 (same flytekit file)", "ratio", "<=", 1.0)
    asyncrun_fk = str(asyncrun_bin(flytekit=True) / "asyncrun")
    # (label, asyncrun's command and folder, the other's command (None: not installed), target)
    plan: list[tuple[str, list[str], Path, list[str] | None, Target]] = [
        (label, [asyncrun, *argv], work / "a", [str(pyflyte), *argv] if pyflyte else None, target)
        for label, argv in cases.items()
    ]
    plan += [
        (label, [asyncrun_fk, *argv], work / "f", [str(pyflyte), *argv] if pyflyte else None, parity)
        for label, argv in flytekit_cases.items()
    ]
    flyte2 = flyte2_python(setup=args.setup)
    plan.append(
        (
            "import asyncrun.client vs import flyte",
            [str(asyncrun_bin() / "python"), "-c", "import asyncrun.client"],
            work,
            [str(flyte2), "-c", "import flyte"] if flyte2 else None,
            Target(f"asyncrun / flyte (Flyte 2 SDK) <= {IMPORT_TARGET}", "ratio", "<=", IMPORT_TARGET),
        )
    )
    for label, ours_cmd, ours_dir, their_cmd, case_target in plan:
        ours: list[float] = []
        theirs: list[float] = []
        # one warm-up each, not counted: fills the OS page cache and .pyc files
        timed(ours_cmd, cwd=ours_dir, env=env)
        if their_cmd:
            timed(their_cmd, cwd=work / "f", env=env)
        for _ in range(args.runs):
            ours.append(timed(ours_cmd, cwd=ours_dir, env=env))
            if their_cmd:
                theirs.append(timed(their_cmd, cwd=work / "f", env=env))
        results.append(Case(label, "s", ours, theirs, case_target))
        a = statistics.median(ours)
        if theirs:
            b = statistics.median(theirs)
            ratio = a / b
            met = ratio <= case_target.value
            met_all &= met
            print(f"{label:<34} {a:>12.3f} {b:>12.3f} {ratio:>7.3f}  {'met' if met else 'NOT met'}")
        else:
            print(f"{label:<34} {a:>12.3f} {'-':>12} {'-':>7}")
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        write_results(args.json, "startup", {"runs": args.runs, "pyflyte": str(pyflyte or "")}, results)
    if pyflyte:
        print(f"\nall targets {'met' if met_all else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
