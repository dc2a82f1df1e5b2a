#!/usr/bin/env python3
"""Sandbox throughput: registrations/s and end-to-end executions/s of trivial single-task runs.

    python scripts/bench/sandbox.py [--executions 100] [--registrations 200] [--concurrency 16]
        [--json PATH]

Target: >= 10 end-to-end executions/s on this machine. Each execution is launched with the client,
run by the sandbox as an `asyncrun-execute` subprocess, and waited for until SUCCEEDED. The script
also times one task process alone, to show where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import Case, Target, asyncrun_bin, machine, sandbox, verdict, write_results

from asyncrun import Client
from asyncrun.sdk._loader import load_file

TARGET = 10.0
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
    with sandbox() as sb:
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
                    done = await client.wait(ex, poll_interval=0.2)
                    assert done.phase == "SUCCEEDED" and done.outputs == {"o0": i + 1}, done

            await one(-1)  # warm-up
            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(args.executions)))
            exec_rate = args.executions / (time.perf_counter() - start)

    task_process = _time_task_process(project)
    print(f"machine: {machine()}")
    at_once = f"{args.concurrency} at a time"
    print(f"registrations:       {reg_rate:8.1f} /s  ({args.registrations} CreateTask, {at_once})")
    print(f"executions (e2e):    {exec_rate:8.1f} /s  ({args.executions} single-task runs, {at_once})")
    print(f"one cold task process: {task_process * 1000:6.0f} ms wall (asyncrun-execute: start, import, run)")
    print(f"target >= {TARGET:.0f} executions/s: {verdict(exec_rate >= TARGET)}")
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
                note=f"{args.executions} single-task runs, {at_once}",
            ),
            Case("registrations/s", "registrations/s", [reg_rate], note=f"{args.registrations} CreateTask"),
            Case("one task process", "s", [task_process], note="asyncrun-execute wall time, median of 5"),
        ]
        params = {
            "executions": args.executions,
            "registrations": args.registrations,
            "concurrency": args.concurrency,
        }
        write_results(args.json, "sandbox", params, cases)


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
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
