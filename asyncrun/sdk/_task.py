"""`@task`: a typed Python function that runs as one unit, locally or in a container."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, overload

from .._exceptions import DefinitionError, UsageError
from ._graph import current_builder
from ._interface import MISSING, Interface, interface_from_function, where

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class TaskConfig:
    """How a task runs: everything given to `@task(...)`."""

    retries: int = 0
    cache: bool = False
    cache_version: str = ""
    timeout: timedelta | None = None
    environment: dict[str, str] = field(default_factory=dict)
    container_image: str | None = None
    interruptible: bool | None = None


class Task:
    """A task defined with `@task`. Call it inside a workflow to add a node, or outside to run it."""

    kind = "task"

    def __init__(self, fn: Callable[..., Any], config: TaskConfig) -> None:
        self.fn = fn
        self.config = config
        self.name = f"{fn.__module__}.{fn.__name__}"
        self.is_async = inspect.iscoroutinefunction(fn)
        self.interface: Interface = interface_from_function(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        if config.retries < 0:
            raise DefinitionError(f"{where(fn)}: retries must be >= 0, got {config.retries}")
        if config.cache and not config.cache_version:
            # Without a version a changed task body would keep returning stale outputs.
            object.__setattr__(config, "cache_version", "0")

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is not None:
            return builder.add_node(self, args, kwargs)
        if args:
            raise UsageError(f"call {self.name} with keyword arguments")
        return self.fn(**bind_inputs(self.name, self.interface, kwargs))


def bind_inputs(name: str, interface: Interface, given: dict[str, Any]) -> dict[str, Any]:
    """Check `given` against the interface and fill in defaults."""
    unknown = set(given) - set(interface.inputs)
    if unknown:
        raise UsageError(f"{name} has no input named {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for spec in interface.inputs.values():
        if spec.name in given:
            values[spec.name] = given[spec.name]
        elif spec.default is not MISSING:
            values[spec.name] = spec.default
        elif not spec.required:
            values[spec.name] = None
        else:
            raise UsageError(f"{name} needs input '{spec.name}'")
    return values


@overload
def task(fn: Callable[..., Any], /) -> Task: ...


@overload
def task(
    *,
    retries: int = 0,
    cache: bool = False,
    cache_version: str = "",
    timeout: timedelta | int | None = None,
    environment: dict[str, str] | None = None,
    container_image: str | None = None,
    interruptible: bool | None = None,
) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    retries: int = 0,
    cache: bool = False,
    cache_version: str = "",
    timeout: timedelta | int | None = None,
    environment: dict[str, str] | None = None,
    container_image: str | None = None,
    interruptible: bool | None = None,
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Declare a task. Works bare (`@task`) and with arguments (`@task(retries=2)`).

    Args:
        retries: how many times a failed attempt is retried.
        cache: reuse outputs of an earlier run with the same inputs and `cache_version`.
        cache_version: bump it to invalidate cached outputs.
        timeout: per-attempt limit, a `timedelta` or seconds.
        environment: environment variables set for the task.
        container_image: the image a remote run uses for this task.
        interruptible: whether a remote run may use interruptible machines.
    """
    config = TaskConfig(
        retries=retries,
        cache=cache,
        cache_version=cache_version,
        timeout=timedelta(seconds=timeout) if isinstance(timeout, int | float) else timeout,
        environment=dict(environment or {}),
        container_image=container_image,
        interruptible=interruptible,
    )
    if fn is not None:
        return Task(fn, config)
    return lambda f: Task(f, config)
