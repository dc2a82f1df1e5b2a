"""The sandbox's side of the engine: task attempts as subprocesses, node executions in the store.

`TaskNodeRunner` is the engine's task launcher: each attempt runs the task's container command as a
subprocess (see `_process`), bounded by the runner's `max_concurrent_tasks`, and is recorded as a task
execution. `StoreRecorder` records node executions. Retries and timeouts are the engine's: a RECOVERABLE
error, or an attempt killed for outliving the task's timeout, is retried; non-zero exits and missing
outputs are SYSTEM failures that are not retried (locally they are deterministic: a missing
`pyflyte-execute` fails the same way every time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from asyncrun import _storage, engine
from asyncrun._proto.flyteidl import admin, core, event
from asyncrun._proto.google import protobuf
from asyncrun.sandbox._catalog import CachedOutputs, Catalog, catalog_metadata, new_owner
from asyncrun.sandbox._catalog_keys import CatalogKey, CatalogKeyError, catalog_key
from asyncrun.sandbox._compiler import (
    ECHO_TASK_TYPE,
    START_NODE,
    CompileError,
    compile_workflow,
    id_key,
    referenced_entities,
)
from asyncrun.sandbox._graphs import GraphError, dynamic_graph
from asyncrun.sandbox._process import (
    AttemptPaths,
    AttemptResult,
    prepare_attempt,
    read_attempt_result,
    run_process,
    safe_component,
    sandbox_fault,
    system_error,
)
from asyncrun.sandbox._store import ExecutionKey, Store, utc_now
from asyncrun.sandbox._templates import TemplateError, TemplateValues, render_args

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from asyncrun.sandbox._compiler import IdKey
    from asyncrun.sandbox._warm import WarmWorkers

__all__ = [
    "ExecutionContext",
    "NodeCacheKey",
    "NodeRecord",
    "SandboxCatalog",
    "StoreRecorder",
    "TaskNodeRunner",
    "env_pairs",
    "execution_error",
    "failure_of",
    "write_bytes",
]

log = logging.getLogger("asyncrun.sandbox")

NodePhase = core.NodeExecutionPhase
TaskPhase = core.TaskExecutionPhase


def failure_of(
    error: core.ExecutionError, *, recoverable: bool = False, timed_out: bool = False
) -> engine.Failure:
    """The engine's view of an ExecutionError (kept as `raw`, so closures show it unchanged)."""
    kind = "SYSTEM" if error.kind == core.ExecutionErrorErrorKind.SYSTEM else "USER"
    return engine.Failure(
        error.code, error.message, kind=kind, recoverable=recoverable, timed_out=timed_out, raw=error
    )


def execution_error(failure: engine.Failure) -> core.ExecutionError:
    """The ExecutionError closures show for an engine failure."""
    if isinstance(failure.raw, core.ExecutionError):
        return failure.raw
    return core.ExecutionError(
        code=failure.code,
        message=failure.message,
        kind=core.ExecutionErrorErrorKind.SYSTEM
        if failure.kind == "SYSTEM"
        else core.ExecutionErrorErrorKind.USER,
        timestamp=utc_now(),
    )


@dataclass
class ExecutionContext:
    """What every node of one execution needs."""

    key: ExecutionKey
    directory: Path
    tasks: dict[IdKey, core.TaskTemplate]
    sub_workflows: dict[IdKey, core.WorkflowTemplate]
    workflow_name: str
    launch_plan_name: str
    envs: dict[str, str]
    raw_output_prefix: str
    max_parallelism: int = 0
    overwrite_cache: bool = False
    nesting: int = 0
    principal: str = ""
    # The execution's interruptible override (None: the workflow's own setting), passed on to child runs.
    interruptible: bool | None = None
    # Where execution data lives when not under `directory`: `s3://…/metadata/propeller/<project>-<domain>-<name>`.
    data_prefix: str = ""
    storage_options: dict[str, Any] = field(default_factory=dict)

    def data_uri(self, *parts: str) -> str:
        """Where a piece of execution data lives: under `data_prefix` if set, else under `directory`."""
        if self.data_prefix:
            return _storage.join(self.data_prefix, *parts)
        return str(self.directory.joinpath(*parts))

    async def write_data(self, uri: str, data: bytes) -> None:
        """Store execution data at a `data_uri`. Blocking work runs in a worker thread."""
        if self.data_prefix:
            options = self.storage_options
            await anyio.to_thread.run_sync(lambda: _storage.write_bytes(uri, data, options=options))
        else:
            await anyio.to_thread.run_sync(write_bytes, Path(uri), data)


