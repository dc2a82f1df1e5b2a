"""A tiny environment for engine tests: Python values, tasks as async functions, an in-memory recorder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from asyncrun import engine


@dataclass(frozen=True)
class Ref:
    """A binding to output `var` of node `node` ("" is the graph's inputs)."""

    node: str
    var: str


def resolve(value: Any, results: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(value, Ref):
        if value.node not in results or value.var not in results[value.node]:
            raise engine.BindingError(f"{value.var!r} is missing from node {value.node!r}")
        return results[value.node][value.var]
    return value


class Values:
    def resolve(self, bindings: Any, results: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, Any]:
        return {name: resolve(value, results) for name, value in (bindings or {}).items()}

    def primitive(self, value: Any) -> tuple[str, Any]:
        for tag, tp in (("boolean", bool), ("integer", int), ("float", float), ("string", str)):
            if isinstance(value, tp):
                return tag, value
        raise engine.UnsupportedValue(f"{type(value).__name__} is not a primitive")

    def items(self, value: Any) -> list[Any] | None:
        return list(value) if isinstance(value, list) else None

    def collection(self, items: list[Any]) -> Any:
        return list(items)

    def error_value(self, message: str, node_id: str) -> Any:
        return {"message": message, "failed_node_id": node_id}


class Recoverable(Exception):
    """Raised by a test task: the attempt may be retried."""


Fn = Callable[..., Awaitable[dict[str, Any]]]


@dataclass
class Launcher:
    """Runs `TaskCall.task` (an async function returning an outputs dict); logs (event, task name)."""

    events: list[tuple[str, str]] = field(default_factory=list)

    async def run_attempt(
        self,
        call: engine.TaskCall,
        inputs: Mapping[str, Any],
        handle: engine.NodeHandle,
        *,
        attempt: int,
        attempts: int,
        time_limit: float | None,
        environment: Mapping[str, str],
    ) -> engine.AttemptResult:
        await handle.running()
        self.events.append(("start", handle.unique_id))
        try:
            with anyio.move_on_after(time_limit) as deadline:
                outputs = await call.task(**inputs)
            if deadline.cancelled_caught:
                return engine.AttemptResult(
                    failure=engine.Failure("TimeoutExpired", "timed out", recoverable=True, timed_out=True)
                )
        except Recoverable as exc:
            return engine.AttemptResult(
                failure=engine.Failure("USER:Recoverable", str(exc), recoverable=True)
            )
        except Exception as exc:
            return engine.AttemptResult(failure=engine.Failure(f"USER:{type(exc).__name__}", str(exc)))
        finally:
            self.events.append(("end", handle.unique_id))
        return engine.AttemptResult(outputs=outputs)


Key = tuple[str, tuple[tuple[str, Any], ...]]


@dataclass
class Catalog:
    entries: dict[Key, dict[str, Any]] = field(default_factory=dict)
    locks: dict[Key, anyio.Lock] = field(default_factory=dict)
    keys: list[Key] = field(default_factory=list)  # every key computed, in order
    fail_store: bool = False

    async def key(self, call: engine.TaskCall, inputs: Mapping[str, Any]) -> Key:
        key = call.name, tuple(sorted(inputs.items()))
        self.keys.append(key)
        return key

    async def lookup(self, key: Key) -> dict[str, Any] | None:
        return self.entries.get(key)

    async def store(self, key: Key, outputs: Mapping[str, Any], *, overwrite: bool) -> None:
        if self.fail_store:
            raise OSError("disk full")
        if overwrite or key not in self.entries:
            self.entries[key] = dict(outputs)

    @contextlib.asynccontextmanager
    async def serialized(self, key: Key) -> AsyncIterator[dict[str, Any] | None]:
        lock = self.locks.setdefault(key, anyio.Lock())
        async with lock:
            yield await self.lookup(key)


def make_engine(**options: Any) -> tuple[engine.Engine, engine.MemoryRecorder, Launcher]:
    recorder = engine.MemoryRecorder()
    launcher = Launcher()
    return engine.Engine(values=Values(), recorder=recorder, launcher=launcher, **options), recorder, launcher


def task_node(node_id: str, fn: Fn, upstream: tuple[str, ...] = (), **bindings: Any) -> engine.Node:
    return engine.Node(node_id, engine.TaskCall(fn, fn.__name__), bindings, upstream)
