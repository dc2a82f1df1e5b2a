"""Compile a registered (compiled) flyteidl workflow into the engine's graph.

Task nodes become `TaskCall`s carrying their `TaskTemplate`, sub-workflow nodes `SubWorkflow`s, launch
plan nodes `LaunchPlanCall`s, branch nodes `Branch`es, `sleep` gates `Sleep`s and array nodes
`ArrayMap`s. Registration (`_compiler`) has already refused what the engine cannot run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncrun import engine
from asyncrun._proto.flyteidl import core
from asyncrun.sandbox._bindings import primitive_value
from asyncrun.sandbox._compiler import END_NODE, START_NODE, IdKey, format_id, id_key, node_dependencies

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["GraphError", "TaskRef", "dynamic_graph", "to_graph"]


class GraphError(ValueError):
    """The workflow references something its closure does not hold."""


@dataclass(frozen=True)
class TaskRef:
    """What a sandbox task node runs: the template and the node that calls it."""

    template: core.TaskTemplate
    node: core.Node


def _timeout(node: core.Node, task: core.TaskTemplate) -> float | None:
    candidates = [
        t.total_seconds()
        for t in (
            node.metadata.timeout if node.metadata else None,
            task.metadata.timeout if task.metadata else None,
        )
        if t is not None and t.total_seconds() > 0
    ]
    return min(candidates) if candidates else None


def _retries(node: core.Node, task: core.TaskTemplate) -> int:
    # A node's retry strategy overrides its task's, as in propeller, unless it says 0 (the default a
    # serializer writes when the node sets nothing).
    if node.metadata is not None and node.metadata.retries is not None and node.metadata.retries.retries:
        return node.metadata.retries.retries
    if task.metadata is not None and task.metadata.retries is not None:
        return task.metadata.retries.retries
    return 0


def _operand(operand: core.Operand | None) -> engine.Operand:
    if operand is None:
        return engine.Operand()
    if operand.primitive is not None:
        return engine.Operand(value=primitive_value(operand.primitive)[1])
    if operand.scalar is not None:
        if operand.scalar.primitive is not None:
            return engine.Operand(value=primitive_value(operand.scalar.primitive)[1])
        return engine.Operand()  # None: refused when evaluated, as propeller cannot read it either
    return engine.Operand(var=operand.var or "")


def _condition(expression: core.BooleanExpression | None) -> engine.Condition:
    if expression is None:
        raise GraphError("a branch case has no condition")
    if expression.conjunction is not None:
        conjunction = expression.conjunction
        return engine.Conjunction(
            conjunction.operator.name,
            _condition(conjunction.left_expression),
            _condition(conjunction.right_expression),
        )
    if expression.comparison is None:
        raise GraphError("a branch condition is empty")
    comparison = expression.comparison
    return engine.Comparison(
        comparison.operator.name, _operand(comparison.left_value), _operand(comparison.right_value)
    )


def _dependencies(node: core.Node) -> list[str]:
    """The nodes `node` waits for; a branch also waits for what its cases read."""
    found = node_dependencies(node)
    branch = node.branch_node.if_else if node.branch_node is not None else None
    if branch is not None:
        inner = [block.then_node for block in [branch.case, *branch.other] if block and block.then_node]
        if branch.else_node is not None:
            inner.append(branch.else_node)
        for child in inner:
            found.extend(dep for dep in _dependencies(child) if dep not in found)
    return found


class _GraphCompiler:
    def __init__(
        self, tasks: Mapping[IdKey, core.TaskTemplate], sub_workflows: Mapping[IdKey, core.WorkflowTemplate]
    ) -> None:
        self.tasks = tasks
        self.sub_workflows = sub_workflows

    def task(self, reference: core.Identifier | None, node_id: str) -> core.TaskTemplate:
        task = self.tasks.get(id_key(reference)) if reference is not None else None
        if task is None:
            raise GraphError(f"node {node_id!r}: its task is not in the closure")
        return task

    def kind(self, node: core.Node) -> engine.NodeKind:
        if node.task_node is not None:
            task = self.task(node.task_node.reference_id, node.id)
            metadata = task.metadata or core.TaskMetadata()
            return engine.TaskCall(
                task=TaskRef(task, node),
                name=task.id.name if task.id else node.id,
                retries=_retries(node, task),
                timeout=_timeout(node, task),
                cache=metadata.discoverable,
                cache_serialize=metadata.cache_serializable,
            )
        if node.workflow_node is not None:
            sub, plan = node.workflow_node.sub_workflow_ref, node.workflow_node.launchplan_ref
            if sub is not None:
                template = self.sub_workflows.get(id_key(sub))
                if template is None:
                    raise GraphError(f"node {node.id!r}: its sub-workflow is not in the closure")
                return engine.SubWorkflow(self.graph(template))
            if plan is not None:
                return engine.LaunchPlanCall(ref=plan, name=format_id(plan))
        if node.branch_node is not None and node.branch_node.if_else is not None:
            block = node.branch_node.if_else
            cases = tuple(
                (_condition(case.condition), self.node(case.then_node))
                for case in [block.case, *block.other]
                if case is not None and case.then_node is not None
            )
            return engine.Branch(
                cases,
                else_node=self.node(block.else_node) if block.else_node is not None else None,
                else_error=(block.error.message or "Condition failed") if block.error is not None else None,
            )
        gate = node.gate_node
        if gate is not None and gate.sleep is not None:
            duration = gate.sleep.duration
            return engine.Sleep(duration.total_seconds() if duration is not None else 0.0)
        if gate is not None and (gate.approve is not None or gate.signal is not None):
            timeout = node.metadata.timeout if node.metadata is not None else None
            seconds = timeout.total_seconds() if timeout is not None and timeout.total_seconds() > 0 else None
            if gate.approve is not None:
                boolean = core.LiteralType(simple=core.SimpleType.BOOLEAN)
                return engine.WaitForSignal("approve", gate.approve.signal_id, boolean, timeout=seconds)
            assert gate.signal is not None
            return engine.WaitForSignal(
                "signal",
                gate.signal.signal_id,
                gate.signal.type,
                output_name=gate.signal.output_variable_name or "o0",
                timeout=seconds,
            )
        array = node.array_node
        if array is not None and array.node is not None:
            sub_node = self.node(array.node)
            outputs: tuple[str, ...] = ()
            if isinstance(sub_node.kind, engine.TaskCall):
                interface = sub_node.kind.task.template.interface
                if interface is not None and interface.outputs is not None:
                    outputs = tuple(sorted(interface.outputs.variables))
            ratio = array.min_success_ratio
            return engine.ArrayMap(
                sub_node,
                parallelism=array.parallelism or None,
                min_successes=array.min_successes,
                min_success_ratio=None if ratio is None or math.isnan(ratio) else ratio,
                bound_inputs=frozenset(array.bound_inputs),
                output_names=outputs,
                single_input_file=array.data_mode == core.ArrayNodeDataMode.SINGLE_INPUT_FILE,
            )
        raise GraphError(f"node {node.id!r}: the sandbox cannot run this kind of node")

    def node(self, node: core.Node) -> engine.Node:
        return engine.Node(
            id=node.id,
            kind=self.kind(node),
            bindings=list(node.inputs),
            upstream=tuple(_dependencies(node)),
            spec=node,
        )

    def graph(self, template: core.WorkflowTemplate) -> engine.Graph:
        nodes = tuple(self.node(node) for node in template.nodes if node.id not in (START_NODE, END_NODE))
        fail_fast = (
            template.metadata is None
            or template.metadata.on_failure == core.WorkflowMetadataOnFailurePolicy.FAIL_IMMEDIATELY
        )
        failure_node = self.node(template.failure_node) if template.failure_node is not None else None
        extra: dict[str, Any] = {"interface": template.interface}
        return engine.Graph(
            nodes,
            outputs=list(template.outputs),
            input_node=START_NODE,
            fail_fast=fail_fast,
            failure_node=failure_node,
            failure_error_input=_error_input(failure_node) if failure_node is not None else None,
            name=template.id.name if template.id else "",
            extra=extra,
        )


def _error_input(node: engine.Node) -> str | None:
    """`err` when the failure node's target declares it (propeller then replaces whatever it is bound to)."""
    interface: core.TypedInterface | None = None
    if isinstance(node.kind, engine.TaskCall):
        interface = node.kind.task.template.interface
    elif isinstance(node.kind, engine.SubWorkflow):
        interface = node.kind.graph.extra.get("interface")
    inputs = interface.inputs.variables if interface is not None and interface.inputs is not None else {}
    return "err" if "err" in inputs else None


