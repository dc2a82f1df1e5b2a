"""Launch and terminate on behalf of a CLI: resolve the entity (cached), convert inputs, call `Client`."""

from __future__ import annotations

import hashlib
import time
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from .._exceptions import UsageError
from ..client import ExecutionId, ExecutionOptions

if TYPE_CHECKING:
    from ..client import Execution, RemoteEntity
    from ._poller import Endpoint
    from ._requests import Launch

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the one FlyteAdmin and Client.new_execution_name use
_PINNED_TTL = 3600.0  # a registered version never changes
_UNPINNED_TTL = 10.0  # "the active launch plan" may change at any time


def idempotent_name(key: str, project: str, domain: str) -> str:
    """The execution name for an idempotency key: the same key in one project/domain names one run.

    A retried or re-run launch with the same key therefore meets ALREADY_EXISTS, and `Client.run`
    attaches to the existing run only if its entity and inputs match.
    """
    digest = int.from_bytes(hashlib.sha256(f"{project}\0{domain}\0{key}".encode()).digest(), "big")
    chars = []
    for _ in range(19):
        digest, index = divmod(digest, len(_NAME_ALPHABET))
        chars.append(_NAME_ALPHABET[index])
    return "a" + "".join(chars)


def execution_options(raw: dict[str, Any]) -> ExecutionOptions:
    """`ExecutionOptions` from a JSON object; unknown keys are a usage error, not silently dropped."""
    known = {f.name for f in fields(ExecutionOptions)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(
            f"unknown execution option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    values = dict(raw)
    if "tags" in values:
        if not isinstance(values["tags"], list):
            raise UsageError("option tags must be a list of strings")
        values["tags"] = tuple(values["tags"])
    try:
        return ExecutionOptions(**values)
    except TypeError as exc:
        raise UsageError(f"bad execution options: {exc}") from None


class Launcher:
    """Launches registered entities through an endpoint's `Client`, keeping fetched entities warm."""

    def __init__(self) -> None:
        self._entities: dict[tuple[str, ...], tuple[float, RemoteEntity]] = {}

    async def entity(self, endpoint: Endpoint, project: str, domain: str, request: Launch) -> RemoteEntity:
        key = (endpoint.name, project, domain, request.kind, request.entity, request.version or "")
        cached = self._entities.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        client = endpoint.client
        fetch = {
            "launch_plan": client.fetch_launch_plan,
            "workflow": client.fetch_workflow,
            "task": client.fetch_task,
        }[request.kind]
        await endpoint.call_slot()
        entity = await fetch(request.entity, request.version, project=project, domain=domain)
        ttl = _PINNED_TTL if request.version else _UNPINNED_TTL
        self._entities[key] = (time.monotonic() + ttl, entity)
        return entity

    async def launch(
        self, endpoint: Endpoint, project: str, domain: str, request: Launch
    ) -> tuple[Execution, bool]:
        """Run the entity; returns the execution and whether it was created now (False: attached)."""
        from ..sdk._type_engine import from_jsonable

        entity = await self.entity(endpoint, project, domain, request)
        values: dict[str, Any] = {}
        for input_name, raw in request.inputs.items():
            spec = entity.interface.inputs.get(input_name)
            # Unknown names go through as they are: Client.run reports them with the entity's inputs.
            values[input_name] = from_jsonable(raw, spec.type) if spec is not None else raw
        name = request.name
        if name is None and request.idempotency_key:
            name = idempotent_name(request.idempotency_key, project, domain)
        await endpoint.call_slot()
        execution = await endpoint.client.run(
            entity,
            values,
            name=name,
            options=execution_options(request.options),
            project=project,
            domain=domain,
        )
        return execution, not execution.attached

    async def terminate(self, endpoint: Endpoint, ex_id: ExecutionId, cause: str) -> None:
        await endpoint.call_slot()
        await endpoint.client.terminate(ex_id, cause)
