"""`@workflow`: a DAG of task, workflow and launch plan calls, built once when it is defined."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError, UsageError
from ._graph import (
    START,
    Node,
    Promise,
    VoidPromise,
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

    def __init__(self, fn: Callable[..., Any], on_failure: Any = None) -> None:
        self.fn = fn
        self.on_failure = on_failure
        self.name = f"{fn.__module__}.{fn.__name__}"
        self.interface: Interface = interface_from_function(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.nodes: list[Node] = []
        self.output_bindings: dict[str, Any] = {}
        self.failure_node: Node | None = None
        self._compile()
        if on_failure is not None:
            self.failure_node = self._failure_node(on_failure)

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
            if (value is None or isinstance(value, VoidPromise)) and self.interface.outputs[name] is not type(
                None
            ):
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

    def _failure_node(self, handler: Any) -> Node:
        """Node `fn0`: the handler called with the workflow's inputs it declares (and `err`)."""
        if getattr(handler, "kind", None) not in ("task", "workflow"):
            raise DefinitionError(f"{where(self.fn)}: on_failure takes a task or workflow, got {handler!r}")
        bindings: dict[str, Any] = {}
        for spec in sorted(handler.interface.inputs.values(), key=lambda spec: spec.name):  # as flytekit
            if spec.name == "err":
                bindings["err"] = None  # replaced by the failure's message when the handler runs
            elif spec.name in self.interface.inputs:
                bindings[spec.name] = Promise(START, spec.name, self.interface.inputs[spec.name].type)
            elif spec.required:
                raise DefinitionError(
                    f"{where(self.fn)}: failure handler {handler.name} takes input '{spec.name}', which "
                    "the workflow does not have; it may take the workflow's inputs and err: str | None"
                )
        return Node("fn0", handler, bindings, [])

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


def workflow(fn: Callable[..., Any] | None = None, /, *, on_failure: Any = None) -> Any:
    """Declare a workflow. Calls inside its body take keyword arguments and build the DAG.

    Works bare (`@workflow`) and with arguments. An `async def` body is an async workflow
    (`AsyncWorkflow`): it runs when the workflow runs, awaiting task calls.

    Args:
        on_failure: a task or workflow that runs when the workflow fails, with the workflow's inputs
            it declares and, if it declares it, `err: str | None` (the failure's message). The run
            still fails.
    """

    def make(f: Callable[..., Any]) -> Any:
        import inspect

        if inspect.iscoroutinefunction(f):
            from ._async_workflow import AsyncWorkflow

            if on_failure is not None:
                raise DefinitionError(f"{where(f)}: on_failure is for DAG workflows; use try/except")
            return AsyncWorkflow(f)
        return Workflow(f, on_failure)

    return make(fn) if fn is not None else make
