"""Run tasks, workflows and launch plans in this process.

Workflow nodes start as soon as their inputs exist, so independent nodes overlap: async tasks run on
the event loop, sync tasks in daemon threads. Retries, per-attempt timeouts and the local cache
apply to every task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .._exceptions import AsyncrunError, ExecutionTimedOutError, TaskFailedError, is_recoverable
from ._cache import LocalCache
from ._foreign import ForeignEntity
from ._graph import START, Promise
from ._launch_plan import LaunchPlan
from ._task import Task, bind_inputs

if TYPE_CHECKING:
    from collections.abc import Callable
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
    """

    overwrite_cache: bool = False
    envvars: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    _cache_warned: bool = field(default=False, init=False, repr=False)

    async def run(self, entity: Entity | ForeignEntity, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run `entity` with `inputs` (defaults filled in here) and return its outputs by name."""
        if isinstance(entity, ForeignEntity):  # another SDK's entity runs through that SDK
            return await entity.run_locally(
                inputs, overwrite_cache=self.overwrite_cache, envvars=self.envvars
            )
        saved = {key: os.environ.get(key) for key in self.envvars}
        os.environ.update(self.envvars)
        try:
            return await self._run_entity(entity, bind_inputs(entity.name, entity.interface, inputs))
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old

    async def _run_entity(self, entity: Entity, inputs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(entity, Task):
            return await self._run_task(entity, inputs)
        if isinstance(entity, LaunchPlan):
            return await self._run_workflow(entity.workflow, entity.workflow_inputs(inputs))
        return await self._run_workflow(entity, inputs)

    async def _run_task(self, task: Task, inputs: dict[str, Any]) -> dict[str, Any]:
        cache = LocalCache(self.cache_dir) if task.config.cache else None
        if cache is not None and not self.overwrite_cache:
            hit = await anyio.to_thread.run_sync(cache.get, task, inputs)
            if hit is not None:
                return hit
        attempts = task.config.retries + 1
        timeout = task.config.timeout.total_seconds() if task.config.timeout else None
        for attempt in range(1, attempts + 1):
            try:
                with anyio.fail_after(timeout):
                    returned = await self._call(task, inputs)
                outputs = task.interface.outputs_from_return(returned)
                break
            except TimeoutError:
                # A timed-out attempt is retried, as FlytePropeller retries TimeoutExpired.
                if attempt == attempts:
                    raise ExecutionTimedOutError(
                        f"task {task.name} timed out after {task.config.timeout} "
                        f"(attempt {attempt} of {attempts})"
                    ) from None
            except AsyncrunError:
                raise
            except Exception as exc:
                # Flyte's rule: only a RecoverableError (or FlyteRecoverableException) is retried.
                if attempt == attempts or not is_recoverable(exc):
                    raise TaskFailedError(
                        task.name,
                        type(exc).__name__,
                        str(exc),
                        traceback="".join(traceback.format_exception(exc)),
                    ) from exc
        if cache is not None:
            try:
                await anyio.to_thread.run_sync(cache.put, task, inputs, outputs)
            except OSError as exc:
                self._cache_write_failed(exc)
        return outputs

    def _cache_write_failed(self, exc: OSError) -> None:
        """The outputs are still returned; say once per run that they could not be cached."""
        if not self._cache_warned:
            self._cache_warned = True
            sys.stderr.write(
                f"Warning: cannot write the local cache ({exc.strerror or exc}: {exc.filename or ''}); "
                "results are not cached. Check ASYNCRUN_HOME and free disk space.\n"
            )

    async def _call(self, task: Task, inputs: dict[str, Any]) -> Any:
        if task.is_async:
            return await task.fn(**inputs)
        return await run_in_daemon_thread(lambda: task.fn(**inputs))

    async def _run_workflow(self, wf: Workflow, inputs: dict[str, Any]) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {START: inputs}
        done = {node.id: anyio.Event() for node in wf.nodes}
        failure: list[BaseException] = []

        async def run_node(node_index: int, tg: anyio.abc.TaskGroup) -> None:
            node = wf.nodes[node_index]
            for upstream in node.upstream:
                await done[upstream].wait()
            try:
                values = {name: resolve(value, results) for name, value in node.bindings.items()}
                results[node.id] = await self._run_entity(
                    node.entity, bind_inputs(node.entity.name, node.entity.interface, values)
                )
            except Exception as exc:
                # The first failure ends the workflow; siblings still running are cancelled.
                failure.append(exc)
                tg.cancel_scope.cancel()
                return
            done[node.id].set()

        async with anyio.create_task_group() as tg:
            for index in range(len(wf.nodes)):
                tg.start_soon(run_node, index, tg)
        if failure:
            raise failure[0]
        return {name: resolve(value, results) for name, value in wf.output_bindings.items()}


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


def resolve(value: Any, results: dict[str, dict[str, Any]]) -> Any:
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
