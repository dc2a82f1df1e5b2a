"""The engine's graph: what the SDK's entities and registered flyteidl specs both compile to.

Values and bindings are opaque here (Python objects locally, `core.Literal`s in the sandbox); the
`ValueOps` of a run know how to resolve and inspect them. Nothing in this module imports protos.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ArrayMap",
    "Branch",
    "CacheStatus",
    "Comparison",
    "Condition",
    "Conjunction",
    "Failure",
    "Graph",
    "LaunchPlanCall",
    "Node",
    "NodeKind",
    "Operand",
    "Phase",
    "Sleep",
    "SubWorkflow",
    "TaskCall",
    "WaitForSignal",
]


class Phase(enum.Enum):
    """A node's phase; the names are FlyteAdmin's NodeExecution phases."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"
    ABORTED = "ABORTED"
    RECOVERED = "RECOVERED"  # outputs taken from the run this one recovers; the task did not run


class CacheStatus(enum.Enum):
    """What the cache did for a task node (FlyteAdmin's CatalogCacheStatus names)."""

    CACHE_DISABLED = "CACHE_DISABLED"
    CACHE_MISS = "CACHE_MISS"
    CACHE_HIT = "CACHE_HIT"
    CACHE_POPULATED = "CACHE_POPULATED"
    CACHE_PUT_FAILURE = "CACHE_PUT_FAILURE"
    CACHE_SKIPPED = "CACHE_SKIPPED"


@dataclass
class Failure:
    """Why an attempt or a node failed.

    Attributes:
        code: a short code (`USER:ValueError`, `TimeoutExpired`, `RetriesExhausted|…`).
        message: what users read.
        kind: "USER" or "SYSTEM" (whose fault it was; system failures have their own retry budget).
        recoverable: whether another attempt may succeed.
        timed_out: the attempt outlived its deadline.
        cause: the exception behind it, for in-process runs that re-raise it.
        raw: the environment's own error record (e.g. a `core.ExecutionError`), kept as given.
    """

    code: str
    message: str
    kind: str = "USER"
    recoverable: bool = False
    timed_out: bool = False
    cause: BaseException | None = None
    raw: Any = None


# ----------------------------------------------------------------------------------------------------
# Node kinds
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskCall:
    """Run a task: `task` is what the launcher and the catalog understand (an SDK Task, a TaskTemplate).

    Attributes:
        name: the task's name, for messages.
        retries: attempts after the first one for recoverable user errors.
        timeout: seconds per attempt, or None.
        cache: whether outputs are looked up in and stored to the run's catalog.
        cache_serialize: only one computation per cache key at a time.
    """

    task: Any
    name: str
    retries: int = 0
    timeout: float | None = None
    cache: bool = False
    cache_serialize: bool = False


@dataclass(frozen=True)
class SubWorkflow:
    """Run a graph inline; its nodes are children of this node."""

    graph: Graph


@dataclass(frozen=True)
class LaunchPlanCall:
    """Start a launch plan: `ref` is what the run's `LaunchPlanRunner` understands."""

    ref: Any
    name: str


@dataclass(frozen=True)
class Operand:
    """One side of a comparison: the branch node's input `var`, or a constant `value`."""

    var: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Comparison:
    """`left <operator> right`; operator is one of EQ, NEQ, GT, GTE, LT, LTE."""

    operator: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Conjunction:
    """`left AND right` or `left OR right` (both sides are always evaluated, as in propeller)."""

    operator: str
    left: Condition
    right: Condition


Condition = Comparison | Conjunction


@dataclass(frozen=True)
class Branch:
    """if/elif/else: the node of the first case whose condition holds runs; the others are SKIPPED.

    Attributes:
        cases: (condition, node) in order.
        else_node: runs when no condition holds.
        else_error: the failure message when no condition holds and there is no else node.
    """

    cases: tuple[tuple[Condition, Node], ...]
    else_node: Node | None = None
    else_error: str | None = None


@dataclass(frozen=True)
class Sleep:
    """A gate that succeeds, without outputs, after `seconds`."""

    seconds: float


@dataclass(frozen=True)
class WaitForSignal:
    """A gate that waits for a signal of its run: `approve` (a boolean; true passes the node's inputs on
    as its outputs, false fails it) or `signal` (the value becomes output `output_name`).

    Attributes:
        kind: "approve" or "signal".
        signal_id: the signal's name within the run.
        type: the value's type, as the run's `SignalSource` understands it.
        output_name: the output a `signal` gate's value is bound to.
        timeout: seconds to wait before the node fails; None waits forever.
    """

    kind: str
    signal_id: str
    type: Any = None
    output_name: str = "o0"
    timeout: float | None = None


@dataclass(frozen=True)
class ArrayMap:
    """Run `node` once per element of the list inputs (inputs named in `bound_inputs` are broadcast).

    Attributes:
        node: the sub-node template (a task node); index i runs as node id `n<i>`.
        parallelism: at most this many indices at once; None or 0 means all.
        min_successes: the run fails when fewer indices can still succeed.
        min_success_ratio: used when min_successes is None: ceil(ratio * size).
        bound_inputs: names not mapped over.
        output_names: the sub-node's outputs; each becomes a list in index order.
        single_input_file: each index's task attempt gets the array's whole inputs and picks its
            element by the index in its environment (flytekit's map tasks); its node records the slice.
    """

    node: Node
    parallelism: int | None = None
    min_successes: int | None = None
    min_success_ratio: float | None = None
    bound_inputs: frozenset[str] = frozenset()
    output_names: tuple[str, ...] = ()
    single_input_file: bool = False


NodeKind = TaskCall | SubWorkflow | LaunchPlanCall | Branch | Sleep | WaitForSignal | ArrayMap


@dataclass(frozen=True)
class Node:
    """One node of a graph.

    Attributes:
        id: the node's id in its graph.
        kind: what it runs.
        bindings: how its inputs are computed (opaque; resolved by the run's `ValueOps`).
        upstream: ids of the nodes it waits for (in the same graph).
        spec: the environment's own node record (e.g. the `core.Node`), for recorders.
    """

    id: str
    kind: NodeKind
    bindings: Any = None
    upstream: tuple[str, ...] = ()
    spec: Any = None


@dataclass(frozen=True)
class Graph:
    """A workflow: nodes, output bindings, and an optional failure node.

    Attributes:
        input_node: the node id promises use for the workflow's own inputs.
        fail_fast: the first failure cancels the nodes still running (else they finish first).
        failure_node: runs after a failure with the workflow's inputs; the run still fails.
        failure_error_input: the failure node's input that receives the error (flytekit's `err`).
        extra: what the environment keeps with the graph (e.g. its interface).
    """

    nodes: tuple[Node, ...]
    outputs: Any = None
    input_node: str = ""
    fail_fast: bool = True
    failure_node: Node | None = None
    failure_error_input: str | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
