"""Map tasks, branches and gates as the flyteidl nodes FlyteAdmin and FlytePropeller accept.

The shapes follow flytekit 1.16's: an `ArrayNode` around a task node, a `BranchNode` whose inputs are
the promises its conditions read (named `<node id>.<output>`), and `GateNode`s named after their
signal (`sleep-gate` for a sleep).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError
from .._proto.flyteidl import core
from ..sdk import _type_engine as te
from ..sdk._control import Branch, Gate, operand_name
from ..sdk._graph import Comparison, Promise
from ..sdk._literals import literal_type
from ..sdk._map import MapTask

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..sdk._graph import Condition, Node

__all__ = ("control_node",)


def control_node(
    node: Node, build: Callable[[Node], core.Node], build_call: Callable[[Node], core.Node]
) -> core.Node | None:
    """The flyteidl node of a map task, branch or gate node; None for any other node.

    `build` serializes any node (a branch's cases); `build_call` a node as a plain task call.
    """
    entity = node.entity
    if isinstance(entity, MapTask):
        return _array_node(node, entity, build_call)
    if isinstance(entity, Branch):
        return _branch_node(node, entity, build)
    if isinstance(entity, Gate):
        return _gate_node(node, entity)
    return None


def _array_node(node: Node, entity: MapTask, build_call: Callable[[Node], core.Node]) -> core.Node:
    # As flytekit: the sub-node runs the map task's own template (list interface); every index
    # reads the array's inputs and picks its element by FLYTE_K8S_ARRAY_INDEX (SINGLE_INPUT_FILE).
    outer = build_call(node)
    inner = core.Node(
        id=node.id, metadata=outer.metadata, inputs=list(outer.inputs), task_node=outer.task_node
    )
    array = core.ArrayNode(
        node=inner,
        parallelism=entity.concurrency if entity.concurrency else None,
        execution_mode=core.ArrayNodeExecutionMode.MINIMAL_STATE,
        is_original_sub_node_interface=False,
        data_mode=core.ArrayNodeDataMode.SINGLE_INPUT_FILE,
    )
    if entity.min_successes is not None:
        array.min_successes = entity.min_successes
    elif entity.min_success_ratio is not None:
        array.min_success_ratio = entity.min_success_ratio
    return core.Node(
        id=node.id,
        metadata=outer.metadata,
        inputs=list(outer.inputs),
        upstream_node_ids=list(node.upstream),
        array_node=array,
    )


def _branch_node(node: Node, branch: Branch, build: Callable[[Node], core.Node]) -> core.Node:
    blocks = [
        core.IfBlock(condition=_expression(condition), then_node=build(case))
        for condition, case in branch.cases
    ]
    if_else = core.IfElseBlock(case=blocks[0], other=blocks[1:])
    if branch.else_node is not None:
        if_else.else_node = build(branch.else_node)
    else:
        if_else.error = core.Error(failed_node_id=branch.name, message=branch.else_error or "")
    inputs = [
        core.Binding(
            var=name, binding=core.BindingData(promise=core.OutputReference(node_id=p.node_id, var=p.var))
        )
        for name, p in node.bindings.items()
    ]
    return core.Node(
        id=node.id,
        metadata=core.NodeMetadata(name=branch.name, retries=core.RetryStrategy()),
        inputs=inputs,
        upstream_node_ids=list(node.upstream),
        branch_node=core.BranchNode(if_else=if_else),
    )


def _expression(condition: Condition) -> core.BooleanExpression:
    if isinstance(condition, Comparison):
        return core.BooleanExpression(
            comparison=core.ComparisonExpression(
                operator=core.ComparisonExpressionOperator[condition.operator],
                left_value=_operand(condition.left),
                right_value=_operand(condition.right),
            )
        )
    return core.BooleanExpression(
        conjunction=core.ConjunctionExpression(
            operator=core.ConjunctionExpressionLogicalOperator[condition.operator],
            left_expression=_expression(condition.left),
            right_expression=_expression(condition.right),
        )
    )


def _operand(side: Any) -> core.Operand:
    if isinstance(side, Promise):
        return core.Operand(var=operand_name(side))
    # Propeller compares primitives (bool before int: a bool is an int in Python).
    if isinstance(side, bool):
        return core.Operand(primitive=core.Primitive(boolean=side))
    if isinstance(side, int):
        return core.Operand(primitive=core.Primitive(integer=side))
    if isinstance(side, float):
        return core.Operand(primitive=core.Primitive(float_value=side))
    if isinstance(side, str):
        return core.Operand(primitive=core.Primitive(string_value=side))
    if isinstance(side, dt.datetime):
        return core.Operand(primitive=core.Primitive(datetime=side))
    if isinstance(side, dt.timedelta):
        return core.Operand(primitive=core.Primitive(duration=side))
    raise DefinitionError(
        f"a condition compares primitives (int, float, str, bool, datetime, timedelta), got {side!r}"
    )


def _gate_node(node: Node, gate: Gate) -> core.Node:
    timeout = gate.timeout if gate.timeout else None
    if gate.gate == "sleep":
        # flytekit gives every gate a node timeout (an hour by default); keep it past the wake-up.
        timeout = (gate.duration or dt.timedelta()) + dt.timedelta(hours=1)
    metadata = core.NodeMetadata(name=gate.name, timeout=timeout, retries=core.RetryStrategy())
    result = core.Node(id=node.id, metadata=metadata, upstream_node_ids=list(node.upstream))
    if gate.gate == "sleep":
        result.gate_node = core.GateNode(sleep=core.SleepCondition(duration=gate.duration or dt.timedelta()))
    elif gate.gate == "approve":
        promise = node.bindings["o0"]
        result.inputs = [
            core.Binding(
                var="o0",
                binding=core.BindingData(
                    promise=core.OutputReference(node_id=promise.node_id, var=promise.var)
                ),
            )
        ]
        result.gate_node = core.GateNode(approve=core.ApproveCondition(signal_id=gate.name))
    else:
        try:
            signal_type = literal_type(gate.type)
        except te.UnsupportedTypeError as exc:
            raise DefinitionError(f"wait_for_input {gate.name!r}: {exc}") from None
        result.gate_node = core.GateNode(
            signal=core.SignalCondition(signal_id=gate.name, type=signal_type, output_variable_name="o0")
        )
    return result