@dataclass
class NodeRecord:
    """A node execution as the runner keeps it in memory and writes it, whole, at each transition."""

    store: Store
    execution: admin.NodeExecution
    parent: str | None
    closure: admin.NodeExecutionClosure = field(init=False)

    def __post_init__(self) -> None:
        assert self.execution.closure is not None
        self.closure = self.execution.closure

    async def save(self, **data: core.LiteralMap | None) -> None:
        """Write the row (with `inputs=`/`outputs=` when given), stamping updated_at."""
        self.closure.updated_at = utc_now()
        await self.store.put_node_execution(self.execution, parent_node_id=self.parent, **data)

    async def start(self) -> None:
        """QUEUED → RUNNING, stamping started_at (no-op once running)."""
        if self.closure.phase == NodePhase.QUEUED:
            self.closure.phase, self.closure.started_at = NodePhase.RUNNING, utc_now()
            await self.save()

    async def finish(
        self,
        phase: core.NodeExecutionPhase,
        *,
        error: core.ExecutionError | None = None,
        outputs: core.LiteralMap | None = None,
    ) -> None:
        """Record a terminal phase (with its error or outputs) and the duration since it started."""
        now = utc_now()
        self.closure.phase, self.closure.error = phase, error
        self.closure.duration = now - (self.closure.started_at or self.closure.created_at or now)
        await self.save(outputs=outputs)


def env_pairs(pairs: Sequence[core.KeyValuePair]) -> dict[str, str]:
    """KeyValuePairs (container env, Envs) as a dict; later pairs win."""
    return {pair.key: pair.value for pair in pairs}


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically (temp file, then rename), creating its folder. Blocking."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk must not also leave half a file behind
        raise


