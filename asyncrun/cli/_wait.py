"""`asyncrun wait|status|watch` and the daemon path of `run --wait`: talk to the daemon, render.

Import-light on purpose: nothing here (nor in `asyncrun.daemon`'s CLI side) loads grpclib,
betterproto2 or httpx, so these commands start in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import asyncclick as click

from .._exceptions import ExecutionError, error_for_exit_code
from ._loopfree import in_event_loop
from ._render import phase_line, render_json_outputs
from ._wait_options import scope_options, wait_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..daemon import ExecutionState, Target, WaitResult

FINAL = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")


def target_for(ctx: click.Context, project: str | None = None, domain: str | None = None) -> Target:
    """What the daemon should resolve: this process's config, Flyte variables, project and domain."""
    from ..daemon import Target

    root = ctx.find_root()
    client = root.meta.get("asyncrun.client")  # loaded by `run --remote`: it knows the auth settings
    secret_env_var = client.config.client_secret_env_var if client is not None else None
    return Target.from_environment(
        root.params.get("config"), project=project, domain=domain, secret_env_var=secret_env_var
    )


def _lookup_failed(state: ExecutionState) -> bool:
    """The daemon could not ask the control plane about this run (unreachable, refused, …)."""
    return state.phase is None and isinstance(state.error, dict) and "exit_code" in state.error


def _describe(state: ExecutionState, *, terminated: bool = False) -> str:
    phase = "NOT FOUND" if not state.found else (state.phase or "UNKNOWN")
    if _lookup_failed(state):
        phase = "LOOKUP FAILED"
    elif terminated and not state.terminal:
        phase = "TERMINATED"  # asked to abort (--abort-on-timeout); the control plane is ending it
    line = f"{state.name}  {phase}"
    if state.unreachable_since:
        since = time.strftime("%H:%M:%S", time.localtime(state.unreachable_since))
        line += f"  (control plane unreachable since {since})"
    if state.url and state.found:  # a run that does not exist has no page to link to
        line += f"  {state.url}"
    return line


