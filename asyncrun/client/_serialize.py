"""Tasks, workflows and launch plans as the FlyteAdmin specs `CreateTask`/`CreateWorkflow`/`CreateLaunchPlan`
take, and the registration plan of a remote run with its content-derived version.

The shapes follow what flytekit 1.16 sends (flyteadmin-wire.md §1 steps 3–5), except for the
container: tasks run `asyncrun-execute` (see `asyncrun/_execute.py`), not `pyflyte-execute`.

Every spec is canonical: map entries are sorted, because betterproto2 encodes maps in insertion
order and both the version hash and FlyteAdmin's "identical structure" check compare bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import sys
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .._betterproto import betterproto2
from .._exceptions import DefinitionError, InputError, UsageError
from .._proto.flyteidl import admin, core
from .._version import __version__
from ..sdk import _type_engine as te
from ..sdk._async_workflow import AsyncWorkflow
from ..sdk._control import Branch, Gate
from ..sdk._graph import Promise, promises_in
from ..sdk._interface import MISSING, Interface, first_doc_line
from ..sdk._launch_plan import LaunchPlan
from ..sdk._literals import literal_map, literal_type, to_literal
from ..sdk._map import MapTask
from ..sdk._task import Task
from ..sdk._workflow import Workflow
from ._serialize_control import control_node

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..sdk._graph import Node
    from ..sdk._resources import Secret

__all__ = (
    "DEFAULT_IMAGE",
    "dynamic_job_spec",
    "EXECUTE_COMMAND",
    "RegistrationPlan",
    "SerializationSettings",
    "container_args",
    "launch_plan_spec",
    "plan_registration",
    "task_template",
    "workflow_template",
)

Entity: TypeAlias = Task | Workflow | LaunchPlan

# The image tag follows the local interpreter, as flytekit's default image does: the task code was
# written (and may only parse) for this Python.
DEFAULT_IMAGE = f"ghcr.io/asyncrun/asyncrun:py{sys.version_info[0]}.{sys.version_info[1]}-{__version__}"
EXECUTE_COMMAND = "asyncrun-execute"
TASK_TYPE = "python-task"
# Specs are hashed with this in place of the version, which is not known before the hash.
_PLACEHOLDER_VERSION = ""
_VERSION_TAG = b"asyncrun registration version 1\0"

_RESOURCE_NAMES: dict[str, core.ResourcesResourceName] = {
    "cpu": core.ResourcesResourceName.CPU,
    "gpu": core.ResourcesResourceName.GPU,
    "mem": core.ResourcesResourceName.MEMORY,
    "memory": core.ResourcesResourceName.MEMORY,
    "storage": core.ResourcesResourceName.STORAGE,
    "ephemeral_storage": core.ResourcesResourceName.EPHEMERAL_STORAGE,
    "ephemeral-storage": core.ResourcesResourceName.EPHEMERAL_STORAGE,
}


@dataclass(frozen=True)
class SerializationSettings:
    """Where and how entities are registered.

    Attributes:
        project: the FlyteAdmin project.
        domain: the FlyteAdmin domain.
        image: the container image of tasks that name none.
        distribution: where the task process finds the code package (the `native_url` the data
            proxy returned for it); "" means the code is already in the image.
        destination_dir: where the task process unpacks the code package.
        images: named images: a task's `container_image` that is a key here means its value.
        resource_requests: `cpu`, `mem`, `gpu`, `storage`, `ephemeral_storage` → quantity, per task.
        resource_limits: the same keys, as limits.
    """

    project: str
    domain: str
    image: str = DEFAULT_IMAGE
    distribution: str = ""
    destination_dir: str = "."
    images: dict[str, str] = field(default_factory=dict)
    resource_requests: dict[str, str] = field(default_factory=dict)
    resource_limits: dict[str, str] = field(default_factory=dict)


def _identifier(
    kind: core.ResourceType, name: str, settings: SerializationSettings, version: str
) -> core.Identifier:
    return core.Identifier(
        resource_type=kind, project=settings.project, domain=settings.domain, name=name, version=version
    )


# ---------------------------------------------------------------------------------------------
# Tasks


def task_template(task: Task | MapTask, settings: SerializationSettings, version: str) -> core.TaskTemplate:
    """The `TaskTemplate` of `task`: interface, metadata, and a container running `asyncrun-execute`.

    `metadata.runtime` is `{type FLYTE_SDK, version <asyncrun version>, flavor "asyncrun"}`: FLYTE_SDK
    because the template comes from a Flyte SDK (OTHER is for hand-written ones), and the flavor names
    asyncrun so nobody reads the version as a flytekit version ("python" + "0.1.0" would).

    Raises:
        DefinitionError: an input or output type cannot be expressed.
        UsageError: a resource name in `settings` is unknown.
    """
    # A map task is its own template, as with flytekit: the task's, with list inputs and outputs,
    # whose process picks its element by the array index (`--array`).
    inner = task.task if isinstance(task, MapTask) else task
    cfg = inner.config
    metadata = core.TaskMetadata(
        discoverable=cfg.cache,
        runtime=core.RuntimeMetadata(
            type=core.RuntimeMetadataRuntimeType.FLYTE_SDK, version=__version__, flavor="asyncrun"
        ),
        timeout=cfg.timeout,
        retries=core.RetryStrategy(retries=cfg.retries),
        discovery_version=cfg.cache_version if cfg.cache else "",
        interruptible=cfg.interruptible,
        cache_serializable=cfg.cache_serialize,
        is_eager=isinstance(task, AsyncWorkflow),
    )
    image = cfg.container_image or settings.image
    container = core.Container(
        image=settings.images.get(image, image),
        args=container_args(inner, settings) + (["--array"] if isinstance(task, MapTask) else []),
        # As flytekit: the task's own requests/limits, else the run's defaults.
        resources=core.Resources(
            requests=_resource_entries(
                cfg.requests.entries() if cfg.requests is not None else settings.resource_requests
            ),
            limits=_resource_entries(
                cfg.limits.entries() if cfg.limits is not None else settings.resource_limits
            ),
        ),
        env=[core.KeyValuePair(key=k, value=v) for k, v in sorted(cfg.environment.items())],
    )
    template = core.TaskTemplate(
        id=_identifier(core.ResourceType.TASK, task.name, settings, version),
        type=TASK_TYPE,
        metadata=metadata,
        interface=_typed_interface(task.interface, task.name),
        container=container,
        security_context=_security_context(cfg.secret_requests),
        task_type_version=1 if isinstance(task, MapTask) else 0,
    )
    return _canonical(template)


def _security_context(secrets: tuple[Secret, ...]) -> core.SecurityContext | None:
    if not secrets:
        return None
    return core.SecurityContext(
        secrets=[
            core.Secret(
                group=secret.group,
                key=secret.key or "",
                group_version=secret.group_version or "",
                mount_requirement=core.SecretMountType(secret.mount_requirement.value),
            )
            for secret in secrets
        ]
    )


def container_args(task: Task, settings: SerializationSettings) -> list[str]:
    """The task process's command line; the `{{.x}}` variables are filled in by the platform."""
    args = [
        EXECUTE_COMMAND,
        "--inputs",
        "{{.input}}",
        "--output-prefix",
        "{{.outputPrefix}}",
        "--raw-output-data-prefix",
        "{{.rawOutputDataPrefix}}",
        "--checkpoint-path",
        "{{.checkpointOutputPrefix}}",
        "--prev-checkpoint",
        "{{.prevCheckpointPrefix}}",
    ]
    if settings.distribution:
        args += ["--distribution", settings.distribution]
    args += ["--dest-dir", settings.destination_dir]
    args += ["--task-module", task.fn.__module__, "--task-name", task.fn.__name__]
    if task.is_dynamic:
        # The task process serializes the tasks its body calls (futures.pb) with this image.
        image = task.config.container_image or settings.image
        args += ["--image", settings.images.get(image, image)]
    return args


