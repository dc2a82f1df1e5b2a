"""Compile workflows as FlyteAdmin does, synthesize `.flytegen` entities, and digest specs for idempotency.

FlyteAdmin stores a *compiled* workflow closure: promises from `""` are rewritten to `start-node`, a
`start-node` and an `end-node` are added, `connections` are filled in, and the template of every task a
node references is embedded (flytekit's `FlyteRemote` insists on an Identifier exactly equal to each
`reference_id`). Registration is idempotent by content, so specs are compared through a canonical
encoding in which map entries are sorted by key (protobuf leaves map order to the sender, and the Python
runtime's order can change from one process to the next).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, cast

from asyncrun._betterproto import betterproto2
from asyncrun._proto.flyteidl import admin, core
from asyncrun._workflow_nodes import all_nodes
from asyncrun.sandbox._typecheck import describe_literal, describe_type, literal_matches, types_castable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

# flytekit's `Echo` task: no container; FlytePropeller's echo plugin passes its inputs on as its outputs.
ECHO_TASK_TYPE = "echo"

__all__ = [
    "ECHO_TASK_TYPE",
    "END_NODE",
    "START_NODE",
    "CompileError",
    "IdKey",
    "InputError",
    "canonical_bytes",
    "compile_workflow",
    "content_digest",
    "expected_launch_plan_inputs",
    "flytegen_launch_plan_spec",
    "flytegen_name",
    "flytegen_node_id",
    "flytegen_workflow",
    "format_id",
    "id_key",
    "merge_launch_inputs",
    "node_dependencies",
    "referenced_entities",
]

START_NODE = "start-node"
END_NODE = "end-node"

IdKey = tuple[str, str, str, str]
"""(project, domain, name, version) of an entity."""


class CompileError(ValueError):
    """The workflow (or launch plan) cannot be compiled; answered as INVALID_ARGUMENT."""


class InputError(ValueError):
    """Launch inputs do not fit a launch plan; answered as INVALID_ARGUMENT."""


def id_key(identifier: core.Identifier) -> IdKey:
    """The lookup key of an identifier (its resource type and org are not part of it)."""
    return identifier.project, identifier.domain, identifier.name, identifier.version


def format_id(identifier: core.Identifier | IdKey) -> str:
    """`project:domain:name:version`, for messages."""
    parts = id_key(identifier) if isinstance(identifier, core.Identifier) else identifier
    return ":".join(parts)


# ----------------------------------------------------------------------------------------------------
# Canonical encoding
# ----------------------------------------------------------------------------------------------------


def _sort_maps(message: betterproto2.Message) -> None:
    # betterproto2 keeps field metadata (map or not) on a class property mypy cannot type.
    meta_by_name: dict[str, Any] = cast("Any", message)._betterproto.meta_by_field_name
    for name, meta in meta_by_name.items():
        value = getattr(message, name)
        if meta.map_meta:
            items = sorted(value.items(), key=lambda item: item[0])
            for _, item in items:
                if isinstance(item, betterproto2.Message):
                    _sort_maps(item)
            setattr(message, name, dict(items))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, betterproto2.Message):
                    _sort_maps(item)
        elif isinstance(value, betterproto2.Message):
            _sort_maps(value)


def canonical_bytes(message: betterproto2.Message) -> bytes:
    """The message encoded with every map's entries sorted by key (fields the subset lacks are kept)."""
    copy = type(message).parse(bytes(message))
    _sort_maps(copy)
    return bytes(copy)


def content_digest(message: betterproto2.Message) -> bytes:
    """SHA-256 of the canonical encoding: equal digests mean identical structure."""
    return hashlib.sha256(canonical_bytes(message)).digest()


# ----------------------------------------------------------------------------------------------------
# Workflow compilation
# ----------------------------------------------------------------------------------------------------


def _bindings_in(data: core.BindingData | None) -> Iterator[core.BindingData]:
    if data is None:
        return
    yield data
    if data.collection is not None:
        for item in data.collection.bindings:
            yield from _bindings_in(item)
    if data.map is not None:
        for item in data.map.bindings.values():
            yield from _bindings_in(item)


