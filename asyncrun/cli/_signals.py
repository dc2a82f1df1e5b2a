"""`asyncrun signals | approve | reject | signal`: see and answer a run's gates.

Parse, await `Client`, render."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._lifecycle import OUTPUT, client_for
from ._wait_options import scope_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..client import Signal


def signal_json(signal: Signal) -> dict[str, Any]:
    """The JSON shape of one signal: `{project, domain, name, signal_id, type, set, value}`."""
    from ..sdk._type_engine import to_jsonable

    value = signal.value
    if signal.is_set and signal.type is not None:
        value = to_jsonable(value, signal.type)
    return {
        "project": signal.execution.project,
        "domain": signal.execution.domain,
        "name": signal.execution.name,
        "signal_id": signal.signal_id,
        "type": signal.type_name,
        "set": signal.is_set,
        "value": value if signal.is_set else None,
    }


def _render(signal: Signal, output: str, verb: str) -> None:
    if output == "json":
        click.echo(json.dumps(signal_json(signal), default=str))
    else:
        click.echo(f"{signal.execution.name}  {signal.signal_id}  {verb}")


@click.command("signals")
@click.argument("name")
@scope_options
@click.option("--pending", is_flag=True, help="Only the signals no one has set yet.")
@OUTPUT
@click.pass_context
async def signals(
    ctx: click.Context, name: str, project: str | None, domain: str | None, pending: bool, output: str
) -> None:
    """List the signals a run's gates wait for (NAME, PROJECT:DOMAIN:NAME or a console URL).

    One line each: signal, type, and `pending` or the value it was set to. A gate asks for its signal
    when it is reached, so gates the run has not got to are not listed yet.
    `--output json`: `{"signals": [{project, domain, name, signal_id, type, set, value}, …]}`.
    """
    client = client_for(ctx, project, domain)
    found = [s for s in await client.signals(name) if not (pending and s.is_set)]
    if output == "json":
        click.echo(json.dumps({"signals": [signal_json(s) for s in found]}, default=str))
        return
    for signal in found:
        shown = "pending" if not signal.is_set else f"set: {json.dumps(signal_json(signal)['value'])}"
        click.echo(f"{signal.signal_id}  {signal.type_name}  {shown}")


def _answer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What `approve` and `reject` take: the run NAME, the SIGNAL, the run's scope, -o."""
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.argument("name"),
        click.argument("signal_id", metavar="SIGNAL"),
        scope_options,
        OUTPUT,
        click.pass_context,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.command("approve")
@_answer_options
async def approve(
    ctx: click.Context, name: str, signal_id: str, project: str | None, domain: str | None, output: str
) -> None:
    """Approve the gate `approve(..., SIGNAL)` of run NAME: it passes its input on, the run goes on.

    SIGNAL is the gate's signal name, or its node id as `asyncrun get NAME --nodes` shows it.

    `--output json`: the signal, as in `asyncrun signals`.
    """
    client = client_for(ctx, project, domain)
    _render(await client.approve(name, signal_id), output, "approved")


@click.command("reject")
@_answer_options
async def reject(
    ctx: click.Context, name: str, signal_id: str, project: str | None, domain: str | None, output: str
) -> None:
    """Reject the gate `approve(..., SIGNAL)` of run NAME: the gate fails, and with it the run.

    SIGNAL is the gate's signal name, or its node id as `asyncrun get NAME --nodes` shows it.

    `--output json`: the signal, as in `asyncrun signals`.
    """
    client = client_for(ctx, project, domain)
    _render(await client.reject(name, signal_id), output, "rejected")


@click.command("signal")
@click.argument("name")
@click.argument("signal_id", metavar="SIGNAL")
@click.argument("value")
@scope_options
@OUTPUT
@click.pass_context
async def signal(
    ctx: click.Context,
    name: str,
    signal_id: str,
    value: str,
    project: str | None,
    domain: str | None,
    output: str,
) -> None:
    """Set signal SIGNAL of run NAME to VALUE, releasing the gate that waits for it.

    SIGNAL is the signal's name, or the node id of the gate that waits for it.

    VALUE is read as the signal's type, as a run input of that type is (`true`/`false` for an
    approval, JSON or a .json/.yaml file for structured types, a path for a file).
    `--output json`: the signal, as in `asyncrun signals`.
    """
    from .._exceptions import InputError
    from ._params import param_type

    client = client_for(ctx, project, domain)
    wanted = await client.get_signal(name, signal_id)
    if wanted.type is None:
        raise InputError(f"signal {signal_id!r} has {wanted.type_name}; set it with flytekit's FlyteRemote")
    try:
        parsed = param_type(wanted.type).convert(value, None, ctx)
    except click.BadParameter as exc:
        raise InputError(f"signal {signal_id!r} takes {wanted.type_name}: {exc.message}") from None
    _render(await client.signal(wanted.execution, signal_id, parsed), output, f"set to {value}")
