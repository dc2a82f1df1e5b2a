"""The async client of FlyteAdmin: `async with Client.from_config() as client: await client.run(...)`."""

from __future__ import annotations

from ._client import Client, new_execution_name
from ._config import ClientConfig, load_config
from ._errors import map_grpc_errors
from ._types import EntityId, Execution, ExecutionError, ExecutionId, ExecutionOptions, Phase, RemoteEntity

__all__ = (
    "Client",
    "ClientConfig",
    "EntityId",
    "Execution",
    "ExecutionError",
    "ExecutionId",
    "ExecutionOptions",
    "Phase",
    "RemoteEntity",
    "load_config",
    "map_grpc_errors",
    "new_execution_name",
)
