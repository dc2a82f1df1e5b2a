"""What an environment plugs into the engine: value operations, recorder, task launcher, catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractAsyncContextManager

    from ._model import CacheStatus, Failure, Graph, LaunchPlanCall, Node, Phase, TaskCall, WaitForSignal

__all__ = [
    "AttemptResult",
    "BindingError",
    "Catalog",
    "LaunchPlanRunner",
    "NodeHandle",
    "Recorder",
    "SignalSource",
    "TaskLauncher",
    "UnsupportedValue",
    "ValueOps",
]

Values = dict[str, Any]


class BindingError(ValueError):
    """A binding reads an output that does not exist (a defect of the graph, not of a task)."""


class UnsupportedValue(ValueError):
    """A value cannot be used the way a node asks (e.g. comparing a list in a branch condition)."""


class ValueOps(Protocol):
    """How the engine reads and builds values of one environment (Python objects, or core.Literals)."""

    def resolve(self, bindings: Any, results: Mapping[str, Mapping[str, Any]], where: str) -> Values:
        """The inputs a node's `bindings` stand for, given the outputs of the nodes before it.

        Raises:
            BindingError: a binding reads something that does not exist.
        """
        ...

    def primitive(self, value: Any) -> tuple[str, Any]:
        """(type tag, comparable Python value) of a primitive value, for branch conditions.

        Raises:
            UnsupportedValue: the value is not a primitive.
        """
        ...

    def items(self, value: Any) -> list[Any] | None:
        """The elements of a list value, or None when `value` is not a list."""
        ...

    def collection(self, items: list[Any]) -> Any:
        """A list value holding `items` (None entries stand for the null value)."""
        ...

    def error_value(self, message: str, node_id: str) -> Any:
        """The value a failure node's `err` input receives."""
        ...


class NodeHandle(Protocol):
    """One node execution as the environment records it."""

    unique_id: str

    async def queued(self, inputs: Mapping[str, Any]) -> None:
        """The node's inputs are known; it is QUEUED."""
        ...

    async def running(self) -> None:
        """The node started (a no-op once running)."""
        ...

    async def attempt_finished(self, attempt: int, failure: Failure | None) -> None:
        """Attempt `attempt` of a task node ended (successfully when `failure` is None)."""
        ...

    async def expanded(self) -> None:
        """The task built a graph (a dynamic task) that now runs as this node's children."""
        ...

    async def finished(
        self,
        phase: Phase,
        *,
        outputs: Mapping[str, Any] | None = None,
        failure: Failure | None = None,
        message: str = "",
        cache: CacheStatus | None = None,
        cache_key: Any = None,
    ) -> None:
        """The node ended in `phase` (SUCCEEDED with outputs, FAILED/TIMED_OUT with failure, …); a
        cached task node also gets its cache status and the key its catalog gave it."""
        ...


class Recorder(Protocol):
    """Creates node handles; `parent` is the handle of the branch, array or sub-workflow node around it."""

    def node(self, node: Node, unique_id: str, parent: NodeHandle | None) -> NodeHandle: ...


@dataclass(frozen=True)
class AttemptResult:
    """How one task attempt ended: outputs, a failure, or a graph to run for its outputs (a dynamic
    task: the graph runs as the node's children, and its outputs are the node's)."""

    outputs: Mapping[str, Any] | None = None
    failure: Failure | None = None
    graph: Graph | None = None


class TaskLauncher(Protocol):
    """Runs one attempt of a task (in this process, or as a subprocess)."""

    async def run_attempt(
        self,
        call: TaskCall,
        inputs: Mapping[str, Any],
        handle: NodeHandle,
        *,
        attempt: int,
        attempts: int,
        time_limit: float | None,
        environment: Mapping[str, str],
    ) -> AttemptResult:
        """Run attempt `attempt` (0-based) of `attempts`; stop it after `time_limit` seconds (a timed-out
        failure). `environment` holds variables the engine adds for this attempt (e.g. the array index).
        """
        ...


class LaunchPlanRunner(Protocol):
    """Runs a launch plan node (locally inline, in the sandbox as a child execution)."""

    async def launch(self, call: LaunchPlanCall, inputs: Mapping[str, Any], handle: NodeHandle) -> Values:
        """Run it and return its outputs.

        Raises:
            NodeFailed: it failed.
        """
        ...


class Catalog(Protocol):
    """Cached task outputs, keyed by the task, its cache version and interface, and the inputs.

    The engine asks for a node's `key` once and passes it to the other methods.
    """

    async def key(self, call: TaskCall, inputs: Mapping[str, Any]) -> Any:
        """The cache key of `call` with `inputs` (an opaque value, owned by one node execution).

        Raises:
            NodeFailed: no key can be computed for these inputs.
        """
        ...

    async def lookup(self, key: Any) -> Values | None:
        """The cached outputs for `key`, or None."""
        ...

    async def store(self, key: Any, outputs: Mapping[str, Any], *, overwrite: bool) -> None:
        """Cache `outputs` (an existing entry wins unless `overwrite`). A failure here does not fail the
        node: it reports CACHE_PUT_FAILURE."""
        ...

    def serialized(self, key: Any) -> AbstractAsyncContextManager[Values | None]:
        """For `cache_serialize`: wait until the outputs are cached (yields them) or this caller holds the
        key's reservation (yields None; compute and `store` inside, the reservation ends on exit)."""
        ...


class Recovery(Protocol):
    """The run a recovered run recovers (FlyteAdmin's RecoverExecution): what its nodes produced."""

    async def outputs(self, unique_id: str) -> Values | None:
        """The outputs of node `unique_id` if it succeeded in that run, else None (the node runs)."""
        ...


class SignalSource(Protocol):
    """Where gates wait for the signals of their run (the sandbox's SignalService store)."""

    async def wait(self, gate: WaitForSignal, handle: NodeHandle) -> Any:
        """Wait until the gate's signal has a value and return it."""
        ...
