"""Run tasks, workflows and launch plans in this process, on the engine (`asyncrun.engine`).

This module compiles the SDK's entities to the engine's graph and plugs in what a local run needs:
Python objects as values, tasks called in-process (async tasks on the event loop, sync tasks in daemon
threads), the local cache as catalog, and launch plans run inline. Only a `RecoverableError` (or
flytekit's `FlyteRecoverableException`) is retried, as in Flyte. Retries, per-attempt timeouts and the
scheduling are the engine's, the same as in the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime
import itertools
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .. import engine
from .._exceptions import (
    AsyncrunError,
    ExecutionError,
    ExecutionTimedOutError,
    TaskFailedError,
    is_recoverable,
    run_error_class,
)
from ._async_workflow import AsyncWorkflow, TaskCaller
from ._cache import LocalCache
from ._control import Branch, Gate, operand_name
from ._foreign import ForeignEntity
from ._graph import START, Comparison, Node, Promise
from ._launch_plan import LaunchPlan
from ._map import MapTask
from ._task import Task, bind_inputs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from pathlib import Path

    from ._graph import Entity
    from ._workflow import Workflow

T = TypeVar("T")


@dataclass
class LocalExecutor:
    """Executes entities locally.

    Args:
        overwrite_cache: recompute cached tasks and store the new outputs.
        envvars: set in `os.environ` for the duration of the run.
        cache_dir: where `cache=True` outputs live (default: the state folder).
        recorder: where node executions are recorded (default: in memory, then dropped).
    """

    overwrite_cache: bool = False
    envvars: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    recorder: engine.Recorder | None = None
    _catalog: LocalCatalog | None = field(default=None, init=False, repr=False)

    async def run(self, entity: Entity | ForeignEntity, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run `entity` with `inputs` (defaults filled in here) and return its outputs by name."""
        if isinstance(entity, ForeignEntity):  # another SDK's entity runs through that SDK
            return await entity.run_locally(
                inputs, overwrite_cache=self.overwrite_cache, envvars=self.envvars
            )
        saved = {key: os.environ.get(key) for key in self.envvars}
        os.environ.update(self.envvars)
        try:
            values = bind_inputs(entity.name, entity.interface, inputs)
            if self._catalog is None:
                self._catalog = LocalCatalog(self.cache_dir)  # one per executor: it warns once
            caller = ExecutorCaller(self)
            runner = engine.Engine(
                values=PythonValues(),
                recorder=self.recorder or engine.MemoryRecorder(),
                launcher=InProcessLauncher(caller),
                catalog=self._catalog,
                overwrite_cache=self.overwrite_cache,
                signals=LocalSignals(),
            )
            runner.launch_plans = InlineLaunchPlans(runner)
            if isinstance(entity, AsyncWorkflow):
                return await entity.run(values, caller)
            if isinstance(entity, LaunchPlan):
                graph, values = compile_graph(entity.workflow), entity.workflow_inputs(values)
            elif isinstance(entity, Task | MapTask):
                graph = task_graph(entity)
            else:
                graph = compile_graph(entity)
            try:
                return await runner.run_graph(graph, values)
            except engine.NodeFailed as failed:
                raise as_exception(failed) from None
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def as_exception(failed: engine.NodeFailed) -> BaseException:
    """The exception a local run raises for a failed graph: the class (and so the exit code) a remote
    run that failed the same way gets, the task's own error when it is one."""
    failure = failed.failure
    phase = "TIMED_OUT" if failed.phase == engine.Phase.TIMED_OUT or failure.timed_out else "FAILED"
    error_class = run_error_class(phase, failure.code) or ExecutionError
    cause = failure.cause
    if isinstance(cause, error_class):
        return cause  # the task's TaskFailedError, with its traceback
    if isinstance(cause, AsyncrunError) and not isinstance(cause, ExecutionError):
        return cause  # a usage problem of the local run (e.g. a signal without a value)
    error = error_class(failure.message)
    error.__cause__ = cause
    return error


# ----------------------------------------------------------------------------------------------------
# Compiling SDK entities to the engine's graph
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalBindings:
    """A node's bindings: values that may hold promises, checked against `entity`'s interface."""

    entity: Any
    values: dict[str, Any]


