"""`--remote` and the `remote-*` targets: parse, call `Client`, render. No remote logic lives here."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import asyncclick as click

from .._exceptions import (
    AsyncrunError,
    ExecutionError,
    WaitTimeoutError,
    error_for_exit_code,
    run_error_class,
)
from ._inputs import batch_inputs, entity_params, merge_inputs
from ._options import RunParams

if TYPE_CHECKING:
    from ..client import BatchRun, Client, Execution, ExecutionOptions, RemoteEntity
    from ..daemon import ExecutionState
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
    execution = await client.run(
        entity,
        inputs,
        name=params.name,
        options=execution_options(params),
        progress=say if human else quiet,
        **params.register_options(),  # used only when `entity` is local
    )
    if human and execution.attached:
        say(
            f"Execution {execution.id.name} exists with the same entity and inputs; attached: {execution.url}"
        )
    elif human:
        say(f"Execution {execution.id.name} created: {execution.url}")
    if params.wait:
        note_remote_run(client, [execution])
    elif not params.no_daemon:
        await track_with_daemon(ctx, [execution], params)
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
        click.echo(snippet([execution]), err=human)
    if ended != "done":
        raise WaitTimeoutError(wait_timeout_message(execution, params, terminated=ended == "terminated"))
    if params.wait and params.wait_for == "terminal":
        fail_on(execution)


def quiet(_: str) -> None:
    pass


def note_remote_run(client: Client, executions: list[Execution]) -> None:
    """What Ctrl-C during the wait should say: the runs go on, and how to wait for them again
    (bare names where `asyncrun wait` looks by default: the client config's project and domain)."""
    from ..client._config import default_scope
    from ._interrupt import on_interrupt, remote_note

    scope = default_scope()
    reattach = [ex.id.name if (ex.id.project, ex.id.domain) == scope else str(ex.id) for ex in executions]
    on_interrupt(remote_note([ex.id.name for ex in executions], client.config.endpoint, reattach))


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


async def track_with_daemon(ctx: click.Context, executions: list[Execution], params: RunParams) -> None:
    """Runs launched without --wait are still followed by the daemon, so `status` and `watch` show
    them. Best effort: the runs were created; a daemon that cannot start costs one line, not the command."""
    from ..daemon import DaemonError, track
    from ._wait import target_for

    if not executions:
        return
    try:
        await track([str(ex.id) for ex in executions], target=target_for(ctx, params.project, params.domain))
    except DaemonError as exc:
        what = executions[0].id.name if len(executions) == 1 else f"these {len(executions)} runs"
        say(f"note: the daemon does not follow {what} ({exc}); `asyncrun wait` still works")


async def wait_with_daemon(
    ctx: click.Context, execution: Execution, params: RunParams
) -> tuple[Execution, str]:
    """The daemon follows the run (one poller for every waiting CLI); this process only listens."""
    return (await wait_many_with_daemon(ctx, [execution], params))[0]


async def wait_many_with_daemon(
    ctx: click.Context, executions: list[Execution], params: RunParams
) -> list[tuple[Execution, str]]:
    """The daemon follows the runs under one deadline (`--wait-timeout`); for each run, its last
    state and how its wait ended: "done", "timed_out" or "terminated"."""
    from ._wait import wait_through_daemon

    result = await wait_through_daemon(
        ctx,
        [str(ex.id) for ex in executions],
        wait_for=params.wait_for,
        timeout=params.wait_timeout,
        abort_on_timeout=params.abort_on_timeout,
        output=params.output,
        project=params.project,
        domain=params.domain,
    )
    ended: list[tuple[Execution, str]] = []
    for execution, state in zip(executions, result.executions, strict=True):
        done = state.terminal or (params.wait_for == "running" and state.started)
        if state.id in result.terminated:
            how = "terminated"
        else:
            how = "timed_out" if result.timed_out and not done else "done"
        ended.append((apply_state(execution, state), how))
    return ended


def apply_state(execution: Execution, state: ExecutionState) -> Execution:
    """`execution` brought up to what the daemon last saw of it."""
    from ..client import ExecutionError as RunError
    from ..client import Phase

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
    return execution


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


def snippet(executions: list[Execution]) -> str:
    """Working asyncrun code that fetches these executions."""
    if len(executions) == 1:
        only = str(executions[0].id)
        fetch = f"        ex = await client.wait({only!r})\n        print(ex.phase, ex.outputs)\n"
    else:
        ids = ", ".join(repr(str(ex.id)) for ex in executions)
        fetch = (
            f"        for name in [{ids}]:\n"
            "            ex = await client.wait(name)\n"
            "            print(ex.id.name, ex.phase, ex.outputs)\n"
        )
    return (
        "import asyncio\n"
        "from asyncrun import Client\n\n"
        "async def main():\n"
        "    async with Client.from_config() as client:\n"
        f"{fetch}\n"
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
        config = (await client_for(ctx)).config
        say(f"no {group.kind}s in {params.project or config.project}/{params.domain or config.domain}")


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
            await launch_batch(ctx, self.entity)
            return
        await launch(ctx, self.entity, merge_inputs(ctx, self.entity.interface))


def check_batch_options(ctx: click.Context, params: RunParams) -> None:
    """Refuse what makes no sense with `--batch` before anything is read, packaged or launched."""
    if params.name is not None:
        raise click.UsageError(
            "--name names one execution; --batch names each line's run itself (drop --name)", ctx
        )


async def launch_batch(ctx: click.Context, entity: Entity | ForeignEntity | RemoteEntity) -> None:
    """`--batch`: one execution per line (`Client.run_many`), then a manifest line per line on
    stdout (its run, or why it was not launched); exits non-zero if any line did not succeed."""
    params: RunParams = ctx.find_object(RunParams) or RunParams()
    check_batch_options(ctx, params)
    assert params.batch is not None
    runs = batch_inputs(ctx, entity.interface, params.batch)  # every line checked; refuses an empty batch
    client = await client_for(ctx)
    human = params.output == "human"
    wait_here = params.wait and params.no_daemon
    results = await client.run_many(
        entity,
        runs,
        max_inflight=params.max_inflight,
        options=execution_options(params),
        wait=wait_here,
        wait_for=params.wait_for,
        poll_interval=params.poll_interval,
        wait_timeout=params.wait_timeout,
        progress=say if human else quiet,
        **params.register_options(),  # used only when `entity` is local
    )
    launched = [r for r in results if r.execution is not None]
    executions = [r.execution for r in launched if r.execution is not None]
    if human:
        for r in results:
            if r.execution is None:
                say(f"line {r.index + 1}: not launched: {one_line(r.error)}")
    wait_error: AsyncrunError | None = None
    if params.wait and executions:
        note_remote_run(client, executions)
    if wait_here:
        if params.abort_on_timeout:
            await abort_timed_out(client, results)
    elif params.wait and executions:
        try:
            ended = await wait_many_with_daemon(ctx, executions, params)
        except AsyncrunError as exc:  # the runs exist: the manifest still says which
            wait_error = exc
        else:
            for r, (execution, how) in zip(launched, ended, strict=True):
                r.execution = execution
                if how != "done":
                    r.error = WaitTimeoutError(
                        wait_timeout_message(execution, params, terminated=how == "terminated")
                    )
    else:
        await track_with_daemon(ctx, executions, params)  # --no-daemon comes only with --wait
    for r in results:
        click.echo(json.dumps(manifest_line(r, client)))
    if params.dump_snippet and executions:
        click.echo(snippet(executions), err=human)
    if wait_error is not None:
        raise wait_error
    failure = batch_failure(results, check_phase=params.wait and params.wait_for == "terminal")
    if human:
        if params.wait:
            done = "did not succeed" if params.wait_for == "terminal" else "did not start"
            bad = sum(1 for r in results if line_failed(r, params.wait and params.wait_for == "terminal"))
            say(f"{len(results)} executions ({bad} {done})")
        else:
            say(f"{len(executions)} of {len(results)} executions launched and tracked")
    if failure is not None:
        raise failure


def one_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


async def abort_timed_out(client: Client, results: list[BatchRun]) -> None:
    """`--no-daemon --abort-on-timeout`: terminate the lines whose wait passed the deadline."""
    timed_out = [r for r in results if isinstance(r.error, WaitTimeoutError) and r.execution is not None]
    if not timed_out:
        return
    aborted = await client.abort(
        *[r.execution for r in timed_out if r.execution is not None], cause="aborted: --wait-timeout passed"
    )
    for r, outcome in zip(timed_out, aborted, strict=True):
        if outcome.ok:
            r.error = WaitTimeoutError(f"{one_line(r.error)}; terminated it (--abort-on-timeout)")


def manifest_line(result: BatchRun, client: Client) -> dict[str, Any]:
    """One line of the `--batch` manifest (docs/cli.md): the run as `run -o json` prints it, or, for a
    line that was not launched, its execution name and the error (kind "LAUNCH")."""
    if result.execution is not None:
        return {"line": result.index + 1, **execution_json(result.execution)}
    return {
        "line": result.index + 1,
        "execution": {"project": client.config.project, "domain": client.config.domain, "name": result.name},
        "phase": None,
        "url": None,
        "outputs": None,
        "error": {"code": type(result.error).__name__, "message": one_line(result.error), "kind": "LAUNCH"},
    }


def line_failed(result: BatchRun, check_phase: bool) -> bool:
    if result.error is not None or result.execution is None:
        return True
    return check_phase and str(result.execution.phase) != "SUCCEEDED"


def batch_failure(results: list[BatchRun], *, check_phase: bool) -> AsyncrunError | None:
    """The error (and so the exit code) of a batch: a wait that passed `--wait-timeout` (5) first,
    as `asyncrun wait` does; else the first line, in order, that was not launched or did not succeed."""
    failed = [r for r in results if line_failed(r, check_phase)]
    if not failed:
        return None
    timed_out = [r for r in failed if isinstance(r.error, WaitTimeoutError)]
    first = (timed_out or failed)[0]
    summary = f"{len(failed)} of {len(results)} batch lines did not succeed; line {first.index + 1}"
    if first.error is not None:
        return error_for_exit_code(first.error.exit_code, f"{summary}: {one_line(first.error)}")
    assert first.execution is not None
    try:
        fail_on(first.execution)
    except AsyncrunError as exc:
        return error_for_exit_code(exc.exit_code, f"{summary}: {exc}")
    return None
