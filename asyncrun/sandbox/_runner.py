"""The sandbox's executor: runs each submitted execution's workflow on the engine (`asyncrun.engine`).

This module is the store and blob glue: it loads the execution, compiles its workflow to the engine's
graph (`_graphs`), and plugs in literals as values (`_bindings.LiteralValues`), task attempts as local
subprocesses and node executions in the store (`_task_nodes`), and launch plan nodes as child executions.
The engine runs ready nodes concurrently (bounded by the execution's `max_parallelism` and the runner's
`max_concurrent_tasks`). Every transition is written to the store as it happens, so GetExecution,
ListNodeExecutions and friends show progress; an abort cancels the execution's scope, which kills the
running process groups and records ABORTED on every unfinished node, attempt and the execution itself.

On-disk layout under `data_dir/executions/<project>/<domain>/<name>/`:

    inputs.pb                  the execution's inputs (core.LiteralMap)
    outputs.pb                 the workflow's outputs; `closure.outputs.uri` points here
    <node>/data/inputs.pb      the node's inputs; `{{.inputPrefix}}` is `<node>/data`
    <node>/data/<attempt>/     `{{.outputPrefix}}`: outputs.pb or error.pb, raw/ and checkpoint/
    <node>/<attempt>/          the attempt's fresh working folder
    <node>/<attempt>.log       the attempt's stdout and stderr

With an object store (`sandbox serve --blob-store s3://bucket/prefix`), the `.pb` files live at the same
relative paths under `s3://bucket/prefix/metadata/propeller/<project>-<domain>-<name>/` and task outputs under
`s3://bucket/prefix/raw/` (unless the run sets its own raw output prefix), as in a real deployment; the
working folders and logs stay local.

A sub-workflow's nodes, a branch's taken case and an array node's indices (`n<i>`) get the ids
`<parent>-0-<node>`, as propeller names them.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.to_thread

from asyncrun import engine
from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._bindings import LiteralValues
from asyncrun.sandbox._catalog import Catalog
from asyncrun.sandbox._compiler import (
    END_NODE,
    START_NODE,
    InputError,
    format_id,
    id_key,
    merge_launch_inputs,
)
from asyncrun.sandbox._graphs import GraphError, to_graph
from asyncrun.sandbox._process import kill_leftover_groups, sandbox_fault, system_error
from asyncrun.sandbox._signals import Signals
from asyncrun.sandbox._store import WORKFLOW_TERMINAL, ExecutionKey, ExecutionToRun, Store, utc_now
from asyncrun.sandbox._task_nodes import (
    ExecutionContext,
    SandboxCatalog,
    StoreNodeHandle,
    StoreRecorder,
    TaskNodeRunner,
    env_pairs,
    execution_error,
    failure_of,
)
from asyncrun.sandbox._warm import WarmWorkers

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from asyncrun.sandbox._objectstore import ObjectBlobStore

__all__ = ["Runner"]


log = logging.getLogger("asyncrun.sandbox")

# Launch plans may start launch plans; a cycle among them must end somewhere.
_MAX_NESTING = 10
# The runner touches `<data_dir>/heartbeat` this often, so a restart knows when the previous one died.
HEARTBEAT_SECONDS = 1.0
HEARTBEAT_FILE = "heartbeat"

Phase = core.WorkflowExecutionPhase
NodePhase = core.NodeExecutionPhase
TaskPhase = core.TaskExecutionPhase


@dataclass
class _Outcome:
    phase: core.WorkflowExecutionPhase
    error: core.ExecutionError | None = None
    outputs: core.LiteralMap | None = None
    outputs_uri: str = ""


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
        object_store: keep execution data and task outputs there rather than under `data_dir`.
        signals: the signal store approve and wait_for_input gates wait on (the SignalService's).
        task_env: variables added to every task process's environment.
        warm_workers: fork `asyncrun-execute` and `pyflyte-execute` processes from warm workers that
            imported them once (`_warm`); False starts every task process cold.
    """

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        *,
        task_path: Sequence[str] = (),
        max_concurrent_tasks: int = 8,
        object_store: ObjectBlobStore | None = None,
        signals: Signals | None = None,
        task_env: Mapping[str, str] | None = None,
        warm_workers: bool = True,
    ) -> None:
        self.store = store
        self.warm_workers = warm_workers
        self.data_dir = Path(data_dir)
        self.task_path = [str(entry) for entry in task_path]
        self.object_store = object_store
        self._task_nodes = TaskNodeRunner(
            store,
            self.task_path,
            anyio.CapacityLimiter(max_concurrent_tasks),
            storage_env={**(object_store.task_environment() if object_store else {}), **(task_env or {})},
        )
        self._catalog = SandboxCatalog(Catalog(store))
        self.signals = signals if signals is not None else Signals(store)
        self._send, self._receive = anyio.create_memory_object_stream[ExecutionKey](math.inf)
        self._running: dict[ExecutionKey, anyio.CancelScope] = {}
        # Executions handed to this runner; recover() leaves these alone.
        self._owned: set[ExecutionKey] = set()

    def execution_directory(self, key: ExecutionKey) -> Path:
        """An execution's local folder: its nodes' attempts, logs and files."""
        return self.data_dir / "executions" / key.project / key.domain / key.name

    def execution_data_uri(self, key: ExecutionKey, *parts: str) -> str:
        """Where an execution's data (`inputs.pb`, `outputs.pb`, `<node>/data/…`) is stored."""
        if self.object_store is not None:
            # FlytePropeller's layout, which users (and flytekit's own tests) look for in the bucket.
            return self.object_store.uri(
                "metadata", "propeller", f"{key.project}-{key.domain}-{key.name}", *parts
            )
        return str(self.data_dir.joinpath("executions", key.project, key.domain, key.name, *parts))

    # ------------------------------------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------------------------------------

    async def run_forever(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Recover leftovers of a previous process, then run submitted executions until cancelled."""
        await self.recover()
        async with WarmWorkers(enabled=self.warm_workers) as warm:
            self._task_nodes.warm = warm
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._beat, name="asyncrun sandbox heartbeat")
                task_status.started()
                async for key in self._receive:
                    task_group.start_soon(self._run_execution, key, name=f"asyncrun execution {key.name}")

    async def _beat(self) -> None:
        heartbeat = self.data_dir / HEARTBEAT_FILE
        while True:
            try:
                await anyio.to_thread.run_sync(_touch, heartbeat)
            except OSError as exc:  # a full disk must not stop the runner
                log.warning("cannot update %s: %s", heartbeat, exc)
            await anyio.sleep(HEARTBEAT_SECONDS)

    def last_alive(self) -> datetime.datetime | None:
        """When the runner that used this data folder was last seen alive (its heartbeat), if known."""
        try:
            mtime = (self.data_dir / HEARTBEAT_FILE).stat().st_mtime
        except OSError:
            return None
        return datetime.datetime.fromtimestamp(mtime, datetime.UTC)

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

        QUEUED executions never started and are submitted again (child executions of launch plan nodes
        excepted); RUNNING ones are marked FAILED ("sandbox restarted") and ABORTING ones ABORTED, together
        with their unfinished nodes and attempts.

        Returns:
            How many executions were marked FAILED or ABORTED.
        """
        ended = 0
        # Durations end when the previous sandbox was last alive, not now: its downtime is no run time.
        died_at = await anyio.to_thread.run_sync(self.last_alive)
        for key, phase, mode in await self.store.unfinished_executions():
            if key in self._owned:
                continue
            # A child execution belongs to its parent's node, which is gone; only top-level ones resume.
            if (
                phase in (Phase.QUEUED, Phase.UNDEFINED)
                and mode != admin.ExecutionMetadataExecutionMode.CHILD_WORKFLOW
            ):
                self.submit(key)
                continue
            # Task processes die with the sandbox; what they started in their group is killed here, so
            # nothing writes into an execution that is now FAILED.
            directory = self.execution_directory(key)
            await anyio.to_thread.run_sync(kill_leftover_groups, directory)
            error = system_error("SandboxRestarted", "sandbox restarted")
            aborting = phase == Phase.ABORTING
            await self.store.interrupt_children(key, aborted=aborting, error=error, ended_at=died_at)
            await self._finalize(
                key, None if aborting else _Outcome(Phase.FAILED, error=error), force=True, ended_at=died_at
            )
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
        except Exception as exc:  # a sandbox bug or a full disk must fail one execution, not the runner
            log.exception("execution %s failed inside the sandbox", key.name)
            outcome = _Outcome(Phase.FAILED, error=sandbox_fault(exc, self.data_dir))
        finally:
            self._running.pop(key, None)
            try:
                with anyio.CancelScope(shield=True):
                    await self._finalize_safely(key, outcome)
            finally:
                self._owned.discard(key)  # ended: recover() has nothing to leave alone any more

    async def _finalize_safely(self, key: ExecutionKey, outcome: _Outcome | None) -> None:
        """`_finalize`, falling back to FAILED without outputs when recording the outcome fails."""
        try:
            await self._finalize(key, outcome)
            return
        except Exception as exc:
            log.exception("cannot record how execution %s ended", key.name)
            fallback = _Outcome(Phase.FAILED, error=sandbox_fault(exc, self.data_dir))
        try:
            # Smaller than outputs, so it may still fit; a requested abort still ends ABORTED.
            await self._finalize(key, fallback)
        except Exception:
            log.exception("cannot record execution %s as FAILED; a restart of the sandbox will", key.name)

    async def _finalize(
        self,
        key: ExecutionKey,
        outcome: _Outcome | None,
        *,
        force: bool = False,
        ended_at: datetime.datetime | None = None,
    ) -> None:
        """Record how an execution ended; a requested abort (ABORTING) always ends ABORTED.

        `ended_at` (default: now) is when it ended, for its duration.
        """
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
                end = min(now, ended_at) if ended_at is not None else now
                closure.duration = max(end - closure.started_at, datetime.timedelta(0))
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
        stored = await self.store.execution_to_run(key)
        loaded = await self._load(key, stored)
        if isinstance(loaded, _Outcome):
            return loaded
        assert stored is not None
        context, template, inputs = loaded
        try:
            graph = to_graph(template, context.tasks, context.sub_workflows)
        except GraphError as exc:
            return _Outcome(Phase.FAILED, error=system_error("NotFound", str(exc)))
        recorder = StoreRecorder(self.store, context)
        await recorder.boundary(START_NODE, inputs)
        runner = engine.Engine(
            values=LiteralValues(),
            recorder=recorder,
            launcher=self._task_nodes.launcher(context),
            launch_plans=_ChildExecutions(self, context),
            catalog=self._catalog,
            signals=_SignalGates(self.signals, context.key),
            recovery=self._recovery(stored.execution),
            overwrite_cache=context.overwrite_cache,
            max_parallelism=context.max_parallelism,
            fault=lambda exc: failure_of(sandbox_fault(exc, self.data_dir)),
        )
        try:
            outputs = await runner.run_graph(graph, inputs)
        except engine.NodeFailed as failed:
            return _Outcome(Phase.FAILED, error=execution_error(failed.failure))
        await recorder.boundary(END_NODE, outputs)
        literal_map = core.LiteralMap(literals=outputs)
        uri = context.data_uri("outputs.pb")
        await context.write_data(uri, bytes(literal_map))
        return _Outcome(Phase.SUCCEEDED, outputs=literal_map, outputs_uri=uri)

    def _recovery(self, execution: admin.Execution) -> _RecoveredNodes | None:
        """What a RECOVERED execution (RecoverExecution) takes from the run it recovers."""
        metadata = execution.spec.metadata if execution.spec else None
        if metadata is None or metadata.mode != admin.ExecutionMetadataExecutionMode.RECOVERED:
            return None
        if metadata.reference_execution is None:
            return None
        return _RecoveredNodes(self.store, ExecutionKey.of(metadata.reference_execution))

    async def _load(
        self, key: ExecutionKey, stored: ExecutionToRun | None
    ) -> tuple[ExecutionContext, core.WorkflowTemplate, dict[str, core.Literal]] | _Outcome:
        spec = stored.execution.spec if stored is not None else None
        if stored is None or spec is None:
            return _Outcome(
                Phase.FAILED, error=system_error("NotFound", "the execution vanished from the store")
            )
        inputs = stored.inputs
        launch_plan_key, workflow_key = stored.launch_plan_key, stored.workflow_key
        workflow, launch_plan = stored.workflow, stored.launch_plan
        compiled = workflow.closure.compiled_workflow if workflow and workflow.closure else None
        if compiled is None or compiled.primary is None or compiled.primary.template is None:
            return _Outcome(
                Phase.FAILED,
                error=system_error("NotFound", f"workflow {':'.join(workflow_key)} is not registered"),
            )
        plan = (
            launch_plan.spec
            if launch_plan is not None and launch_plan.spec is not None
            else admin.LaunchPlanSpec()
        )
        envs = {
            **env_pairs(plan.envs.values if plan.envs else []),
            **env_pairs(spec.envs.values if spec.envs else []),
        }
        raw_config = spec.raw_output_data_config or plan.raw_output_data_config
        parallelism = spec.max_parallelism or plan.max_parallelism
        directory = self.execution_directory(key)
        objects = self.object_store
        raw_prefix = raw_config.output_location_prefix if raw_config else ""
        if objects is not None and not raw_prefix:
            raw_prefix = objects.uri("raw")
        context = ExecutionContext(
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
            raw_output_prefix=raw_prefix,
            max_parallelism=max(parallelism, 0),
            overwrite_cache=spec.overwrite_cache or plan.overwrite_cache,
            nesting=spec.metadata.nesting if spec.metadata is not None else 0,
            principal=spec.metadata.principal if spec.metadata is not None else "",
            interruptible=spec.interruptible,
            data_prefix=self.execution_data_uri(key) if objects else "",
            storage_options=objects.storage_options if objects else {},
        )
        await context.write_data(context.data_uri("inputs.pb"), bytes(inputs))
        return context, compiled.primary.template, dict(inputs.literals)

    # ------------------------------------------------------------------------------------------------
    # Launch plan nodes
    # ------------------------------------------------------------------------------------------------

    async def _run_child_execution(
        self,
        context: ExecutionContext,
        handle: StoreNodeHandle,
        inputs: core.LiteralMap,
        reference: core.Identifier,
    ) -> core.LiteralMap:
        """Run a launch plan node as a child execution (its own row, as in FlyteAdmin), waiting for it."""
        record = handle.record
        assert record.execution.id is not None
        if context.nesting >= _MAX_NESTING:
            raise _failed(system_error("TooDeep", f"launch plans nest deeper than {_MAX_NESTING} levels"))
        launch_plan = await self.store.get_launch_plan(id_key(reference))
        if launch_plan is None or launch_plan.spec is None or launch_plan.spec.workflow_id is None:
            raise _failed(system_error("NotFound", f"launch plan {format_id(reference)} is not registered"))
        expected = launch_plan.closure.expected_inputs if launch_plan.closure is not None else None
        try:
            merged = merge_launch_inputs(inputs, expected, launch_plan.spec.fixed_inputs)
        except InputError as exc:
            raise _failed(system_error("BadInputs", f"launch plan {format_id(reference)}: {exc}")) from None
        # Named after parent and node, so it is stable and unique; lowercase hex fits FlyteAdmin's name rule.
        node_id = record.execution.id.node_id
        digest = hashlib.sha256(f"{context.key.name}/{node_id}".encode()).hexdigest()
        child = ExecutionKey(context.key.project, context.key.domain, "c" + digest[:19])
        now = utc_now()
        spec = admin.ExecutionSpec(
            launch_plan=core.Identifier.parse(bytes(reference)),
            # FlytePropeller launches the child with the parent's interruptible override.
            interruptible=context.interruptible,
            metadata=admin.ExecutionMetadata(
                mode=admin.ExecutionMetadataExecutionMode.CHILD_WORKFLOW,
                principal=context.principal,
                nesting=context.nesting + 1,
                parent_node_execution=record.execution.id,
            ),
        )
        closure = admin.ExecutionClosure(
            phase=Phase.QUEUED,
            created_at=now,
            updated_at=now,
            workflow_id=launch_plan.spec.workflow_id,
            state_change_details=admin.ExecutionStateChangeDetails(
                state=admin.ExecutionState.EXECUTION_ACTIVE, occurred_at=now, principal=context.principal
            ),
        )
        execution = admin.Execution(id=child.to_id(), spec=spec, closure=closure)
        self._owned.add(child)
        try:
            created = await self.store.create_execution(
                execution,
                merged,
                launch_plan=id_key(reference),
                workflow=id_key(launch_plan.spec.workflow_id),
            )
        except BaseException:
            self._owned.discard(child)
            raise
        if not created:
            self._owned.discard(child)
            raise _failed(system_error("AlreadyExists", f"child execution {child.name} already exists"))
        record.closure.workflow_node_metadata = admin.WorkflowNodeMetadata(execution_id=child.to_id())
        await record.start()
        try:
            await self._run_execution(child)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.abort(child, "the parent execution was aborted")
            raise
        ended = await self.store.get_execution(child)
        ended_closure = ended.closure if ended is not None else None
        if ended_closure is None or ended_closure.phase != Phase.SUCCEEDED:
            phase = ended_closure.phase.name if ended_closure is not None else "missing"
            error = ended_closure.error if ended_closure is not None else None
            raise _failed(error or system_error("ChildFailed", f"child execution {child.name} ended {phase}"))
        data = await self.store.get_execution_data(child)
        outputs = data[1] if data is not None else None
        return outputs if outputs is not None else core.LiteralMap()


def _failed(error: core.ExecutionError) -> engine.NodeFailed:
    return engine.NodeFailed(failure_of(error))


class _ChildExecutions:
    """Launch plan nodes as child executions (the engine's `LaunchPlanRunner`)."""

    def __init__(self, runner: Runner, context: ExecutionContext) -> None:
        self.runner = runner
        self.context = context

    async def launch(
        self, call: engine.LaunchPlanCall, inputs: Mapping[str, core.Literal], handle: engine.NodeHandle
    ) -> dict[str, core.Literal]:
        assert isinstance(handle, StoreNodeHandle)
        outputs = await self.runner._run_child_execution(
            self.context, handle, core.LiteralMap(literals=dict(inputs)), call.ref
        )
        return dict(outputs.literals)


class _RecoveredNodes:
    """The outputs of the nodes that succeeded in the run a recovered run recovers (as FlytePropeller
    reads them from FlyteAdmin): a node that was itself recovered there counts too."""

    def __init__(self, store: Store, original: ExecutionKey) -> None:
        self.store = store
        self.original = original

    async def outputs(self, unique_id: str) -> dict[str, core.Literal] | None:
        node = await self.store.get_node_execution(self.original, unique_id)
        if node is None or node.closure is None or node.closure.phase not in _REUSABLE:
            return None
        data = await self.store.get_node_execution_data(self.original, unique_id)
        if data is None:
            return None
        outputs = data[1]
        return dict(outputs.literals) if outputs is not None else {}


_REUSABLE = frozenset({core.NodeExecutionPhase.SUCCEEDED, core.NodeExecutionPhase.RECOVERED})


class _SignalGates:
    """Gates wait on the signals of their execution (sub-workflows share it; a launch plan node's child
    execution has its own), as FlyteAdmin keys them (the engine's `SignalSource`)."""

    def __init__(self, signals: Signals, key: ExecutionKey) -> None:
        self.signals = signals
        self.key = key

    async def wait(self, gate: engine.WaitForSignal, handle: engine.NodeHandle) -> core.Literal:
        return await self.signals.wait((self.key, gate.signal_id), gate.type)


def _touch(path: Path) -> None:
    path.touch()
