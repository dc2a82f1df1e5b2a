"""`@task`: a typed Python function that runs as one unit, locally or in a container."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, overload

from .._exceptions import DefinitionError, UsageError
from ._graph import current_builder
from ._interface import MISSING, Interface, interface_from_function, where
from ._resources import Resources, Secret

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


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
    cache_serialize: bool = False
    requests: Resources | None = None
    limits: Resources | None = None
    secret_requests: tuple[Secret, ...] = ()


class Task:
    """A task defined with `@task`. Call it inside a workflow to add a node, or outside to run it."""

    kind = "task"
    is_dynamic = False  # set by @dynamic: the body builds a graph when the task runs

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
        if config.cache_serialize and not config.cache:
            raise DefinitionError(f"{where(fn)}: cache_serialize=True needs cache=True")
        for resources in (config.requests, config.limits):
            if resources is not None and not isinstance(resources, Resources):
                raise DefinitionError(f"{where(fn)}: requests and limits take Resources(...)")
            if resources is not None:
                try:
                    resources.entries()
                except DefinitionError as exc:
                    raise DefinitionError(f"{where(fn)}: {exc}") from None
        for secret in config.secret_requests:
            if not isinstance(secret, Secret):
                raise DefinitionError(f"{where(fn)}: secret_requests takes Secret(group=..., key=...) items")

    def __repr__(self) -> str:
        return f"<task {self.name}>"

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
    cache_serialize: bool = False,
    requests: Resources | None = None,
    limits: Resources | None = None,
    secret_requests: Sequence[Secret] = (),
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
    cache_serialize: bool = False,
    requests: Resources | None = None,
    limits: Resources | None = None,
    secret_requests: Sequence[Secret] = (),
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
        cache_serialize: run at most one computation per cache key at a time (others wait for it).
        requests: the CPU, memory, GPU and scratch disk the task requests (`Resources(cpu="1")`).
        limits: the most the task may use.
        secret_requests: secrets the task reads (`Secret(group=, key=)`), delivered as Flyte does.
    """
    config = TaskConfig(
        retries=retries,
        cache=cache,
        cache_version=cache_version,
        timeout=timedelta(seconds=timeout) if isinstance(timeout, int | float) else timeout,
        environment=dict(environment or {}),
        container_image=container_image,
        interruptible=interruptible,
        cache_serialize=cache_serialize,
        requests=requests,
        limits=limits,
        secret_requests=tuple(secret_requests),
    )
    if fn is not None:
        return Task(fn, config)
    return lambda f: Task(f, config)
