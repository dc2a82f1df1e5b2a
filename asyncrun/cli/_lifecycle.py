"""`asyncrun ls | get | abort`: see and steer runs on the endpoint. Parse, await `Client`, render."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._params import DurationParamType
from ._wait_options import scope_options

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from ..client import Client, Execution, NodeExecution

OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="Lines for people, or one JSON object.",
)


def client_for(ctx: click.Context, project: str | None, domain: str | None) -> Client:
    from ..client import Client

    root = ctx.find_root()
    client = Client.from_config(root.params.get("config"), project=project, domain=domain)
    root.call_on_close(client.close)
    return client


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None and value.year > 1970 else None


def _seconds(value: timedelta | None) -> float | None:
    return round(value.total_seconds(), 3) if value is not None else None


def _human_duration(value: timedelta | None) -> str:
    seconds = _seconds(value)
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _error_json(error: Any) -> dict[str, str] | None:
    return None if error is None else {"code": error.code, "message": error.message, "kind": error.kind}


def execution_row(ex: Execution) -> dict[str, Any]:
    """The JSON shape of one run in `ls` and `get` (docs/cli.md)."""
    return {
        "project": ex.id.project,
        "domain": ex.id.domain,
        "name": ex.id.name,
        "entity": ex.target.name if ex.target else None,
        "version": ex.target.version if ex.target else None,
        "phase": str(ex.phase),
        "created_at": _when(ex.created_at),
        "started_at": _when(ex.started_at),
        "duration": _seconds(ex.duration),
        "url": ex.url,
        "error": _error_json(ex.error),
        "abort_cause": ex.abort_cause or None,
    }


def node_json(node: NodeExecution) -> dict[str, Any]:
    """The JSON shape of one node (with its attempts and children) in `get --nodes`."""
    child = node.child_execution
    return {
        "node_id": node.node_id,
        "spec_node_id": node.spec_node_id,
        "phase": node.phase,
        "started_at": _when(node.started_at),
        "duration": _seconds(node.duration),
        "cache_status": node.cache_status or None,
        "error": _error_json(node.error),
        "child_execution": None
        if child is None
        else {"project": child.project, "domain": child.domain, "name": child.name},
        "attempts": [
            {
                "attempt": a.number,
                "phase": a.phase,
                "task": a.task,
                "duration": _seconds(a.duration),
                "error": _error_json(a.error),
                "logs": [{"name": log.name, "uri": log.uri} for log in a.logs],
            }
            for a in node.attempts
        ],
        "children": [node_json(c) for c in node.children],
    }


def _node_lines(nodes: list[NodeExecution], prefix: str = "") -> list[str]:
    lines = []
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        branch = "└── " if last else "├── "
        line = f"{prefix}{branch}{node.node_id}  {node.phase}  {_human_duration(node.duration)}"
        if node.attempts:
            task = node.attempts[-1].task
            line += f"  {task}" if task else ""
            if len(node.attempts) > 1:
                line += f"  attempts={len(node.attempts)}"
        if node.cache_status and node.cache_status != "CACHE_DISABLED":
            line += f"  cache={node.cache_status.removeprefix('CACHE_').lower()}"
        if node.child_execution is not None:
            line += f"  -> run {node.child_execution.name}"
        lines.append(line)
        if node.error is not None:
            message = node.error.message.strip().splitlines()
            lines.append(
                f"{prefix}{'    ' if last else '│   '}error: {message[-1] if message else node.error.code}"
            )
        lines += _node_lines(node.children, prefix + ("    " if last else "│   "))
    return lines


_PHASES = [
    "QUEUED",
    "RUNNING",
    "SUCCEEDING",
    "SUCCEEDED",
    "FAILING",
    "FAILED",
    "ABORTING",
    "ABORTED",
    "TIMED_OUT",
]


@click.command("ls")
@scope_options
@click.option(
    "--phase",
    "phases",
    multiple=True,
    type=click.Choice(_PHASES, case_sensitive=False),
    help="Only runs in this phase (repeat for several).",
)
@click.option(
    "--since",
    type=DurationParamType(),
    default=None,
    help="Only runs created within this long (90, 1h, 2d, …).",
)
@click.option("--entity", default=None, help="Only runs of this task, workflow or launch plan.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many runs."
)
@OUTPUT
@click.pass_context
async def ls(
    ctx: click.Context,
    project: str | None,
    domain: str | None,
    phases: tuple[str, ...],
    since: timedelta | None,
    entity: str | None,
    limit: int,
    output: str,
) -> None:
    """List recent runs on the endpoint, newest first: name, entity, phase, started, duration.

    `--output json`: `{"executions": [RUN, …]}`, where RUN is `{project, domain, name, entity,
    version, phase, created_at, started_at, duration (seconds), url, error {code, message, kind} |
    null, abort_cause}`.
    """
    from datetime import UTC, datetime

    client = client_for(ctx, project, domain)
    runs, _ = await client.list_executions(
        phases=phases,
        since=datetime.now(UTC) - since if since is not None else None,
        entity=entity,
        limit=limit,
    )
    if output == "json":
        click.echo(json.dumps({"executions": [execution_row(ex) for ex in runs]}))
        return
    for ex in runs:
        entity = ex.target.name if ex.target else "-"
        started = _when(ex.started_at) or "-"
        click.echo(f"{ex.id.name}  {entity}  {ex.phase}  {started}  {_human_duration(ex.duration)}")


@click.command("get")
@click.argument("name")
@scope_options
@click.option("--inputs", "with_inputs", is_flag=True, help="Show the run's inputs.")
@click.option("--outputs", "with_outputs", is_flag=True, help="Show the run's outputs.")
@click.option(
    "--nodes", "with_nodes", is_flag=True, help="Show the node tree (attempts, errors, child runs)."
)
@OUTPUT
@click.pass_context
async def get(
    ctx: click.Context,
    name: str,
    project: str | None,
    domain: str | None,
    with_inputs: bool,
    with_outputs: bool,
    with_nodes: bool,
    output: str,
) -> None:
    """Show one run (NAME, PROJECT:DOMAIN:NAME or a console URL): phase, error, inputs, outputs, nodes.

    For people, the node tree: each node's phase, duration, task, attempts, cache status, error and
    the child run of a launch-plan node. `--output json`: `{"execution": RUN (as in ls), "inputs":
    {…}, "outputs": {…} | null, "nodes": [NODE, …]}` (keys only for the flags given), where NODE is
    `{node_id, spec_node_id, phase, started_at, duration, cache_status, error, child_execution,
    attempts: [{attempt, phase, task, duration, error, logs: [{name, uri}]}], children: [NODE, …]}`.
    """
    import anyio

    client = client_for(ctx, project, domain)
    ex = await client.get_execution(name, with_outputs=False)
    result: dict[str, Any] = {"execution": execution_row(ex)}

    async def fetch_inputs() -> None:
        result["inputs"] = await client.fetch_inputs(ex.id)

    async def fetch_outputs() -> None:
        result["outputs"] = await client.fetch_outputs(ex.id) if ex.phase == "SUCCEEDED" else None

    async def fetch_nodes() -> None:
        result["nodes"] = await client.nodes(ex)

    async with anyio.create_task_group() as tg:
        for wanted, fetch in (
            (with_inputs, fetch_inputs),
            (with_outputs, fetch_outputs),
            (with_nodes, fetch_nodes),
        ):
            if wanted:
                tg.start_soon(fetch)
    if output == "json":
        if "nodes" in result:
            result["nodes"] = [node_json(node) for node in result["nodes"]]
        click.echo(json.dumps(result, default=str))
        return
    row = result["execution"]
    click.echo(f"{ex.id.name}  {row['entity'] or '-'}  {ex.phase}  {_human_duration(ex.duration)}")
    click.echo(f"  {ex.url}")
    if ex.error is not None:
        click.echo(f"  error: {ex.error.message.strip()}")
    elif ex.abort_cause:
        click.echo(f"  aborted: {ex.abort_cause}")
    for key in ("inputs", "outputs"):
        if result.get(key):
            click.echo(f"{key}:")
            for input_name, value in result[key].items():
                click.echo(f"  {input_name}: {json.dumps(value, default=str)}")
    if "nodes" in result:
        click.echo("nodes:")
        for line in _node_lines(result["nodes"]):
            click.echo(f"  {line}")


@click.command("abort")
@click.argument("names", nargs=-1, required=True)
@scope_options
@click.option("--cause", default="aborted by asyncrun", show_default=True, help="Why: shown with the run.")
@click.option("--wait", is_flag=True, help="Wait until the aborted runs have ended (ABORTED).")
@OUTPUT
@click.pass_context
async def abort(
    ctx: click.Context,
    names: tuple[str, ...],
    project: str | None,
    domain: str | None,
    cause: str,
    wait: bool,
    output: str,
) -> None:
    """Abort running runs (NAME, PROJECT:DOMAIN:NAME or a console URL); they end ABORTED.

    Each run is aborted on its own: one line per run says whether it is aborting or why not (unknown,
    already ended, …); the exit code is that of the first run that could not be aborted. With
    `--wait`, each line comes once its run has ended and gives its final phase.
    `--output json`: `{"aborted": [{project, domain, name} (+ phase with --wait), …], "failed":
    [{project, domain, name, error}, …]}`.
    """
    from .._exceptions import error_for_exit_code
    from ._remote import one_line

    client = client_for(ctx, project, domain)
    results = await client.abort(*names, cause=cause)
    failed = [r for r in results if r.error is not None]
    ended = {ex.id: ex for ex in await client.wait_all([r.id for r in results if r.ok])} if wait else {}
    if output == "json":

        def where(r: Any) -> dict[str, str]:
            return {"project": r.id.project, "domain": r.id.domain, "name": r.id.name}

        def aborted(r: Any) -> dict[str, str]:
            return {**where(r), "phase": str(ended[r.id].phase)} if wait else where(r)

        click.echo(
            json.dumps(
                {
                    "aborted": [aborted(r) for r in results if r.ok],
                    "failed": [{**where(r), "error": one_line(r.error)} for r in failed],
                }
            )
        )
    else:
        for r in results:
            if r.ok and wait:
                click.echo(f"{r.id.name}  {ended[r.id].phase} ({cause})")
            elif r.ok:
                click.echo(f"{r.id.name}  aborting ({cause})")
            else:
                click.echo(f"{r.id.name}  not aborted: {one_line(r.error)}", err=True)
    if failed:
        first = failed[0]
        assert first.error is not None
        message = (
            f"{len(failed)} of {len(results)} runs not aborted; {first.id.name}: {one_line(first.error)}"
        )
        raise error_for_exit_code(first.error.exit_code, message, reported=True)


@click.command("logs")
@click.argument("name")
@click.argument("node", required=False)
@scope_options
@click.option(
    "--attempt", type=click.IntRange(min=0), default=None, help="Which attempt (default: the last)."
)
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Print lines as they are written until the node has ended (waits for it to start).",
)
@OUTPUT
@click.pass_context
async def logs(
    ctx: click.Context,
    name: str,
    node: str | None,
    project: str | None,
    domain: str | None,
    attempt: int | None,
    follow: bool,
    output: str,
) -> None:
    """Print a task's output (NODE, default: the last task node); where it cannot be read from
    here (a real cluster), print the attempt's log links.

    `--follow` prints lines as the task writes them and returns once the node has ended (without
    `--attempt`, following its retries too). `--output json`: `{"lines": [TEXT, …], "links": [{name,
    uri}, …]}`, printed once the log is complete.
    """
    from ..client._nodes import pick_node

    client = client_for(ctx, project, domain)
    lines: list[str] = []
    printed = False
    async for line in client.logs(name, node, attempt=attempt, follow=follow):
        printed = True
        if output == "json":
            lines.append(line)
        else:
            click.echo(line)
    links: list[dict[str, str]] = []
    if not printed:
        tree = await client.nodes(name)
        chosen = pick_node(tree, node)
        if chosen is not None and chosen.attempts:
            picked = [a for a in chosen.attempts if attempt is None or a.number == attempt] or chosen.attempts
            links = [{"name": link.name, "uri": link.uri} for link in picked[-1].logs]
    if output == "json":
        click.echo(json.dumps({"lines": lines, "links": links}))
        return
    for link in links:
        click.echo(f"{link['name']}: {link['uri']}")


def _new_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What `relaunch` and `recover` take: the run NAME, its scope, the new run's name, --wait, -o."""
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.argument("name"),
        scope_options,
        click.option("--name", "new_name", default=None, help="Name of the new run (default: a fresh one)."),
        click.option(
            "--wait",
            is_flag=True,
            help="Wait for the new run; exit with its code (1 failed, 3 aborted, 4 timed out).",
        ),
        OUTPUT,
        click.pass_context,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.command("relaunch")
