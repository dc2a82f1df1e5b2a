"""`@dynamic`: a task whose body runs when the task runs and builds the workflow it then runs.

The body gets real input values, so plain Python control flow works; task, workflow and launch plan
calls inside it become nodes (as in a `@workflow` body) of a graph that runs as the task's children.
Remotely the task process writes that graph as a `DynamicJobSpec` (`futures.pb`), as flytekit does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError
from ._graph import Node, WorkflowBuilder, promises_in, reset_builder, set_builder
from ._interface import where
from ._task import Task, task

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("build_dynamic", "dynamic")


def build_dynamic(dyn: Task, inputs: dict[str, Any]) -> tuple[list[Node], dict[str, Any]]:
    """Run the body of dynamic task `dyn` with `inputs`; return its nodes and output bindings."""
    builder = WorkflowBuilder(dyn.fn)
    token = set_builder(builder)
    try:
        returned = dyn.fn(**inputs)
    finally:
        reset_builder(token)
    try:
        outputs = dyn.interface.outputs_from_return(returned)
    except TypeError as exc:
        raise DefinitionError(f"{where(dyn.fn)}: {exc}") from None
    for name, value in outputs.items():
        for promise in promises_in(value):
            builder.check_promise(
                dyn.fn.__code__.co_firstlineno,
                dyn.name,
                f"output {name}",
                promise,
                dyn.interface.outputs[name],
            )
    return builder.nodes, outputs


def dynamic(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a dynamic task: `@dynamic` or `@dynamic(retries=1, ...)` (the options of `@task`).

    Its body runs at execution time with the real inputs; the calls it makes form a workflow that
    runs next, and whatever it returns (promises of those calls, or plain values) are its outputs.
    """

    def make(f: Callable[..., Any]) -> Task:
        made = task(**options)(f)
        made.is_dynamic = True
        return made

    return make(fn) if fn is not None else make