def _kind(entity: Any) -> engine.NodeKind:
    if isinstance(entity, MapTask):
        return engine.ArrayMap(
            node=engine.Node("n0", _kind(entity.task)),
            parallelism=entity.concurrency or None,
            min_successes=entity.min_successes,
            min_success_ratio=entity.min_success_ratio,
            output_names=tuple(entity.task.interface.outputs),
        )
    if isinstance(entity, Branch):
        return engine.Branch(
            tuple((_condition(condition), engine_node(node)) for condition, node in entity.cases),
            else_node=engine_node(entity.else_node) if entity.else_node is not None else None,
            else_error=entity.else_error,
        )
    if isinstance(entity, Gate):
        if entity.gate == "sleep":
            return engine.Sleep(entity.duration.total_seconds() if entity.duration else 0.0)
        timeout = entity.timeout.total_seconds() if entity.timeout else None
        if entity.gate == "approve":
            return engine.WaitForSignal("approve", entity.name, bool, timeout=timeout)
        return engine.WaitForSignal("signal", entity.name, entity.type, timeout=timeout)
    if isinstance(entity, Task):
        timeout = entity.config.timeout.total_seconds() if entity.config.timeout else None
        return engine.TaskCall(
            task=entity,
            name=entity.name,
            retries=entity.config.retries,
            timeout=timeout,
            cache=entity.config.cache,
            cache_serialize=entity.config.cache_serialize,
        )
    if isinstance(entity, LaunchPlan):
        return engine.LaunchPlanCall(ref=entity, name=entity.name)
    return engine.SubWorkflow(compile_graph(entity))


def _operand(side: Any) -> engine.Operand:
    if isinstance(side, Promise):
        return engine.Operand(var=operand_name(side))
    return engine.Operand(value=side)


def _condition(condition: Any) -> engine.Condition:
    if isinstance(condition, Comparison):
        return engine.Comparison(condition.operator, _operand(condition.left), _operand(condition.right))
    return engine.Conjunction(condition.operator, _condition(condition.left), _condition(condition.right))


def engine_node(node: Node) -> engine.Node:
    """The engine node of one SDK node (control nodes bind their inputs as given)."""
    entity = node.entity
    bound_as_given = isinstance(entity, Branch | Gate)
    return engine.Node(
        id=node.id,
        kind=_kind(entity),
        bindings=LocalBindings(None if bound_as_given else entity, node.bindings),
        upstream=tuple(node.upstream),
    )


def graph_of(
    nodes: list[Node], outputs: dict[str, Any], name: str, failure_node: Node | None = None
) -> engine.Graph:
    """The engine graph of SDK nodes and output bindings."""
    takes_err = failure_node is not None and "err" in failure_node.entity.interface.inputs
    return engine.Graph(
        tuple(engine_node(node) for node in nodes),
        LocalBindings(None, outputs),
        input_node=START,
        failure_node=engine_node(failure_node) if failure_node is not None else None,
        name=name,
        failure_error_input="err" if takes_err else None,
    )


def compile_graph(wf: Workflow) -> engine.Graph:
    """The engine graph of an SDK workflow."""
    return graph_of(wf.nodes, wf.output_bindings, wf.name, wf.failure_node)


def task_graph(task: Task | MapTask) -> engine.Graph:
    """A one-node graph that runs `task` with the graph's inputs."""
    node_id = "n0"
    bindings = {name: Promise(START, name, spec.type) for name, spec in task.interface.inputs.items()}
    outputs = {name: Promise(node_id, name, tp) for name, tp in task.interface.outputs.items()}
    node = engine.Node(node_id, _kind(task), LocalBindings(task, bindings))
    return engine.Graph((node,), LocalBindings(None, outputs), input_node=START, name=task.name)


# ----------------------------------------------------------------------------------------------------
# What the engine needs locally
# ----------------------------------------------------------------------------------------------------


def resolve(value: Any, results: Mapping[str, Mapping[str, Any]]) -> Any:
    """Replace promises inside a binding value with the outputs they stand for."""
    if isinstance(value, Promise):
        return results[value.node_id][value.var]
    if isinstance(value, list):
        return [resolve(item, results) for item in value]
    if isinstance(value, tuple):
        return tuple(resolve(item, results) for item in value)
    if isinstance(value, dict):
        return {key: resolve(item, results) for key, item in value.items()}
    return value