@_new_run_options
@click.option("--overwrite-cache", is_flag=True, help="Recompute cached tasks and store their new outputs.")
async def relaunch(
    ctx: click.Context,
    name: str,
    project: str | None,
    domain: str | None,
    new_name: str | None,
    wait: bool,
    output: str,
    overwrite_cache: bool,
) -> None:
    """Run the same entity again with the same inputs and options; prints the new run.

    `--output json`: RUN (as in ls) of the new run.
    """
    client = client_for(ctx, project, domain)
    relaunched = await client.relaunch(name, name=new_name, wait=wait, overwrite_cache=overwrite_cache)
    _new_run(relaunched, output, wait)


@click.command("recover")
@_new_run_options
async def recover(
    ctx: click.Context,
    name: str,
    project: str | None,
    domain: str | None,
    new_name: str | None,
    wait: bool,
    output: str,
) -> None:
    """Run a failed run again from where it failed: the nodes that succeeded keep their outputs
    (RECOVERED, their tasks do not run), the others run again. Prints the new run.

    `--output json`: RUN (as in ls) of the new run.
    """
    client = client_for(ctx, project, domain)
    _new_run(await client.recover(name, name=new_name, wait=wait), output, wait)


def _new_run(new: Execution, output: str, waited: bool) -> None:
    """Print the run `relaunch` or `recover` started; once waited for, end with its exit code."""
    from ._remote import fail_on

    if output == "json":
        click.echo(json.dumps(execution_row(new)))
    else:
        click.echo(f"{new.id.name}  {new.phase}  {new.url}")
    if waited:
        fail_on(new)
