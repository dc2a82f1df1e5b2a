"""Control flow inside a workflow body: `conditional`, `sleep`, `approve`, `wait_for_input`.

Each adds one node to the workflow being defined, as flytekit's functions of the same names do: a
branch node, or a gate node (sleep, approve, signal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError
from ._graph import (
    Comparison,
    Conjunction,
    Promise,
    VoidPromise,
    WorkflowBuilder,
    current_builder,
    node_outputs,
)
from ._interface import Interface

if TYPE_CHECKING:
    from ._graph import Condition, Node

__all__ = ("Branch", "Gate", "approve", "conditional", "sleep", "wait_for_input")


def _builder(what: str) -> WorkflowBuilder:
    builder = current_builder()
    if builder is None:
        raise DefinitionError(f"{what} is used inside a @workflow (or @dynamic) body")
    return builder


def _seconds(value: timedelta | int | float | None, what: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or value.total_seconds() < 0:
        raise DefinitionError(f"{what} must be a timedelta (or seconds) >= 0, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------------
# Branches
# ----------------------------------------------------------------------------------------------------


@dataclass
class Branch:
    """A branch node: the first case whose condition holds runs; its outputs are the branch's.

    Attributes:
        name: the `conditional(name)`.
        cases: (condition, node) in order; the nodes are numbered n0, n1, … inside the branch.
        else_node: runs when no condition holds.
        else_error: the failure message when no condition holds (`.else_().fail(message)`).
        interface: outputs common to all cases; no declared inputs (bindings are the condition's
            promises, named `<node id>.<output>`, as flytekit names them).
    """

    name: str
    cases: list[tuple[Condition, Node]] = field(default_factory=list)
    else_node: Node | None = None
    else_error: str | None = None
    interface: Interface = field(default_factory=lambda: Interface({}, {}))
    kind = "branch"

    def nodes(self) -> list[Node]:
        """The case nodes, then the else node."""
        return [node for _, node in self.cases] + ([self.else_node] if self.else_node else [])


def operand_name(promise: Promise) -> str:
    """The branch node's input name for a promise a condition reads (flytekit's `<node>.<var>`)."""
    return f"{promise.node_id}.{promise.var}"


def conditional(name: str) -> ConditionalBuilder:
    """Start a branch: `conditional("n").if_(x < 0).then(t1(x=x)).else_().then(t2(x=x))`.

    Conditions compare workflow inputs or task outputs with constants or each other (`<`, `<=`,
    `==`, `!=`, `>`, `>=`) and combine them with `&` and `|` (parenthesised). Each `then(...)` takes
    one call; `.else_().fail("message")` fails the run when no case holds.
    """
    return ConditionalBuilder(name, _builder("conditional(...)"))


class ConditionalBuilder:
    """The branch being built; see `conditional`."""

    def __init__(self, name: str, builder: WorkflowBuilder) -> None:
        self._branch = Branch(name)
        self._builder = builder
        self._open: Condition | None = None
        self._has_if = False

    def if_(self, condition: Condition) -> _Then:
        """The first case."""
        if self._has_if:
            raise self._error("if_ comes once, first; use elif_ for more cases")
        self._has_if = True
        return self._case(condition)

    def elif_(self, condition: Condition) -> _Then:
        """Another case, tried when the ones before do not hold."""
        if not self._has_if:
            raise self._error("start with if_(...)")
        return self._case(condition)

    def else_(self) -> _Else:
        """What happens when no case holds: `.then(call)` or `.fail(message)`."""
        if not self._has_if:
            raise self._error("start with if_(...)")
        return _Else(self)

    def _case(self, condition: Condition) -> _Then:
        if not isinstance(condition, Comparison | Conjunction):
            raise self._error(
                f"a condition compares a workflow input or task output (e.g. x < 3), got {condition!r}"
            )
        return _Then(self, condition)

    def _error(self, message: str) -> DefinitionError:
        return self._builder.error(
            self._builder.current_line(), f"conditional {self._branch.name!r}: {message}"
        )

    def _finish(self) -> Any:
        branch = self._branch
        for index, node in enumerate(branch.nodes()):
            node.id = f"n{index}"
        outputs = _common_outputs(branch, self)
        branch.interface = Interface(
            {}, outputs, "none" if not outputs else "single" if list(outputs) == ["o0"] else "tuple"
        )
        bindings: dict[str, Any] = {}
        for condition, _ in branch.cases:
            for promise in condition.promises():
                bindings[operand_name(promise)] = promise
        upstream: list[str] = []
        for case_node in branch.nodes():
            upstream.extend(dep for dep in case_node.upstream if dep not in upstream)
        node = self._builder.add_control_node(branch, bindings, upstream)
        if not outputs:
            return VoidPromise(node.id)
        return node_outputs(node.id, branch.interface)


def _common_outputs(branch: Branch, conditional: ConditionalBuilder) -> dict[str, Any]:
    interfaces = [node.entity.interface for node in branch.nodes()]
    if not interfaces:
        return {}
    first = interfaces[0].outputs
    for other in interfaces[1:]:
        if other.outputs != first:
            raise conditional._error(
                "every case must return the same outputs (names and types), as Flyte binds one of them"
            )
    return dict(first)


class _Then:
    def __init__(self, parent: ConditionalBuilder, condition: Condition) -> None:
        self._parent = parent
        self._condition = condition

    def then(self, result: Any) -> ConditionalBuilder:
        """The call that runs when this case holds (made right here)."""
        node = self._parent._builder.take_last(result)
        self._parent._branch.cases.append((self._condition, node))
        return self._parent


class _Else:
    def __init__(self, parent: ConditionalBuilder) -> None:
        self._parent = parent

    def then(self, result: Any) -> Any:
        """The call that runs when no case holds; returns the branch's outputs."""
        self._parent._branch.else_node = self._parent._builder.take_last(result)
        return self._parent._finish()

    def fail(self, message: str) -> Any:
        """Fail the run with `message` when no case holds; returns the branch's outputs."""
        self._parent._branch.else_error = message
        return self._parent._finish()


