"""The sandbox's executor: runs each submitted execution's workflow, node by node, as local subprocesses.

Nodes run as soon as the nodes they read from have succeeded, so independent nodes run concurrently
(bounded by the execution's `max_parallelism` and the runner's `max_concurrent_tasks`). A task node runs its
container's command and args, rendered as propeller renders them, once per attempt (see `_process`).
Sub-workflow nodes run inline. Every transition is written to the store as it happens, so GetExecution,
ListNodeExecutions and friends show progress; an abort cancels the execution's scope, which kills the
running process groups and records ABORTED on every unfinished node, attempt and the execution itself.

On-disk layout under `data_dir/executions/<project>/<domain>/<name>/`:

    inputs.pb                  the execution's inputs (core.LiteralMap)
    outputs.pb                 the workflow's outputs; `closure.outputs.uri` points here
    <node>/data/inputs.pb      the node's inputs; `{{.inputPrefix}}` is `<node>/data`
    <node>/data/<attempt>/     `{{.outputPrefix}}`: outputs.pb or error.pb, raw/ and checkpoint/
    <node>/<attempt>/          the attempt's fresh working folder
    <node>/<attempt>.log       the attempt's stdout and stderr

A sub-workflow's nodes get the ids `<parent>-0-<node>`, as propeller names them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.to_thread

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._bindings import BindingError, resolve_bindings
from asyncrun.sandbox._compiler import END_NODE, START_NODE, IdKey, id_key, node_dependencies
from asyncrun.sandbox._process import (
    AttemptPaths,
    AttemptResult,
    prepare_attempt,
    read_attempt_result,
    run_process,
    safe_component,
    system_error,
)
from asyncrun.sandbox._store import WORKFLOW_TERMINAL, ExecutionKey, Store, utc_now
from asyncrun.sandbox._templates import TemplateError, TemplateValues, render_args

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Runner"]

log = logging.getLogger("asyncrun.sandbox")

Phase = core.WorkflowExecutionPhase
NodePhase = core.NodeExecutionPhase
TaskPhase = core.TaskExecutionPhase


class _NodeFailed(Exception):
    """A node ended unsuccessfully; carries what the workflow's closure should say."""

    def __init__(self, error: core.ExecutionError, phase: core.NodeExecutionPhase = NodePhase.FAILED) -> None:
        super().__init__(error.message)
        self.error = error
        self.phase = phase


@dataclass
class _Context:
    """What every node of one execution needs."""

    key: ExecutionKey
    directory: Path
    tasks: dict[IdKey, core.TaskTemplate]
    sub_workflows: dict[IdKey, core.WorkflowTemplate]
    workflow_name: str
    launch_plan_name: str
    envs: dict[str, str]
    raw_output_prefix: str
    parallelism: anyio.CapacityLimiter | None


@dataclass
class _Outcome:
    phase: core.WorkflowExecutionPhase
    error: core.ExecutionError | None = None
    outputs: core.LiteralMap | None = None
    outputs_uri: str = ""


@dataclass
class _NodeRecord:
    """A node execution as the runner keeps it in memory and writes it, whole, at each transition."""

    store: Store
    execution: admin.NodeExecution
    parent: str | None
    closure: admin.NodeExecutionClosure = field(init=False)

    def __post_init__(self) -> None:
        assert self.execution.closure is not None
        self.closure = self.execution.closure

    async def save(self, **data: core.LiteralMap | None) -> None:
        self.closure.updated_at = utc_now()
        await self.store.put_node_execution(self.execution, parent_node_id=self.parent, **data)

    async def start(self) -> None:
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
        now = utc_now()
        self.closure.phase, self.closure.error = phase, error
        self.closure.duration = now - (self.closure.started_at or self.closure.created_at or now)
        await self.save(outputs=outputs)


def _kv(pairs: Sequence[core.KeyValuePair]) -> dict[str, str]:
    return {pair.key: pair.value for pair in pairs}


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
    # A node's retry strategy overrides its task's, as in propeller.
    if node.metadata is not None and node.metadata.retries is not None:
        return node.metadata.retries.retries
    if task.metadata is not None and task.metadata.retries is not None:
        return task.metadata.retries.retries
    return 0


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


