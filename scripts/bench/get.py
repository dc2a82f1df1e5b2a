#!/usr/bin/env python3
"""Reading a finished run's node tree: `asyncrun get NAME --nodes` vs flytekit's FlyteRemote.

    python scripts/bench/get.py [--rounds 5] [--flytekit-bin PATH] [--setup] [--json PATH]

One sandbox; one finished run of a workflow with tasks, a sub-workflow and a launch-plan node. Each
sample is a whole process as a user runs it (start-up and imports included), alternating A B A B:
  A  `asyncrun get NAME --nodes`, the human output (the command the issue names; `-o json` is also
     timed, as a second case: both read the same RPCs, only the rendering differs)
  B  `python fetk.py …` in the flytekit 1.16.31 virtualenv: `FlyteRemote.fetch_execution` then
     `sync_execution(ex, sync_nodes=True)`, printing the node ids
Before timing, one run of each checks that both read the same nodes (ids of every level, and the
child run of the launch-plan node). `get --help` is timed too: asyncrun's start-up floor, to show
where its time goes. Target: asyncrun <= 1/3 of flytekit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from _common import (
    Case,
    Target,
    asyncrun_cmd,
    flytekit_bin,
    machine,
    median,
    sandbox,
    timed,
    verdict,
    write_results,
)

TARGET = 1 / 3

# Tasks, a sub-workflow (its own node tree) and a launch-plan node (a child run): the node kinds
# `get --nodes` and `sync_execution(sync_nodes=True)` walk differently.
FLOW = textwrap.dedent(
    """
    from asyncrun import LaunchPlan, task, workflow


    @task
    def double(x: int) -> int:
        return 2 * x


    @task
    def add(a: int, b: int) -> int:
        return a + b


    @task
    def describe(n: int) -> str:
        return f"total {n}"


    @workflow
    def inner(x: int) -> int:
        return add(a=double(x=x), b=x)


    @workflow
    def child(x: int = 1) -> int:
        return double(x=x)


    child_lp = LaunchPlan.create("bench_get_child", child, default_inputs={"x": 2})


    @workflow
    def wf(x: int = 3) -> str:
        a = double(x=x)
        b = inner(x=a)
        c = child_lp(x=b)
        d = add(a=b, b=c)
        e = inner(x=d)
        return describe(n=e)
    """
)

# What a flytekit user writes: fetch the run, sync it with its nodes, print the node ids. The tree
# goes out as one JSON line so that the check before timing reads what the timed runs print.
FLYTEKIT_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    endpoint, project, domain, name = sys.argv[1:5]
    remote = FlyteRemote(Config.for_endpoint(endpoint, insecure=True))
    ex = remote.sync_execution(remote.fetch_execution(project, domain, name), sync_nodes=True)


    def tree(nodes):
        return [
            {
                "node_id": node_id,
                "children": tree(node.subworkflow_node_executions),
                "child_runs": [
                    {"name": run.id.name, "nodes": sorted(set(run.node_executions) - {"end-node"})}
                    for run in node.workflow_executions
                ],
            }
            for node_id, node in nodes.items()
            if node_id != "end-node"
        ]


    print(json.dumps(tree(ex.node_executions)))
    """
)


async def launch(endpoint: str, project_dir: Path) -> tuple[str, str, str]:
    """Register and run the workflow once; wait until it and its child run have ended."""
    from asyncrun import Client
    from asyncrun.sdk._loader import load_file

    (project_dir / "bench_get_flow.py").write_text(FLOW)
    module = load_file(project_dir / "bench_get_flow.py").module
    async with Client.from_config(endpoint=endpoint, insecure=True) as client:
        ex = await client.run(module.wf, {"x": 3}, wait=True)
        if ex.phase != "SUCCEEDED":
            raise SystemExit(f"the benchmark's run {ex.id.name} ended {ex.phase}: {ex.error}")
        return ex.id.project, ex.id.domain, ex.id.name


def asyncrun_tree(nodes: list[dict[str, Any]]) -> list[tuple[str, Any, str | None]]:
    return sorted(
        (
            n["node_id"],
            asyncrun_tree(n["children"]),
            n["child_execution"]["name"] if n.get("child_execution") else None,
        )
        for n in nodes
    )


def flytekit_tree(nodes: list[dict[str, Any]]) -> list[tuple[str, Any, str | None]]:
    return sorted(
        (
            n["node_id"],
            flytekit_tree(n["children"]),
            n["child_runs"][0]["name"] if n["child_runs"] else None,
        )
        for n in nodes
    )


