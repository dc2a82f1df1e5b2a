"""Gate signals of a run (`approve`, `wait_for_input`) through FlyteAdmin's SignalService.

A signal exists once its gate is reached (the engine creates it with the gate's type); `Client.signal`
sets its value once. Values are typed by the signal's declared literal type, as run inputs are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import FailedPreconditionError, InputError, NotFoundError, UnsupportedTypeError
from .._proto.flyteidl import admin, service
from .._workflow_nodes import all_nodes
from . import _convert

if TYPE_CHECKING:
    from .._proto.flyteidl import core
    from ._client import Client
    from ._types import Execution, ExecutionId

_PAGE = 100


@dataclass(frozen=True)
class Signal:
    """One signal of a run: what a gate waits for.

    Attributes:
        execution: the run it belongs to.
        signal_id: its name (the `name` of `approve(...)` / `wait_for_input(...)`).
        type: the Python type of its value (`bool` for an approval), or None when asyncrun has no
            equivalent of its Flyte type.
        type_name: that type, readable (`bool`, `list[int]`, …).
        value: its value once set (else None).
        is_set: whether it has a value (a gate waiting on it has been or will be released).
    """

    execution: ExecutionId
    signal_id: str
    type: Any
    type_name: str
    value: Any = None
    is_set: bool = False
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def is_approval(self) -> bool:
        """Whether it is an approval (a boolean signal: true releases the gate, false fails it)."""
        return self.type is bool


def _from_proto(raw: admin.Signal, ex_id: ExecutionId) -> Signal:
    from ..sdk._literals import literal_to_jsonable, python_type, to_python
    from ..sdk._type_engine import type_name

    signal_id = raw.id.signal_id if raw.id is not None else ""
    tp: Any = None
    name = "unknown"
    if raw.type is not None:
        try:
            tp = python_type(raw.type)
            name = type_name(tp)
        except UnsupportedTypeError:
            name = "an unsupported Flyte type"
    value: Any = None
    if raw.value is not None:
        value = to_python(raw.value, tp) if tp is not None else literal_to_jsonable(raw.value)
    return Signal(ex_id, signal_id, tp, name, value, raw.value is not None, raw)


async def _rpc(client: Client, method: str, request: Any, *, read: bool) -> Any:
    rpc = getattr(service.SignalServiceStub(client.channel), method)
    return await client._call(
        lambda metadata: rpc(request, timeout=client.config.call_timeout, metadata=metadata), read=read
    )


async def list_signals(client: Client, ex_id: ExecutionId) -> list[Signal]:
    """Every signal of the run, oldest first; the run must exist (else `NotFoundError`)."""
    return (await _run_and_signals(client, ex_id))[1]


async def _run_and_signals(client: Client, ex_id: ExecutionId) -> tuple[Execution, list[Signal]]:
    run = await client.get_execution(ex_id, with_outputs=False)  # an unknown run is an error
    found: list[Signal] = []
    token = ""
    while True:
        page = await _rpc(
            client,
            "list_signals",
            admin.SignalListRequest(
                workflow_execution_id=_convert.execution_identifier(ex_id),
                limit=_PAGE,
                token=token,
                sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING),
            ),
            read=True,
        )
        found += [_from_proto(raw, ex_id) for raw in page.signals]
        token = page.token
        if not token or not page.signals:
            return run, found


async def set_signal(client: Client, ex_id: ExecutionId, signal_id: str, value: Any) -> Signal:
    """Set a signal once, with a value of its declared type; returns the signal as set.

    Raises:
        NotFoundError: no such run, or the run has no signal `signal_id` (yet: gates create theirs
            when they are reached).
        InputError: `value` is not of the signal's type.
        FailedPreconditionError: the signal already has a value, or the run has ended.
    """
    run, signal = await _lookup(client, ex_id, signal_id)
    if signal.is_set:
        raise FailedPreconditionError(
            f"signal {signal_id!r} of run {ex_id.name} is already set to {signal.value!r}; "
            "a gate takes one value: relaunch the run to answer again"
        )
    if run.phase.is_terminal:
        raise FailedPreconditionError(
            f"run {ex_id.name} has ended ({run.phase}); setting signal {signal_id!r} would release "
            "nothing: relaunch the run to answer again"
        )
    uploaded = await client._upload_inputs({"value": value}, ex_id.project, ex_id.domain)
    literal = to_signal_literal(signal, uploaded["value"])
    await _rpc(
        client,
        "set_signal",
        admin.SignalSetRequest(id=signal.raw.id, value=literal),
        read=False,
    )
    return Signal(ex_id, signal_id, signal.type, signal.type_name, value, True, signal.raw)


async def find_signal(client: Client, ex_id: ExecutionId, signal_id: str) -> Signal:
    """The run's signal `signal_id`.

    Raises:
        NotFoundError: no such run or signal; the message names the signals the run has.
    """
    return (await _lookup(client, ex_id, signal_id))[1]


async def _lookup(client: Client, ex_id: ExecutionId, signal_id: str) -> tuple[Execution, Signal]:
    """The signal named `signal_id`, or else the one the gate node `signal_id` waits for."""
    run, signals = await _run_and_signals(client, ex_id)
    for signal in signals:
        if signal.signal_id == signal_id:
            return run, signal
    gate_signal = await _signal_of_gate_node(client, run, signal_id)
    for signal in signals:
        if signal.signal_id == gate_signal:
            return run, signal
    if gate_signal is not None:
        raise NotFoundError(
            f"gate {signal_id} of run {ex_id.name} waits for signal {gate_signal!r}, which it has not "
            "asked for yet; try again once the gate is reached"
        )
    pending = [s.signal_id for s in signals if not s.is_set]
    if pending:
        hint = f"it waits for {', '.join(repr(p) for p in pending)}"
    elif signals:
        hint = "its signals are all set"
    else:
        hint = "no gate of it has asked for a signal yet; try again once the gate is reached"
    raise NotFoundError(f"run {ex_id.name} has no signal {signal_id!r}: {hint}")


async def _signal_of_gate_node(client: Client, run: Execution, node_id: str) -> str | None:
    """The signal the gate node `node_id` of the run's workflow waits for; None when no gate node has
    that id (sub-workflows and branches included), and a clear error when the node is a sleep gate or
    several gates share the id."""
    closure = run.raw.closure if run.raw is not None else None
    if closure is None or closure.workflow_id is None or not closure.workflow_id.name:
        return None
    workflow = await client._admin("get_workflow", admin.ObjectGetRequest(id=closure.workflow_id), read=True)
    compiled = workflow.closure.compiled_workflow if workflow.closure is not None else None
    if compiled is None:
        return None
    templates = [compiled.primary, *compiled.sub_workflows]
    gates = {
        _gate_signal_id(node)
        for template in templates
        if template is not None and template.template is not None
        for node in all_nodes(template.template.nodes)
        if node.id == node_id and node.gate_node is not None
    }
    if not gates:
        return None
    if "" in gates:
        raise InputError(f"node {node_id} of run {run.id.name} is a sleep gate: it ends by itself")
    if len(gates) > 1:
        raise InputError(
            f"several gates of run {run.id.name} are node {node_id}; name the signal instead: "
            + ", ".join(sorted(gates))
        )
    return gates.pop()


def _gate_signal_id(node: core.Node) -> str:
    gate = node.gate_node
    if gate is not None and gate.approve is not None:
        return gate.approve.signal_id
    if gate is not None and gate.signal is not None:
        return gate.signal.signal_id
    return ""  # a sleep gate


def to_signal_literal(signal: Signal, value: Any) -> core.Literal:
    """The literal of `value` as the signal's type.

    Raises:
        InputError: it is not a value of that type (or asyncrun does not know the type).
    """
    from ..sdk._literals import to_literal

    if signal.type is None:
        raise InputError(
            f"signal {signal.signal_id!r} has type {signal.type_name}, which asyncrun cannot write; "
            "set it with flytekit's FlyteRemote.set_signal"
        )
    try:
        return to_literal(value, signal.type)
    except InputError as exc:
        raise InputError(f"signal {signal.signal_id!r} takes {signal.type_name}: {exc}") from None