class PythonValues:
    """Values are plain Python objects."""

    def resolve(self, bindings: Any, results: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, Any]:
        if bindings is None:
            return {}
        assert isinstance(bindings, LocalBindings)
        try:
            values = {name: resolve(value, results) for name, value in bindings.values.items()}
        except KeyError as exc:
            raise engine.BindingError(f"{where}: {exc} is missing") from None
        if bindings.entity is None:
            return values
        try:
            return bind_inputs(bindings.entity.name, bindings.entity.interface, values)
        except AsyncrunError as exc:
            raise engine.BindingError(str(exc)) from exc

    def primitive(self, value: Any) -> tuple[str, Any]:
        for tag, types in (
            ("boolean", bool),
            ("integer", int),
            ("float", float),
            ("string", str),
            ("datetime", datetime.datetime),
            ("duration", datetime.timedelta),
        ):
            if isinstance(value, types):
                return tag, value
        raise engine.UnsupportedValue(f"{type(value).__name__} is not a primitive")

    def items(self, value: Any) -> list[Any] | None:
        return list(value) if isinstance(value, list) else None

    def collection(self, items: list[Any]) -> Any:
        return list(items)

    def error_value(self, message: str, node_id: str) -> Any:
        return message


class LocalSignals:
    """Signals of a local run: `ASYNCRUN_SIGNAL_<NAME>`, else a prompt when stdin is a terminal."""

    async def wait(self, gate: engine.WaitForSignal, handle: engine.NodeHandle) -> Any:
        await handle.running()
        from ._signals import local_signal

        try:
            return await run_in_daemon_thread(lambda: local_signal(gate.signal_id, gate.type))
        except AsyncrunError as exc:
            raise engine.NodeFailed(engine.Failure(type(exc).__name__, str(exc), cause=exc)) from None