def count(tree: list[tuple[str, Any, str | None]]) -> int:
    return sum(1 + count(children) for _, children, _ in tree)


def check_same_nodes(a_json: str, f_json: str) -> tuple[int, int]:
    """Both sides read the same node tree: (nodes, nodes of the child runs flytekit also synced)."""
    ours = asyncrun_tree(json.loads(a_json)["nodes"])
    theirs = flytekit_tree(json.loads(f_json))
    if ours != theirs:
        raise SystemExit(f"the two sides read different nodes:\nasyncrun: {ours}\nflytekit: {theirs}")
    if count(ours) < 8 or not any(child for _, _, child in ours):
        raise SystemExit(f"the run's node tree is smaller than the benchmark needs: {ours}")
    child_nodes = sum(len(run["nodes"]) for n in json.loads(f_json) for run in n["child_runs"])
    return count(ours), child_nodes


def output(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flytekit-bin", help="bin folder of a virtualenv with flytekit 1.16.31")
    parser.add_argument("--setup", action="store_true", help="create .bench-venv/flytekit first")
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    fk = flytekit_bin(args.flytekit_bin, setup=args.setup)
    work = Path(tempfile.mkdtemp(prefix="asyncrun-bench-get-"))
    (work / "proj").mkdir()
    (work / "fetk.py").write_text(FLYTEKIT_SCRIPT)
    times: dict[str, list[float]] = {"human": [], "json": [], "help": [], "flytekit": []}
    with sandbox() as sb:
        env = {
            **os.environ,
            "FLYTE_PLATFORM_URL": sb.endpoint,
            "FLYTE_PLATFORM_INSECURE": "True",
            "HOME": str(work),
            "ASYNCRUN_HOME": str(work / "state"),
        }
        project, domain, name = asyncio.run(launch(sb.endpoint, work / "proj"))
        scope = ["-p", project, "-d", domain]
        get_human = asyncrun_cmd("get", name, "--nodes", *scope)
        get_json = asyncrun_cmd("get", name, "--nodes", *scope, "-o", "json")
        get_help = asyncrun_cmd("get", "--help")
        fetk = [str(fk / "python"), str(work / "fetk.py"), sb.endpoint, project, domain, name] if fk else []
        # Untimed first runs (they also warm the page cache): both sides read the same nodes.
        a_json = output(get_json, env, work)
        output(get_human, env, work)
        nodes = child_nodes = 0
        if fetk:
            nodes, child_nodes = check_same_nodes(a_json, output(fetk, env, work))
        for _ in range(args.rounds):
            times["human"].append(timed(get_human, cwd=work, env=env))
            if fetk:
                times["flytekit"].append(timed(fetk, cwd=work, env=env))
            times["json"].append(timed(get_json, cwd=work, env=env))
            times["help"].append(timed(get_help, cwd=work, env=env))
    print(f"machine: {machine()}")
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    shape = f"{nodes} nodes, same ids on both sides" if fetk else "flytekit not measured"
    print(f"run {name}: {shape}; flytekit also synced the child run's {child_nodes} nodes")
    print(f"rounds: {args.rounds}, alternating asyncrun / flytekit, same sandbox, same run\n")
    print(f"{'case':<28} {'asyncrun (s)':>12} {'flytekit (s)':>12} {'ratio':>7}  target <= {TARGET:.2f}")
    f = median(times["flytekit"]) if times["flytekit"] else None
    for key, label in (("human", "get --nodes"), ("json", "get --nodes -o json")):
        a = median(times[key])
        if f:
            print(f"{label:<28} {a:>12.3f} {f:>12.3f} {a / f:>7.3f}  {verdict(a / f <= TARGET)}")
        else:
            print(f"{label:<28} {a:>12.3f} {'-':>12}")
    print(f"{'get --help (start-up floor)':<28} {median(times['help']):>12.3f}")
    if args.json:
        target = Target("asyncrun / flytekit <= 1/3", "ratio", "<=", TARGET)
        note = f"{nodes} nodes; 1-min load average {load_before:.1f} at start"
        cases = [
            Case("get --nodes", "s", times["human"], times["flytekit"], target, note=note),
            Case("get --nodes -o json", "s", times["json"], times["flytekit"], target, note=note),
            Case("get --help (start-up floor)", "s", times["help"], note=note),
        ]
        params = {
            "rounds": args.rounds,
            "flytekit_bin": str(fk or ""),
            "nodes": nodes,
            "load_before": round(load_before, 2),
        }
        write_results(args.json, "get", params, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