def to_graph(
    template: core.WorkflowTemplate,
    tasks: Mapping[IdKey, core.TaskTemplate],
    sub_workflows: Mapping[IdKey, core.WorkflowTemplate],
) -> engine.Graph:
    """The engine graph of a compiled workflow template.

    Raises:
        GraphError: a node references a task or sub-workflow the closure does not hold, or a node kind
            the engine does not run.
    """
    compiler = _GraphCompiler(tasks, sub_workflows)
    graph = compiler.graph(template)
    return graph


def dynamic_graph(
    spec: core.DynamicJobSpec,
    tasks: Mapping[IdKey, core.TaskTemplate],
    sub_workflows: Mapping[IdKey, core.WorkflowTemplate],
) -> engine.Graph:
    """The graph a dynamic task built (its `futures.pb`), with the tasks and sub-workflows it brought.

    Raises:
        GraphError: it references something it does not bring, or a node kind the engine does not run.
    """
    all_tasks = dict(tasks)
    all_tasks.update({id_key(task.id): task for task in spec.tasks if task.id is not None})
    all_subs = dict(sub_workflows)
    all_subs.update({id_key(sub.id): sub for sub in spec.subworkflows if sub.id is not None})
    template = core.WorkflowTemplate(nodes=list(spec.nodes), outputs=list(spec.outputs))
    return _GraphCompiler(all_tasks, all_subs).graph(template)
