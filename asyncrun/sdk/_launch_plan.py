"""Launch plans: a workflow with some inputs defaulted or fixed."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from .._exceptions import DefinitionError, InputError, UsageError
from ._graph import current_builder
from ._interface import MISSING, Input, Interface
from ._type_engine import from_jsonable
from ._workflow import Workflow


class LaunchPlan:
    """A named way to launch a workflow: `LaunchPlan.create("nightly", wf, default_inputs=…, fixed_inputs=…)`.

    Default inputs can be overridden at launch; fixed inputs cannot and are not shown as options.
    """

    kind = "launch plan"

    def __init__(
        self,
        name: str,
        workflow: Workflow,
        default_inputs: dict[str, Any],
        fixed_inputs: dict[str, Any],
    ) -> None:
        self.name = name
        self.workflow = workflow
        self.default_inputs = default_inputs
        self.fixed_inputs = fixed_inputs
        self.__doc__ = workflow.__doc__
        inputs: dict[str, Input] = {}
        for spec in workflow.interface.inputs.values():
            if spec.name in fixed_inputs:
                continue
            if spec.name in default_inputs:
                spec = dataclasses.replace(spec, default=default_inputs[spec.name])
            inputs[spec.name] = spec
        # The interface a caller sees: fixed inputs are gone, defaults replaced.
        self.interface = Interface(
            inputs,
            workflow.interface.outputs,
            workflow.interface.output_kind,
            workflow.interface.output_tuple,
        )

    @classmethod
    def create(
        cls,
        name: str,
        workflow: Workflow,
        *,
        default_inputs: dict[str, Any] | None = None,
        fixed_inputs: dict[str, Any] | None = None,
    ) -> LaunchPlan:
        """Create a launch plan for `workflow`, checking every input name and value now."""
        caller = sys._getframe(1)
        where = f"launch plan {name!r} ({caller.f_code.co_filename}:{caller.f_lineno})"
        if not isinstance(workflow, Workflow):
            raise DefinitionError(f"{where}: expected a @workflow, got {workflow!r}")
        default_inputs, fixed_inputs = dict(default_inputs or {}), dict(fixed_inputs or {})
        both = set(default_inputs) & set(fixed_inputs)
        if both:
            raise DefinitionError(f"{where}: {', '.join(sorted(both))} cannot be both default and fixed")
        checked: list[dict[str, Any]] = []
        for values in (default_inputs, fixed_inputs):
            converted = {}
            for key, value in values.items():
                spec = workflow.interface.inputs.get(key)
                if spec is None:
                    raise DefinitionError(f"{where}: {workflow.name} has no input named {key!r}")
                try:
                    converted[key] = from_jsonable(value, spec.type)
                except InputError as exc:
                    raise DefinitionError(f"{where}: input {key!r}: {exc}") from None
            checked.append(converted)
        return cls(name, workflow, checked[0], checked[1])

    def __repr__(self) -> str:
        return f"<launch plan {self.name} of {self.workflow.name}>"

    def workflow_inputs(self, given: dict[str, Any]) -> dict[str, Any]:
        """The workflow's inputs for a launch with `given` values."""
        fixed = set(given) & set(self.fixed_inputs)
        if fixed:
            raise UsageError(f"launch plan {self.name}: input {', '.join(sorted(fixed))} is fixed")
        values = {**given, **self.fixed_inputs}
        for key, spec in self.interface.inputs.items():
            if key not in values and spec.default is not MISSING:
                values[key] = spec.default
        return values

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is not None:
            return builder.add_node(self, args, kwargs)
        if args:
            raise UsageError(f"call launch plan {self.name} with keyword arguments")
        return self.workflow(**self.workflow_inputs(kwargs))