class Runner:
    """Runs submitted executions as local subprocesses.

    Start it with `await task_group.start(runner.run_forever)`; then `submit()` executions and `abort()`
    them. Cancelling `run_forever` kills every running task process; whatever was running is marked
    FAILED ("sandbox restarted") by `recover()` when the next runner starts.

    Args:
        store: the open store holding the executions.
        data_dir: the root of the on-disk layout (see the module docstring).
        task_path: folders prepended to PATH for task processes (e.g. where `pyflyte-execute` lives).
        max_concurrent_tasks: at most this many task processes run at once, across executions.
    """

    def __init__(
        self, store: Store, data_dir: Path, *, task_path: Sequence[str] = (), max_concurrent_tasks: int = 8
    ) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.task_path = [str(entry) for entry in task_path]
        self._task_limiter = anyio.CapacityLimiter(max_concurrent_tasks)
        self._send, self._receive = anyio.create_memory_object_stream[ExecutionKey](math.inf)
        self._running: dict[ExecutionKey, anyio.CancelScope] = {}
        # Executions handed to this runner; recover() leaves these alone.
        self._owned: set[ExecutionKey] = set()

    # ------------------------------------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------------------------------------

    async def run_forever(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Recover leftovers of a previous process, then run submitted executions until cancelled."""
        await self.recover()
        async with anyio.create_task_group() as task_group:
            task_status.started()
            async for key in self._receive:
                task_group.start_soon(self._run_execution, key, name=f"asyncrun execution {key.name}")

    def submit(self, key: ExecutionKey) -> None:
        """Queue a stored (QUEUED) execution to run; returns at once."""
        self._owned.add(key)
        self._send.send_nowait(key)

    async def abort(self, key: ExecutionKey, cause: str, *, principal: str = "") -> bool:
        """Abort an execution: ABORTING with `abort_metadata` now, ABORTED once its processes are gone.

        Returns:
            False when the execution does not exist or has already ended (nothing changed).
        """
        now = utc_now()
        seen: list[core.WorkflowExecutionPhase] = []

        def begin(closure: admin.ExecutionClosure) -> bool:
            seen.append(closure.phase)
            if closure.phase in WORKFLOW_TERMINAL or closure.phase == Phase.ABORTING:
                return False
            closure.phase, closure.updated_at = Phase.ABORTING, now
            closure.error = closure.outputs = None
            closure.abort_metadata = admin.AbortMetadata(cause=cause, principal=principal)
            return True

        await self.store.update_execution(key, begin)
        if not seen or seen[0] in WORKFLOW_TERMINAL:
            return False
        scope = self._running.get(key)
        if scope is not None:
            scope.cancel()  # _run_execution records ABORTED once the processes are dead
        else:
            # Not running here (still queued, or orphaned): nothing to kill.
            await self._finalize(key, None)
        return True

    async def recover(self) -> int:
        """End what a previous sandbox process left unfinished, so nothing stays RUNNING forever.

        QUEUED executions never started and are submitted again; RUNNING ones are marked FAILED
        ("sandbox restarted") and ABORTING ones ABORTED, together with their unfinished nodes and attempts.

        Returns:
            How many executions were marked FAILED or ABORTED.
        """
        ended = 0
        for key, phase in await self.store.unfinished_executions():
            if key in self._owned:
                continue
            if phase in (Phase.QUEUED, Phase.UNDEFINED):
                self.submit(key)
                continue
            error = system_error("SandboxRestarted", "sandbox restarted")
            aborting = phase == Phase.ABORTING
            await self.store.interrupt_children(key, aborted=aborting, error=error)
            await self._finalize(key, None if aborting else _Outcome(Phase.FAILED, error=error), force=True)
            ended += 1
        if ended:
            log.warning("marked %d execution(s) left unfinished by a previous sandbox as ended", ended)
        return ended

    # ------------------------------------------------------------------------------------------------
    # One execution
    # ------------------------------------------------------------------------------------------------

    async def _run_execution(self, key: ExecutionKey) -> None:
        scope = anyio.CancelScope()
        self._running[key] = scope
        outcome: _Outcome | None = None
        try:
            with scope:
                outcome = await self._execute(key)
        except Exception as exc:  # a sandbox bug must fail one execution, not the runner
            log.exception("execution %s failed inside the sandbox", key.name)
            outcome = _Outcome(
                Phase.FAILED, error=system_error("SandboxError", f"{type(exc).__name__}: {exc}")
            )
        finally:
            self._running.pop(key, None)
            with anyio.CancelScope(shield=True):
                await self._finalize(key, outcome)

    async def _finalize(self, key: ExecutionKey, outcome: _Outcome | None, *, force: bool = False) -> None:
        """Record how an execution ended; a requested abort (ABORTING) always ends ABORTED."""
        now = utc_now()

        def change(closure: admin.ExecutionClosure) -> bool:
            if closure.phase in WORKFLOW_TERMINAL:
                return False
            if closure.phase == Phase.ABORTING:
                closure.phase = Phase.ABORTED
            elif outcome is None:
                return False
            elif closure.phase != Phase.RUNNING and not force:
                return False
            else:
                closure.phase = outcome.phase
                closure.error = outcome.error
                if outcome.outputs_uri:
                    closure.outputs = admin.LiteralMapBlob(uri=outcome.outputs_uri)
            closure.updated_at = now
            if closure.started_at is not None:
                closure.duration = now - closure.started_at
            return True

        await self.store.update_execution(key, change, outputs=outcome.outputs if outcome else None)

    async def _execute(self, key: ExecutionKey) -> _Outcome | None:
        now = utc_now()

        def start(closure: admin.ExecutionClosure) -> bool:
            if closure.phase not in (Phase.QUEUED, Phase.UNDEFINED):
                return False
            closure.phase, closure.started_at, closure.updated_at = Phase.RUNNING, now, now
            return True

        if await self.store.update_execution(key, start) is None:
            return None  # aborted before it started, or gone
        loaded = await self._load(key)
        if isinstance(loaded, _Outcome):
            return loaded
        context, template, inputs = loaded
        try:
            outputs = await self._run_graph(context, template, inputs, parent=None)
        except _NodeFailed as failed:
            return _Outcome(Phase.FAILED, error=failed.error)
        literal_map = core.LiteralMap(literals=outputs)
        path = context.directory / "outputs.pb"
        await anyio.to_thread.run_sync(_write_bytes, path, bytes(literal_map))
        return _Outcome(Phase.SUCCEEDED, outputs=literal_map, outputs_uri=str(path))

    async def _load(
        self, key: ExecutionKey
    ) -> tuple[_Context, core.WorkflowTemplate, dict[str, core.Literal]] | _Outcome:
        execution = await self.store.get_execution(key)
        launch = await self.store.get_execution_launch(key)
        data = await self.store.get_execution_data(key)
        if execution is None or launch is None or data is None or execution.spec is None:
            return _Outcome(
                Phase.FAILED, error=system_error("NotFound", "the execution vanished from the store")
            )
        launch_plan_key, workflow_key = launch
        workflow = await self.store.get_workflow(workflow_key)
        launch_plan = await self.store.get_launch_plan(launch_plan_key)
        compiled = workflow.closure.compiled_workflow if workflow and workflow.closure else None
        if compiled is None or compiled.primary is None or compiled.primary.template is None:
            return _Outcome(
                Phase.FAILED,
                error=system_error("NotFound", f"workflow {':'.join(workflow_key)} is not registered"),
            )
        spec = execution.spec
        plan = (
            launch_plan.spec
            if launch_plan is not None and launch_plan.spec is not None
            else admin.LaunchPlanSpec()
        )
        envs = {**_kv(plan.envs.values if plan.envs else []), **_kv(spec.envs.values if spec.envs else [])}
        raw_config = spec.raw_output_data_config or plan.raw_output_data_config
        parallelism = spec.max_parallelism or plan.max_parallelism
        directory = self.data_dir / "executions" / key.project / key.domain / key.name
        inputs, _ = data
        await anyio.to_thread.run_sync(_write_bytes, directory / "inputs.pb", bytes(inputs))
        context = _Context(
            key=key,
            directory=directory,
            tasks={id_key(t.template.id): t.template for t in compiled.tasks if t.template and t.template.id},
            sub_workflows={
                id_key(s.template.id): s.template
                for s in compiled.sub_workflows
                if s.template and s.template.id
            },
            workflow_name=workflow_key[2],
            launch_plan_name=launch_plan_key[2],
            envs=envs,
            raw_output_prefix=raw_config.output_location_prefix if raw_config else "",
            parallelism=anyio.CapacityLimiter(parallelism) if parallelism > 0 else None,
        )
        return context, compiled.primary.template, dict(inputs.literals)

    # ------------------------------------------------------------------------------------------------
    # Graphs and nodes
    # ------------------------------------------------------------------------------------------------

    async def _run_graph(
        self,
        context: _Context,
        template: core.WorkflowTemplate,
        inputs: Mapping[str, core.Literal],
        *,
        parent: str | None,
    ) -> dict[str, core.Literal]:
        """Run a workflow's nodes as their inputs become ready; return the workflow's outputs."""
        nodes = [node for node in template.nodes if node.id not in (START_NODE, END_NODE)]
        known = {node.id for node in nodes}
        results: dict[str, Mapping[str, core.Literal]] = {START_NODE: inputs}
        finished = {node.id: anyio.Event() for node in nodes}
        failures: list[_NodeFailed] = []
        fail_fast = (
            template.metadata is None
            or template.metadata.on_failure == core.WorkflowMetadataOnFailurePolicy.FAIL_IMMEDIATELY
        )

        async def run(node: core.Node, task_group: anyio.abc.TaskGroup) -> None:
            dependencies = [dependency for dependency in node_dependencies(node) if dependency in known]
            try:
                for dependency in dependencies:
                    await finished[dependency].wait()
                # A node whose upstream failed is never started (propeller does not create it either).
                if all(dependency in results for dependency in dependencies):
                    results[node.id] = await self._run_node(context, node, results, parent=parent)
            except _NodeFailed as failed:
                failures.append(failed)
                if fail_fast:
                    task_group.cancel_scope.cancel()
            finally:
                finished[node.id].set()

        async with anyio.create_task_group() as task_group:
            for node in nodes:
                task_group.start_soon(run, node, task_group)
        if failures:
            raise failures[0]
        try:
            return resolve_bindings(template.outputs, results, "workflow output")
        except BindingError as exc:
            raise _NodeFailed(system_error("BindingError", str(exc))) from None

    async def _run_node(
        self,
        context: _Context,
        node: core.Node,
        results: Mapping[str, Mapping[str, core.Literal]],
        *,
        parent: str | None,
    ) -> Mapping[str, core.Literal]:
        unique_id = node.id if parent is None else f"{parent}-0-{node.id}"
        node_dir = context.directory / safe_component(unique_id)
        now = utc_now()
        is_task = node.task_node is not None
        record = _NodeRecord(
            self.store,
            admin.NodeExecution(
                id=core.NodeExecutionIdentifier(node_id=unique_id, execution_id=context.key.to_id()),
                input_uri=str(node_dir / "data" / "inputs.pb"),
                closure=admin.NodeExecutionClosure(
                    phase=NodePhase.QUEUED,
                    created_at=now,
                    updated_at=now,
                    # An empty message, but set: flytekit checks HasField("task_node_metadata").
                    task_node_metadata=admin.TaskNodeMetadata() if is_task else None,
                ),
                metadata=admin.NodeExecutionMetaData(spec_node_id=node.id, is_parent_node=not is_task),
            ),
            parent,
        )
        try:
            try:
                inputs = core.LiteralMap(
                    literals=resolve_bindings(node.inputs, results, f"node {node.id!r} input")
                )
            except BindingError as exc:
                raise _NodeFailed(system_error("BindingError", str(exc))) from None
            await anyio.to_thread.run_sync(_write_bytes, node_dir / "data" / "inputs.pb", bytes(inputs))
            await record.save(inputs=inputs)
            if node.task_node is not None:
                outputs = await self._run_task_node(context, node, record, node_dir, inputs)
            elif node.workflow_node is not None and node.workflow_node.sub_workflow_ref is not None:
                outputs = await self._run_sub_workflow(context, node, record, inputs, unique_id)
            else:
                raise _NodeFailed(
                    system_error(
                        "UnsupportedNode",
                        f"node {node.id!r}: the sandbox cannot run launch plan, branch, gate or array nodes",
                    )
                )
        except _NodeFailed as failed:
            with anyio.CancelScope(shield=True):
                await record.finish(failed.phase, error=failed.error)
            raise
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await record.finish(NodePhase.ABORTED)
            raise
        except Exception as exc:
            log.exception("node %s of %s failed inside the sandbox", unique_id, context.key.name)
            error = system_error("SandboxError", f"{type(exc).__name__}: {exc}")
            with anyio.CancelScope(shield=True):
                await record.finish(NodePhase.FAILED, error=error)
            raise _NodeFailed(error) from exc
        await record.finish(NodePhase.SUCCEEDED, outputs=outputs)
        return dict(outputs.literals)

    async def _run_sub_workflow(
        self, context: _Context, node: core.Node, record: _NodeRecord, inputs: core.LiteralMap, unique_id: str
    ) -> core.LiteralMap:
        assert node.workflow_node is not None and node.workflow_node.sub_workflow_ref is not None
        template = context.sub_workflows.get(id_key(node.workflow_node.sub_workflow_ref))
        if template is None:
            raise _NodeFailed(
                system_error("NotFound", f"node {node.id!r}: its sub-workflow is not in the closure")
            )
        await record.start()
        outputs = await self._run_graph(context, template, inputs.literals, parent=unique_id)
        return core.LiteralMap(literals=outputs)

    async def _run_task_node(
        self, context: _Context, node: core.Node, record: _NodeRecord, node_dir: Path, inputs: core.LiteralMap
    ) -> core.LiteralMap:
        assert node.task_node is not None and node.task_node.reference_id is not None
        task = context.tasks.get(id_key(node.task_node.reference_id))
        if task is None:
            raise _NodeFailed(system_error("NotFound", f"node {node.id!r}: its task is not in the closure"))
        if task.container is None:
            raise _NodeFailed(
                system_error(
                    "UnsupportedTask",
                    f"task {task.id.name if task.id else '?'} (type {task.type!r}) has no container; "
                    "the sandbox runs container tasks only",
                )
            )
        retries, timeout = _retries(node, task), _timeout(node, task)
        for attempt in range(retries + 1):
            result = await self._run_attempt(context, task, record, node_dir, attempt, inputs, timeout)
            if result.outputs is not None:
                return result.outputs
            assert result.error is not None
            if result.retryable and attempt < retries:
                continue
            raise _NodeFailed(result.error, NodePhase.TIMED_OUT if result.timed_out else NodePhase.FAILED)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------------------------------------
    # Attempts
    # ------------------------------------------------------------------------------------------------

    def _environment(
        self, context: _Context, task: core.TaskTemplate, node_id: str, attempt: int
    ) -> dict[str, str]:
        """Sandbox env (task_path first on PATH), then container env, LP and execution envs, propeller's."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([*self.task_path, env.get("PATH", "")]).strip(os.pathsep)
        assert task.container is not None and task.id is not None
        env.update(_kv(task.container.env))
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
        return env

    async def _run_attempt(
        self,
        context: _Context,
        task: core.TaskTemplate,
        record: _NodeRecord,
        node_dir: Path,
        attempt: int,
        inputs: core.LiteralMap,
        time_limit: float | None,
    ) -> _AttemptOutcome:
        assert task.container is not None and task.id is not None and record.execution.id is not None
        node_id = record.execution.id.node_id
        parallelism = context.parallelism if context.parallelism is not None else contextlib.nullcontext()
        async with parallelism, self._task_limiter:
            raw_prefix = context.raw_output_prefix
            if raw_prefix:
                raw_prefix = (
                    f"{raw_prefix.rstrip('/')}/{context.key.name}/{safe_component(node_id)}/{attempt}"
                )
            paths = await anyio.to_thread.run_sync(
                lambda: prepare_attempt(node_dir, attempt, raw_output_prefix=raw_prefix)
            )
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
                    context, task, paths, node_id, attempt, inputs, time_limit, record, execution
                )
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._finish_attempt(execution, TaskPhase.ABORTED)
                raise
            phase = TaskPhase.SUCCEEDED if result.outputs is not None else TaskPhase.FAILED
            await self._finish_attempt(execution, phase, error=result.error, outputs=result.outputs)
            return result

    async def _spawn(
        self,
        context: _Context,
        task: core.TaskTemplate,
        paths: AttemptPaths,
        node_id: str,
        attempt: int,
        inputs: core.LiteralMap,
        time_limit: float | None,
        record: _NodeRecord,
        execution: admin.TaskExecution,
    ) -> _AttemptOutcome:
        assert task.container is not None and execution.closure is not None
        command = [*task.container.command, *task.container.args]
        template_path = ""
        if any("tasktemplatepath" in part.lower() for part in command):
            template_path = str(paths.output_prefix / "task.pb")
            await anyio.to_thread.run_sync(_write_bytes, Path(template_path), bytes(task))
        values = TemplateValues(
            input_prefix=str(paths.input_prefix),
            output_prefix=str(paths.output_prefix),
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
        env = self._environment(context, task, node_id, attempt)
        await record.start()
        execution.closure.phase, execution.closure.started_at = TaskPhase.RUNNING, utc_now()
        execution.closure.updated_at = execution.closure.started_at
        await self.store.put_task_execution(execution)
        try:
            exit_ = await run_process(argv, cwd=paths.cwd, env=env, log=paths.log, time_limit=time_limit)
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
        return _AttemptOutcome(result.outputs, result.error, result.retryable, exit_.timed_out)

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