def _promises(bindings: Iterable[core.Binding]) -> Iterator[core.OutputReference]:
    for binding in bindings:
        for data in _bindings_in(binding.binding):
            if data.promise is not None:
                yield data.promise


def node_dependencies(node: core.Node) -> list[str]:
    """Ids of the nodes `node` waits for: its upstream ids plus every node its inputs read from."""
    seen = dict.fromkeys(node.upstream_node_ids)
    for promise in _promises(node.inputs):
        seen.setdefault(promise.node_id)
    return [node_id for node_id in seen if node_id not in ("", START_NODE)]


def _workflow_refs(node: core.Node) -> tuple[core.Identifier | None, core.Identifier | None]:
    workflow_node = node.workflow_node
    if workflow_node is None:
        return None, None
    return workflow_node.sub_workflow_ref, workflow_node.launchplan_ref


def referenced_entities(
    template: core.WorkflowTemplate, sub_workflows: Iterable[core.WorkflowTemplate] = ()
) -> tuple[set[IdKey], set[IdKey]]:
    """Keys of the tasks and launch plans the workflow's nodes (sub-workflows included) reference."""
    tasks: set[IdKey] = set()
    launch_plans: set[IdKey] = set()
    for workflow in (template, *sub_workflows):
        nodes = [*workflow.nodes, *([workflow.failure_node] if workflow.failure_node else [])]
        for node in all_nodes(nodes):
            if node.task_node is not None and node.task_node.reference_id is not None:
                tasks.add(id_key(node.task_node.reference_id))
            _, launch_plan = _workflow_refs(node)
            if launch_plan is not None:
                launch_plans.add(id_key(launch_plan))
    return tasks, launch_plans


def _rewrite_start_promises(bindings: Iterable[core.Binding]) -> None:
    for promise in _promises(bindings):
        if promise.node_id == "":
            promise.node_id = START_NODE


def _is_optional(literal_type: core.LiteralType | None) -> bool:
    union = literal_type.union_type if literal_type is not None else None
    return union is not None and any(variant.simple == core.SimpleType.NONE for variant in union.variants)


def _variables(interface: core.TypedInterface | None, outputs: bool) -> dict[str, core.Variable]:
    if interface is None:
        return {}
    variables = interface.outputs if outputs else interface.inputs
    return dict(variables.variables) if variables is not None else {}