def _resource_entries(values: dict[str, str]) -> list[core.ResourcesResourceEntry]:
    entries: dict[core.ResourcesResourceName, str] = {}
    for key, value in values.items():
        name = _RESOURCE_NAMES.get(key.lower())
        if name is None:
            known = "cpu, mem, gpu, storage, ephemeral_storage"
            raise UsageError(f"unknown resource {key!r} (known: {known})")
        if name in entries:
            raise UsageError(f"resource {key!r} is given twice")
        entries[name] = str(value)
    return [core.ResourcesResourceEntry(name=n, value=v) for n, v in sorted(entries.items())]


def _typed_interface(interface: Interface, owner: str) -> core.TypedInterface:
    try:
        inputs = {
            spec.name: core.Variable(type=literal_type(spec.type), description=spec.description)
            for spec in interface.inputs.values()
        }
        outputs = {name: core.Variable(type=literal_type(tp)) for name, tp in interface.outputs.items()}
    except te.UnsupportedTypeError as exc:
        raise DefinitionError(f"{owner}: {exc}") from None
    return core.TypedInterface(
        inputs=core.VariableMap(variables=inputs), outputs=core.VariableMap(variables=outputs)
    )


def _description(obj: Any) -> admin.DescriptionEntity:
    doc = inspect.getdoc(obj) or ""
    long = admin.Description(value=doc or None, format=admin.DescriptionFormat.RST)
    return admin.DescriptionEntity(short_description=first_doc_line(obj), long_description=long)