# ----------------------------------------------------------------------------------------------------
# Gates
# ----------------------------------------------------------------------------------------------------


@dataclass
class Gate:
    """A gate node: `sleep` for a duration, or wait for an `approve` or a `signal` (wait_for_input).

    Attributes:
        name: the node's name; for approve and signal gates also the signal's id.
        gate: "sleep", "approve" or "signal".
        duration: how long a sleep gate waits.
        timeout: how long an approve or signal gate waits before the node fails.
        type: the signal's type (wait_for_input's `expected_type`).
    """

    name: str
    gate: str
    interface: Interface
    duration: timedelta | None = None
    timeout: timedelta | None = None
    type: Any = None
    kind = "gate"


def sleep(duration: timedelta | int | float) -> VoidPromise:
    """A node that waits `duration`; order other nodes after it with `sleep(...) >> node`."""
    builder = _builder("sleep(...)")
    wait = _seconds(duration, "sleep's duration")
    node = builder.add_control_node(Gate("sleep-gate", "sleep", Interface({}, {}), duration=wait), {}, [])
    return VoidPromise(node.id)


def approve(upstream: Any, name: str, timeout: timedelta | int | float | None = None) -> Any:
    """A node that passes `upstream` on once someone approves signal `name` (rejecting fails the run).

    Release it with `asyncrun approve RUN NAME` (`asyncrun reject RUN NAME` fails it) or flytekit's
    `FlyteRemote.approve`; locally, with `ASYNCRUN_SIGNAL_<NAME>=true` (or an answer at the prompt on
    a terminal).
    """
    builder = _builder("approve(...)")
    if not isinstance(upstream, Promise):
        raise builder.error(
            builder.current_line(), "approve(...) takes a task output to pass on once approved"
        )
    interface = Interface({}, {"o0": upstream.type}, "single")
    gate = Gate(name, "approve", interface, timeout=_seconds(timeout, "approve's timeout"))
    node = builder.add_control_node(gate, {"o0": upstream}, [])
    return Promise(node.id, "o0", upstream.type)


def wait_for_input(
    name: str, timeout: timedelta | int | float | None = None, expected_type: Any = str
) -> Any:
    """A node whose output is the value of signal `name`, once someone sets it.

    Set it with `asyncrun signal RUN NAME VALUE` or flytekit's `FlyteRemote.set_signal`; locally,
    with `ASYNCRUN_SIGNAL_<NAME>=VALUE` (or at the prompt on a terminal).
    """
    builder = _builder("wait_for_input(...)")
    interface = Interface({}, {"o0": expected_type}, "single")
    gate = Gate(
        name, "signal", interface, timeout=_seconds(timeout, "wait_for_input's timeout"), type=expected_type
    )
    node = builder.add_control_node(gate, {}, [])
    return Promise(node.id, "o0", expected_type)
