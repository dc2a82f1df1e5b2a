"""`--remote` and the `remote-*` targets: parse, call `Client`, render. No remote logic lives here."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import asyncclick as click

from .._exceptions import (
    ExecutionError,
    WaitTimeoutError,
    one_error,
    run_error_class,
)
from ._inputs import batch_inputs, entity_params, merge_inputs
from ._options import RunParams

if TYPE_CHECKING:
    from ..client import Client, Execution, ExecutionOptions, RemoteEntity
    from ..sdk._foreign import ForeignEntity
    from ..sdk._graph import Entity

REMOTE_KINDS = {"remote-launchplan": "launch plan", "remote-workflow": "workflow", "remote-task": "task"}


def say(message: str) -> None:
    """Progress for people, on stderr, so stdout stays clean for outputs and JSON."""
    click.echo(message, err=True)


async def client_for(ctx: click.Context) -> Client:
    """One client per command line, closed when the command ends; the sandbox is started if needed."""
    root = ctx.find_root()
    client: Client | None = root.meta.get("asyncrun.client")
    if client is None:
        from ..client import Client

        params: RunParams = ctx.find_object(RunParams) or RunParams()
        client = Client.from_config(
            root.params.get("config"), project=params.project, domain=params.domain, auth_prompt=say
        )
        if client.config.is_default_sandbox:
            await ensure_sandbox()
        root.meta["asyncrun.client"] = client
        root.call_on_close(client.close)
    return client


async def ensure_sandbox() -> None:
    """With no Flyte config at all, `--remote` means the local sandbox: start it if nothing answers
    (on the ports of ASYNCRUN_SANDBOX_PORT / ASYNCRUN_SANDBOX_HTTP_PORT)."""
    from ..client._config import sandbox_ports
    from ..sandbox import SandboxConfig, ensure_running

    port, http_port = sandbox_ports()
    info = await ensure_running(
        SandboxConfig(port=port, http_port=http_port),
        progress=lambda m: say(f"No Flyte config found and {m}"),
    )
    if info is not None:
        say(f"  gRPC endpoint: {info.endpoint}")
        say(f"  console:       {info.console_url}")


def execution_options(params: RunParams) -> ExecutionOptions:
    from ..client import ExecutionOptions

    return ExecutionOptions(
        service_account=params.service_account,
        envs=params.envvars,
        tags=params.tags,
        labels=params.labels,
        annotations=params.annotations,
        raw_output_data_prefix=params.raw_output_data_prefix,
        max_parallelism=params.max_parallelism,
        disable_notifications=params.disable_notifications,
        overwrite_cache=params.overwrite_cache,
        interruptible=params.interruptible,
        cluster_pool=params.cluster_pool,
        execution_cluster_label=params.execution_cluster_label,
    )


async def launch(
    ctx: click.Context, entity: Entity | ForeignEntity | RemoteEntity, inputs: dict[str, Any]
) -> None:
    """Register (for local entities) and launch; with --wait, follow the run and render its result."""
    params: RunParams = ctx.find_object(RunParams) or RunParams()
    if params.name is not None:
        from ..client._types import check_execution_name

        check_execution_name(params.name)  # before the sandbox, packaging or registering: exit 2
    client = await client_for(ctx)
    human = params.output == "human"
    register_options: dict[str, Any] = {}
    if not hasattr(entity, "launch_id"):
        register_options = {
            "copy": "all" if params.copy == "all" else "auto",
            "images": params.images,
            "destination_dir": params.destination_dir,
            "resource_requests": params.resource_requests,
            "resource_limits": params.resource_limits,
        }
    execution = await client.run(
        entity,
        inputs,
        name=params.name,
        options=execution_options(params),
        progress=say if human else (lambda _: None),
        **register_options,
    )
    if human and execution.attached:
        say(
            f"Execution {execution.id.name} exists with the same entity and inputs; attached: {execution.url}"
        )
    elif human:
        say(f"Execution {execution.id.name} created: {execution.url}")
    if params.wait:
        note_remote_run(client, execution)
    elif not params.no_daemon:
        await track_with_daemon(ctx, execution, params)
    ended = "done"
    if params.wait and params.no_daemon:
        execution, ended = await wait_here(client, execution, params, human)
    elif params.wait:
        execution, ended = await wait_with_daemon(ctx, execution, params)
    if params.output == "json":
        click.echo(json.dumps(execution_json(execution)))
    elif execution.is_done and execution.outputs is not None:
        from ._render import render_outputs

        render_outputs(execution.outputs, execution.output_types or {}, "human")
    if params.dump_snippet:
        click.echo(snippet(execution), err=human)
    if ended != "done":
        raise WaitTimeoutError(wait_timeout_message(execution, params, terminated=ended == "terminated"))
    if params.wait and params.wait_for == "terminal":
        fail_on(execution)


def note_remote_run(client: Client, execution: Execution) -> None:
    """What Ctrl-C during the wait should say: the run goes on, and how to wait for it again."""
    from ._interrupt import on_interrupt, remote_note

    ex_id = execution.id
    default_scope = (
        os.environ.get("FLYTE_DEFAULT_PROJECT") or "flytesnacks",
        os.environ.get("FLYTE_DEFAULT_DOMAIN") or "development",
    )
    reattach = ex_id.name if (ex_id.project, ex_id.domain) == default_scope else str(ex_id)
    on_interrupt(remote_note([ex_id.name], client.config.endpoint, [reattach]))


def wait_timeout_message(execution: Execution, params: RunParams, *, terminated: bool) -> str:
    """What happened when `--wait-timeout` passed (exit 5 either way, see docs/exit-codes.md)."""
    waited = f"stopped waiting for {execution.id.name} after {params.wait_timeout:g} s (--wait-timeout)"
    if terminated:
        return f"{waited} and terminated it (--abort-on-timeout)"
    return f"{waited}; it is {execution.phase} and goes on (`asyncrun wait {execution.id.name}` waits again)"


def say_phase(execution: Execution) -> None:
    from ._render import phase_line

    line = phase_line(execution.id.name, str(execution.phase))
    if line is not None:
        say(line)


async def wait_here(
    client: Client, execution: Execution, params: RunParams, human: bool
) -> tuple[Execution, str]:
    """`--no-daemon`: poll from this process; how it ended: "done", "timed_out" or "terminated"."""
    try:
        done = await client.wait(
            execution,
            poll_interval=params.poll_interval,
            timeout=params.wait_timeout,
            wait_for=params.wait_for,
            on_change=say_phase if human else None,
        )
        return done, "done"
    except WaitTimeoutError:
        if params.abort_on_timeout:
            await client.terminate(execution, "aborted: --wait-timeout passed")
            return await client.get_execution(execution, with_outputs=False), "terminated"
        return await client.get_execution(execution, with_outputs=False), "timed_out"


async def track_with_daemon(ctx: click.Context, execution: Execution, params: RunParams) -> None:
    """A run launched without --wait is still followed by the daemon, so `status` and `watch` show it.
    Best effort: the run was created; a daemon that cannot start costs one line, not the command."""
    from ..daemon import DaemonError, track
    from ._wait import target_for

    try:
        await track([str(execution.id)], target=target_for(ctx, params.project, params.domain))
    except DaemonError as exc:
        say(f"note: the daemon does not follow {execution.id.name} ({exc}); `asyncrun wait` still works")


async def wait_with_daemon(
    ctx: click.Context, execution: Execution, params: RunParams
) -> tuple[Execution, str]:
    """The daemon follows the run (one poller for every waiting CLI); this process only listens."""
    from ..client import ExecutionError as RunError
    from ..client import Phase
    from ._wait import wait_through_daemon

    result = await wait_through_daemon(
        ctx,
        [str(execution.id)],
        wait_for=params.wait_for,
        timeout=params.wait_timeout,
        abort_on_timeout=params.abort_on_timeout,
        output=params.output,
        project=params.project,
        domain=params.domain,
    )
    state = result.executions[0]
    error = None
    if isinstance(state.error, dict):
        error = RunError(
            str(state.error.get("code", "")),
            str(state.error.get("message", "")),
            str(state.error.get("kind", "UNKNOWN")),
        )
    execution.phase = Phase(state.phase) if state.phase else execution.phase
    execution.error = error
    execution.outputs = state.outputs if isinstance(state.outputs, dict) else None
    if execution.outputs is not None and execution.output_types:
        from ..sdk._type_engine import from_jsonable

        types = execution.output_types
        execution.outputs = {
            name: from_jsonable(value, types[name]) if name in types else value
            for name, value in execution.outputs.items()
        }
    if result.terminated:
        return execution, "terminated"
    return execution, "timed_out" if result.timed_out else "done"


def execution_json(execution: Execution) -> dict[str, Any]:
    from ..sdk._type_engine import to_jsonable

    types = execution.output_types or {}
    outputs = None
    if execution.outputs is not None:
        outputs = {
            name: to_jsonable(value, types[name]) if name in types else value
            for name, value in execution.outputs.items()
        }
    return {
        "execution": {
            "project": execution.id.project,
            "domain": execution.id.domain,
            "name": execution.id.name,
        },
        "phase": str(execution.phase),
        "url": execution.url,
        "outputs": outputs,
        "error": None
        if execution.error is None
        else {"code": execution.error.code, "message": execution.error.message, "kind": execution.error.kind},
    }


def fail_on(execution: Execution) -> None:
    """Turn a run that did not succeed into its exit code (1 failed, 3 aborted, 4 timed out)."""
    phase = str(execution.phase)
    if phase == "SUCCEEDED":
        return
    detail = execution.error.message.strip() if execution.error else execution.abort_cause
    message = f"execution {execution.id.name} {phase.lower().replace('_', ' ')}"
    if detail:
        message += f": {detail.splitlines()[-1] if len(detail) > 300 else detail}"
    error = run_error_class(phase, execution.error.code if execution.error else None) or ExecutionError
    raise error(message)


def snippet(execution: Execution) -> str:
    """Working asyncrun code that fetches this execution."""
    return (
        "import asyncio\n"
        "from asyncrun import Client\n\n"
        "async def main():\n"
        "    async with Client.from_config() as client:\n"
        f"        ex = await client.wait({str(execution.id)!r})\n"
        "        print(ex.phase, ex.outputs)\n\n"
        "asyncio.run(main())"
    )


@click.pass_context
async def list_remote_entities(ctx: click.Context) -> None:
    """With no NAME: print the registered names, sorted (all pages up to --limit)."""
    if ctx.invoked_subcommand is not None:
        return
    group = ctx.command
    assert isinstance(group, RemoteEntityGroup)
    params: RunParams = ctx.find_object(RunParams) or RunParams()
    names = await (await client_for(ctx)).list_entities(group.kind, limit=params.limit)
    if params.output == "json":
        click.echo(json.dumps(names))
    elif names:
        click.echo("\n".join(names))
    else:
        say(f"no {group.kind}s in {params.project}/{params.domain}")


class RemoteEntityGroup(click.Group):
    """`remote-launchplan|remote-workflow|remote-task [NAME[:VERSION]]`: list, or launch one."""

    def __init__(self, target: str) -> None:
        self.kind = REMOTE_KINDS[target]
        super().__init__(
            name=target,
            help=f"Launch a registered {self.kind}; with no name, list them.",
            invoke_without_command=True,
            subcommand_metavar="[NAME[:VERSION] [INPUTS]...]",
            callback=list_remote_entities,
        )

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return RemoteEntityCommand(cmd_name, self.kind)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return []


class RemoteEntityCommand(click.Command):
    """Options come from the registered interface, fetched before arguments are parsed."""

    def __init__(self, ref: str, kind: str) -> None:
        super().__init__(name=ref, help=f"Launch the registered {kind} {ref}.")
        self.ref = ref
        self.kind = kind
        self.entity: RemoteEntity | None = None

    async def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        assert parent is not None
        if extra.get("resilient_parsing") or parent.resilient_parsing:
            # Shell completion: never reach (or start) a control plane to complete a word.
            return await super().make_context(info_name, args, parent=parent, **extra)
        name, sep, version = self.ref.rpartition(":")
        if not sep:
            name, version = version, ""
        client = await client_for(parent)
        params: RunParams = parent.find_object(RunParams) or RunParams()
        fetch = {
            "launch plan": client.fetch_launch_plan,
            "workflow": client.fetch_workflow,
            "task": client.fetch_task,
        }[self.kind]
        self.entity = await fetch(name, version or None, project=params.project, domain=params.domain)
        self.params = entity_params(self.entity.interface)
        self.help = f"{self.kind} {self.entity.id.name}:{self.entity.id.version}"
        return await super().make_context(info_name, args, parent=parent, **extra)

    async def invoke(self, ctx: click.Context) -> Any:
        assert self.entity is not None
        params: RunParams = ctx.find_object(RunParams) or RunParams()
        if params.batch:
            await launch_batch(ctx, self.entity, batch_inputs(ctx, self.entity.interface, params.batch))
            return
        await launch(ctx, self.entity, merge_inputs(ctx, self.entity.interface))


def batch_name(launch_id: Any, index: int, inputs: dict[str, Any]) -> str:
    """The execution name of one batch line: the same line of the same batch always gets the same name,
    so running a batch again attaches to its runs instead of starting them twice."""
    import base64
    import hashlib

    key = json.dumps([str(launch_id), index, inputs], sort_keys=True, default=str)
    digest = base64.b32encode(hashlib.sha256(key.encode()).digest()).decode().lower()
    return "b" + digest[:19]


async def launch_batch(
    ctx: click.Context, entity: Entity | ForeignEntity | RemoteEntity, runs: list[dict[str, Any]]
) -> None:
    """`--batch`: one execution per line (`runs`: each line's inputs, from `batch_inputs`), at most
    --max-inflight at once, each tracked by the daemon; a manifest line per execution at the end."""
    import anyio

    from .._exceptions import ExecutionError as RunFailed
    from ..sdk._type_engine import to_jsonable

    params: RunParams = ctx.find_object(RunParams) or RunParams()
    client = await client_for(ctx)
    remote = entity
    if not hasattr(entity, "launch_id"):
        remote = await client.register(entity, progress=say if params.output == "human" else (lambda _: None))
    assert hasattr(remote, "launch_id")
    specs = remote.interface.inputs
    prepared: list[tuple[int, dict[str, Any], str]] = []
    for index, values in enumerate(runs):
        canonical = {key: to_jsonable(value, specs[key].type) for key, value in values.items()}
        prepared.append((index, values, batch_name(remote.launch_id, index, canonical)))
    limit = anyio.Semaphore(params.max_inflight)
    manifest: list[dict[str, Any] | None] = [None] * len(prepared)

    async def one(index: int, values: dict[str, Any], name: str) -> None:
        async with limit:
            execution = await client.run(remote, values, name=name, options=execution_options(params))
            if params.wait:
                execution, _ = await wait_with_daemon(ctx, execution, params)
            manifest[index] = {"line": index + 1, **execution_json(execution)}

    with one_error():
        async with anyio.create_task_group() as tg:
            for index, values, name in prepared:
                tg.start_soon(one, index, values, name)
    if not params.wait:
        from ..daemon import DaemonConnection
        from ._wait import target_for

        async with DaemonConnection() as daemon:
            await daemon.track(
                [
                    f"{m['execution']['project']}:{m['execution']['domain']}:{m['execution']['name']}"
                    for m in manifest
                    if m
                ],
                target=target_for(ctx, params.project, params.domain),
            )
    for entry in manifest:
        click.echo(json.dumps(entry))
    failed = [m for m in manifest if m and m["phase"] in ("FAILED", "ABORTED", "TIMED_OUT")]
    if params.output == "human":
        say(
            f"{len(manifest)} executions ({len(failed)} did not succeed)"
            if params.wait
            else f"{len(manifest)} executions launched and tracked"
        )
    if failed:
        raise RunFailed(f"{len(failed)} of {len(manifest)} batch executions did not succeed")