class _WorkflowCompiler:
    def __init__(
        self,
        tasks: Mapping[IdKey, core.TaskTemplate],
        sub_workflows: Mapping[IdKey, core.WorkflowTemplate],
        launch_plans: Mapping[IdKey, core.VariableMap | None],
    ) -> None:
        self.tasks = tasks
        self.sub_workflows = sub_workflows
        self.launch_plans = launch_plans
        self.used_tasks: dict[IdKey, core.TaskTemplate] = {}

    def _outputs_of(self, node: core.Node) -> dict[str, core.Variable] | None:
        """The output variables of a node, or None when unknown (then bindings are not checked)."""
        if node.task_node is not None and node.task_node.reference_id is not None:
            task = self.tasks.get(id_key(node.task_node.reference_id))
            return _variables(task.interface, outputs=True) if task is not None else None
        sub_workflow, launch_plan = _workflow_refs(node)
        if sub_workflow is not None and id_key(sub_workflow) in self.sub_workflows:
            return _variables(self.sub_workflows[id_key(sub_workflow)].interface, outputs=True)
        if launch_plan is not None:
            outputs = self.launch_plans.get(id_key(launch_plan))
            return dict(outputs.variables) if outputs is not None else None
        return None

    def _inputs_of(self, node: core.Node) -> dict[str, core.Variable] | None:
        if node.task_node is not None and node.task_node.reference_id is not None:
            task = self.tasks.get(id_key(node.task_node.reference_id))
            return _variables(task.interface, outputs=False) if task is not None else None
        sub_workflow, _ = _workflow_refs(node)
        if sub_workflow is not None and id_key(sub_workflow) in self.sub_workflows:
            return _variables(self.sub_workflows[id_key(sub_workflow)].interface, outputs=False)
        return None

    def _check_target(self, node: core.Node) -> None:
        if node.task_node is not None:
            reference = node.task_node.reference_id
            if reference is None:
                raise CompileError(f"node {node.id!r} has a task node without a reference_id")
            if reference.resource_type not in (core.ResourceType.TASK, core.ResourceType.UNSPECIFIED):
                raise CompileError(
                    f"node {node.id!r} references {reference.resource_type.name} "
                    f"{format_id(reference)} where a task is expected"
                )
            task = self.tasks.get(id_key(reference))
            if task is None:
                raise CompileError(
                    f"node {node.id!r} references task {format_id(reference)}, which is not registered"
                )
            if task.container is None and task.type != ECHO_TASK_TYPE:
                raise CompileError(
                    f"node {node.id!r} runs task {format_id(reference)} of type {task.type!r}, which has no "
                    "container (a plugin or pod task); the sandbox runs container and echo tasks only"
                )
            # The closure's task list must hold an Identifier equal to the reference (flytekit compares).
            reference.resource_type = core.ResourceType.TASK
            self.used_tasks.setdefault(id_key(reference), task)
            return
        sub_workflow, launch_plan = _workflow_refs(node)
        if sub_workflow is not None:
            if id_key(sub_workflow) not in self.sub_workflows:
                raise CompileError(
                    f"node {node.id!r} references sub-workflow {format_id(sub_workflow)}, "
                    "which is not among the spec's sub_workflows"
                )
            return
        if launch_plan is not None:
            if id_key(launch_plan) not in self.launch_plans:
                raise CompileError(
                    f"node {node.id!r} references launch plan {format_id(launch_plan)}, "
                    "which is not registered"
                )
            return
        if node.branch_node is not None:
            self._check_branch(node)
            return
        if node.gate_node is not None:
            gate = node.gate_node
            if gate.sleep is None and gate.approve is None and gate.signal is None:
                raise CompileError(f"gate node {node.id!r} has no condition (sleep, approve or signal)")
            return
        if node.array_node is not None:
            sub_node = node.array_node.node
            if sub_node is None or sub_node.task_node is None:
                raise CompileError(
                    f"node {node.id!r} is an array node over a non-task node; the asyncrun sandbox maps "
                    "tasks only"
                )
            self._check_target(sub_node)
            return
        raise CompileError(f"node {node.id!r} has no target (task, workflow, branch, gate or array)")

    def _check_branch(self, node: core.Node) -> None:
        assert node.branch_node is not None
        block = node.branch_node.if_else
        if block is None or block.case is None or block.case.then_node is None:
            raise CompileError(f"branch node {node.id!r} has no case")
        for case in [block.case, *block.other]:
            if case.then_node is None or case.condition is None:
                raise CompileError(f"branch node {node.id!r} has a case without a condition or node")
            self._check_target(case.then_node)
            _rewrite_start_promises(case.then_node.inputs)
        if block.else_node is not None:
            self._check_target(block.else_node)
            _rewrite_start_promises(block.else_node.inputs)

    def _check_bindings(
        self, node: core.Node, outputs_by_node: Mapping[str, dict[str, core.Variable] | None]
    ) -> None:
        inputs = self._inputs_of(node)
        if inputs is not None:
            bound = {binding.var for binding in node.inputs}
            for name in bound - inputs.keys():
                raise CompileError(f"node {node.id!r} binds {name!r}, which is not an input of its target")
            for name in sorted(inputs.keys() - bound):
                if not _is_optional(inputs[name].type):
                    raise CompileError(f"node {node.id!r} does not bind its input {name!r}")
        self._check_promises(f"node {node.id!r}", node.inputs, outputs_by_node)

    @staticmethod
    def _check_promises(
        where: str,
        bindings: Iterable[core.Binding],
        outputs_by_node: Mapping[str, dict[str, core.Variable] | None],
    ) -> None:
        for promise in _promises(bindings):
            if promise.node_id not in outputs_by_node:
                raise CompileError(f"{where} reads from node {promise.node_id!r}, which does not exist")
            outputs = outputs_by_node[promise.node_id]
            if outputs is not None and promise.var not in outputs:
                source = (
                    "the workflow inputs" if promise.node_id == START_NODE else f"node {promise.node_id!r}"
                )
                raise CompileError(f"{where} reads {promise.var!r}, which is not an output of {source}")

    def compile(self, source: core.WorkflowTemplate) -> core.CompiledWorkflow:
        template = core.WorkflowTemplate.parse(bytes(source))
        seen: set[str] = set()
        for node in template.nodes:
            if not node.id:
                raise CompileError("a node has an empty id")
            if node.id in (START_NODE, END_NODE) or node.id in seen:
                raise CompileError(f"node id {node.id!r} is reserved or used twice")
            seen.add(node.id)
            self._check_target(node)
            _rewrite_start_promises(node.inputs)
        _rewrite_start_promises(template.outputs)
        if template.failure_node is not None:
            self._check_target(template.failure_node)
            _rewrite_start_promises(template.failure_node.inputs)

        outputs_by_node: dict[str, dict[str, core.Variable] | None] = {
            START_NODE: _variables(template.interface, outputs=False),
            **{node.id: self._outputs_of(node) for node in template.nodes},
        }
        for node in template.nodes:
            self._check_bindings(node, outputs_by_node)
            for dependency in node.upstream_node_ids:
                if dependency not in outputs_by_node:
                    raise CompileError(
                        f"node {node.id!r} waits for node {dependency!r}, which does not exist"
                    )
        declared = _variables(template.interface, outputs=True)
        bound = {binding.var for binding in template.outputs}
        for name in sorted(bound ^ declared.keys()):
            problem = "is not declared by" if name in bound else "is not bound by"
            raise CompileError(f"workflow output {name!r} {problem} the workflow")
        self._check_promises("the workflow outputs", template.outputs, outputs_by_node)

        upstream = {node.id: node_dependencies(node) for node in template.nodes}
        _check_acyclic(upstream)
        connections = _connections(template, upstream)
        template.nodes = [
            core.Node(id=START_NODE),
            *template.nodes,
            core.Node(id=END_NODE, inputs=[core.Binding.parse(bytes(b)) for b in template.outputs]),
        ]
        return core.CompiledWorkflow(template=template, connections=connections)


