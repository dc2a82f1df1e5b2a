"""The DAG a workflow body builds: promises, nodes and bindings."""

from __future__ import annotations

import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError
from ._interface import MISSING, Interface, is_optional

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

    from ._launch_plan import LaunchPlan
    from ._map import MapTask
    from ._task import Task
    from ._workflow import Workflow

    Entity: TypeAlias = Task | Workflow | LaunchPlan
    Callable_: TypeAlias = Task | Workflow | LaunchPlan | MapTask

START = ""  # node id of the workflow's own inputs, as flytekit sends it


class _Ordering:
    """`a >> b`: node b runs after node a (for nodes whose outputs b does not read, e.g. `sleep`)."""

    node_id: str

    def __rshift__(self, other: Any) -> Any:
        builder = current_builder()
        if builder is None:
            raise DefinitionError("`a >> b` orders nodes inside a workflow body only")
        for target in _node_ids(other):
            builder.add_upstream(target, self.node_id)
        return other


def _node_ids(value: Any) -> list[str]:
    if isinstance(value, _Ordering):
        return [value.node_id]
    if isinstance(value, tuple | list):
        return [i for item in value for i in _node_ids(item)]
    raise DefinitionError(f"`>>` orders nodes; {value!r} is not the output of a node")


@dataclass(frozen=True, eq=False)
class Promise(_Ordering):
    """A value that exists once node `node_id` has run: its output `var`.

    Comparing it (`p < 3`, `p == q`) builds a condition for `conditional`.
    """

    node_id: str
    var: str
    type: Any

    def __bool__(self) -> bool:
        raise DefinitionError(
            "a workflow body cannot branch on a task's output; it only exists when the workflow runs "
            "(use conditional(...), or a @dynamic task)"
        )

    def __hash__(self) -> int:
        return hash((self.node_id, self.var))

    def same(self, other: object) -> bool:
        """Whether `other` is a promise of the same output (`==` builds a condition instead)."""
        return isinstance(other, Promise) and (other.node_id, other.var) == (self.node_id, self.var)

    def __eq__(self, other: object) -> Comparison:  # type: ignore[override]
        return Comparison("EQ", self, other)

    def __ne__(self, other: object) -> Comparison:  # type: ignore[override]
        return Comparison("NEQ", self, other)

    def __lt__(self, other: object) -> Comparison:
        return Comparison("LT", self, other)

    def __le__(self, other: object) -> Comparison:
        return Comparison("LTE", self, other)

    def __gt__(self, other: object) -> Comparison:
        return Comparison("GT", self, other)

    def __ge__(self, other: object) -> Comparison:
        return Comparison("GTE", self, other)


@dataclass(frozen=True)
class VoidPromise(_Ordering):
    """What a node without outputs returns: only good for ordering (`sleep(...) >> t2`)."""

    node_id: str


class _Condition:
    def __and__(self, other: Condition) -> Conjunction:
        return Conjunction("AND", self, other)  # type: ignore[arg-type]

    def __or__(self, other: Condition) -> Conjunction:
        return Conjunction("OR", self, other)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        raise DefinitionError(
            "a workflow body cannot branch on a task's output with if/and/or/not: use "
            "conditional(...).if_(...), combine conditions with & and |, or write a @dynamic task"
        )

    def promises(self) -> list[Promise]:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Comparison(_Condition):
    """`left <operator> right` (EQ, NEQ, LT, LTE, GT, GTE) where either side is a promise or a constant."""

    operator: str
    left: Any
    right: Any

    def promises(self) -> list[Promise]:
        return [side for side in (self.left, self.right) if isinstance(side, Promise)]


@dataclass(frozen=True, eq=False)
class Conjunction(_Condition):
    """`left & right` (AND) or `left | right` (OR)."""

    operator: str
    left: Condition
    right: Condition

    def promises(self) -> list[Promise]:
        return [*self.left.promises(), *self.right.promises()]


Condition = Comparison | Conjunction


@dataclass
class Node:
    """One call of a task, workflow or launch plan inside a workflow."""

    id: str
    entity: Any  # a Task, Workflow, LaunchPlan, MapTask, or a control node (Branch, Gate)
    bindings: dict[str, Any]  # input name -> Promise, constant, or list/dict holding them
    upstream: list[str]
    line: int = 0


