"""Run tasks, workflows and launch plans in this process.

Workflow nodes start as soon as their inputs exist, so independent nodes overlap: async tasks run on
the event loop, sync tasks in worker threads. Retries, per-attempt timeouts and the local cache
apply to every task.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._exceptions import AsyncrunError, ExecutionTimedOutError, TaskFailedError
from ._cache import LocalCache
from ._foreign import ForeignEntity
from ._graph import START, Promise
from ._launch_plan import LaunchPlan
from ._task import Task, bind_inputs

if TYPE_CHECKING:
    from pathlib import Path

    from ._graph import Entity
    from ._workflow import Workflow


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
                if attempt == attempts:
                    raise ExecutionTimedOutError(
                        f"task {task.name} timed out after {task.config.timeout} "
                        f"(attempt {attempt} of {attempts})"
                    ) from None
            except AsyncrunError:
                raise
            except Exception as exc:
                if attempt == attempts:
                    raise TaskFailedError(
                        task.name,
                        type(exc).__name__,
                        str(exc),
                        traceback="".join(traceback.format_exception(exc)),
                    ) from exc
        if cache is not None:
            await anyio.to_thread.run_sync(cache.put, task, inputs, outputs)
        return outputs

    async def _call(self, task: Task, inputs: dict[str, Any]) -> Any:
        if task.is_async:
            return await task.fn(**inputs)
        # abandon_on_cancel lets a timeout return at once; the thread itself cannot be killed.
        return await anyio.to_thread.run_sync(lambda: task.fn(**inputs), abandon_on_cancel=True)

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
