#!/usr/bin/env python3
"""How soon failures are reported: the time bounds the test suite no longer asserts.

    python scripts/bench/failfast.py [--runs 5] [--bin DIR] [--json PATH]

The tests check what happens and in which order (the task was cancelled, the sibling was stopped, the
lock was free); how long it takes belongs here, measured on a quiet machine:
  1. `run remote-launchplan` against an endpoint where nothing listens: exit 6, one line (<= 8 s:
     the client retries UNAVAILABLE for 5 s, then gives up)
  2. a local task with `timeout=200ms` that would sleep an hour: exit 4 (<= 4 s)
  3. a local workflow whose first task fails while its sibling would sleep an hour: exit 1 (<= 5 s)
  4. re-opening the daemon's journal after its writer was SIGKILLed (<= 1.5 s: no lock waits)
Notification latency of the daemon (<= one poll interval + 1 s) is measured by wait.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Case, Target, asyncrun_bin, machine, write_results

SLOW = """
import asyncio
from datetime import timedelta

from asyncrun import task, workflow


@task(timeout=timedelta(milliseconds=200))
async def too_slow() -> int:
    await asyncio.sleep(3600)
    return 1


@task
def boom() -> int:
    raise ValueError("boom")


@task
async def long_sibling() -> int:
    await asyncio.sleep(3600)
    return 1


@workflow
def failing() -> tuple[int, int]:
    return boom(), long_sibling()
"""

# Saves a journal, then dies holding its locks (as tests/daemon/test_journal.py does).
WRITE_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from asyncrun.daemon._journal import Journal
from asyncrun.daemon._tracked import Tracked
journal = Journal.open(Path(sys.argv[1]))
journal.save([Tracked(("h:1", "p", "d", f"n{i}"), tracked_at=1.0, phase="RUNNING") for i in range(1000)])
os.kill(os.getpid(), signal.SIGKILL)
"""
REOPEN = """
import sys, time
from pathlib import Path
from asyncrun.daemon._journal import Journal
started = time.perf_counter()
Journal.open(Path(sys.argv[1])).close()
print(time.perf_counter() - started)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed_exit(cmd: list[str], expected: int, *, cwd: Path, env: dict[str, str]) -> float:
    """Wall time of a command that must fail with exit status `expected` and one error line."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    if result.returncode != expected or len(errors) != 1:
        raise SystemExit(
            f"expected exit {expected} and one error line from {' '.join(cmd)}:\n{result.stderr}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    parser.add_argument("--bin", help="bin folder of the asyncrun to measure (default: a fresh install)")
    args = parser.parse_args()

    bin_dir = Path(args.bin).resolve() if args.bin else asyncrun_bin()
    asyncrun, python = str(bin_dir / "asyncrun"), str(bin_dir / "python")
    work = Path(tempfile.mkdtemp(prefix="asyncrun-bench-"))
    (work / "slow.py").write_text(SLOW)
    env = {**os.environ, "ASYNCRUN_HOME": str(work / "state"), "HOME": str(work)}
    env.pop("FLYTECTL_CONFIG", None)
    cases = {
        "unreachable endpoint: exit 6": (8.0, 6, lambda: ["run", "remote-launchplan"]),
        "local task timeout 200 ms: exit 4": (4.0, 4, lambda: ["run", "slow.py", "too_slow"]),
        "first failure stops its sibling: exit 1": (5.0, 1, lambda: ["run", "slow.py", "failing"]),
    }
    print(f"machine: {machine()}\nasyncrun: {asyncrun}\nruns per case: {args.runs}\n")
    results: list[Case] = []
    for label, (bound, code, argv) in cases.items():
        samples = []
        for _ in range(args.runs):
            port_env = {
                **env,
                "FLYTE_PLATFORM_URL": f"127.0.0.1:{free_port()}",
                "FLYTE_PLATFORM_INSECURE": "true",
            }
            samples.append(timed_exit([asyncrun, *argv()], code, cwd=work, env=port_env))
        results.append(Case(label, "s", samples, target=Target(f"<= {bound:g} s", "max", "<=", bound)))
    reopen = []
    for i in range(args.runs):
        path = work / f"journal-{i}" / "j.sqlite3"
        died = subprocess.run([python, "-c", WRITE_THEN_DIE, str(path)], capture_output=True, text=True)
        if died.returncode != -9:
            raise SystemExit(f"the journal writer did not die by SIGKILL:\n{died.stderr}")
        out = subprocess.run([python, "-c", REOPEN, str(path)], capture_output=True, text=True, check=True)
        reopen.append(float(out.stdout))
    results.append(
        Case("journal re-open after SIGKILL", "s", reopen, target=Target("<= 1.5 s", "max", "<=", 1.5))
    )
    shutil.rmtree(work, ignore_errors=True)
    for case in results:
        print(
            f"{case.name:<42} max {max(case.asyncrun):6.2f} s  target {case.target.text:<9} "
            f"{'met' if case.met else 'NOT met'}"
        )
    if args.json:
        write_results(args.json, "failfast", {"runs": args.runs}, results)
    return 0  # verdicts go to the report; report.py treats a non-zero exit as a broken benchmark


if __name__ == "__main__":
    sys.exit(main())
