"""flytekit tasks, workflows and launch plans found in a user's module, adapted for asyncrun.

Discovery follows `pyflyte run FILE --help` (flytekit's `get_entities_in_file`): every module-level
name bound to a `WorkflowBase`, `PythonTask` or `LaunchPlan`, imported ones included, under its
variable name. Local runs call the entity as pyflyte does (flytekit's own local execution).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .._exceptions import DefinitionError, TaskFailedError
from ..sdk import _type_engine as te
from ..sdk._foreign import ForeignEntity
from ..sdk._interface import MISSING, Input, Interface
from ._support import check_flytekit_version
from ._types import asyncrun_type, from_flytekit, to_flytekit

if TYPE_CHECKING:
    from types import ModuleType

    from .._proto.flyteidl import core
    from ..client._serialize import RegistrationPlan, SerializationSettings

__all__ = ("FlytekitEntity", "adapt", "flytekit_entities")

# flytekit's context stack, serializer and type engine are process-wide and not thread-safe: one
# flytekit operation at a time, each in a worker thread (it may block, or run its own event loop).
FLYTEKIT_LOCK = threading.Lock()
NoneType = type(None)


def flytekit_entities(module: ModuleType) -> list[tuple[str, ForeignEntity]]:
    """The flytekit entities bound at module level, by variable name (what pyflyte lists).

    Raises:
        ConfigError: the installed flytekit is outside the supported range.
    """
    check_flytekit_version()
    from flytekit.core.base_task import PythonTask
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    source = Path(module.__file__ or "")
    found: list[tuple[str, ForeignEntity]] = []
    for name, value in sorted(vars(module).items()):
        if isinstance(value, WorkflowBase | PythonTask | LaunchPlan):
            found.append((name, FlytekitEntity(value, source)))
    return found


def adapt(obj: Any) -> FlytekitEntity:
    """A flytekit entity object (from user code, for `Client.run`) as an asyncrun entity.

    Raises:
        UsageError: `obj` is not a flytekit task, workflow or launch plan.
    """
    import sys

    from .._exceptions import UsageError

    check_flytekit_version()
    from flytekit.core.base_task import PythonTask
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    if not isinstance(obj, WorkflowBase | PythonTask | LaunchPlan):
        raise UsageError(f"{obj!r} is not a flytekit task, workflow or launch plan")
    target = obj.workflow if isinstance(obj, LaunchPlan) else obj
    module = sys.modules.get(getattr(target, "instantiated_in", "") or "") or sys.modules.get(
        target.name.rpartition(".")[0]
    )
    file = getattr(module, "__file__", None)
    if not file:
        raise UsageError(f"cannot find the source file of {target.name} to package it")
    return FlytekitEntity(obj, Path(file).resolve())


class FlytekitEntity(ForeignEntity):
    """One flytekit task, workflow or launch plan."""

    def __init__(self, obj: Any, source_file: Path) -> None:
        from flytekit.core.launch_plan import LaunchPlan
        from flytekit.core.workflow import WorkflowBase

        self.obj = obj
        self.source_file = source_file
        self.name = obj.name
        if isinstance(obj, LaunchPlan):
            self.kind = "launch plan"
        elif isinstance(obj, WorkflowBase):
            self.kind = "workflow"
        else:
            self.kind = "task"
        target = obj.workflow if self.kind == "launch plan" else obj
        self.__doc__ = _docstring(target)
        self.fixed_inputs = {}
        if self.kind == "launch plan":
            open_names = set(obj.parameters.parameters)
            types = obj.python_interface.inputs
            self.fixed_inputs = {
                name: from_flytekit(value, types[name])
                for name, value in obj.saved_inputs.items()
                if name not in open_names and name in types
            }

    def __repr__(self) -> str:
        return f"<flytekit {self.kind} {self.name}>"

    @property
    def workflow_name(self) -> str:
        return str(self.obj.workflow.name) if self.kind == "launch plan" else ""

    @functools.cached_property
    def interface(self) -> Interface:
        pi = self.obj.python_interface
        variables = self.obj.interface.inputs
        inputs: dict[str, Input] = {}
        for name, (tp, default) in pi.inputs_with_defaults.items():
            if self.kind == "launch plan":
                if name not in self.obj.parameters.parameters:
                    continue  # fixed
                default = self.obj.saved_inputs.get(name, default)
            at = self._type(f"input '{name}'", tp)
            value: Any = MISSING
            if default is not None:
                value = from_flytekit(default, tp)
            elif at is bool:
                value = False  # pyflyte runs a bool without default as False
            description = variables[name].description if name in variables else ""
            inputs[name] = Input(name, at, value, "" if description == name else description)
        outputs = {name: self._type(f"output '{name}'", tp) for name, tp in pi.outputs.items()}
        kind = "none" if not outputs else "single" if len(outputs) == 1 else "tuple"
        return Interface(inputs, outputs, kind)

    def _type(self, what: str, tp: Any) -> Any:
        try:
            return asyncrun_type(tp)
        except te.UnsupportedTypeError as exc:
            raise DefinitionError(f"{self.kind} {self.name}: {what}: {exc}") from None

    def _flytekit_inputs(self, inputs: dict[str, Any], *, local: bool) -> dict[str, Any]:
        types = self.obj.python_interface.inputs
        values = {name: to_flytekit(value, types[name], local=local) for name, value in inputs.items()}
        for name, spec in self.interface.inputs.items():
            if name in values:
                continue
            if spec.default is MISSING and NoneType in (te.union_members(spec.type) or ()):
                values[name] = None  # as pyflyte: an Optional left out is sent as None
            elif spec.type is bool and spec.default is False and self._python_default(name) is None:
                values[name] = False
        return values

    def _python_default(self, name: str) -> Any:
        return self.obj.python_interface.inputs_with_defaults[name][1]

    # ------------------------------------------------------------------ local runs

    async def run_locally(
        self, inputs: dict[str, Any], *, overwrite_cache: bool, envvars: dict[str, str]
    ) -> dict[str, Any]:
        values = self._flytekit_inputs(inputs, local=True)
        return await anyio.to_thread.run_sync(self._run_sync, values, overwrite_cache, envvars)

    def _run_sync(
        self, values: dict[str, Any], overwrite_cache: bool, envvars: dict[str, str]
    ) -> dict[str, Any]:
        from flytekit import FlyteContextManager

        env = dict(envvars)
        if overwrite_cache:
            env["FLYTE_LOCAL_CACHE_OVERWRITE"] = "true"
        with FLYTEKIT_LOCK, _environment(env):
            context = FlyteContextManager.current_context().new_builder()
            with FlyteContextManager.with_context(context):
                try:
                    returned = self.obj(**values)
                    if inspect.iscoroutine(returned):  # @eager and async tasks
                        returned = asyncio.run(returned)
                except Exception as exc:
                    raise _task_failed(self.name, exc) from exc
        types = self.obj.python_interface.outputs
        names = list(types)
        if not names:
            return {}
        values_out = [returned] if len(names) == 1 else list(returned)
        return {
            name: from_flytekit(value, types[name]) for name, value in zip(names, values_out, strict=True)
        }

    # ------------------------------------------------------------------ remote runs

    def registration_plan(
        self, settings: SerializationSettings, *, code_md5: bytes, images: tuple[str, ...]
    ) -> RegistrationPlan:
        from ._serialize import registration_plan

        with FLYTEKIT_LOCK:
            return registration_plan(self, settings, code_md5=code_md5, images=images)

    def input_literals(self, values: dict[str, Any]) -> core.LiteralMap:
        from ._serialize import input_literals

        with FLYTEKIT_LOCK:
            return input_literals(self, self._flytekit_inputs(values, local=False))


def _docstring(obj: Any) -> str:
    fn = getattr(obj, "_task_function", None) or getattr(obj, "_workflow_function", None)
    return inspect.getdoc(fn) or "" if fn is not None else inspect.getdoc(obj) or ""


_FLYTEKIT_FAILURE = re.compile(r"^Error encountered while executing '([^']+)':\s*(.*)$", re.DOTALL)


def _task_failed(entity: str, exc: BaseException) -> TaskFailedError:
    """The failure of a local run, naming the task that raised and its own message, on one line."""
    text = str(exc)
    # flytekit words it "Error encountered while executing 'mod.t':\n  <the task's message>".
    match = _FLYTEKIT_FAILURE.match(text)
    task, message = (match.group(1), match.group(2)) if match else (entity, text)
    return TaskFailedError(task, type(exc).__name__, " ".join(message.split()) or type(exc).__name__)


class _environment:
    """`--env` values set for the run, then put back (pyflyte leaves them in os.environ)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        self.saved = {key: os.environ.get(key) for key in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc: object) -> None:
        for key, old in self.saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