def check_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse an empty execution id before asking the daemon (usage error, exit 2)."""
    for text in value:
        if not text.strip():
            raise click.BadParameter(
                "an execution id cannot be empty: give NAME, PROJECT:DOMAIN:NAME or a console URL",
                ctx=ctx,
                param=param,
            )
    return value


def _event_printer(output: str) -> Any:
    shown: dict[str, str] = {}  # name -> the phase last printed (updates also carry other changes)

    def on_event(event: dict[str, Any]) -> None:
        if output == "ndjson":
            click.echo(json.dumps(event))
            return
        if output != "human":
            return  # --output json: one object at the end, nothing else
        kind = event.get("event")
        if kind == "update":
            for state in event.get("executions", []):
                name, phase = str(state.get("name")), str(state.get("phase"))
                line = phase_line(name, phase)
                if line is not None and shown.get(name) != phase:
                    shown[name] = phase
                    click.echo(line, err=True)
        elif kind == "endpoint" and event.get("state") == "unreachable":
            since = event.get("unreachable_since")
            when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "now"
            click.echo(
                f"  control plane {event.get('endpoint', '')} unreachable since {when}; still waiting",
                err=True,
            )
        elif kind == "endpoint" and event.get("state") == "ok":
            click.echo(f"  control plane {event.get('endpoint', '')} reachable again", err=True)
        elif kind == "reconnected":
            click.echo("  daemon restarted; reconnected", err=True)

    return on_event


async def wait_through_daemon(
    ctx: click.Context,
    ids: list[str],
    *,
    wait_for: str,
    timeout: float | None,  # noqa: ASYNC109 - ends the waiting only; the runs go on
    abort_on_timeout: bool,
    output: str,
    project: str | None = None,
    domain: str | None = None,
    also: Callable[[dict[str, Any]], None] | None = None,
) -> WaitResult:
    from ..daemon import wait

    printer = _event_printer(output)

    def on_event(event: dict[str, Any]) -> None:
        printer(event)
        if also is not None:
            also(event)

    return await wait(
        ids,
        wait_for=wait_for,
        timeout=timeout,
        outputs=True,
        target=target_for(ctx, project, domain),
        on_event=on_event,
        abort_on_timeout=abort_on_timeout,
    )


def render_wait(result: WaitResult, output: str) -> None:
    """The end of a wait: a summary line per run (and outputs of a lone run); exit code set by caller."""
    if output in ("json", "ndjson"):
        summary = {
            "summary": {
                "timed_out": result.timed_out,
                "exit_code": result.exit_code,
                "terminated": result.terminated,
                "executions": [state.raw for state in result.executions],
            }
        }
        click.echo(json.dumps(summary))
        return
    for state in result.executions:
        click.echo(
            _describe(state, terminated=state.id in result.terminated),
            err=len(result.executions) == 1 and state.outputs is not None,
        )
        if state.error:
            message = state.error.get("message", "") if isinstance(state.error, dict) else str(state.error)
            click.echo(
                f"  error: {message.strip().splitlines()[-1] if message.strip() else message}", err=True
            )
    if len(result.executions) == 1 and isinstance(result.executions[0].outputs, dict):
        render_json_outputs(result.executions[0].outputs)
    if result.timed_out and result.terminated:
        click.echo(
            f"stopped waiting (--wait-timeout) and terminated {', '.join(result.terminated)}"
            " (--abort-on-timeout)",
            err=True,
        )
    elif result.timed_out:
        click.echo("stopped waiting (--wait-timeout); the runs go on", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("ids", nargs=-1, required=True, callback=check_ids)
@wait_options
@scope_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(["human", "json", "ndjson"]),
    default="human",
    show_default=True,
    help="`json`: one summary object at the end; `ndjson`: one JSON event per change, then the summary.",
)
@click.pass_context
async def wait(ctx: click.Context, /, ids: tuple[str, ...], output: str, **options: Any) -> None:
    """Wait for executions: NAME, PROJECT:DOMAIN:NAME or a console URL.

    Exit code: 0 all succeeded, 1 one failed or does not exist, 3 aborted, 4 timed out,
    5 --wait-timeout passed, 6 the control plane cannot be reached, 130 Ctrl-C (the runs go on).
    """
    from ._interrupt import on_interrupt, remote_note

    if options["abort_on_timeout"] and options["wait_timeout"] is None:
        raise click.UsageError("--abort-on-timeout needs --wait-timeout SECONDS", ctx)
    names = list(ids)
    on_interrupt(remote_note(names, "the control plane", names))

    def learn_endpoint(event: dict[str, Any]) -> None:
        for state in event.get("executions", [])[:1]:
            if state.get("endpoint"):
                on_interrupt(remote_note(names, str(state["endpoint"]), names))

    result = await wait_through_daemon(
        ctx,
        list(ids),
        wait_for=options["wait_for"],
        timeout=options["wait_timeout"],
        abort_on_timeout=options["abort_on_timeout"],
        output=output,
        project=options["project"],
        domain=options["domain"],
        also=learn_endpoint,
    )
    render_wait(result, output)
    if result.exit_code:
        raise error_for_exit_code(result.exit_code, "the wait's summary says why", reported=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("ids", nargs=-1, callback=check_ids)
@scope_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="`json`: one JSON array of execution states.",
)
@click.pass_context
async def status(
    ctx: click.Context, /, ids: tuple[str, ...], project: str | None, domain: str | None, output: str
) -> None:
    """One line per execution (every tracked one when no IDs are given).

    Exit code: 0, or 1 when a run named does not exist, or the error's code when the control plane
    could not be asked (6 unreachable, 7–11 authentication).
    """
    from ..daemon import status_now

    target = target_for(ctx, project, domain)
    result = status_now(ids, target=target)  # a blocking request to a running daemon: no event loop
    if result is None:  # no daemon yet, or it just went away: the full connection starts or finds one
        from ..daemon import status as daemon_status

        result = await in_event_loop(daemon_status, ids, target=target)
    if output == "json":
        click.echo(json.dumps([state.raw for state in result.executions]))
    else:
        if not result.executions:
            click.echo("no tracked executions", err=True)
        for state in result.executions:
            click.echo(_describe(state))
    failed = [state for state in result.executions if _lookup_failed(state)]
    if failed:  # the runs' states are unknown, not fine: say why, exit with the error's code
        why = failed[0].error or {}
        raise error_for_exit_code(
            int(why.get("exit_code", 1)), str(why.get("message", "the control plane could not be asked"))
        )
    missing = [state for state in result.executions if not state.found]
    if missing:  # as `asyncrun wait` does: a run that does not exist is an error (exit 1)
        error = missing[0].error or {}
        message = error.get("message") if isinstance(error, dict) else None
        raise ExecutionError(message or f"no execution {missing[0].name}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("ids", nargs=-1, callback=check_ids)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["human", "ndjson"]),
    default="human",
    show_default=True,
    help="`ndjson`: one JSON event per line (snapshot, update, endpoint).",
)
@click.pass_context
async def watch(ctx: click.Context, /, ids: tuple[str, ...], output: str) -> None:
    """Follow every tracked run (or IDs): a live table on a terminal, one line per change otherwise.

    With IDs, it ends once every one of them has finished (or is known not to exist).
    """
    from contextlib import aclosing

    from ..daemon import watch as daemon_watch
    from ._interrupt import on_interrupt

    again = f"asyncrun watch {' '.join(ids)}".rstrip()
    on_interrupt(f"stopped watching; the runs go on (`{again}` follows them again)")

    live = output == "human" and sys.stdout.isatty()
    states: dict[str, dict[str, Any]] = {}
    async with aclosing(daemon_watch(ids, target=target_for(ctx))) as events:  # type: ignore[type-var]
        async for event in events:
            if output == "ndjson":
                click.echo(json.dumps(event))
                continue
            changed = event.get("executions", []) if event.get("event") in ("snapshot", "update") else []
            for state in changed:
                states[str(state.get("id") or state.get("name"))] = state
            if live:
                _draw(states)
            else:
                for state in changed:
                    click.echo(f"{state.get('name')}  {state.get('phase')}  {state.get('url', '')}".rstrip())


def _draw(states: dict[str, dict[str, Any]]) -> None:
    counts: dict[str, int] = {}
    for state in states.values():
        phase = str(state.get("phase") or "UNKNOWN")
        counts[phase] = counts.get(phase, 0) + 1
    lines = ["  ".join(f"{phase}: {n}" for phase, n in sorted(counts.items())) or "no tracked executions", ""]
    rows = sorted(states.values(), key=lambda s: (str(s.get("phase")) in FINAL, str(s.get("name"))))
    lines += [f"{str(s.get('name')):<24} {str(s.get('phase')):<10} {s.get('url', '')}" for s in rows[:40]]
    if len(rows) > 40:
        lines.append(f"… and {len(rows) - 40} more")
    click.echo("\x1b[H\x1b[2J" + "\n".join(lines), nl=True)
