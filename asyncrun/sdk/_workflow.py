"""`@workflow`: a DAG of task, workflow and launch plan calls, built once when it is defined."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError, UsageError
from ._graph import (
    START,
    Node,
    Promise,
    WorkflowBuilder,
    current_builder,
    promises_in,
    reset_builder,
    set_builder,
)
from ._interface import Interface, interface_from_function, where
from ._task import bind_inputs

if TYPE_CHECKING:
    from collections.abc import Callable


class Workflow:
    """A workflow defined with `@workflow`.

    Its body runs once, at definition time, with promises for inputs; task calls inside it become
    `nodes`. Calling the workflow outside another workflow runs it locally.
    """

    kind = "workflow"

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = f"{fn.__module__}.{fn.__name__}"
        self.interface: Interface = interface_from_function(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.nodes: list[Node] = []
        self.output_bindings: dict[str, Any] = {}
        self._compile()

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"

    def _compile(self) -> None:
        builder = WorkflowBuilder(self.fn)
        token = set_builder(builder)
        try:
            inputs = {name: Promise(START, name, spec.type) for name, spec in self.interface.inputs.items()}
            returned = self.fn(**inputs)
        finally:
            reset_builder(token)
        self.nodes = builder.nodes
        try:
            outputs = self.interface.outputs_from_return(returned)
        except TypeError as exc:
            raise DefinitionError(f"{where(self.fn)}: {exc}") from None
        for name, value in outputs.items():
            if value is None and self.interface.outputs[name] is not type(None):
                raise DefinitionError(
                    f"{where(self.fn)}: output '{name}' is declared but nothing is returned"
                )
            for promise in promises_in(value):
                builder.check_promise(
                    self.fn.__code__.co_firstlineno,
                    self.name,
                    f"output {name}",
                    promise,
                    self.interface.outputs[name],
                )
        self.output_bindings = outputs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is not None:
            return builder.add_node(self, args, kwargs)
        if args:
            raise UsageError(f"call {self.name} with keyword arguments")
        from ._executor import LocalExecutor

        values = bind_inputs(self.name, self.interface, kwargs)

        async def run() -> Any:
            outputs = await LocalExecutor().run(self, values)
            return self.interface.return_from_outputs(outputs)

        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        return run()  # inside a running loop the caller awaits it


def workflow(fn: Callable[..., Any]) -> Workflow:
    """Declare a workflow. Calls inside its body take keyword arguments and build the DAG."""
    return Workflow(fn)
