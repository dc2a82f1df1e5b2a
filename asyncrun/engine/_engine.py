"""The scheduler and the node handlers: one implementation for local runs and the sandbox.

A graph's nodes start as soon as the nodes they wait for have succeeded, so independent nodes run
concurrently; task attempts are bounded by the run's `max_parallelism`. With `fail_fast` the first
failure cancels the running nodes; otherwise independent nodes finish and the nodes after a failed
(or skipped) one are SKIPPED. Then the graph's failure node (if any) runs, and the graph fails with
the first error all the same.

Child nodes (the taken case of a branch, the nodes of a sub-workflow, the indices of an array node) get
the unique id `<parent>-<attempt>-<id>`, as FlytePropeller names them, and their parent's handle.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._conditions import ConditionError, evaluate
from ._model import (
    ArrayMap,
    Branch,
    CacheStatus,
    Failure,
    LaunchPlanCall,
    Node,
    Phase,
    Sleep,
    SubWorkflow,
    TaskCall,
    WaitForSignal,
)
from ._protocols import BindingError, UnsupportedValue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._model import Graph
    from ._protocols import (
        Catalog,
        LaunchPlanRunner,
        NodeHandle,
        Recorder,
        Recovery,
        SignalSource,
        TaskLauncher,
        ValueOps,
    )

__all__ = ["Engine", "NodeFailed"]

log = logging.getLogger("asyncrun.engine")

# Propeller's default `max-node-retries-system-failures`: system failures have their own budget.
MAX_SYSTEM_RETRIES = 3

Results = dict[str, "Mapping[str, Any]"]


class NodeFailed(Exception):
    """A node (or a whole graph) ended unsuccessfully."""

    def __init__(self, failure: Failure, phase: Phase = Phase.FAILED) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.phase = phase


def system_failure(code: str, message: str, cause: BaseException | None = None) -> Failure:
    return Failure(code=code, message=message, kind="SYSTEM", cause=cause)


def user_failure(code: str, message: str) -> Failure:
    return Failure(code=code, message=message, kind="USER")


def child_id(parent: str | None, node_id: str, attempt: int = 0) -> str:
    """A node's unique id under its parent node, as propeller builds it."""
    return node_id if parent is None else f"{parent}-{attempt}-{node_id}"


# An array failure quotes this many item errors, each cut to this many characters (a task's message may
# hold a traceback or a log tail of a few KB: quoting them all would put megabytes in one closure).
SUMMARY_ITEMS = 10
SUMMARY_ITEM_CHARS = 300


def _item_error(message: str) -> str:
    """One line for an item's error: the last line of a traceback or log tail says the most."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= SUMMARY_ITEM_CHARS else "…" + line[-(SUMMARY_ITEM_CHARS - 1) :]


def failure_summary(failures: list[NodeFailed | None]) -> str:
    """The first failed items' errors, one short line each, and how many more failed."""
    failed = [(index, f.failure.message) for index, f in enumerate(failures) if f is not None]
    parts = [f"[{index}] {_item_error(message)}" for index, message in failed[:SUMMARY_ITEMS]]
    if len(failed) > SUMMARY_ITEMS:
        parts.append(f"and {len(failed) - SUMMARY_ITEMS} more")
    return "; ".join(parts)


@dataclass
class CacheNote:
    """What the cache did for one node: its status (the last one set) and its key (the catalog's)."""

    status: CacheStatus | None = None
    key: Any = None


