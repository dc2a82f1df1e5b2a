"""AdminService handlers for executions, node executions and task executions.

CreateExecution accepts a launch plan id or, as FlyteAdmin does for single-task runs, a task id: then the
`.flytegen.<task>` workflow and launch plan are created (or reused) and `spec.launch_plan` keeps the task
id. Inputs are checked against the launch plan's expected inputs with FlyteAdmin's messages.
"""

from __future__ import annotations

import re
import secrets
import warnings

import anyio
import anyio.to_thread
from grpclib import GRPCError
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._admin_common import (
    AdminState,
    already_exists,
    invalid,
    list_query,
    not_found,
    page_token,
    validate_execution_id,
    validate_identifier,
    validate_node_execution_id,
    validate_project_domain,
)
from asyncrun.sandbox._compiler import (
    CompileError,
    IdKey,
    InputError,
    compile_workflow,
    flytegen_launch_plan_spec,
    flytegen_workflow,
    format_id,
    id_key,
    merge_launch_inputs,
)
from asyncrun.sandbox._store import ExecutionKey, utc_now
from asyncrun.sandbox._task_nodes import dynamic_workflow_path

__all__ = [
    "ExecutionHandlers",
    "generate_execution_name",
    "validate_execution_name",
]

# The Kubernetes `rand.String` alphabet FlyteAdmin draws execution names from.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NAME = re.compile(r"^[a-z][a-z\-0-9]*$")
_MAX_NAME_LENGTH = 63


def generate_execution_name() -> str:
    """`a` + 19 random characters, as FlyteAdmin names executions created without a name."""
    return "a" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(19))


def validate_execution_name(name: str) -> None:
    """A requested execution name must, lower-cased, match `^[a-z][a-z\\-0-9]*$` and be at most 63 chars.

    Raises:
        GRPCError: INVALID_ARGUMENT otherwise.
    """
    if len(name) > _MAX_NAME_LENGTH:
        invalid(f"execution name {name!r} is longer than {_MAX_NAME_LENGTH} characters")
    if not _NAME.match(name.lower()):
        invalid(
            f"invalid execution name {name!r}: it must start with a letter and hold only lowercase letters, "
            "digits and '-'"
        )


def _merge_inputs(
    inputs: core.LiteralMap | None, expected: core.ParameterMap | None, fixed: core.LiteralMap | None
) -> core.LiteralMap:
    try:
        return merge_launch_inputs(inputs, expected, fixed)
    except InputError as exc:
        invalid(str(exc))


# How many tasks' generated launch entities `_launch_task` keeps, so that running a task again does not
# compile its one-node workflow again (that was ~15% of the server's CPU at 10 single-task runs/s).
_FLYTEGEN_KEPT = 1024


class _Launch:
    """What an execution runs: launch plan and workflow keys, the task of a single-task run, its inputs."""

    def __init__(
        self, launch_plan: IdKey, workflow: IdKey, inputs: core.LiteralMap, task: IdKey | None = None
    ) -> None:
        self.launch_plan, self.workflow, self.inputs, self.task = launch_plan, workflow, inputs, task


