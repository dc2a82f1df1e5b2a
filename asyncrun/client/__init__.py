"""The async client of FlyteAdmin: `async with Client.from_config() as client: await client.run(...)`."""

from __future__ import annotations

from ._client import Client, new_execution_name
from ._config import ClientConfig, load_config
from ._errors import map_grpc_errors
from ._many import AbortResult, BatchRun
from ._nodes import Attempt, NodeExecution, TaskLogLink
from ._signals import Signal
from ._types import EntityId, Execution, ExecutionError, ExecutionId, ExecutionOptions, Phase, RemoteEntity
from ._watcher import ExecutionWatcher, PollResult

__all__ = (
    "AbortResult",
    "Attempt",
    "BatchRun",
    "Client",
    "ClientConfig",
    "EntityId",
    "Execution",
    "ExecutionError",
    "ExecutionId",
    "ExecutionOptions",
    "ExecutionWatcher",
    "NodeExecution",
    "Phase",
    "PollResult",
    "RemoteEntity",
    "Signal",
    "TaskLogLink",
    "load_config",
    "map_grpc_errors",
    "new_execution_name",
)