@dataclass
class Engine:
    """Runs graphs in one environment.

    Args:
        values: how values are resolved and inspected.
        recorder: where node executions are recorded.
        launcher: how task attempts run.
        launch_plans: how launch plan nodes run (None: refused).
        catalog: where cached task outputs live (None: caching is off).
        overwrite_cache: recompute cached tasks and store the new outputs.
        max_parallelism: at most this many task attempts of the run at once (0: no limit).
        signals: where approve and signal gates wait (None: such gates fail).
        recovery: the run this one recovers: its task nodes that succeeded there are not run again
            but end RECOVERED with the outputs they had.
        fault: the failure recorded when the environment itself fails (a store error, a full disk);
            by default a SYSTEM "EngineError" naming the exception.
    """

    values: ValueOps
    recorder: Recorder
    launcher: TaskLauncher
    launch_plans: LaunchPlanRunner | None = None
    catalog: Catalog | None = None
    overwrite_cache: bool = False
    max_parallelism: int = 0
    signals: SignalSource | None = None
    recovery: Recovery | None = None
    fault: Callable[[BaseException], Failure] | None = None

    def __post_init__(self) -> None:
        self._parallelism = anyio.CapacityLimiter(self.max_parallelism) if self.max_parallelism > 0 else None

    # ------------------------------------------------------------------------------------------------
    # Graphs
    # ------------------------------------------------------------------------------------------------

    async def run_graph(
        self,
        graph: Graph,
        inputs: Mapping[str, Any],
        *,
        parent: NodeHandle | None = None,
    ) -> dict[str, Any]:
        """Run `graph` with `inputs`; return its outputs.

        Raises:
            NodeFailed: a node failed (the first failure, after the failure node ran).
        """
        prefix = parent.unique_id if parent is not None else None
        results: Results = {graph.input_node: inputs}
        known = {node.id for node in graph.nodes}
        finished = {node.id: anyio.Event() for node in graph.nodes}
        failures: list[NodeFailed] = []

        async def run(node: Node, task_group: anyio.abc.TaskGroup) -> None:
            upstream = [dependency for dependency in node.upstream if dependency in known]
            try:
                for dependency in upstream:
                    await finished[dependency].wait()
                if all(dependency in results for dependency in upstream):
                    results[node.id] = await self.run_node(node, results, parent=parent, prefix=prefix)
                elif not graph.fail_fast:  # (with fail_fast, a failure has cancelled this node)
                    skipped = self.recorder.node(node, child_id(prefix, node.id), parent)
                    await skipped.finished(Phase.SKIPPED, message="Node Skipped as parent node was skipped")
            except NodeFailed as failed:
                failures.append(failed)
                if graph.fail_fast:
                    task_group.cancel_scope.cancel()
            finally:
                finished[node.id].set()

        async with anyio.create_task_group() as task_group:
            for node in graph.nodes:
                task_group.start_soon(run, node, task_group)
        if failures:
            if graph.failure_node is not None:
                await self._run_failure_node(graph, inputs, failures[0], parent=parent, prefix=prefix)
            raise failures[0]
        try:
            return self.values.resolve(graph.outputs, results, "workflow output")
        except BindingError as exc:
            raise NodeFailed(system_failure("BindingError", str(exc))) from None

    async def _run_failure_node(
        self,
        graph: Graph,
        inputs: Mapping[str, Any],
        failed: NodeFailed,
        *,
        parent: NodeHandle | None,
        prefix: str | None,
    ) -> None:
        node = graph.failure_node
        assert node is not None
        error_input = graph.failure_error_input

        def resolve(results: Results) -> dict[str, Any]:
            resolved = self.values.resolve(node.bindings, results, f"node {node.id!r} input")
            if error_input:
                resolved[error_input] = self.values.error_value(failed.failure.message, node.id)
            return resolved

        # When the failure node fails too, the workflow fails with the failure node's own error.
        await self._execute(node, {graph.input_node: inputs}, resolve, parent=parent, prefix=prefix)

    # ------------------------------------------------------------------------------------------------
    # Nodes
    # ------------------------------------------------------------------------------------------------

    async def run_node(
        self, node: Node, results: Results, *, parent: NodeHandle | None, prefix: str | None
    ) -> dict[str, Any]:
        """Resolve a node's inputs from `results`, run it and return its outputs."""

        def resolve(known: Results) -> dict[str, Any]:
            return self.values.resolve(node.bindings, known, f"node {node.id!r} input")

        return await self._execute(node, results, resolve, parent=parent, prefix=prefix)

    async def _execute(
        self,
        node: Node,
        results: Results,
        resolve: Callable[[Results], dict[str, Any]],
        *,
        parent: NodeHandle | None,
        prefix: str | None,
        environment: Mapping[str, str] | None = None,
        launch_inputs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        handle = self.recorder.node(node, child_id(prefix, node.id), parent)
        cache = CacheNote()
        try:
            try:
                inputs = resolve(results)
            except BindingError as exc:
                cause = exc.__cause__ if exc.__cause__ is not None else None
                raise NodeFailed(system_failure("BindingError", str(exc), cause=cause)) from None
            await handle.queued(inputs)
            recovered = None
            if self.recovery is not None and isinstance(node.kind, TaskCall):
                recovered = await self.recovery.outputs(handle.unique_id)
            if recovered is not None:
                outputs, phase = dict(recovered), Phase.RECOVERED
            else:
                outputs, phase = (
                    await self._dispatch(
                        node, inputs, results, handle, cache, environment or {}, launch_inputs
                    ),
                    Phase.SUCCEEDED,
                )
        except NodeFailed as failed:
            await self._record_end(handle, failed.phase, failed.failure, cache)
            raise
        except anyio.get_cancelled_exc_class():
            await self._record_end(handle, Phase.ABORTED, None, cache)
            raise
        except Exception as exc:
            log.exception("node %s failed inside the engine", handle.unique_id)
            failure = self._fault(exc)
            await self._record_end(handle, Phase.FAILED, failure, cache)
            raise NodeFailed(failure) from exc
        try:
            await handle.finished(phase, outputs=outputs, cache=cache.status, cache_key=cache.key)
        except Exception as exc:  # e.g. outputs too big for what is left of the disk
            log.exception("cannot record the outputs of node %s", handle.unique_id)
            failure = self._fault(exc)
            await self._record_end(handle, Phase.FAILED, failure, cache)
            raise NodeFailed(failure) from exc
        return outputs

    def _fault(self, exc: BaseException) -> Failure:
        if self.fault is not None:
            return self.fault(exc)
        return system_failure("EngineError", f"{type(exc).__name__}: {exc}", cause=exc)

    @staticmethod
    async def _record_end(
        handle: NodeHandle, phase: Phase, failure: Failure | None, cache: CacheNote
    ) -> None:
        """Record a node's end without letting a recorder failure hide why it ended."""
        with anyio.CancelScope(shield=True):
            try:
                await handle.finished(phase, failure=failure, cache=cache.status, cache_key=cache.key)
            except Exception:
                log.exception("cannot record the end of node %s", handle.unique_id)

    async def _dispatch(
        self,
        node: Node,
        inputs: dict[str, Any],
        results: Results,
        handle: NodeHandle,
        cache: CacheNote,
        environment: Mapping[str, str],
        launch_inputs: dict[str, Any] | None,
    ) -> dict[str, Any]:
        kind = node.kind
        if isinstance(kind, TaskCall):
            return await self._run_task(kind, inputs, handle, cache, environment, launch_inputs)
        if isinstance(kind, SubWorkflow):
            await handle.running()
            return await self.run_graph(kind.graph, inputs, parent=handle)
        if isinstance(kind, LaunchPlanCall):
            if self.launch_plans is None:
                raise NodeFailed(system_failure("Unsupported", f"launch plan {kind.name} cannot run here"))
            return await self.launch_plans.launch(kind, inputs, handle)
        if isinstance(kind, Branch):
            return await self._run_branch(kind, inputs, results, handle)
        if isinstance(kind, Sleep):
            await handle.running()
            await anyio.sleep(kind.seconds)
            return {}
        if isinstance(kind, WaitForSignal):
            return await self._run_gate(kind, inputs, handle)
        if isinstance(kind, ArrayMap):
            return await self._run_array(kind, inputs, handle)
        raise NodeFailed(system_failure("Unsupported", f"node {node.id!r}: unknown node kind"))

    # ------------------------------------------------------------------------------------------------
    # Tasks: cache, attempts, retries
    # ------------------------------------------------------------------------------------------------

    async def _run_task(
        self,
        call: TaskCall,
        inputs: dict[str, Any],
        handle: NodeHandle,
        cache: CacheNote,
        environment: Mapping[str, str],
        launch_inputs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        catalog = self.catalog if call.cache else None
        launch = launch_inputs or inputs
        if catalog is None:
            cache.status = CacheStatus.CACHE_DISABLED
            return await self._attempts(call, launch, handle, environment)
        key = cache.key = await catalog.key(call, inputs)  # once per node: hashing is not free
        if self.overwrite_cache:
            cache.status = CacheStatus.CACHE_SKIPPED
        else:
            hit = await catalog.lookup(key)
            if hit is not None:
                cache.status = CacheStatus.CACHE_HIT
                return hit
            cache.status = CacheStatus.CACHE_MISS
        if call.cache_serialize and not self.overwrite_cache:
            # One computation per key at a time: wait for the holder's outputs or for the key.
            async with catalog.serialized(key) as hit:
                if hit is not None:
                    cache.status = CacheStatus.CACHE_HIT
                    return hit
                return await self._compute_and_cache(catalog, key, launch, handle, cache, environment, call)
        return await self._compute_and_cache(catalog, key, launch, handle, cache, environment, call)

    async def _compute_and_cache(
        self,
        catalog: Catalog,
        key: Any,
        launch: dict[str, Any],
        handle: NodeHandle,
        cache: CacheNote,
        environment: Mapping[str, str],
        call: TaskCall,
    ) -> dict[str, Any]:
        outputs = await self._attempts(call, launch, handle, environment)
        if not outputs:
            cache.status = CacheStatus.CACHE_DISABLED  # nothing to cache, as in propeller
            return outputs
        try:
            await catalog.store(key, outputs, overwrite=self.overwrite_cache)
        except Exception:
            # As propeller: the task succeeded, only its cache entry is missing (CACHE_PUT_FAILURE).
            log.info("cannot cache the outputs of node %s", handle.unique_id, exc_info=True)
            cache.status = CacheStatus.CACHE_PUT_FAILURE
            return outputs
        cache.status = CacheStatus.CACHE_POPULATED
        return outputs

    async def _attempts(
        self, call: TaskCall, inputs: dict[str, Any], handle: NodeHandle, environment: Mapping[str, str]
    ) -> dict[str, Any]:
        attempts = call.retries + 1
        user_attempts = system_failures = 0
        attempt = 0
        while True:
            limiter = self._parallelism if self._parallelism is not None else contextlib.nullcontext()
            async with limiter:
                result = await self.launcher.run_attempt(
                    call,
                    inputs,
                    handle,
                    attempt=attempt,
                    attempts=attempts,
                    time_limit=call.timeout,
                    environment=environment,
                )
            await handle.attempt_finished(attempt, result.failure)
            if result.graph is not None:
                await handle.expanded()
                return await self.run_graph(result.graph, {}, parent=handle)
            if result.failure is None:
                return dict(result.outputs or {})
            failure = result.failure
            if failure.kind == "SYSTEM" and failure.recoverable:
                system_failures += 1
                retry = system_failures <= MAX_SYSTEM_RETRIES
            else:
                user_attempts += 1
                retry = failure.recoverable and user_attempts < attempts
            if not retry:
                raise NodeFailed(failure, Phase.TIMED_OUT if failure.timed_out else Phase.FAILED)
            attempt += 1

    # ------------------------------------------------------------------------------------------------
    # Branches
    # ------------------------------------------------------------------------------------------------

    async def _run_branch(
        self, branch: Branch, inputs: dict[str, Any], results: Results, handle: NodeHandle
    ) -> dict[str, Any]:
        await handle.running()
        chosen: Node | None = None
        try:
            for condition, then_node in branch.cases:
                if evaluate(condition, inputs, self.values):
                    chosen = then_node
                    break
        except ConditionError as exc:
            raise NodeFailed(user_failure("MalformedBranchUserError", str(exc))) from None
        if chosen is None:
            chosen = branch.else_node
        skipped = [node for _, node in branch.cases if node is not chosen]
        if branch.else_node is not None and branch.else_node is not chosen:
            skipped.append(branch.else_node)
        for node in skipped:
            skipped_handle = self.recorder.node(node, child_id(handle.unique_id, node.id), handle)
            await skipped_handle.finished(Phase.SKIPPED, message="Branch evaluated to false")
        if chosen is None:
            if branch.else_error is not None:
                raise NodeFailed(user_failure("UserProvidedError", branch.else_error))
            raise NodeFailed(user_failure("MalformedBranchUserError", "No branch satisfied"))
        return await self.run_node(chosen, results, parent=handle, prefix=handle.unique_id)

    # ------------------------------------------------------------------------------------------------
    # Gates
    # ------------------------------------------------------------------------------------------------

    async def _run_gate(
        self, gate: WaitForSignal, inputs: dict[str, Any], handle: NodeHandle
    ) -> dict[str, Any]:
        if self.signals is None:
            raise NodeFailed(system_failure("Unsupported", f"gate {gate.signal_id!r}: no signals here"))
        await handle.running()
        value = None
        with anyio.move_on_after(gate.timeout) as deadline:
            value = await self.signals.wait(gate, handle)
        if deadline.cancelled_caught:
            failure = Failure(
                "TimeoutExpired",
                f"gate {gate.signal_id!r} got no signal within {gate.timeout:g}s",
                timed_out=True,
            )
            raise NodeFailed(failure, Phase.TIMED_OUT)
        if gate.kind == "signal":
            return {gate.output_name: value}
        try:
            tag, approved = self.values.primitive(value)
        except UnsupportedValue:
            tag, approved = "", None
        if tag != "boolean":
            raise NodeFailed(system_failure("BadSignal", f"approval {gate.signal_id!r} is not a boolean"))
        if not approved:
            raise NodeFailed(
                user_failure(
                    "ReceivedRejectSignal", "received a reject signal to disapprove the node input values"
                )
            )
        return dict(inputs)

    # ------------------------------------------------------------------------------------------------
    # Array nodes (map tasks)
    # ------------------------------------------------------------------------------------------------

    async def _run_array(self, array: ArrayMap, inputs: dict[str, Any], handle: NodeHandle) -> dict[str, Any]:
        mapped: dict[str, list[Any]] = {}
        for name, value in inputs.items():
            if name in array.bound_inputs:
                continue
            items = self.values.items(value)
            if items is not None:
                mapped[name] = items
        lengths = {len(items) for items in mapped.values()}
        if len(lengths) > 1:
            raise NodeFailed(
                user_failure("InvalidArrayLength", "input arrays have different lengths: " + str(lengths))
            )
        if not mapped and set(inputs) - array.bound_inputs:
            raise NodeFailed(user_failure("InvalidArrayLength", "no input array provided"))
        size = lengths.pop() if lengths else 1
        if array.min_successes is not None:
            needed = array.min_successes
        elif array.min_success_ratio is not None:
            needed = math.ceil(array.min_success_ratio * size)
        else:
            needed = size
        await handle.running()
        if size < needed:  # as propeller: no index can make up for it, so none runs
            raise NodeFailed(
                user_failure(
                    "ArrayNodeFailed",
                    f"the array node needs {needed} successful items but has only {size}; "
                    "lower min_successes (or min_success_ratio) or pass more items",
                )
            )
        outputs: list[dict[str, Any] | None] = [None] * size
        failures: list[NodeFailed | None] = [None] * size
        limit = anyio.CapacityLimiter(array.parallelism) if array.parallelism else None

        async def run_index(index: int, task_group: anyio.abc.TaskGroup) -> None:
            sub_inputs = {
                name: (mapped[name][index] if name in mapped else value) for name, value in inputs.items()
            }
            node = Node(f"n{index}", array.node.kind, None, (), array.node.spec)
            async with limit if limit is not None else contextlib.nullcontext():
                try:
                    outputs[index] = await self._execute(
                        node,
                        {},
                        lambda _: dict(sub_inputs),
                        parent=handle,
                        prefix=handle.unique_id,
                        environment={
                            "BATCH_JOB_ARRAY_INDEX_VAR_NAME": "FLYTE_K8S_ARRAY_INDEX",
                            "FLYTE_K8S_ARRAY_INDEX": str(index),
                        },
                        launch_inputs=dict(inputs) if array.single_input_file else None,
                    )
                except NodeFailed as failed:
                    failures[index] = failed
                    if size - sum(f is not None for f in failures) < needed:
                        task_group.cancel_scope.cancel()

        async with anyio.create_task_group() as task_group:
            for index in range(size):
                task_group.start_soon(run_index, index, task_group)
        failed = [f for f in failures if f is not None]
        if size - len(failed) < needed:
            summary = failure_summary(failures)
            raise NodeFailed(
                Failure(
                    code=failed[0].failure.code,
                    message=f"{len(failed)} of {size} array items failed, at least {needed} must "
                    f"succeed: {summary}",
                    kind=failed[0].failure.kind,
                    raw=None,
                )
            )
        names = array.output_names or tuple(sorted({n for out in outputs if out is not None for n in out}))
        return {
            name: self.values.collection([out.get(name) if out is not None else None for out in outputs])
            for name in names
        }