class ExecutorCaller(TaskCaller):
    """Task calls inside an async workflow body run on the executor that runs the workflow, with its
    options (cache folder, `--overwrite-cache`, environment, recorder)."""

    def __init__(self, executor: LocalExecutor) -> None:
        self.executor = executor
        self._calls = itertools.count()

    async def call(self, entity: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        parent = self.executor
        recorder = parent.recorder
        if recorder is not None:  # each call's nodes under ids of their own: c<i>-n0, …
            recorder = PrefixedRecorder(recorder, f"c{next(self._calls)}")
        child = dataclasses.replace(parent, recorder=recorder)
        child._catalog = parent._catalog
        return await child.run(entity, inputs)


@dataclass
class PrefixedRecorder:
    """A recorder whose top-level node ids start with `prefix-` (their children follow on their own)."""

    recorder: engine.Recorder
    prefix: str

    def node(self, node: engine.Node, unique_id: str, parent: engine.NodeHandle | None) -> engine.NodeHandle:
        return self.recorder.node(
            node, unique_id if parent is not None else f"{self.prefix}-{unique_id}", parent
        )


class InProcessLauncher:
    """Calls the task's function: async tasks on the event loop, sync ones in a worker thread.

    Args:
        caller: how task calls inside an async workflow's body run (default: a fresh executor).
    """

    def __init__(self, caller: TaskCaller | None = None) -> None:
        self.caller = caller

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
        task: Task = call.task
        await handle.running()
        try:
            if task.is_dynamic:
                from ._dynamic import build_dynamic

                nodes, outputs = await run_in_daemon_thread(lambda: build_dynamic(task, dict(inputs)))
                return engine.AttemptResult(graph=graph_of(nodes, outputs, task.name))
            with anyio.move_on_after(time_limit) as deadline:
                returned = await self._call(task, dict(inputs))
            if deadline.cancelled_caught:
                timed_out = ExecutionTimedOutError(
                    f"task {task.name} timed out after {task.config.timeout} "
                    f"(attempt {attempt + 1} of {attempts})"
                )
                return engine.AttemptResult(
                    failure=engine.Failure(
                        "TimeoutExpired", str(timed_out), recoverable=True, timed_out=True, cause=timed_out
                    )
                )
            outputs = task.interface.outputs_from_return(returned)
        except AsyncrunError as exc:
            return engine.AttemptResult(failure=engine.Failure(type(exc).__name__, str(exc), cause=exc))
        except Exception as exc:
            error = TaskFailedError(
                task.name,
                type(exc).__name__,
                str(exc),
                traceback="".join(traceback.format_exception(exc)),
            )
            error.__cause__ = exc
            # Flyte's rule: only a RecoverableError (or FlyteRecoverableException) is retried.
            return engine.AttemptResult(
                failure=engine.Failure(
                    f"USER:{type(exc).__name__}", str(exc), recoverable=is_recoverable(exc), cause=error
                )
            )
        return engine.AttemptResult(outputs=outputs)

    async def _call(self, task: Task, inputs: dict[str, Any]) -> Any:
        if isinstance(task, AsyncWorkflow):
            return task.interface.return_from_outputs(await task.run(inputs, self.caller))
        if task.is_async:
            return await task.fn(**inputs)
        return await run_in_daemon_thread(lambda: task.fn(**inputs))


async def run_in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking `fn` in a new daemon thread and wait for it; a cancellation (timeout, Ctrl-C)
    returns at once and abandons the thread.

    Threads cannot be killed, so an abandoned one runs on; as a daemon thread the process does not
    wait for it at exit (anyio's worker threads would be joined, keeping a timed-out run alive).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # cancelled: nobody waits any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(fn)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the event loop closed while the thread ran
            loop.call_soon_threadsafe(settle, result, error)

    # The same bound on busy threads as anyio.to_thread (40 by default); abandoned ones stop counting.
    async with anyio.to_thread.current_default_thread_limiter():
        threading.Thread(target=target, name="asyncrun task", daemon=True).start()
        return await future


class LocalCatalog:
    """The local cache (`LocalCache`) as the engine's catalog."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._warned = False

    async def key(self, call: engine.TaskCall, inputs: Mapping[str, Any]) -> tuple[Task, dict[str, Any]]:
        return call.task, dict(inputs)

    async def lookup(self, key: tuple[Task, dict[str, Any]]) -> dict[str, Any] | None:
        cache = LocalCache(self.root)
        return await anyio.to_thread.run_sync(cache.get, *key)

    async def store(
        self, key: tuple[Task, dict[str, Any]], outputs: Mapping[str, Any], *, overwrite: bool
    ) -> None:
        """Cache the outputs; on failure say so once and raise (the engine reports CACHE_PUT_FAILURE)."""
        cache = LocalCache(self.root)
        try:
            await anyio.to_thread.run_sync(cache.put, *key, dict(outputs))
        except Exception as exc:
            self._write_failed(exc, key[0].name)
            raise

    def _write_failed(self, exc: Exception, task_name: str) -> None:
        """The outputs are still returned; say once that they could not be cached."""
        if self._warned:
            return
        self._warned = True
        if isinstance(exc, OSError):
            sys.stderr.write(
                f"Warning: cannot write the local cache ({exc.strerror or exc}: {exc.filename or ''}); "
                "results are not cached. Check ASYNCRUN_HOME and free disk space.\n"
            )
        else:
            sys.stderr.write(
                f"Warning: cannot cache the outputs of task {task_name} ({type(exc).__name__}: {exc}); "
                "results are not cached.\n"
            )

    @contextlib.asynccontextmanager
    async def serialized(self, key: tuple[Task, dict[str, Any]]) -> AsyncIterator[dict[str, Any] | None]:
        yield None  # one process: tasks with the same key cannot race across runs here


class InlineLaunchPlans:
    """A launch plan node runs its workflow inline, with the plan's fixed inputs and defaults."""

    def __init__(self, runner: engine.Engine) -> None:
        self.runner = runner

    async def launch(
        self, call: engine.LaunchPlanCall, inputs: Mapping[str, Any], handle: engine.NodeHandle
    ) -> dict[str, Any]:
        plan: LaunchPlan = call.ref
        await handle.running()
        try:
            values = plan.workflow_inputs(dict(inputs))
        except AsyncrunError as exc:
            raise engine.NodeFailed(engine.Failure(type(exc).__name__, str(exc), cause=exc)) from None
        return await self.runner.run_graph(compile_graph(plan.workflow), values, parent=handle)
