"""A recorder that keeps node executions in memory (local runs, and the engine's own tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._model import CacheStatus, Failure, Node, Phase

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._protocols import NodeHandle

__all__ = ["MemoryRecorder", "NodeRecordInMemory"]


@dataclass
class NodeRecordInMemory:
    """One node execution: its phases in order, inputs, outputs, failure and attempts."""

    unique_id: str
    node: Node
    parent: str | None
    phases: list[Phase] = field(default_factory=list)
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    failure: Failure | None = None
    message: str = ""
    cache: CacheStatus | None = None
    cache_key: Any = None
    attempts: list[Failure | None] = field(default_factory=list)
    dynamic: bool = False

    @property
    def phase(self) -> Phase | None:
        return self.phases[-1] if self.phases else None

    async def queued(self, inputs: Mapping[str, Any]) -> None:
        self.inputs = dict(inputs)
        self.phases.append(Phase.QUEUED)

    async def running(self) -> None:
        if self.phase != Phase.RUNNING:
            self.phases.append(Phase.RUNNING)

    async def attempt_finished(self, attempt: int, failure: Failure | None) -> None:
        self.attempts.append(failure)

    async def expanded(self) -> None:
        self.dynamic = True

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
        self.phases.append(phase)
        self.outputs = dict(outputs) if outputs is not None else None
        self.failure, self.message, self.cache, self.cache_key = failure, message, cache, cache_key


@dataclass
class MemoryRecorder:
    """Keeps every node execution of a run, by unique id, in the order they were created."""

    nodes: dict[str, NodeRecordInMemory] = field(default_factory=dict)

    def node(self, node: Node, unique_id: str, parent: NodeHandle | None) -> NodeRecordInMemory:
        record = NodeRecordInMemory(unique_id, node, parent.unique_id if parent is not None else None)
        self.nodes[unique_id] = record
        return record
