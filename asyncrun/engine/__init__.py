"""One engine for workflow graphs: local runs and the sandbox both run on it.

The engine knows graphs (`Graph`, `Node` and the node kinds), schedules ready nodes concurrently,
resolves bindings through a `ValueOps`, runs task attempts through a `TaskLauncher` (with retries and
timeouts), and records every node through a `Recorder`. It imports neither gRPC, the CLI nor the
sandbox's store, and no protos: values are opaque to it.
"""

from __future__ import annotations

from ._engine import Engine, NodeFailed, child_id
from ._memory import MemoryRecorder, NodeRecordInMemory
from ._model import (
    ArrayMap,
    Branch,
    CacheStatus,
    Comparison,
    Condition,
    Conjunction,
    Failure,
    Graph,
    LaunchPlanCall,
    Node,
    NodeKind,
    Operand,
    Phase,
    Sleep,
    SubWorkflow,
    TaskCall,
    WaitForSignal,
)
from ._protocols import (
    AttemptResult,
    BindingError,
    Catalog,
    LaunchPlanRunner,
    NodeHandle,
    Recorder,
    Recovery,
    SignalSource,
    TaskLauncher,
    UnsupportedValue,
    ValueOps,
)

__all__ = [
    "ArrayMap",
    "AttemptResult",
    "BindingError",
    "Branch",
    "CacheStatus",
    "Catalog",
    "Comparison",
    "Condition",
    "Conjunction",
    "Engine",
    "Failure",
    "Graph",
    "LaunchPlanCall",
    "LaunchPlanRunner",
    "MemoryRecorder",
    "Node",
    "NodeFailed",
    "NodeHandle",
    "NodeKind",
    "NodeRecordInMemory",
    "Operand",
    "Phase",
    "Recorder",
    "Recovery",
    "SignalSource",
    "Sleep",
    "SubWorkflow",
    "TaskCall",
    "TaskLauncher",
    "UnsupportedValue",
    "ValueOps",
    "WaitForSignal",
    "child_id",
]