class TaskNodeRunner:
    """Runs task nodes for the `Runner`.

    Args:
        store: where attempts are recorded.
        task_path: folders prepended to PATH for task processes.
        task_limiter: bounds how many task processes run at once, across executions.
    """

    def __init__(
        self,
        store: Store,
        task_path: Sequence[str],
        task_limiter: anyio.CapacityLimiter,
        *,
        storage_env: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.task_path = list(task_path)
        self._task_limiter = task_limiter
        # How task processes reach the object store holding execution data (endpoint, keys).
        self.storage_env = dict(storage_env or {})
        self.warm: WarmWorkers | None = None  # set by the runner while it runs

    def launcher(self, context: ExecutionContext) -> _ExecutionLauncher:
        """The engine's task launcher for one execution."""
        return _ExecutionLauncher(self, context)

    def _environment(
        self,
        context: ExecutionContext,
        task: core.TaskTemplate,
        node_id: str,
        attempt: int,
        extra: Mapping[str, str],
    ) -> dict[str, str]:
        """Sandbox env (task_path first on PATH), then container env, LP and execution envs, propeller's."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([*self.task_path, env.get("PATH", "")]).strip(os.pathsep)
        env.update(self.storage_env)
        assert task.container is not None and task.id is not None
        env.update(env_pairs(task.container.env))
        env.update(context.envs)
        key, task_id = context.key, task.id
        internal = {
            "FLYTE_INTERNAL_EXECUTION_ID": key.name,
            "FLYTE_INTERNAL_EXECUTION_PROJECT": key.project,
            "FLYTE_INTERNAL_EXECUTION_DOMAIN": key.domain,
            "FLYTE_INTERNAL_EXECUTION_WORKFLOW": context.workflow_name,
            "FLYTE_INTERNAL_EXECUTION_LAUNCHPLAN": context.launch_plan_name,
            "FLYTE_ATTEMPT_NUMBER": str(attempt),
            "_F_PRJ": key.project,
            "_F_DM": key.domain,
            "_F_NM": key.name,
            "_F_WF": context.workflow_name,
            "_F_LP": context.launch_plan_name,
        }
        for prefixes, value in (
            (("FLYTE_INTERNAL_TASK_PROJECT", "FLYTE_INTERNAL_PROJECT", "_F_TK_PRJ"), task_id.project),
            (("FLYTE_INTERNAL_TASK_DOMAIN", "FLYTE_INTERNAL_DOMAIN", "_F_TK_DM"), task_id.domain),
            (("FLYTE_INTERNAL_TASK_NAME", "FLYTE_INTERNAL_NAME", "_F_TK_NM"), task_id.name),
            (("FLYTE_INTERNAL_TASK_VERSION", "FLYTE_INTERNAL_VERSION", "_F_TK_V"), task_id.version),
        ):
            internal.update(dict.fromkeys(prefixes, value))
        env.update(internal)
        env["FLYTE_INTERNAL_NODE_ID"] = node_id
        env.update(extra)
        return env

    async def _run_attempt(
        self,
        context: ExecutionContext,
        task: core.TaskTemplate,
        record: NodeRecord,
        node_dir: Path,
        attempt: int,
        inputs: core.LiteralMap,
        time_limit: float | None,
        extra_env: Mapping[str, str],
        input_prefix: str = "",
    ) -> _AttemptOutcome:
        assert task.id is not None and record.execution.id is not None
        node_id = record.execution.id.node_id
        async with self._task_limiter:
            raw_prefix = context.raw_output_prefix
            if raw_prefix:
                raw_prefix = (
                    f"{raw_prefix.rstrip('/')}/{context.key.name}/{safe_component(node_id)}/{attempt}"
                )
            data_prefix = context.data_uri(safe_component(node_id), "data") if context.data_prefix else ""
            paths = await anyio.to_thread.run_sync(
                lambda: prepare_attempt(
                    node_dir,
                    attempt,
                    raw_output_prefix=raw_prefix,
                    data_prefix=data_prefix,
                    storage_options=context.storage_options,
                )
            )
            if input_prefix:
                paths = dataclasses.replace(paths, input_prefix=input_prefix)
            now = utc_now()
            execution = admin.TaskExecution(
                id=core.TaskExecutionIdentifier(
                    task_id=task.id, node_execution_id=record.execution.id, retry_attempt=attempt
                ),
                input_uri=record.execution.input_uri,
                closure=admin.TaskExecutionClosure(
                    phase=TaskPhase.QUEUED,
                    created_at=now,
                    updated_at=now,
                    task_type=task.type,
                    logs=[core.TaskLog(name="Sandbox log (stdout and stderr)", uri=str(paths.log))],
                ),
            )
            await self.store.put_task_execution(execution, inputs=inputs)
            try:
                result = await self._spawn(
                    context, task, paths, node_id, attempt, inputs, time_limit, record, execution, extra_env
                )
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._finish_attempt(execution, TaskPhase.ABORTED)
                raise
            phase = TaskPhase.FAILED if result.error is not None else TaskPhase.SUCCEEDED
            try:
                await self._finish_attempt(execution, phase, error=result.error, outputs=result.outputs)
            except Exception as exc:  # e.g. a full disk: the attempt must not stay RUNNING
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._finish_attempt(
                        execution, TaskPhase.FAILED, error=sandbox_fault(exc, node_dir)
                    )
                raise
            return result

    async def _spawn(
        self,
        context: ExecutionContext,
        task: core.TaskTemplate,
        paths: AttemptPaths,
        node_id: str,
        attempt: int,
        inputs: core.LiteralMap,
        time_limit: float | None,
        record: NodeRecord,
        execution: admin.TaskExecution,
        extra_env: Mapping[str, str],
    ) -> _AttemptOutcome:
        assert execution.closure is not None
        if task.container is None:  # an echo task (the only kind without one that compiles)
            await record.start()
            return _AttemptOutcome(outputs=inputs)
        command = [*task.container.command, *task.container.args]
        template_path = ""
        if any("tasktemplatepath" in part.lower() for part in command):
            template_path = str(paths.local_dir / "task.pb")
            await anyio.to_thread.run_sync(write_bytes, Path(template_path), bytes(task))
        values = TemplateValues(
            input_prefix=paths.input_prefix,
            output_prefix=paths.output_prefix,
            raw_output_data_prefix=paths.raw_output_prefix,
            checkpoint_output_prefix=str(paths.checkpoint_prefix),
            prev_checkpoint_prefix=paths.prev_checkpoint_prefix,
            per_retry_unique_key=f"{context.key.name}-{node_id}-{attempt}",
            task_template_path=template_path,
            namespace=f"{context.key.project}-{context.key.domain}",
            inputs=inputs.literals,
        )
        try:
            argv = render_args(command, values)
        except TemplateError as exc:
            return _AttemptOutcome(error=system_error("TemplateError", str(exc)))
        if not argv:
            return _AttemptOutcome(
                error=system_error("EmptyCommand", "the task's container has no command or args")
            )
        env = self._environment(context, task, node_id, attempt, extra_env)
        if task.security_context is not None and task.security_context.secrets:
            env.update(_secrets_environment(task.security_context.secrets, paths.cwd / ".flyte-secrets"))
        await record.start()
        execution.closure.custom_info = resources_info(task)
        execution.closure.phase, execution.closure.started_at = TaskPhase.RUNNING, utc_now()
        execution.closure.updated_at = execution.closure.started_at
        await self.store.put_task_execution(execution)
        try:
            exit_ = await run_process(
                argv,
                cwd=paths.cwd,
                env=env,
                log=paths.log,
                time_limit=time_limit,
                pid_file=paths.log.with_suffix(".pid"),
                warm=self.warm,
            )
        except OSError as exc:
            return _AttemptOutcome(
                error=system_error(
                    "LaunchFailed",
                    f"cannot start {argv[0]!r}: {exc.strerror or exc}; PATH={env.get('PATH', '')}",
                )
            )
        result: AttemptResult = await anyio.to_thread.run_sync(
            lambda: read_attempt_result(paths, exit_, timeout=time_limit)
        )
        return _AttemptOutcome(
            result.outputs, result.error, result.retryable, exit_.timed_out, result.futures, result.deck_uri
        )

    async def _finish_attempt(
        self,
        execution: admin.TaskExecution,
        phase: core.TaskExecutionPhase,
        *,
        error: core.ExecutionError | None = None,
        outputs: core.LiteralMap | None = None,
    ) -> None:
        closure = execution.closure
        assert closure is not None
        now = utc_now()
        closure.phase, closure.error, closure.updated_at = phase, error, now
        closure.duration = now - (closure.started_at or closure.created_at or now)
        await self.store.put_task_execution(execution, outputs=outputs)


@dataclass(frozen=True)
class _AttemptOutcome:
    outputs: core.LiteralMap | None = None
    error: core.ExecutionError | None = None
    retryable: bool = False
    timed_out: bool = False
    futures: core.DynamicJobSpec | None = None
    deck_uri: str = ""


class _ExecutionLauncher:
    """`TaskNodeRunner` bound to one execution: the engine's `TaskLauncher`."""

    def __init__(self, runner: TaskNodeRunner, context: ExecutionContext) -> None:
        self.runner = runner
        self.context = context

    async def run_attempt(
        self,
        call: engine.TaskCall,
        inputs: Mapping[str, Any],
        handle: engine.NodeHandle,
        *,
        attempt: int,
        attempts: int,
        time_limit: float | None,
        environment: Mapping[str, str],
    ) -> engine.AttemptResult:
        assert isinstance(handle, StoreNodeHandle)
        task: core.TaskTemplate = call.task.template
        if task.container is None and task.type != ECHO_TASK_TYPE:
            error = system_error(
                "UnsupportedTask",
                f"task {task.id.name if task.id else '?'} (type {task.type!r}) has no container; "
                "the sandbox runs container and echo tasks only",
            )
            return engine.AttemptResult(failure=failure_of(error))
        node_dir = self.context.directory / safe_component(handle.unique_id)
        input_prefix = ""
        if "FLYTE_K8S_ARRAY_INDEX" in environment and handle.record.parent is not None:
            # An array index reads the array node's own inputs.pb and picks its element by that index
            # (propeller's SINGLE_INPUT_FILE mode, which flytekit's map tasks expect).
            parent_dir = safe_component(handle.record.parent)
            input_prefix = (
                self.context.data_uri(parent_dir, "data")
                if self.context.data_prefix
                else str(self.context.directory / parent_dir / "data")
            )
        result = await self.runner._run_attempt(
            self.context,
            task,
            handle.record,
            node_dir,
            attempt,
            core.LiteralMap(literals=dict(inputs)),
            time_limit,
            environment,
            input_prefix,
        )
        if result.outputs is not None:
            if result.deck_uri:
                handle.record.closure.deck_uri = result.deck_uri
            return engine.AttemptResult(outputs=dict(result.outputs.literals))
        if result.futures is not None:
            try:
                graph = dynamic_graph(result.futures, self.context.tasks, self.context.sub_workflows)
            except GraphError as exc:
                error = core.ExecutionError(
                    code="DynamicWorkflowBuildFailed",
                    message=str(exc),
                    kind=core.ExecutionErrorErrorKind.USER,
                    timestamp=utc_now(),
                )
                return engine.AttemptResult(failure=failure_of(error))
            handle.dynamic_workflow = await self._dynamic_closure(result.futures, task)
            return engine.AttemptResult(graph=graph)
        assert result.error is not None
        return engine.AttemptResult(
            failure=failure_of(result.error, recoverable=result.retryable, timed_out=result.timed_out)
        )

    async def _dynamic_closure(
        self, spec: core.DynamicJobSpec, task: core.TaskTemplate
    ) -> core.CompiledWorkflowClosure | None:
        """`dynamic_closure`, with the outputs of the launch plans the dynamic workflow calls."""
        nodes = core.WorkflowTemplate(nodes=list(spec.nodes))
        _, launch_plan_keys = referenced_entities(nodes, spec.subworkflows)
        launch_plans = await self.runner.store.get_launch_plan_outputs(launch_plan_keys)
        return dynamic_closure(spec, task, self.context, launch_plans)


def resources_info(task: core.TaskTemplate) -> protobuf.Struct | None:
    """The task's requests and limits as the attempt's `custom_info`: `{"resources": {"requests":
    {"cpu": "1", "memory": "2Gi"}, "limits": {…}}}`, so that they are visible with the attempt
    (the sandbox records them; it does not enforce them). None when the task asks for none."""
    resources = task.container.resources if task.container is not None else None
    if resources is None or not (resources.requests or resources.limits):
        return None

    def entries(items: list[core.ResourcesResourceEntry]) -> protobuf.Value:
        fields = {
            core.ResourcesResourceName(item.name).name.lower(): protobuf.Value(string_value=item.value)
            for item in items
        }
        return protobuf.Value(struct_value=protobuf.Struct(fields=fields))

    listed = {"requests": entries(resources.requests), "limits": entries(resources.limits)}
    return protobuf.Struct(fields={"resources": protobuf.Value(struct_value=protobuf.Struct(fields=listed))})


def dynamic_workflow_path(directory: Path, node_id: str) -> Path:
    """Where a dynamic node's compiled workflow is kept, in its execution's folder."""
    return directory / safe_component(node_id) / "dynamic_workflow.pb"


def dynamic_closure(
    spec: core.DynamicJobSpec,
    task: core.TaskTemplate,
    context: ExecutionContext,
    launch_plans: Mapping[IdKey, core.VariableMap | None] | None = None,
) -> core.CompiledWorkflowClosure | None:
    """The workflow a dynamic task built, compiled as FlyteAdmin reports it (a workflow with the task's
    id and interface, given the outputs of the launch plans it calls); None when it does not compile."""
    tasks = dict(context.tasks)
    tasks.update({id_key(t.id): t for t in spec.tasks if t.id is not None})
    assert task.id is not None
    workflow_id = core.Identifier(
        resource_type=core.ResourceType.WORKFLOW,
        project=task.id.project,
        domain=task.id.domain,
        name=task.id.name,
        version=task.id.version,
    )
    template = core.WorkflowTemplate(
        id=workflow_id, interface=task.interface, nodes=list(spec.nodes), outputs=list(spec.outputs)
    )
    try:
        subs = dict(context.sub_workflows)
        subs.update({id_key(sub.id): sub for sub in spec.subworkflows if sub.id is not None})
        return compile_workflow(template, subs.values(), tasks, launch_plans)
    except CompileError:
        return None


_TASK_PHASES = {
    engine.Phase.QUEUED: TaskPhase.QUEUED,
    engine.Phase.RUNNING: TaskPhase.RUNNING,
    engine.Phase.SUCCEEDED: TaskPhase.SUCCEEDED,
    engine.Phase.RECOVERED: TaskPhase.SUCCEEDED,
    engine.Phase.FAILED: TaskPhase.FAILED,
    engine.Phase.TIMED_OUT: TaskPhase.FAILED,
    engine.Phase.ABORTED: TaskPhase.ABORTED,
}
_PHASES = {
    engine.Phase.QUEUED: NodePhase.QUEUED,
    engine.Phase.RUNNING: NodePhase.RUNNING,
    engine.Phase.SUCCEEDED: NodePhase.SUCCEEDED,
    engine.Phase.FAILED: NodePhase.FAILED,
    engine.Phase.TIMED_OUT: NodePhase.TIMED_OUT,
    engine.Phase.SKIPPED: NodePhase.SKIPPED,
    engine.Phase.ABORTED: NodePhase.ABORTED,
    engine.Phase.RECOVERED: NodePhase.RECOVERED,
}


class StoreNodeHandle:
    """A node execution written to the store at each transition (the engine's `NodeHandle`)."""

    def __init__(
        self, context: ExecutionContext, record: NodeRecord, *, array_task: core.Identifier | None = None
    ) -> None:
        assert record.execution.id is not None
        self.context = context
        self.record = record
        self.unique_id = record.execution.id.node_id
        self.last_attempt = 0
        self.phase: engine.Phase | None = None
        self.cache: engine.CacheStatus | None = None
        # An array node over a task: its indices' handles, reported as FlytePropeller reports them.
        self.array_task = array_task
        self.indices: dict[int, StoreNodeHandle] = {}
        # A dynamic node's workflow (its task's futures.pb), compiled; set by the launcher.
        self.dynamic_workflow: core.CompiledWorkflowClosure | None = None

    async def queued(self, inputs: Mapping[str, Any]) -> None:
        literal_map = core.LiteralMap(literals=dict(inputs))
        await self.context.write_data(self.record.execution.input_uri, bytes(literal_map))
        await self.record.save(inputs=literal_map)

    async def running(self) -> None:
        await self.record.start()
        if self.array_task is not None:
            await self._put_array_task_execution(TaskPhase.RUNNING)

    async def attempt_finished(self, attempt: int, failure: engine.Failure | None) -> None:
        self.last_attempt = attempt  # TaskNodeRunner records each attempt as a task execution itself

    async def expanded(self) -> None:
        # A parent node, as in FlyteAdmin, when the workflow its task built compiled: flytekit reads it
        # from GetNodeExecutionData (`dynamic_workflow`) to sync the children. Otherwise is_parent_node
        # stays false (flytekit would fail on a parent without it); the children are listed all the same.
        metadata = self.record.execution.metadata
        if metadata is not None:
            metadata.is_dynamic = True
            closure = self.dynamic_workflow
            if closure is not None:
                path = dynamic_workflow_path(self.context.directory, self.unique_id)
                await anyio.to_thread.run_sync(write_bytes, path, bytes(closure))
                metadata.is_parent_node = True
        await self.record.save()

    async def finished(
        self,
        phase: engine.Phase,
        *,
        outputs: Mapping[str, Any] | None = None,
        failure: engine.Failure | None = None,
        message: str = "",
        cache: engine.CacheStatus | None = None,
        cache_key: Any = None,
    ) -> None:
        self.phase, self.cache = phase, cache
        metadata = self.record.closure.task_node_metadata
        if cache is not None and metadata is not None:
            metadata.cache_status = core.CatalogCacheStatus[cache.name]
        if isinstance(cache_key, NodeCacheKey) and metadata is not None:
            metadata.catalog_key = catalog_metadata(cache_key.key, cache_key.entry)
        await self.record.finish(
            _PHASES[phase],
            error=execution_error(failure) if failure is not None else None,
            outputs=core.LiteralMap(literals=dict(outputs)) if outputs is not None else None,
        )
        if self.array_task is not None:
            await self._put_array_task_execution(_TASK_PHASES.get(phase, TaskPhase.UNDEFINED))

    async def _put_array_task_execution(self, phase: core.TaskExecutionPhase) -> None:
        """FlytePropeller reports an array node as one task execution of the mapped task, its indices
        as `external_resources` (flytekit's FlyteRemote reads them there); the indices are also this
        node's children, as the sandbox ran them."""
        closure = self.record.closure
        resources = [
            event.ExternalResourceInfo(
                external_id=f"{self.context.key.name}-{self.unique_id}-{index}",
                index=index,
                retry_attempt=item.last_attempt,
                phase=_TASK_PHASES.get(item.phase, TaskPhase.UNDEFINED) if item.phase else TaskPhase.RUNNING,
                cache_status=core.CatalogCacheStatus[item.cache.name]
                if item.cache
                else core.CatalogCacheStatus.CACHE_DISABLED,
            )
            for index, item in sorted(self.indices.items())
        ]
        now = utc_now()
        started = closure.started_at or now
        execution = admin.TaskExecution(
            id=core.TaskExecutionIdentifier(
                task_id=self.array_task, node_execution_id=self.record.execution.id, retry_attempt=0
            ),
            input_uri=self.record.execution.input_uri,
            closure=admin.TaskExecutionClosure(
                phase=phase,
                created_at=closure.created_at or now,
                started_at=started,
                updated_at=now,
                duration=now - started,
                task_type="container_array",
                metadata=event.TaskExecutionMetadata(
                    generated_name=f"{self.context.key.name}-{self.unique_id}",
                    plugin_identifier="container_array",
                    external_resources=resources,
                ),
                error=closure.error,
            ),
        )
        await self.record.store.put_task_execution(execution)


class StoreRecorder:
    """Creates a store-backed node execution for each node the engine runs (the engine's `Recorder`)."""

    def __init__(self, store: Store, context: ExecutionContext) -> None:
        self.store = store
        self.context = context

    def node(self, node: engine.Node, unique_id: str, parent: engine.NodeHandle | None) -> StoreNodeHandle:
        now = utc_now()
        kind = node.kind
        is_task = isinstance(kind, engine.TaskCall)
        # A sub-workflow or branch node is a parent node; a launch plan node points at its child execution
        # instead (flytekit follows workflow_node_metadata only when is_parent_node is false). An array
        # node is `is_array` only (its indices are still its children): flytekit reads it that way.
        is_parent = isinstance(kind, engine.SubWorkflow | engine.Branch)
        is_array = isinstance(kind, engine.ArrayMap)
        execution = admin.NodeExecution(
            id=core.NodeExecutionIdentifier(node_id=unique_id, execution_id=self.context.key.to_id()),
            input_uri=self.context.data_uri(safe_component(unique_id), "data", "inputs.pb"),
            closure=admin.NodeExecutionClosure(
                phase=NodePhase.QUEUED,
                created_at=now,
                updated_at=now,
                # An empty message, but set: flytekit checks HasField("task_node_metadata").
                task_node_metadata=admin.TaskNodeMetadata() if is_task else None,
            ),
            metadata=admin.NodeExecutionMetaData(
                spec_node_id=node.id, is_parent_node=is_parent, is_array=is_array
            ),
        )
        array_task = None
        if isinstance(kind, engine.ArrayMap) and isinstance(kind.node.kind, engine.TaskCall):
            array_task = kind.node.kind.task.template.id
        handle = StoreNodeHandle(
            self.context,
            NodeRecord(self.store, execution, parent.unique_id if parent else None),
            array_task=array_task,
        )
        if isinstance(parent, StoreNodeHandle) and parent.array_task is not None:
            index = node.id[1:]  # the array node's indices are nodes n0, n1, …
            if node.id.startswith("n") and index.isdigit():
                parent.indices[int(index)] = handle
        return handle

    async def boundary(self, node_id: str, literals: Mapping[str, core.Literal]) -> None:
        """Record FlytePropeller's `start-node` (its outputs are the workflow's inputs) or `end-node` (its
        inputs are the workflow's outputs) as a SUCCEEDED node execution: FlyteAdmin lists both, and
        flytekit's `sync_execution(sync_nodes=True)` users look for them."""
        now = utc_now()
        literal_map = core.LiteralMap(literals=dict(literals))
        execution = admin.NodeExecution(
            id=core.NodeExecutionIdentifier(node_id=node_id, execution_id=self.context.key.to_id()),
            closure=admin.NodeExecutionClosure(
                phase=NodePhase.SUCCEEDED,
                created_at=now,
                updated_at=now,
                started_at=now,
                duration=datetime.timedelta(0),
            ),
            metadata=admin.NodeExecutionMetaData(spec_node_id=node_id),
        )
        if node_id == START_NODE:
            await self.store.put_node_execution(execution, outputs=literal_map)
        else:
            await self.store.put_node_execution(execution, inputs=literal_map)


@dataclass
class NodeCacheKey:
    """One node execution's cache key, the owner id its `cache_serialize` reservation uses, and the
    entry it found or stored (for the node's `TaskNodeMetadata.catalog_key`)."""

    key: CatalogKey
    owner: str
    entry: CachedOutputs | None = None


class SandboxCatalog:
    """The sandbox's catalog store (`_catalog.Catalog`) as the engine's `Catalog`: datacatalog keys of
    the task id, its cache version and interface, and the input literals."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @staticmethod
    def _catalog_key(call: engine.TaskCall, inputs: Mapping[str, Any]) -> CatalogKey:
        task: core.TaskTemplate = call.task.template
        assert task.id is not None
        metadata = task.metadata or core.TaskMetadata()
        return catalog_key(
            task.id,
            task.interface,
            metadata.discovery_version,
            core.LiteralMap(literals=dict(inputs)),
            ignore=metadata.cache_ignore_input_vars,
        )

    async def key(self, call: engine.TaskCall, inputs: Mapping[str, Any]) -> NodeCacheKey:
        # Hashing serializes every input literal: a worker thread keeps the event loop free.
        try:
            key = await anyio.to_thread.run_sync(self._catalog_key, call, dict(inputs))
        except CatalogKeyError as exc:
            error = core.ExecutionError(
                code="CatalogKeyError",
                message=str(exc),
                kind=core.ExecutionErrorErrorKind.USER,
                timestamp=utc_now(),
            )
            raise engine.NodeFailed(failure_of(error)) from None
        return NodeCacheKey(key, new_owner())

    async def lookup(self, key: NodeCacheKey) -> dict[str, Any] | None:
        hit = await self.catalog.get(key.key)
        if hit is None:
            return None
        key.entry = hit
        return dict(hit.outputs.literals)

    async def store(self, key: NodeCacheKey, outputs: Mapping[str, Any], *, overwrite: bool) -> None:
        literal_map = core.LiteralMap(literals=dict(outputs))
        try:
            key.entry = await self.catalog.put(key.key, literal_map, overwrite=overwrite, owner=key.owner)
        except Exception:
            log.warning("cannot cache outputs under %s", key.key.tag, exc_info=True)
            raise

    @contextlib.asynccontextmanager
    async def serialized(self, key: NodeCacheKey) -> AsyncIterator[dict[str, Any] | None]:
        got = await self.catalog.acquire(key.key, key.owner)
        if isinstance(got, CachedOutputs):
            key.entry = got
            yield dict(got.outputs.literals)
            return
        failed: BaseException | None = None
        try:
            async with anyio.create_task_group() as keeper:
                # Extended while the task runs, so a long task keeps its key (propeller: every round).
                keeper.start_soon(self.catalog.keep_reserved, key.key, key.owner)
                try:
                    yield None
                except BaseException as exc:  # re-raised below as itself, not in an ExceptionGroup
                    failed = exc
                finally:
                    keeper.cancel_scope.cancel()
            if failed is not None:
                raise failed
        finally:
            with anyio.CancelScope(shield=True):
                await self.catalog.release(key.key, key.owner)


def _secrets_environment(secrets: Sequence[core.Secret], files_root: Path) -> dict[str, str]:
    """The task's requested secrets, from the sandbox's own ASYNCRUN_SECRET_* / ASYNCRUN_SECRETS_DIR."""
    from ..sdk._resources import SecretMountType, deliver_secrets

    requests = [
        (s.group, s.key or None, s.group_version or None, SecretMountType(int(s.mount_requirement)))
        for s in secrets
    ]
    return deliver_secrets(requests, files_root)