@dataclass
class WorkflowBuilder:
    """Records the nodes a workflow function creates while its body runs at definition time."""

    fn: Callable[..., Any]
    nodes: list[Node] = field(default_factory=list)

    def add_node(self, entity: Callable_, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        line = self.current_line()
        if args:
            raise self.error(
                line,
                f"call {entity.name} with keyword arguments inside a workflow, e.g. "
                f"{entity.name.rsplit('.', 1)[-1]}({', '.join(f'{n}=...' for n in entity.interface.inputs)})",
            )
        interface: Interface = entity.interface
        unknown = set(kwargs) - set(interface.inputs)
        if unknown:
            raise self.error(line, f"{entity.name} has no input named {', '.join(sorted(unknown))}")
        bindings: dict[str, Any] = {}
        upstream: list[str] = []
        for spec in interface.inputs.values():
            if spec.name not in kwargs:
                if spec.required and spec.default is MISSING and entity.kind != "launch plan":
                    raise self.error(line, f"{entity.name} needs input '{spec.name}'")
                continue
            value = kwargs[spec.name]
            for promise, expected in typed_promises(value, spec.type):
                self.check_promise(line, entity.name, spec.name, promise, expected)
                if promise.node_id != START and promise.node_id not in upstream:
                    upstream.append(promise.node_id)
            bindings[spec.name] = value
        node = Node(f"n{len(self.nodes)}", entity, bindings, upstream, line)
        self.nodes.append(node)
        return node_outputs(node.id, interface)

    def add_upstream(self, node_id: str, upstream: str) -> None:
        """Make node `node_id` wait for node `upstream`."""
        for node in self.nodes:
            if node.id == node_id:
                if upstream not in node.upstream and upstream != node_id:
                    node.upstream.append(upstream)
                return
        raise self.error(self.current_line(), f"`>>` names node {node_id!r}, which is not in this workflow")

    def add_control_node(self, entity: Any, bindings: dict[str, Any], upstream: list[str]) -> Node:
        """Add a node that is not a call (a branch, a gate): its bindings are given as they are."""
        for value in bindings.values():
            for promise in promises_in(value):
                if promise.node_id != START and promise.node_id not in upstream:
                    upstream.append(promise.node_id)
        node = Node(f"n{len(self.nodes)}", entity, bindings, upstream, self.current_line())
        self.nodes.append(node)
        return node

    def take_last(self, value: Any) -> Node:
        """Remove and return the node that produced `value` (a call just made for `then(...)`)."""
        ids = {p.node_id for p in promises_in(value)} if value is not None else set()
        if isinstance(value, VoidPromise):
            ids = {value.node_id}
        if not self.nodes or (ids and ids != {self.nodes[-1].id}):
            raise self.error(
                self.current_line(),
                "then(...) takes one task, workflow or launch plan call, made right there",
            )
        return self.nodes.pop()

    def check_promise(self, line: int, entity: str, input_name: str, promise: Promise, target: Any) -> None:
        known = promise.node_id == START or any(n.id == promise.node_id for n in self.nodes)
        if not known:
            raise self.error(line, f"input '{input_name}' of {entity} uses the output of an unknown node")
        if not types_compatible(promise.type, target):
            raise self.error(
                line,
                f"input '{input_name}' of {entity} expects {target!r}, "
                f"got an output of type {promise.type!r}",
            )

    def current_line(self) -> int:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code is self.fn.__code__:
                return frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return self.fn.__code__.co_firstlineno

    def error(self, line: int, message: str) -> DefinitionError:
        return DefinitionError(
            f"workflow {self.fn.__qualname__} ({self.fn.__code__.co_filename}:{line}): {message}"
        )


def node_outputs(node_id: str, interface: Interface) -> Any:
    """What a call inside a workflow returns: one promise, a tuple of them, or a NamedTuple."""
    promises = [Promise(node_id, name, tp) for name, tp in interface.outputs.items()]
    if interface.output_kind == "none":
        return VoidPromise(node_id)
    if interface.output_kind == "single":
        return promises[0]
    if interface.output_tuple is not None:
        return interface.output_tuple(*promises)
    return tuple(promises)


def typed_promises(value: Any, tp: Any) -> list[tuple[Promise, Any]]:
    """Every promise inside a binding value, each with the type its position expects.

    `[p, 3]` bound to `list[int]` expects `int` of `p`; `{"k": p}` bound to `dict[str, T]` expects `T`.
    """
    import typing

    if isinstance(value, Promise):
        return [(value, tp)]
    args = typing.get_args(tp)
    if isinstance(value, list | tuple):
        element = args[0] if args else Any
        return [found for item in value for found in typed_promises(item, element)]
    if isinstance(value, dict):
        element = args[1] if len(args) == 2 else Any
        return [found for item in value.values() for found in typed_promises(item, element)]
    return []


def promises_in(value: Any) -> list[Promise]:
    """Every promise inside a binding value (which may nest lists and dicts)."""
    if isinstance(value, Promise):
        return [value]
    if isinstance(value, list | tuple):
        return [p for item in value for p in promises_in(item)]
    if isinstance(value, dict):
        return [p for item in value.values() for p in promises_in(item)]
    return []


def types_compatible(source: Any, target: Any) -> bool:
    """Whether an output of type `source` may feed an input of type `target`."""
    if source == target or target is Any:
        return True
    import typing

    if is_optional(target) or typing.get_origin(target) is typing.Union:
        return any(types_compatible(source, arg) for arg in typing.get_args(target))
    import types

    if isinstance(target, types.UnionType):
        return any(types_compatible(source, arg) for arg in typing.get_args(target))
    return False


_builder: ContextVar[WorkflowBuilder | None] = ContextVar("asyncrun_workflow_builder", default=None)


def current_builder() -> WorkflowBuilder | None:
    """The workflow being defined right now, if any."""
    return _builder.get()


def set_builder(builder: WorkflowBuilder | None) -> Any:
    return _builder.set(builder)


def reset_builder(token: Any) -> None:
    _builder.reset(token)
