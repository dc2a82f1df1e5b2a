"""protobuf messages ⇄ the client's dataclasses, in one place."""

from __future__ import annotations

from typing import Any

from .._exceptions import InputError
from .._proto.flyteidl import admin, core
from ..sdk._interface import MISSING, Input, Interface
from ..sdk._type_engine import from_jsonable, matches
from ._types import EntityId, Execution, ExecutionError, ExecutionId, ExecutionOptions, Phase, RemoteEntity

# core.ResourceType's values (an IntEnum: its members look these up), so that importing this module
# makes no message class.
KINDS = {1: "task", 2: "workflow", 3: "launch plan"}
RESOURCE_TYPES = {kind: rt for rt, kind in KINDS.items()}


def entity_id(identifier: core.Identifier) -> EntityId:
    return EntityId(
        KINDS.get(identifier.resource_type, "unknown"),
        identifier.project,
        identifier.domain,
        identifier.name,
        identifier.version,
    )


def identifier(entity: EntityId) -> core.Identifier:
    return core.Identifier(
        resource_type=core.ResourceType(RESOURCE_TYPES[entity.kind]),
        project=entity.project,
        domain=entity.domain,
        name=entity.name,
        version=entity.version,
    )


def execution_identifier(ex_id: ExecutionId) -> core.WorkflowExecutionIdentifier:
    return core.WorkflowExecutionIdentifier(project=ex_id.project, domain=ex_id.domain, name=ex_id.name)


def execution_url(console_url: str, ex_id: ExecutionId) -> str:
    return f"{console_url}/projects/{ex_id.project}/domains/{ex_id.domain}/executions/{ex_id.name}"


_NO_ID = ExecutionId("", "", "")


def execution(raw: admin.Execution, console_url: str) -> Execution:
    """The dataclass view of an `admin.Execution` (outputs are fetched separately).

    Unset message fields are tested with `is None`, never for truth: a betterproto2 message's truth
    compares every field with a freshly built default, which made this the poller's hottest line.
    """
    ex_id = ExecutionId(raw.id.project, raw.id.domain, raw.id.name) if raw.id is not None else _NO_ID
    closure = raw.closure if raw.closure is not None else admin.ExecutionClosure()
    error = None
    if closure.error is not None:
        kind = core.ExecutionErrorErrorKind(closure.error.kind).name
        error = ExecutionError(closure.error.code, closure.error.message, kind)
    launched = raw.spec.launch_plan if raw.spec is not None else None
    target = entity_id(launched) if launched is not None else None
    return Execution(
        id=ex_id,
        phase=Phase(core.WorkflowExecutionPhase(closure.phase).name),
        url=execution_url(console_url, ex_id),
        target=target,
        error=error,
        created_at=closure.created_at,
        started_at=closure.started_at,
        duration=closure.duration,
        abort_cause=closure.abort_metadata.cause if closure.abort_metadata is not None else "",
        raw=raw,
    )


def interface_from_parameters(
    parameters: core.ParameterMap | None, outputs: core.VariableMap | None
) -> Interface:
    """An SDK interface from registered parameters (types guessed from literal types)."""
    from ..sdk._literals import python_type, to_python  # the literal tables: on first use

    inputs: dict[str, Input] = {}
    for name, param in sorted((parameters.parameters if parameters else {}).items()):
        var = param.var or core.Variable()
        tp = python_type(var.type) if var.type else str
        default: Any = MISSING
        if param.default is not None:
            default = to_python(param.default, tp)
        inputs[name] = Input(name, tp, default, var.description or "")
    out_types = {
        name: python_type(var.type) if var.type else str
        for name, var in sorted((outputs.variables if outputs else {}).items())
    }
    kind = "none" if not out_types else ("single" if list(out_types) == ["o0"] else "tuple")
    return Interface(inputs, out_types, kind)


def remote_launch_plan(raw: admin.LaunchPlan) -> RemoteEntity:
    spec = raw.spec or admin.LaunchPlanSpec()
    closure = raw.closure or admin.LaunchPlanClosure()
    parameters = closure.expected_inputs or spec.default_inputs
    fixed = set((spec.fixed_inputs.literals if spec.fixed_inputs else {}).keys())
    interface = interface_from_parameters(parameters, closure.expected_outputs)
    inputs = {name: spec_ for name, spec_ in interface.inputs.items() if name not in fixed}
    interface = Interface(inputs, interface.outputs, interface.output_kind)
    ent_id = entity_id(raw.id or core.Identifier())
    return RemoteEntity(ent_id, interface, dict.fromkeys(fixed), launch_id=ent_id, raw=raw)


def remote_task(raw: admin.Task) -> RemoteEntity:
    template = raw.closure.compiled_task.template if raw.closure and raw.closure.compiled_task else None
    typed = template.interface if template and template.interface else core.TypedInterface()
    parameters = core.ParameterMap(
        parameters={
            name: core.Parameter(var=var, required=True)
            for name, var in (typed.inputs.variables if typed.inputs else {}).items()
        }
    )
    interface = interface_from_parameters(parameters, typed.outputs)
    ent_id = entity_id(raw.id or core.Identifier())
    return RemoteEntity(ent_id, interface, launch_id=ent_id, description=raw.short_description, raw=raw)


def execution_spec(target: core.Identifier, options: ExecutionOptions) -> admin.ExecutionSpec:
    """CreateExecution's spec, every run-level option mapped as pyflyte run does (§1b)."""
    spec = admin.ExecutionSpec(
        launch_plan=target,
        metadata=admin.ExecutionMetadata(
            mode=admin.ExecutionMetadataExecutionMode.MANUAL, principal="asyncrun"
        ),
        labels=admin.Labels(values=dict(sorted(options.labels.items()))),
        annotations=admin.Annotations(values=dict(sorted(options.annotations.items()))),
        overwrite_cache=options.overwrite_cache,
        tags=list(options.tags),
    )
    if options.disable_notifications:
        spec.disable_all = True
    if options.service_account:
        spec.security_context = core.SecurityContext(
            run_as=core.Identity(k8s_service_account=options.service_account)
        )
    if options.max_parallelism is not None:
        spec.max_parallelism = options.max_parallelism
    if options.raw_output_data_prefix:
        spec.raw_output_data_config = admin.RawOutputDataConfig(
            output_location_prefix=options.raw_output_data_prefix
        )
    if options.cluster_pool:
        spec.cluster_assignment = admin.ClusterAssignment(cluster_pool_name=options.cluster_pool)
    if options.interruptible is not None:
        spec.interruptible = options.interruptible
    if options.envs:
        spec.envs = admin.Envs(
            values=[core.KeyValuePair(key=k, value=v) for k, v in sorted(options.envs.items())]
        )
    if options.execution_cluster_label:
        spec.execution_cluster_label = admin.ExecutionClusterLabel(value=options.execution_cluster_label)
    return spec


def python_inputs(values: dict[str, Any], interface: Interface) -> dict[str, Any]:
    """`values` with JSON-shaped data made into values of the inputs' types: a dict given for a
    dataclass input (or a list or dict of them) becomes the dataclass, its fields checked as an
    inputs file's are. Anything else is left as it is, for `literal_map` to check.

    Raises:
        InputError: the data does not fit, e.g. "input 'cfg': retries: expected an integer, got …".
    """
    converted = dict(values)
    for name, value in values.items():
        spec = interface.inputs.get(name)
        if spec is None or not isinstance(value, dict | list) or matches(value, spec.type):
            continue
        try:
            converted[name] = from_jsonable(value, spec.type)
        except InputError as exc:
            raise InputError(f"input '{name}': {exc}") from None
    return converted