# ---------------------------------------------------------------------------------------------
# Workflows


def workflow_template(
    wf: Workflow, settings: SerializationSettings, version: str
) -> tuple[core.WorkflowTemplate, list[core.WorkflowTemplate]]:
    """The `WorkflowTemplate` of `wf`, and those of every workflow it nests (deepest first).

    The second item is `WorkflowSpec.sub_workflows`: FlyteAdmin compiles a workflow only with the
    templates of all the sub-workflows it reaches, directly or not, sent alongside.

    Raises:
        DefinitionError: a constant binding does not fit its input's type, or a type cannot be
            expressed.
    """
    nested: dict[str, core.WorkflowTemplate] = {}

    def collect(outer: Workflow) -> None:
        for node in _all_nodes(outer):
            inner = node.entity
            if isinstance(inner, Workflow) and inner.name not in nested:
                collect(inner)
                nested[inner.name] = _workflow_template(inner, settings, version)

    collect(wf)
    return _workflow_template(wf, settings, version), list(nested.values())


def _workflow_template(wf: Workflow, settings: SerializationSettings, version: str) -> core.WorkflowTemplate:
    outputs = [
        core.Binding(
            var=name, binding=_binding_data(value, wf.interface.outputs[name], f"{wf.name} output {name}")
        )
        for name, value in wf.output_bindings.items()
    ]
    template = core.WorkflowTemplate(
        id=_identifier(core.ResourceType.WORKFLOW, wf.name, settings, version),
        metadata=core.WorkflowMetadata(),
        interface=_typed_interface(wf.interface, wf.name),
        nodes=[_node(wf, node, settings, version) for node in wf.nodes],
        outputs=outputs,
        metadata_defaults=core.WorkflowMetadataDefaults(),
        failure_node=_node(wf, wf.failure_node, settings, version) if wf.failure_node is not None else None,
    )
    return _canonical(template)


def _all_nodes(wf: Workflow) -> list[Node]:
    """Every call node of `wf`: its nodes, the cases of its branches, its failure node."""
    found: list[Node] = []

    def add(node: Node) -> None:
        found.append(node)
        if isinstance(node.entity, Branch):
            for inner in node.entity.nodes():
                add(inner)

    for node in [*wf.nodes, *([wf.failure_node] if wf.failure_node is not None else [])]:
        add(node)
    return found


