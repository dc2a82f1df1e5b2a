#!/usr/bin/env python3
"""Sandbox throughput: registrations/s, end-to-end executions/s of trivial single-task runs, and the
per-task overhead of a flytekit task.

    python scripts/bench/sandbox.py [--executions 100] [--registrations 200] [--concurrency 16]
        [--poll-interval 0.05] [--flytekit-tasks 10] [--json PATH]

Targets: >= 100 end-to-end executions/s on this machine; a flytekit task's attempt <= 0.15 s.

Executions: each is launched with the client, run by the sandbox as an `asyncrun-execute` process forked
from its warm worker, and waited for until SUCCEEDED (`client.wait` polling every `--poll-interval`
seconds, shared by the waits); 16 at a time, so each run's wait is part of the rate: at most
16 / poll interval runs a second get through a poll. The script also times one cold task process alone.

flytekit: a trivial flytekit task registered and launched with `asyncrun run --remote` from a virtualenv
with flytekit (`.bench-venv/asyncrun-flytekit`), then launched `--flytekit-tasks` times more, one at
a time; each attempt's duration as the sandbox records it (RUNNING to SUCCEEDED: `pyflyte-execute`
forked from the warm worker that imported flytekit, reading inputs, running, writing outputs, exit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import (
    Case,
    Target,
    asyncrun_bin,
    asyncrun_cmd,
    machine,
    machine_busy_seconds,
    sandbox,
    timed,
    verdict,
    write_results,
)

from asyncrun import Client
from asyncrun.sdk._loader import load_file

TARGET = 100.0
FLYTEKIT_TARGET = 0.15  # seconds per flytekit task attempt
FLYTEKIT_TASKS = textwrap.dedent(
    """
    from flytekit import task

    @task
    def inc(x: int) -> int:
        return x + 1
    """
)
TASKS = textwrap.dedent(
    """
    from asyncrun import task

    @task
    def inc(x: int) -> int:
        return x + 1
    """
)


async def main_async(args: argparse.Namespace) -> None:
    project = Path(tempfile.mkdtemp(prefix="asyncrun-bench-"))
    (project / "bench_tasks.py").write_text(TASKS)
    inc = load_file(project / "bench_tasks.py").entity("inc")
    flytekit_bin = asyncrun_bin(flytekit=True) if args.flytekit_tasks else None
    with sandbox(extra_path=[flytekit_bin] if flytekit_bin else None) as sb:
        async with Client.from_config(endpoint=sb.endpoint, insecure=True) as client:
            remote = await client.register(inc)
            # Registrations: distinct task versions, created concurrently through the API.
            from asyncrun._proto.flyteidl import admin

            template_request = remote.raw
            task_raw = await client._admin(
                "get_task", admin.ObjectGetRequest(id=_identifier(remote)), read=True
            )
            spec = admin.TaskSpec(template=task_raw.closure.compiled_task.template)
            semaphore = asyncio.Semaphore(args.concurrency)

            async def register(i: int) -> None:
                task_id = _identifier(remote)
                task_id.version = f"bench-{i}"
                spec.template.id = task_id
                async with semaphore:
                    await client._admin(
                        "create_task", admin.TaskCreateRequest(id=task_id, spec=spec), read=False
                    )

            start = time.perf_counter()
            await asyncio.gather(*(register(i) for i in range(args.registrations)))
            reg_rate = args.registrations / (time.perf_counter() - start)
            del template_request

            async def one(i: int) -> None:
                async with semaphore:
                    ex = await client.run(remote, {"x": i})
                    done = await client.wait(ex, poll_interval=args.poll_interval)
                    assert done.phase == "SUCCEEDED" and done.outputs == {"o0": i + 1}, done

            await one(-1)  # warm-up
            busy_before = machine_busy_seconds()
            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(args.executions)))
            exec_rate = args.executions / (time.perf_counter() - start)
            cpu_per_execution = (machine_busy_seconds() - busy_before) / args.executions
        flytekit_attempts = await _flytekit_attempts(sb.endpoint, args.flytekit_tasks) if flytekit_bin else []

    task_process = _time_task_process(project)
    print(f"machine: {machine()}")
    at_once = f"{args.concurrency} at a time"
    print(f"registrations:       {reg_rate:8.1f} /s  ({args.registrations} CreateTask, {at_once})")
    print(f"executions (e2e):    {exec_rate:8.1f} /s  ({args.executions} single-task runs, {at_once})")
    print(f"one cold task process: {task_process * 1000:6.0f} ms wall (asyncrun-execute: start, import, run)")
    print(f"target >= {TARGET:.0f} executions/s: {verdict(exec_rate >= TARGET)}")
    if flytekit_attempts:
        fk_median = statistics.median(flytekit_attempts)
        print(
            f"flytekit task attempt: {fk_median * 1000:6.0f} ms median of {len(flytekit_attempts)} "
            f"(pyflyte-execute, warm); target <= {FLYTEKIT_TARGET * 1000:.0f} ms: "
            f"{verdict(fk_median <= FLYTEKIT_TARGET)}"
        )
    cores = os.cpu_count() or 1
    profile = (
        f"CPU per execution, whole machine (client, sandbox, task process): "
        f"{cpu_per_execution * 1000:.0f} ms; {cores} cores fit at most {cores / cpu_per_execution:.0f} "
        "executions/s"
    )
    print(profile)
    print(
        "where the time goes: each execution is one task process, forked from the sandbox's warm worker "
        f"(sandbox/_warm.py; cold, 2 cores would fit about {2 / task_process:.0f} processes/s); "
        "the rest is gRPC, SQLite and polling."
    )
    if args.json:
        at_once = f"{args.concurrency} at a time"
        cases = [
            Case(
                "executions/s end to end",
                "executions/s",
                [exec_rate],
                target=Target(f">= {TARGET:.0f} executions/s", "median", ">=", TARGET),
                note=f"{args.executions} single-task runs, {at_once}, polled every {args.poll_interval:g} s; "
                + profile,
            ),
            Case(
                "CPU per execution (whole machine)",
                "s",
                [cpu_per_execution],
                note="client, sandbox and task process together, from /proc/stat",
            ),
            Case("registrations/s", "registrations/s", [reg_rate], note=f"{args.registrations} CreateTask"),
            Case("one task process", "s", [task_process], note="asyncrun-execute wall time, median of 5"),
        ]
        if flytekit_attempts:
            cases.append(
                Case(
                    "flytekit task attempt",
                    "s",
                    flytekit_attempts,
                    target=Target(f"<= {FLYTEKIT_TARGET:g} s per task", "median", "<=", FLYTEKIT_TARGET),
                    note="pyflyte-execute forked from a warm worker; attempt RUNNING to SUCCEEDED",
                )
            )
        params = {
            "executions": args.executions,
            "registrations": args.registrations,
            "concurrency": args.concurrency,
            "poll_interval": args.poll_interval,
            "flytekit_tasks": args.flytekit_tasks,
        }
        write_results(args.json, "sandbox", params, cases)


async def _flytekit_attempts(endpoint: str, count: int) -> list[float]:
    """Durations of `count` attempts of a trivial flytekit task, registered with `asyncrun run --remote`."""
    work = Path(tempfile.mkdtemp(prefix="asyncrun-bench-fk-"))
    (work / "fk_tasks.py").write_text(FLYTEKIT_TASKS)
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": endpoint,
        "FLYTE_PLATFORM_INSECURE": "True",
        "HOME": str(work),
        "ASYNCRUN_HOME": str(work / "state"),
    }
    # Registers the task and runs it once (which also starts the warm worker importing flytekit).
    command = asyncrun_cmd("run", "--remote", "--wait", "fk_tasks.py", "inc", "--x", "0", flytekit=True)
    timed(command, cwd=work, env=env)
    durations = []
    async with Client.from_config(endpoint=endpoint, insecure=True) as client:
        task = await client.fetch_task("fk_tasks.inc")
        for i in range(count):
            ex = await client.run(task, {"x": i})
            done = await client.wait(ex, poll_interval=0.1)
            assert done.phase == "SUCCEEDED" and done.outputs == {"o0": i + 1}, done
            attempts = [attempt for node in await client.nodes(done) for attempt in node.attempts]
            assert len(attempts) == 1 and attempts[0].duration is not None, attempts
            durations.append(attempts[0].duration.total_seconds())
    return durations


def _identifier(remote):  # type: ignore[no-untyped-def]
    from asyncrun.client import _convert

    return _convert.identifier(remote.launch_id)


def _time_task_process(project: Path) -> float:
    import subprocess

    from asyncrun.sdk._literals import literal_map

    work = Path(tempfile.mkdtemp(prefix="asyncrun-bench-task-"))
    (work / "inputs.pb").write_bytes(bytes(literal_map({"x": 1}, {"x": int})))
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(
            [
                str(asyncrun_bin() / "asyncrun-execute"),
                "--inputs",
                str(work / "inputs.pb"),
                "--output-prefix",
                str(work / "out"),
                "--dest-dir",
                str(project),
                "--task-module",
                "bench_tasks",
                "--task-name",
                "inc",
            ],
            check=True,
            cwd=work,
        )
        runs.append(time.perf_counter() - start)
    return sorted(runs)[len(runs) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--poll-interval", type=float, default=0.05, help="seconds between a wait's polls (client.wait)"
    )
    parser.add_argument(
        "--flytekit-tasks", type=int, default=10, help="flytekit task attempts to time (0: none)"
    )
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
