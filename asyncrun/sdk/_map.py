"""`map_task`: run a task once per element of its list inputs (Flyte's array node)."""

from __future__ import annotations

from typing import Any, Optional

from .._exceptions import DefinitionError, UsageError
from ._graph import current_builder
from ._interface import Input, Interface, where
from ._task import Task

__all__ = ("MapTask", "map_task")


class MapTask:
    """A task mapped over lists: each input `x: T` of the task becomes `x: list[T]`, each output a list.

    With `min_success_ratio` below 1 (or `min_successes`) some elements may fail: their outputs are
    None, so output lists hold `T | None`.
    """

    kind = "map task"

    def __init__(
        self,
        task: Task,
        *,
        concurrency: int | None = None,
        min_success_ratio: float | None = None,
        min_successes: int | None = None,
    ) -> None:
        if not isinstance(task, Task):
            raise DefinitionError(f"map_task maps an @task, got {task!r}")
        if concurrency is not None and concurrency < 0:
            raise DefinitionError(f"{where(task.fn)}: map_task concurrency must be >= 0")
        if min_success_ratio is not None and not 0 <= min_success_ratio <= 1:
            raise DefinitionError(f"{where(task.fn)}: min_success_ratio must be between 0 and 1")
        if min_successes is not None and min_successes < 0:
            raise DefinitionError(f"{where(task.fn)}: min_successes must be >= 0")
        self.task = task
        self.concurrency = concurrency
        self.min_success_ratio = min_success_ratio
        self.min_successes = min_successes
        tolerant = min_successes is not None or (min_success_ratio is not None and min_success_ratio < 1)
        # flytekit's naming (`<module>.map_<fn>_<hash>-arraynode`); the tolerant variant has other
        # output types, so it is another task.
        suffix = "_tolerant" if tolerant else ""
        self.name = f"{task.fn.__module__}.map_{task.fn.__name__}{suffix}-arraynode"
        inputs = {
            name: Input(name, list[spec.type], description=spec.description)  # type: ignore[name-defined]
            for name, spec in task.interface.inputs.items()
        }
        outputs = {
            name: list[Optional[tp]] if tolerant else list[tp]  # type: ignore[valid-type] # noqa: UP045
            for name, tp in task.interface.outputs.items()
        }
        kind = task.interface.output_kind
        self.interface = Interface(inputs, outputs, "tuple" if kind == "namedtuple" else kind)

    def __repr__(self) -> str:
        return f"<map_task {self.task.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is not None:
            return builder.add_node(self, args, kwargs)
        if args:
            raise UsageError(f"call {self.name} with keyword arguments")
        from ._async_workflow import awaitable_call, current_caller

        caller = current_caller()
        if caller is not None:  # inside an async workflow: an awaitable, run by its caller
            return awaitable_call(caller, self, kwargs)
        import asyncio

        from ._executor import LocalExecutor

        async def run() -> Any:
            outputs = await LocalExecutor().run(self, kwargs)  # type: ignore[arg-type]
            return self.interface.return_from_outputs(outputs)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        return run()  # called from async code: an awaitable, as an async workflow's call is


def map_task(
    task: Task,
    *,
    concurrency: int | None = None,
    min_success_ratio: float | None = None,
    min_successes: int | None = None,
) -> MapTask:
    """Map `task` over lists: `map_task(square, concurrency=4)(x=[1, 2, 3])` gives `[1, 4, 9]`.

    Args:
        task: the task to run per element.
        concurrency: at most this many elements at once (None: all).
        min_success_ratio: the share of elements that must succeed (failed ones give None).
        min_successes: how many elements must succeed (wins over the ratio).
    """
    return MapTask(
        task, concurrency=concurrency, min_success_ratio=min_success_ratio, min_successes=min_successes
    )
