"""Task nodes: each attempt of a node runs its task's container as a subprocess (see `_process`).

Also the per-execution state the runner's node code shares (`ExecutionContext`, `NodeRecord`, `NodeFailed`).
Attempts are bounded by the execution's `max_parallelism` and the runner's `max_concurrent_tasks`. A
RECOVERABLE error, or an attempt killed for outliving the task's timeout, is retried up to the node's (else
the task's) retry budget; a node whose last attempt timed out ends TIMED_OUT. Non-zero exits and missing
outputs are SYSTEM failures and are not retried (propeller would, but locally they are deterministic:
a missing `pyflyte-execute` fails the same way every time).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from asyncrun import _storage
from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._compiler import IdKey, id_key
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
    from collections.abc import Mapping, Sequence

__all__ = ["ExecutionContext", "NodeFailed", "NodeRecord", "TaskNodeRunner", "env_pairs", "write_bytes"]

NodePhase = core.NodeExecutionPhase
TaskPhase = core.TaskExecutionPhase


class NodeFailed(Exception):
    """A node ended unsuccessfully; carries what the workflow's closure should say."""

    def __init__(self, error: core.ExecutionError, phase: core.NodeExecutionPhase = NodePhase.FAILED) -> None:
        super().__init__(error.message)
        self.error = error
        self.phase = phase


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
    parallelism: anyio.CapacityLimiter | None
    nesting: int = 0
    principal: str = ""
    # Where execution data lives when not under `directory`: `s3://…/metadata/<project>/<domain>/<name>`.
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

    async def run(
        self,
        context: ExecutionContext,
        node: core.Node,
        record: NodeRecord,
        node_dir: Path,
        inputs: core.LiteralMap,
    ) -> core.LiteralMap:
        """Run a task node's attempts (retrying RECOVERABLE failures) and return its outputs.

        Raises:
            NodeFailed: the last attempt failed or timed out, or the task cannot run here.
        """
        assert node.task_node is not None and node.task_node.reference_id is not None
        task = context.tasks.get(id_key(node.task_node.reference_id))
        if task is None:
            raise NodeFailed(system_error("NotFound", f"node {node.id!r}: its task is not in the closure"))
        if task.container is None:
            raise NodeFailed(
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
            raise NodeFailed(result.error, NodePhase.TIMED_OUT if result.timed_out else NodePhase.FAILED)
        raise AssertionError("unreachable")

    def _environment(
        self, context: ExecutionContext, task: core.TaskTemplate, node_id: str, attempt: int
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
    ) -> _AttemptOutcome:
        assert task.container is not None and execution.closure is not None
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
        env = self._environment(context, task, node_id, attempt)
        await record.start()
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