def _node(
    wf: Workflow, node: Node, settings: SerializationSettings, version: str, *, as_call: bool = False
) -> core.Node:
    if not as_call:
        control = control_node(
            node,
            lambda inner: _node(wf, inner, settings, version),
            lambda inner: _node(wf, inner, settings, version, as_call=True),
        )
        if control is not None:
            return control
    entity = node.entity
    bindings = dict(node.bindings)
    if not isinstance(entity, LaunchPlan):
        # Task and workflow templates carry no defaults, and FlyteAdmin refuses a node with an
        # unbound input: bind each input the call left out to its default (None if Optional).
        for spec in entity.interface.inputs.values():
            if spec.name not in bindings:
                if spec.default is MISSING and spec.required:
                    raise DefinitionError(
                        f"{wf.name} node {node.id}: {entity.name} needs input '{spec.name}'"
                    )
                bindings[spec.name] = None if spec.default is MISSING else spec.default
    inputs = [
        core.Binding(
            var=name,
            binding=_binding_data(
                value, entity.interface.inputs[name].type, f"{wf.name} node {node.id} input {name}"
            ),
        )
        for name, value in bindings.items()
    ]
    short_name = entity.name.rsplit(".", 1)[-1]
    result = core.Node(id=node.id, inputs=inputs, upstream_node_ids=list(node.upstream))
    if isinstance(entity, Task | MapTask):
        cfg = entity.task.config if isinstance(entity, MapTask) else entity.config
        # Like flytekit, the node repeats the task's retries/timeout/interruptible, so the platform
        # applies them whichever of node and task metadata it reads.
        result.metadata = core.NodeMetadata(
            name=short_name,
            timeout=cfg.timeout,
            retries=core.RetryStrategy(retries=cfg.retries),
            interruptible=cfg.interruptible,
        )
        result.task_node = core.TaskNode(
            reference_id=_identifier(core.ResourceType.TASK, entity.name, settings, version)
        )
    elif isinstance(entity, Workflow):
        result.metadata = core.NodeMetadata(name=short_name)
        result.workflow_node = core.WorkflowNode(
            sub_workflow_ref=_identifier(core.ResourceType.WORKFLOW, entity.name, settings, version)
        )
    else:
        result.metadata = core.NodeMetadata(name=entity.name)
        result.workflow_node = core.WorkflowNode(
            launchplan_ref=_identifier(core.ResourceType.LAUNCH_PLAN, entity.name, settings, version)
        )
    return result


def _binding_data(value: Any, tp: Any, where: str) -> core.BindingData:
    """A binding: a promise, a literal, or a collection/map of bindings when promises are inside."""
    if isinstance(value, Promise):
        return core.BindingData(promise=core.OutputReference(node_id=value.node_id, var=value.var))
    if promises_in(value):
        if isinstance(value, list | tuple):
            (element,) = typing.get_args(_container_member(tp, list, where)) or (Any,)
            items = [_binding_data(v, element, f"{where}[{i}]") for i, v in enumerate(value)]
            return core.BindingData(collection=core.BindingDataCollection(bindings=items))
        if isinstance(value, dict):
            args = typing.get_args(_container_member(tp, dict, where))
            vt = args[1] if len(args) == 2 else Any
            bound = {str(k): _binding_data(v, vt, f"{where}[{k!r}]") for k, v in value.items()}
            return core.BindingData(map=core.BindingDataMap(bindings=bound))
    try:
        literal = to_literal(value, tp)
    except (InputError, te.UnsupportedTypeError) as exc:
        raise DefinitionError(f"{where}: {exc}") from None
    return _literal_binding(literal)


def _container_member(tp: Any, origin: type, where: str) -> Any:
    """`tp` itself, or the member of a union `tp` that is a list (or dict) type."""
    tp = te.strip_annotated(tp)
    for candidate in te.union_members(tp) or (tp,):
        candidate = te.strip_annotated(candidate)
        if typing.get_origin(candidate) is origin:
            return candidate
    raise DefinitionError(f"{where}: a {origin.__name__} of promises cannot feed an input of type {tp!r}")


def _literal_binding(literal: core.Literal) -> core.BindingData:
    # BindingData has no "literal" case: collections and maps are spelled out as bindings.
    if literal.collection is not None:
        items = [_literal_binding(item) for item in literal.collection.literals]
        return core.BindingData(collection=core.BindingDataCollection(bindings=items))
    if literal.map is not None:
        bound = {k: _literal_binding(v) for k, v in literal.map.literals.items()}
        return core.BindingData(map=core.BindingDataMap(bindings=bound))
    return core.BindingData(scalar=literal.scalar)