class ExecutionHandlers(AdminState):
    """Executions, node executions and task executions."""

    # ------------------------------------------------------------------------------------------------
    # Executions
    # ------------------------------------------------------------------------------------------------

    async def create_execution(self, message: admin.ExecutionCreateRequest) -> admin.ExecutionCreateResponse:
        """Create and queue an execution of a launch plan or of a single task."""
        validate_project_domain(self.store, message.project, message.domain)
        if message.name:
            validate_execution_name(message.name)
        name = message.name or generate_execution_name()
        spec = message.spec
        if spec is None:
            invalid("missing spec")
        if spec.launch_plan is None:
            invalid("missing launch_plan")
        key = ExecutionKey(message.project, message.domain, name)
        duplicate = f"execution [{message.project}:{message.domain}:{name}] already exists"
        # Checked up front too, so a duplicate (flytekit re-sends it 4 times) creates no .flytegen entity.
        if await self.store.get_execution(key) is not None:
            already_exists(duplicate)
        # `spec.inputs` is the deprecated place for inputs; old clients still use it.
        inputs = message.inputs if message.inputs is not None else spec.inputs
        reference_type = spec.launch_plan.resource_type
        if reference_type == core.ResourceType.TASK:
            launch = await self._launch_task(spec.launch_plan, inputs)
        elif reference_type == core.ResourceType.LAUNCH_PLAN:
            launch = await self._launch_plan(spec.launch_plan, inputs)
        else:
            invalid(
                f"invalid launch plan reference [{format_id(spec.launch_plan)}]: resource type must be "
                f"LAUNCH_PLAN or TASK, not {reference_type.name}"
            )
        now = utc_now()
        principal = spec.metadata.principal if spec.metadata is not None else ""
        closure = admin.ExecutionClosure(
            phase=core.WorkflowExecutionPhase.QUEUED,
            created_at=now,
            updated_at=now,
            workflow_id=core.Identifier(core.ResourceType.WORKFLOW, *launch.workflow),
            state_change_details=admin.ExecutionStateChangeDetails(
                state=admin.ExecutionState.EXECUTION_ACTIVE, occurred_at=now, principal=principal
            ),
        )
        # The spec goes back exactly as sent: flytekit picks its sync path by spec.launch_plan's type.
        execution = admin.Execution(id=key.to_id(), spec=spec, closure=closure)
        created = await self.store.create_execution(
            execution,
            launch.inputs,
            launch_plan=launch.launch_plan,
            workflow=launch.workflow,
            task=launch.task,
        )
        if not created:
            already_exists(duplicate)
        self.runner.submit(key)
        return admin.ExecutionCreateResponse(id=key.to_id())

    async def _launch_plan(self, identifier: core.Identifier, inputs: core.LiteralMap | None) -> _Launch:
        key = validate_identifier(self.store, identifier, core.ResourceType.LAUNCH_PLAN)
        launch_plan = await self.store.launch_plan_to_launch(key)  # shared: read only
        if launch_plan is None or launch_plan.spec is None or launch_plan.spec.workflow_id is None:
            not_found(f"launch plan [{format_id(key)}] does not exist")
        expected = launch_plan.closure.expected_inputs if launch_plan.closure is not None else None
        merged = _merge_inputs(inputs, expected, launch_plan.spec.fixed_inputs)
        # A copy: the merged map holds the launch plan's own default and fixed literals.
        return _Launch(key, id_key(launch_plan.spec.workflow_id), core.LiteralMap.parse(bytes(merged)))

    async def _launch_task(self, identifier: core.Identifier, inputs: core.LiteralMap | None) -> _Launch:
        key = validate_identifier(self.store, identifier, core.ResourceType.TASK)
        generated = self.flytegen.get(key)
        if generated is not None:  # registered versions do not change: neither does what runs them
            launch_plan_key, workflow_key, spec_bytes = generated
            cached = admin.LaunchPlanSpec.parse(spec_bytes)  # a copy: executions must not share literals
            merged = _merge_inputs(inputs, cached.default_inputs, cached.fixed_inputs)
            return _Launch(launch_plan_key, workflow_key, merged, task=key)
        task = await self.store.get_task(key)
        compiled_task = task.closure.compiled_task if task and task.closure else None
        if compiled_task is None or compiled_task.template is None:
            not_found(f"task [{format_id(key)}] does not exist")
        template = compiled_task.template
        workflow = flytegen_workflow(template)
        spec = flytegen_launch_plan_spec(workflow)
        # Inputs first: a bad launch must not leave generated entities behind.
        merged = _merge_inputs(inputs, spec.default_inputs, spec.fixed_inputs)
        assert workflow.id is not None
        try:
            compiled = compile_workflow(workflow, [], {key: template})
        except CompileError as exc:
            invalid(f"cannot run task [{format_id(key)}]: {exc}")
        # Re-running a task reuses the generated entities (create answers IDENTICAL; that is fine here).
        await self.store.create_workflow(workflow.id, compiled)
        launch_plan_id = core.Identifier.parse(bytes(workflow.id))
        launch_plan_id.resource_type = core.ResourceType.LAUNCH_PLAN
        interface = workflow.interface or core.TypedInterface()
        closure = admin.LaunchPlanClosure(
            expected_inputs=spec.default_inputs, expected_outputs=interface.outputs or core.VariableMap()
        )
        await self.store.create_launch_plan(launch_plan_id, spec, closure)
        while len(self.flytegen) >= _FLYTEGEN_KEPT:
            del self.flytegen[next(iter(self.flytegen))]
        self.flytegen[key] = (id_key(launch_plan_id), id_key(workflow.id), bytes(spec))
        return _Launch(id_key(launch_plan_id), id_key(workflow.id), merged, task=key)

    async def relaunch_execution(
        self, message: admin.ExecutionRelaunchRequest
    ) -> admin.ExecutionCreateResponse:
        """A new execution of the same entity, inputs and options as `id` (FlyteAdmin's relaunch): its
        metadata says RELAUNCH and points at `id`; `overwrite_cache` recomputes cached tasks."""
        key = validate_execution_id(message.id)
        spec, inputs = await self._rerun_of(key)
        principal = spec.metadata.principal if spec.metadata else ""
        spec.metadata = admin.ExecutionMetadata(principal=principal or "sandbox")
        spec.metadata.mode = admin.ExecutionMetadataExecutionMode.RELAUNCH
        spec.metadata.reference_execution = key.to_id()
        spec.overwrite_cache = message.overwrite_cache
        return await self._create_rerun(key, message.name, spec, inputs)

    async def recover_execution(
        self, message: admin.ExecutionRecoverRequest
    ) -> admin.ExecutionCreateResponse:
        """A new execution of the same entity and inputs that reuses the outputs of the task nodes that
        succeeded in `id` (they end RECOVERED, their tasks do not run); the rest runs again."""
        key = validate_execution_id(message.id)
        spec, inputs = await self._rerun_of(key)
        spec.metadata = admin.ExecutionMetadata.parse(bytes(message.metadata or admin.ExecutionMetadata()))
        spec.metadata.mode = admin.ExecutionMetadataExecutionMode.RECOVERED
        spec.metadata.reference_execution = key.to_id()
        return await self._create_rerun(key, message.name, spec, inputs)

    async def _create_rerun(
        self, key: ExecutionKey, name: str, spec: admin.ExecutionSpec, inputs: core.LiteralMap
    ) -> admin.ExecutionCreateResponse:
        """Create the new run of a relaunch or recovery in the original's project and domain."""
        return await self.create_execution(
            admin.ExecutionCreateRequest(
                project=key.project, domain=key.domain, name=name, spec=spec, inputs=inputs
            )
        )

    async def _rerun_of(self, key: ExecutionKey) -> tuple[admin.ExecutionSpec, core.LiteralMap]:
        """A copy of the spec of execution `key`, and its inputs, for running it again; NOT_FOUND."""
        original = await self.store.get_execution(key)
        data = await self.store.get_execution_data(key)
        if original is None or data is None or original.spec is None:
            not_found(f"execution [{':'.join(key)}] does not exist")
        return admin.ExecutionSpec.parse(bytes(original.spec)), data[0]

    async def get_execution(self, message: admin.WorkflowExecutionGetRequest) -> admin.Execution:
        """An execution with its spec (as sent) and closure; NOT_FOUND when missing."""
        key = validate_execution_id(message.id)
        execution = await self.store.get_execution(key)
        if execution is None:
            not_found(f"execution [{':'.join(key)}] does not exist")
        return execution

    async def get_execution_data(
        self, message: admin.WorkflowExecutionGetDataRequest
    ) -> admin.WorkflowExecutionGetDataResponse:
        """An execution's inputs and outputs, inline."""
        key = validate_execution_id(message.id)
        data = await self.store.get_execution_data(key)
        if data is None:
            not_found(f"execution [{':'.join(key)}] does not exist")
        inputs, outputs = data
        # Where the data is stored too, as FlyteAdmin says (an s3:// URI with an object-store blob store).
        execution = await self.store.get_execution(key)
        closure = execution.closure if execution is not None else None
        outputs_uri = closure.outputs.uri if closure is not None and closure.outputs is not None else ""
        with warnings.catch_warnings():  # deprecated in flyteidl, yet FlyteAdmin still fills them in
            warnings.simplefilter("ignore", DeprecationWarning)
            return admin.WorkflowExecutionGetDataResponse(
                full_inputs=inputs,
                full_outputs=outputs or core.LiteralMap(),
                inputs=admin.UrlBlob(url=self.runner.execution_data_uri(key, "inputs.pb")),
                outputs=admin.UrlBlob(url=outputs_uri) if outputs_uri else None,
            )

    async def list_executions(self, message: admin.ResourceListRequest) -> admin.ExecutionList:
        """Executions of a project/domain: filtered, sorted, paged; ACTIVE only unless `state` is filtered."""
        named = message.id
        if named is None:
            invalid("missing id")
        validate_project_domain(self.store, named.project, named.domain, must_exist=False)
        conditions: list[tuple[str, list[object]]] = [
            ("execution_project = ?", [named.project]),
            ("execution_domain = ?", [named.domain]),
        ]
        if named.name:
            conditions.append(("execution_name = ?", [named.name]))
        query = list_query(
            "execution",
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            conditions=conditions,
        )
        if "state" not in query.filtered_fields:
            # FlyteAdmin lists only ACTIVE (not archived) executions unless asked about state.
            query = query.and_where("state = ?", int(admin.ExecutionState.EXECUTION_ACTIVE))
        executions = await self.store.list_executions(query)
        return admin.ExecutionList(executions=executions, token=page_token(query, len(executions)))

    async def terminate_execution(
        self, message: admin.ExecutionTerminateRequest
    ) -> admin.ExecutionTerminateResponse:
        """Abort a running execution; FAILED_PRECONDITION when it has already ended."""
        key = validate_execution_id(message.id)
        if await self.store.get_execution(key) is None:
            not_found(f"execution [{':'.join(key)}] does not exist")
        if not await self.runner.abort(key, message.cause):
            raise GRPCError(
                Status.FAILED_PRECONDITION, "Cannot abort an already terminated workflow execution"
            )
        return admin.ExecutionTerminateResponse()

    # ------------------------------------------------------------------------------------------------
    # Node executions
    # ------------------------------------------------------------------------------------------------

    async def get_node_execution(self, message: admin.NodeExecutionGetRequest) -> admin.NodeExecution:
        """One node execution by its (unique) node id."""
        key, node_id = validate_node_execution_id(message.id)
        node = await self.store.get_node_execution(key, node_id)
        if node is None:
            not_found(f"node execution [{node_id}] of [{':'.join(key)}] does not exist")
        return node

    async def list_node_executions(self, message: admin.NodeExecutionListRequest) -> admin.NodeExecutionList:
        """Top-level node executions of an execution, or the children of `unique_parent_id`."""
        key = validate_execution_id(message.workflow_execution_id)
        conditions: list[tuple[str, list[object]]] = [
            ("execution_project = ?", [key.project]),
            ("execution_domain = ?", [key.domain]),
            ("execution_name = ?", [key.name]),
            # Without a parent, only top-level nodes (as FlyteAdmin); with one, that node's children.
            ("parent_node_id = ?", [message.unique_parent_id])
            if message.unique_parent_id
            else ("parent_node_id IS NULL", []),
        ]
        query = list_query(
            "node_execution",
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            conditions=conditions,
        )
        nodes = await self.store.list_node_executions(query)
        return admin.NodeExecutionList(node_executions=nodes, token=page_token(query, len(nodes)))

    async def get_node_execution_data(
        self, message: admin.NodeExecutionGetDataRequest
    ) -> admin.NodeExecutionGetDataResponse:
        """A node execution's inputs and outputs, inline."""
        key, node_id = validate_node_execution_id(message.id)
        data = await self.store.get_node_execution_data(key, node_id)
        if data is None:
            not_found(f"node execution [{node_id}] of [{':'.join(key)}] does not exist")
        inputs, outputs = data
        return admin.NodeExecutionGetDataResponse(
            full_inputs=inputs or core.LiteralMap(),
            full_outputs=outputs or core.LiteralMap(),
            dynamic_workflow=await self._dynamic_workflow(key, node_id),
        )

    async def _dynamic_workflow(
        self, key: ExecutionKey, node_id: str
    ) -> admin.DynamicWorkflowNodeMetadata | None:
        """The workflow a dynamic (parent) node's task built, as the runner compiled it."""
        node = await self.store.get_node_execution(key, node_id)
        metadata = node.metadata if node is not None else None
        if metadata is None or not (metadata.is_dynamic and metadata.is_parent_node):
            return None
        path = dynamic_workflow_path(self.runner.execution_directory(key), node_id)
        try:
            data = await anyio.to_thread.run_sync(path.read_bytes)
        except OSError:
            return None
        closure = core.CompiledWorkflowClosure.parse(data)
        template = closure.primary.template if closure.primary else None
        return admin.DynamicWorkflowNodeMetadata(
            id=template.id if template else None, compiled_workflow=closure
        )

    # ------------------------------------------------------------------------------------------------
    # Task executions
    # ------------------------------------------------------------------------------------------------

    def _with_console_link(self, task: admin.TaskExecution) -> admin.TaskExecution:
        identifier = task.id
        execution_id = (
            identifier.node_execution_id.execution_id if identifier and identifier.node_execution_id else None
        )
        if self.console_url and task.closure is not None and execution_id is not None:
            page = (
                f"{self.console_url}/projects/{execution_id.project}/domains/{execution_id.domain}"
                f"/executions/{execution_id.name}"
            )
            task.closure.logs.append(core.TaskLog(name="Sandbox console", uri=page))
        return task

    def _validate_task_execution_id(self, identifier: core.TaskExecutionIdentifier | None) -> None:
        if identifier is None:
            invalid("missing id")
        validate_identifier(self.store, identifier.task_id, core.ResourceType.TASK)
        validate_node_execution_id(identifier.node_execution_id)

    async def get_task_execution(self, message: admin.TaskExecutionGetRequest) -> admin.TaskExecution:
        """One attempt of a task node."""
        self._validate_task_execution_id(message.id)
        assert message.id is not None
        task = await self.store.get_task_execution(message.id)
        if task is None:
            not_found(f"task execution attempt {message.id.retry_attempt} does not exist")
        return self._with_console_link(task)

    async def list_task_executions(self, message: admin.TaskExecutionListRequest) -> admin.TaskExecutionList:
        """The attempts of a node execution."""
        key, node_id = validate_node_execution_id(message.node_execution_id)
        conditions: list[tuple[str, list[object]]] = [
            ("execution_project = ?", [key.project]),
            ("execution_domain = ?", [key.domain]),
            ("execution_name = ?", [key.name]),
            ("node_id = ?", [node_id]),
        ]
        query = list_query(
            "task_execution",
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            conditions=conditions,
        )
        tasks = [self._with_console_link(task) for task in await self.store.list_task_executions(query)]
        return admin.TaskExecutionList(task_executions=tasks, token=page_token(query, len(tasks)))

    async def get_task_execution_data(
        self, message: admin.TaskExecutionGetDataRequest
    ) -> admin.TaskExecutionGetDataResponse:
        """An attempt's inputs and outputs, inline."""
        self._validate_task_execution_id(message.id)
        assert message.id is not None
        data = await self.store.get_task_execution_data(message.id)
        if data is None:
            not_found(f"task execution attempt {message.id.retry_attempt} does not exist")
        inputs, outputs = data
        return admin.TaskExecutionGetDataResponse(
            full_inputs=inputs or core.LiteralMap(), full_outputs=outputs or core.LiteralMap()
        )