def _check_acyclic(upstream: Mapping[str, list[str]]) -> None:
    remaining = {node: set(deps) for node, deps in upstream.items()}
    while remaining:
        ready = [node for node, deps in remaining.items() if not deps]
        if not ready:
            raise CompileError(f"the workflow has a cycle between nodes {', '.join(sorted(remaining))}")
        for node in ready:
            del remaining[node]
        for deps in remaining.values():
            deps.difference_update(ready)


def _connections(template: core.WorkflowTemplate, upstream: Mapping[str, list[str]]) -> core.ConnectionSet:
    edges: dict[str, list[str]] = {node: deps or [START_NODE] for node, deps in upstream.items()}
    has_downstream = {dep for deps in upstream.values() for dep in deps}
    end_deps = dict.fromkeys(p.node_id for p in _promises(template.outputs) if p.node_id != START_NODE)
    end_deps.update(dict.fromkeys(node for node in upstream if node not in has_downstream))
    edges[END_NODE] = list(end_deps) or [START_NODE]
    downstream: dict[str, list[str]] = {}
    for node, deps in edges.items():
        for dep in deps:
            downstream.setdefault(dep, []).append(node)
    return core.ConnectionSet(
        upstream={node: core.ConnectionSetIdList(ids=ids) for node, ids in edges.items()},
        downstream={node: core.ConnectionSetIdList(ids=ids) for node, ids in downstream.items()},
    )