def dynamic_job_spec(
    task: Task, nodes: list[Node], outputs: dict[str, Any], settings: SerializationSettings, version: str
) -> core.DynamicJobSpec:
    """The `futures.pb` of dynamic task `task`: the nodes its body built, with every task template
    and sub-workflow they reach (propeller compiles the spec with these alone).

    Raises:
        DefinitionError: as for a workflow (a value does not fit its type, a name is taken twice, ...).
    """
    body = Workflow.__new__(Workflow)  # the body's graph, serialized as a workflow's would be
    body.fn, body.name, body.interface = task.fn, task.name, task.interface
    body.nodes, body.output_bindings, body.failure_node, body.on_failure = nodes, outputs, None, None
    found = _reachable(body)
    template, nested = workflow_template(body, settings, version)
    return _canonical(
        core.DynamicJobSpec(
            nodes=template.nodes,
            min_successes=len(template.nodes),
            outputs=template.outputs,
            tasks=[task_template(item, settings, version) for _, item in sorted(found.tasks.items())],
            subworkflows=nested,
        )
    )


# ---------------------------------------------------------------------------------------------
# Launch plans


def launch_plan_spec(
    lp_or_wf: LaunchPlan | Workflow, workflow_id: core.Identifier, settings: SerializationSettings
) -> admin.LaunchPlanSpec:
    """The spec of a launch plan, or of a workflow's default launch plan.

    Every input the launch plan leaves open is a parameter: with its default literal, or
    `required` when it has none. Fixed inputs are literals the launcher cannot override.
    `settings` is accepted for symmetry; launch plans carry nothing from it today.

    Raises:
        DefinitionError: a default or fixed value does not fit its type.
    """
    del settings  # nothing project-specific lives in the spec beyond workflow_id
    if isinstance(lp_or_wf, LaunchPlan):
        wf, interface, fixed = lp_or_wf.workflow, lp_or_wf.interface, lp_or_wf.fixed_inputs
        owner = f"launch plan {lp_or_wf.name}"
    else:
        wf, interface, fixed, owner = lp_or_wf, lp_or_wf.interface, {}, lp_or_wf.name
    parameters: dict[str, core.Parameter] = {}
    try:
        for spec in interface.inputs.values():
            var = core.Variable(type=literal_type(spec.type), description=spec.description)
            if spec.default is not MISSING:
                parameters[spec.name] = core.Parameter(var=var, default=to_literal(spec.default, spec.type))
            elif not spec.required:  # Optional without a default: None, as flytekit does
                parameters[spec.name] = core.Parameter(var=var, default=to_literal(None, spec.type))
            else:
                parameters[spec.name] = core.Parameter(var=var, required=True)
        fixed_literals = literal_map(fixed, {k: wf.interface.inputs[k].type for k in fixed})
    except (InputError, te.UnsupportedTypeError) as exc:
        raise DefinitionError(f"{owner}: {exc}") from None
    spec_ = admin.LaunchPlanSpec(
        workflow_id=workflow_id,
        entity_metadata=admin.LaunchPlanMetadata(),
        default_inputs=core.ParameterMap(parameters=parameters),
        fixed_inputs=fixed_literals,
        labels=admin.Labels(),
        annotations=admin.Annotations(),
        raw_output_data_config=admin.RawOutputDataConfig(),
    )
    return _canonical(spec_)


# ---------------------------------------------------------------------------------------------
# Registration plan


@dataclass(frozen=True)
class RegistrationPlan:
    """Everything to register for one remote run, in an order FlyteAdmin accepts.

    Attributes:
        tasks: (id, spec) per task; independent of each other, so they may be created concurrently.
        workflows: (id, spec) per workflow, each after the workflows it nests.
        launch_plans: (id, spec) per launch plan, each after nothing it needs but its workflow.
        target: what to launch: the TASK id for a task, the default launch plan's id for a
            workflow, the launch plan's own id for a launch plan.
        version: the version of every id in the plan.
        ordered: `workflows` and `launch_plans` merged in dependency order (a workflow calling a
            launch plan comes after it, a launch plan after its workflow). Create the tasks, then
            these one by one.
    """

    tasks: list[tuple[core.Identifier, admin.TaskSpec]]
    workflows: list[tuple[core.Identifier, admin.WorkflowSpec]]
    launch_plans: list[tuple[core.Identifier, admin.LaunchPlanSpec]]
    target: core.Identifier
    version: str
    ordered: list[tuple[core.Identifier, admin.WorkflowSpec | admin.LaunchPlanSpec]] = field(
        default_factory=list
    )


