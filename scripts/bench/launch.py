#!/usr/bin/env python3
"""Launch throughput against a sandbox with --rpc-delay-ms 50 (a remote control plane's latency).

    python scripts/bench/launch.py [--executions 500] [--flytekit-executions 60] [--rounds 3] [--setup]
        [--json PATH]

asyncrun: `client.run(lp, inputs)` (wait=False) for N executions at once.
flytekit 1.16.31: `FlyteRemote.execute(lp, inputs)` in a loop, as users write it, in its own virtualenv.
Rounds alternate asyncrun / flytekit; medians of launches/s and their ratio. Target: >= 25x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    ROOT,
    Case,
    Target,
    flytekit_bin,
    machine,
    machine_busy_seconds,
    median,
    sandbox,
    verdict,
    write_results,
)

from asyncrun import Client
from asyncrun.sdk._loader import load_file

TARGET = 25.0
FLYTEKIT_LOOP = r"""
import json, sys, time
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote

endpoint, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
remote = FlyteRemote(Config.for_endpoint(endpoint, insecure=True), default_project="flytesnacks",
                     default_domain="development")
lp = remote.fetch_launch_plan(name="hello.wf")
start = time.perf_counter()
for i in range(count):
    remote.execute(lp, inputs={"name": f"{tag}{i}", "times": 1})
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


CPU_PER_LAUNCH: list[float] = []  # whole-machine CPU seconds per launch, each asyncrun round
CLIENT_CPU_PER_LAUNCH: list[float] = []  # of which this (the client's) process


async def asyncrun_round(endpoint: str, count: int, tag: str) -> float:
    async with Client.from_config(endpoint=endpoint, insecure=True) as client:
        lp = await client.fetch_launch_plan("hello.wf")
        busy, mine = machine_busy_seconds(), time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(client.run(lp, {"name": f"{tag}{i}", "times": 1}) for i in range(count)))
        rate = count / (time.perf_counter() - start)
        CPU_PER_LAUNCH.append((machine_busy_seconds() - busy) / count)
        CLIENT_CPU_PER_LAUNCH.append((time.process_time() - mine) / count)
        return rate


def flytekit_round(python: Path, endpoint: str, count: int, tag: str) -> float:
    out = subprocess.run(
        [str(python), "-c", FLYTEKIT_LOOP, endpoint, str(count), tag],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return count / json.loads(out.strip().splitlines()[-1])["seconds"]


async def register(endpoint: str) -> None:
    wf = load_file(ROOT / "examples" / "hello.py").entity("wf")
    async with Client.from_config(endpoint=endpoint, insecure=True) as client:
        await client.register(wf)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=500)
    parser.add_argument(
        "--flytekit-executions", type=int, default=60, help="flytekit is slow: fewer, same rate"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rpc-delay-ms", type=int, default=50)
    parser.add_argument("--flytekit-bin", help="bin folder of a virtualenv with flytekit 1.16.31")
    parser.add_argument("--setup", action="store_true", help="create .bench-venv/flytekit first")
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()
    fk = flytekit_bin(args.flytekit_bin, setup=args.setup)
    ours: list[float] = []
    theirs: list[float] = []
    with sandbox(rpc_delay_ms=args.rpc_delay_ms) as sb:
        asyncio.run(register(sb.endpoint))
        for round_ in range(args.rounds):
            ours.append(asyncio.run(asyncrun_round(sb.endpoint, args.executions, f"a{round_}x")))
            if fk:
                theirs.append(
                    flytekit_round(fk / "python", sb.endpoint, args.flytekit_executions, f"f{round_}x")
                )
    print(f"machine: {machine()}")
    print(f"sandbox rpc delay: {args.rpc_delay_ms} ms; rounds: {args.rounds} (alternating)")
    print(f"asyncrun client.run x{args.executions}:        median {median(ours):8.1f} launches/s  {ours}")
    print(
        f"CPU per asyncrun launch, whole machine: {median(CPU_PER_LAUNCH) * 1000:.1f} ms "
        f"(client process {median(CLIENT_CPU_PER_LAUNCH) * 1000:.1f} ms)"
    )
    if theirs:
        ratio = median(ours) / median(theirs)
        label = f"flytekit FlyteRemote.execute x{args.flytekit_executions}:"
        print(f"{label} median {median(theirs):8.1f} launches/s  {theirs}")
        print(f"ratio {ratio:.1f}x; target >= {TARGET:.0f}x: {verdict(ratio >= TARGET)}")
    else:
        print("flytekit not found (use --setup or --flytekit-bin): no comparison")
    if args.json:
        name = f"launches/s, client.run x{args.executions} vs FlyteRemote.execute x{args.flytekit_executions}"
        target = Target(f"asyncrun / flytekit >= {TARGET:.0f}x", "ratio", ">=", TARGET)
        cpu, client_cpu = median(CPU_PER_LAUNCH), median(CLIENT_CPU_PER_LAUNCH)
        cores = os.cpu_count() or 1
        profile = (
            f"rpc delay {args.rpc_delay_ms} ms; CPU per launch, whole machine: {cpu * 1000:.1f} ms "
            f"(client {client_cpu * 1000:.1f} ms; the rest the sandbox, which also runs the launched "
            f"workflows): {cores} cores fit at most {cores / cpu:.0f} launches/s"
        )
        case = Case(name, "launches/s", ours, theirs, target, note=profile)
        params = {
            "executions": args.executions,
            "flytekit_executions": args.flytekit_executions,
            "rounds": args.rounds,
            "rpc_delay_ms": args.rpc_delay_ms,
        }
        write_results(args.json, "launch", params, [case])
    return 0


if __name__ == "__main__":
    sys.exit(main())