def compile_workflow(
    template: core.WorkflowTemplate,
    sub_workflows: Iterable[core.WorkflowTemplate],
    tasks: Mapping[IdKey, core.TaskTemplate],
    launch_plans: Mapping[IdKey, core.VariableMap | None] | None = None,
) -> core.CompiledWorkflowClosure:
    """Compile a workflow and its sub-workflows into the closure FlyteAdmin stores.

    Args:
        template: the primary workflow (its `id` already set to the registered id).
        sub_workflows: templates of the workflows its nodes reference by `sub_workflow_ref`.
        tasks: registered task templates by key; every referenced task must be present.
        launch_plans: registered launch plans by key (value: their expected outputs) for `launchplan_ref`.

    Raises:
        CompileError: a reference is missing, an id is reused, a binding reads a missing node or output,
            the graph has a cycle, or a node type is not supported.
    """
    subs = [core.WorkflowTemplate.parse(bytes(sub)) for sub in sub_workflows]
    by_key: dict[IdKey, core.WorkflowTemplate] = {}
    for sub in subs:
        if sub.id is None:
            raise CompileError("a sub-workflow has no id")
        by_key[id_key(sub.id)] = sub
    compiler = _WorkflowCompiler(tasks, by_key, launch_plans or {})
    primary = compiler.compile(template)
    compiled_subs = [compiler.compile(sub) for sub in subs]
    return core.CompiledWorkflowClosure(
        primary=primary,
        sub_workflows=compiled_subs,
        tasks=[core.CompiledTask(template=task) for _, task in sorted(compiler.used_tasks.items())],
    )


# ----------------------------------------------------------------------------------------------------
# Launch plans
# ----------------------------------------------------------------------------------------------------


def expected_launch_plan_inputs(
    workflow_inputs: core.VariableMap | None, spec: admin.LaunchPlanSpec
) -> core.ParameterMap:
    """Validate a launch plan's default and fixed inputs against its workflow and build `expected_inputs`.

    Every workflow input that is neither a default nor fixed becomes `{var, required: true}`; fixed inputs
    are not expected (they cannot be overridden at launch).

    Raises:
        CompileError: an input is unknown to the workflow or has the wrong type (flyteadmin's messages).
    """
    variables = dict(workflow_inputs.variables) if workflow_inputs is not None else {}
    defaults = dict(spec.default_inputs.parameters) if spec.default_inputs is not None else {}
    fixed = dict(spec.fixed_inputs.literals) if spec.fixed_inputs is not None else {}
    for name, parameter in sorted(defaults.items()):
        variable = variables.get(name)
        if variable is None:
            raise CompileError(f"unexpected default_input {name}")
        declared = parameter.var.type if parameter.var is not None else None
        if not types_castable(declared, variable.type):
            raise CompileError(
                f"invalid default_input wrong type {name}, expected {describe_type(variable.type)}, "
                f"got {describe_type(declared)} instead"
            )
        if parameter.default is not None and not literal_matches(parameter.default, variable.type):
            raise CompileError(
                f"invalid default_input wrong type {name}, expected {describe_type(variable.type)}"
            )
    for name, literal in sorted(fixed.items()):
        variable = variables.get(name)
        if variable is None:
            raise CompileError(f"unexpected fixed_input {name}")
        if not literal_matches(literal, variable.type):
            raise CompileError(
                f"invalid fixed_input wrong type {name}, expected {describe_type(variable.type)}"
            )
    expected: dict[str, core.Parameter] = {}
    for name, variable in variables.items():
        if name in defaults:
            expected[name] = core.Parameter.parse(bytes(defaults[name]))
        elif name not in fixed:
            expected[name] = core.Parameter(var=core.Variable.parse(bytes(variable)), required=True)
    return core.ParameterMap(parameters=expected)