def plan_registration(
    entity: Entity, settings: SerializationSettings, *, code_md5: bytes
) -> RegistrationPlan:
    """Serialize `entity` and everything it reaches, under a version derived from their content.

    The version is the URL-safe base64 (no padding, 22 characters) of the first 16 bytes of a
    SHA-256 over `code_md5` and the bytes of every id and spec, built with a placeholder version. So
    it changes with the code, an image, a default or any other registered field, and with nothing
    else: not with the checkout's absolute path (unlike flytekit, quirk 11), the clock or chance.

    A workflow gets its default launch plan (named like the workflow). A launch plan does not: it
    is launched by its own id, and registering the default one too is flytekit's quirk 18.

    Raises:
        DefinitionError: two different entities share a name, a task cannot be imported by name in
            the task process, or a value does not fit its type.
    """
    found = _reachable(entity)
    placeholder = _build(entity, found, settings, _PLACEHOLDER_VERSION)
    digest = hashlib.sha256(_VERSION_TAG)
    digest.update(len(code_md5).to_bytes(4, "big") + code_md5)
    for ident, spec in [*placeholder.tasks, *placeholder.ordered]:
        for part in (bytes(ident), bytes(spec)):
            digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(bytes(placeholder.target))
    version = base64.urlsafe_b64encode(digest.digest()[:16]).rstrip(b"=").decode("ascii")
    return _build(entity, found, settings, version)


@dataclass
class _Reachable:
    tasks: dict[str, Task | MapTask] = field(default_factory=dict)
    # Workflows and launch plans in dependency order (post-order), keyed by (kind, name).
    ordered: dict[tuple[str, str], Workflow | LaunchPlan] = field(default_factory=dict)


def _reachable(entity: Entity) -> _Reachable:
    found = _Reachable()

    def same_or_new(known: Entity | MapTask | None, new: Entity | MapTask) -> bool:
        if known is None:
            return True
        if isinstance(known, MapTask) and isinstance(new, MapTask) and known.task is new.task:
            # `map_task(t)` written twice: the same task template (the name holds the tolerance; the
            # concurrency and success criteria belong to each array node).
            return False
        if known is not new:
            raise DefinitionError(
                f"two different {new.kind}s are named {new.name}; registered names must be unique"
            )
        return False

    def visit(item: Entity | MapTask) -> None:
        if isinstance(item, MapTask):
            if same_or_new(found.tasks.get(item.name), item):
                _check_importable(item.task)
                found.tasks[item.name] = item
            return
        if isinstance(item, Task):
            if same_or_new(found.tasks.get(item.name), item):
                _check_importable(item)
                found.tasks[item.name] = item
                if isinstance(item, AsyncWorkflow):
                    # Its body launches tasks by name when it runs: register every task its module can
                    # call with it, those imported from other modules too.
                    for other in list(vars(sys.modules[item.fn.__module__]).values()):
                        if isinstance(other, Task) and (
                            other.fn.__module__ == item.fn.__module__ or _importable(other)
                        ):
                            visit(other)
            return
        key = ("workflow" if isinstance(item, Workflow) else "launch plan", item.name)
        if not same_or_new(found.ordered.get(key), item):
            return
        if isinstance(item, Workflow):
            for node in _all_nodes(item):
                if not isinstance(node.entity, Branch | Gate):
                    visit(node.entity)
        else:
            visit(item.workflow)
        found.ordered[key] = item

    visit(entity)
    if isinstance(entity, Workflow) and ("launch plan", entity.name) in found.ordered:
        raise DefinitionError(
            f"a launch plan is named {entity.name}, the name of the workflow's default launch plan"
        )
    return found


