"""Async workflows: `@workflow async def pipeline(...)`, a body of plain async Python.

The body runs when the workflow runs. Each task call inside it returns an awaitable; awaited calls
run concurrently on the event loop (sync tasks in threads), so `asyncio.gather` fans out.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .._exceptions import UsageError
from ._task import Task, TaskConfig

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("AsyncWorkflow", "TaskCaller", "current_caller")


class TaskCaller:
    """How task calls inside an async workflow body run (in this process, or as child executions)."""

    async def call(self, entity: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from ._executor import LocalExecutor

        return await LocalExecutor().run(entity, inputs)


_caller: ContextVar[TaskCaller | None] = ContextVar("asyncrun_async_workflow_caller", default=None)


def current_caller() -> TaskCaller | None:
    """The caller of the async workflow running right now, if any."""
    return _caller.get()


def awaitable_call(caller: TaskCaller, entity: Any, kwargs: dict[str, Any]) -> Awaitable[Any]:
    """The awaitable a task call inside an async workflow body returns."""

    async def run() -> Any:
        outputs = await caller.call(entity, kwargs)
        return entity.interface.return_from_outputs(outputs)

    return run()


class AsyncWorkflow(Task):
    """A workflow whose `async def` body runs when the workflow runs (see the module docstring).

    Remotely it is registered and run as a task (flytekit's `@eager` model): its task calls become
    child executions, launched through asyncrun's client from inside that task.
    """

    kind = "async workflow"

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__(fn, TaskConfig())

    def __repr__(self) -> str:
        return f"<async workflow {self.name}>"

    async def run(self, inputs: dict[str, Any], caller: TaskCaller | None = None) -> dict[str, Any]:
        """Run the body with `inputs`; its task calls go through `caller` (default: this process)."""
        token = _caller.set(caller or TaskCaller())
        try:
            returned = await self.fn(**inputs)
        finally:
            _caller.reset(token)
        return self.interface.outputs_from_return(returned)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ._graph import current_builder

        builder = current_builder()
        if builder is not None:  # a node of a DAG workflow: the body runs when that node runs
            return builder.add_node(self, args, kwargs)
        if args:
            raise UsageError(f"call {self.name} with keyword arguments")
        from ._task import bind_inputs

        values = bind_inputs(self.name, self.interface, kwargs)

        async def run() -> Any:
            caller = current_caller()
            return self.interface.return_from_outputs(await self.run(values, caller))

        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        return run()