def merge_launch_inputs(
    inputs: core.LiteralMap | None, expected: core.ParameterMap | None, fixed: core.LiteralMap | None
) -> core.LiteralMap:
    """Merge launch inputs with a launch plan's defaults and fixed inputs, as FlyteAdmin does.

    Raises:
        InputError: "invalid input x" (unknown or fixed), "expected_inputs x missing",
            "invalid x input wrong type…" or "fixed_inputs x cannot be overridden".
    """
    parameters = dict(expected.parameters) if expected is not None else {}
    provided = dict(inputs.literals) if inputs is not None else {}
    for name in sorted(provided):
        if name not in parameters:
            raise InputError(f"invalid input {name}")
    merged: dict[str, core.Literal] = {}
    for name, parameter in sorted(parameters.items()):
        literal_type = parameter.var.type if parameter.var is not None else None
        if name in provided:
            if not literal_matches(provided[name], literal_type):
                raise InputError(
                    f"invalid {name} input wrong type. Expected {describe_type(literal_type)}, "
                    f"but got {describe_literal(provided[name])}"
                )
            merged[name] = provided[name]
        elif parameter.required:
            raise InputError(f"expected_inputs {name} missing")
        elif parameter.default is not None:
            merged[name] = parameter.default
    for name, literal in (fixed.literals if fixed is not None else {}).items():
        if name in merged:
            raise InputError(f"fixed_inputs {name} cannot be overridden")
        merged[name] = literal
    return core.LiteralMap(literals=merged)


# ----------------------------------------------------------------------------------------------------
# Single-task executions
# ----------------------------------------------------------------------------------------------------


def flytegen_name(task_name: str) -> str:
    """The name of the workflow and launch plan FlyteAdmin generates to run one task."""
    return f".flytegen.{task_name}"


def flytegen_node_id(task_name: str) -> str:
    """The node id of a generated workflow: the task name with only `[A-Za-z0-9-]` kept, last 63 chars."""
    return re.sub(r"[^A-Za-z0-9-]", "", task_name)[-63:] or "n0"


def flytegen_workflow(task: core.TaskTemplate) -> core.WorkflowTemplate:
    """The one-node workflow that runs `task` (its id: `.flytegen.<task name>`, the task's version)."""
    assert task.id is not None
    workflow_id = core.Identifier(
        resource_type=core.ResourceType.WORKFLOW,
        project=task.id.project,
        domain=task.id.domain,
        name=flytegen_name(task.id.name),
        version=task.id.version,
    )
    node_id = flytegen_node_id(task.id.name)
    interface = core.TypedInterface.parse(bytes(task.interface or core.TypedInterface()))
    inputs = sorted(interface.inputs.variables) if interface.inputs is not None else []
    outputs = sorted(interface.outputs.variables) if interface.outputs is not None else []
    task_retries = task.metadata.retries if task.metadata is not None else None
    retries = core.RetryStrategy(retries=task_retries.retries if task_retries is not None else 3)
    reference = core.Identifier.parse(bytes(task.id))
    reference.resource_type = core.ResourceType.TASK
    node = core.Node(
        id=node_id,
        metadata=core.NodeMetadata(name=node_id, retries=retries),
        inputs=[
            core.Binding(
                var=name, binding=core.BindingData(promise=core.OutputReference(node_id="", var=name))
            )
            for name in inputs
        ],
        task_node=core.TaskNode(reference_id=reference),
    )
    return core.WorkflowTemplate(
        id=workflow_id,
        metadata=core.WorkflowMetadata(),
        interface=interface,
        nodes=[node],
        outputs=[
            core.Binding(
                var=name, binding=core.BindingData(promise=core.OutputReference(node_id=node_id, var=name))
            )
            for name in outputs
        ],
        metadata_defaults=core.WorkflowMetadataDefaults(),
    )


def flytegen_launch_plan_spec(workflow: core.WorkflowTemplate) -> admin.LaunchPlanSpec:
    """The launch plan spec of a generated workflow: every input required, nothing fixed."""
    assert workflow.id is not None
    variables = (
        workflow.interface.inputs.variables if workflow.interface and workflow.interface.inputs else {}
    )
    return admin.LaunchPlanSpec(
        workflow_id=core.Identifier.parse(bytes(workflow.id)),
        entity_metadata=admin.LaunchPlanMetadata(),
        default_inputs=core.ParameterMap(
            parameters={
                name: core.Parameter(var=core.Variable.parse(bytes(variable)), required=True)
                for name, variable in sorted(variables.items())
            }
        ),
        fixed_inputs=core.LiteralMap(),
    )