def _importable(task: Task) -> bool:
    """Whether the task process finds `task` by its module and function name."""
    module_name, attr = task.fn.__module__, task.fn.__name__
    module = sys.modules.get(module_name)
    return module_name != "__main__" and module is not None and getattr(module, attr, None) is task


def _check_importable(task: Task) -> None:
    # The task process imports `--task-module` and looks up `--task-name` in it; fail here, with a
    # clear message, rather than in a container later.
    module_name, attr = task.fn.__module__, task.fn.__name__
    if not _importable(task):
        raise DefinitionError(
            f"task {task.name} cannot run remotely: the task process imports {module_name} and "
            f"looks up {attr!r} there; define the task at module level under its function's name"
        )


def _build(
    entity: Entity, found: _Reachable, settings: SerializationSettings, version: str
) -> RegistrationPlan:
    tasks = [
        (
            _identifier(core.ResourceType.TASK, name, settings, version),
            _canonical(
                admin.TaskSpec(
                    template=task_template(task, settings, version), description=_description(task)
                )
            ),
        )
        for name, task in sorted(found.tasks.items())
    ]
    workflows: list[tuple[core.Identifier, admin.WorkflowSpec]] = []
    launch_plans: list[tuple[core.Identifier, admin.LaunchPlanSpec]] = []
    ordered: list[tuple[core.Identifier, admin.WorkflowSpec | admin.LaunchPlanSpec]] = []
    for item in found.ordered.values():
        if isinstance(item, Workflow):
            wf_id, wf_spec = _workflow_entry(item, settings, version)
            workflows.append((wf_id, wf_spec))
            ordered.append((wf_id, wf_spec))
        else:
            lp_entry = _launch_plan_entry(item, item.name, settings, version)
            launch_plans.append(lp_entry)
            ordered.append(lp_entry)
    if isinstance(entity, Task):
        target = _identifier(core.ResourceType.TASK, entity.name, settings, version)
    elif isinstance(entity, Workflow):
        default_lp = _launch_plan_entry(entity, entity.name, settings, version)
        launch_plans.append(default_lp)
        ordered.append(default_lp)
        target = default_lp[0]
    else:
        target = _identifier(core.ResourceType.LAUNCH_PLAN, entity.name, settings, version)
    return RegistrationPlan(
        tasks=tasks,
        workflows=workflows,
        launch_plans=launch_plans,
        target=target,
        version=version,
        ordered=ordered,
    )


def _workflow_entry(
    wf: Workflow, settings: SerializationSettings, version: str
) -> tuple[core.Identifier, admin.WorkflowSpec]:
    template, nested = workflow_template(wf, settings, version)
    spec = admin.WorkflowSpec(template=template, sub_workflows=nested, description=_description(wf))
    return _identifier(core.ResourceType.WORKFLOW, wf.name, settings, version), _canonical(spec)


def _launch_plan_entry(
    lp_or_wf: LaunchPlan | Workflow, name: str, settings: SerializationSettings, version: str
) -> tuple[core.Identifier, admin.LaunchPlanSpec]:
    wf = lp_or_wf.workflow if isinstance(lp_or_wf, LaunchPlan) else lp_or_wf
    wf_id = _identifier(core.ResourceType.WORKFLOW, wf.name, settings, version)
    lp_id = _identifier(core.ResourceType.LAUNCH_PLAN, name, settings, version)
    return lp_id, launch_plan_spec(lp_or_wf, wf_id, settings)


# ---------------------------------------------------------------------------------------------
# Canonical form

_M = typing.TypeVar("_M", bound=betterproto2.Message)


def _canonical(message: _M) -> _M:
    """Sort every map inside `message` by key, in place, so that equal content encodes to equal bytes."""
    for value in _walk(message):
        if isinstance(value, dict):
            items = sorted(value.items())
            value.clear()
            value.update(items)
    return message


def _walk(value: Any) -> Iterator[Any]:
    if isinstance(value, betterproto2.Message):
        message: Any = value  # betterproto2 messages are dataclasses, which mypy cannot see
        for f in dataclasses.fields(message):
            yield from _walk(getattr(message, f.name))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
