"""A task node's output (`Client.logs`): one attempt's log as it is, or followed while the node runs.

The sandbox keeps each attempt's stdout and stderr in a file its log link names; a real cluster's
links (CloudWatch, Kubernetes, …) are not readable from here, so nothing is yielded for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .._exceptions import NotFoundError
from .._proto.flyteidl import admin, core
from ._nodes import Attempt, TaskLogLink, list_attempts, node_from_proto, pick_node

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._client import Client
    from ._nodes import NodeExecution
    from ._types import ExecutionId

_ATTEMPT_ENDED = {"SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED"}
_NODE_ENDED = {"SUCCEEDED", "FAILED", "ABORTED", "SKIPPED", "TIMED_OUT", "RECOVERED"}
_POLL = 0.5  # seconds between looks at a followed log and its attempt's phase
_CHUNK = 1 << 16


def local_log(link: TaskLogLink) -> Path | None:
    """The local file a log link names (it may not exist yet), or None for a remote link."""
    uri = link.uri.removeprefix("file://")
    if "://" in uri or not uri.startswith("/"):
        return None
    return Path(uri)


def _local_path(attempt: Attempt) -> Path | None:
    return next((path for path in map(local_log, attempt.logs) if path is not None), None)


def _picked(node: NodeExecution, attempt: int | None) -> Attempt:
    picked = [a for a in node.attempts if attempt is None or a.number == attempt]
    if not picked:
        raise NotFoundError(f"node {node.node_id} has no attempt {attempt}")
    return picked[-1]


async def read_logs(
    client: Client, ex_id: ExecutionId, node: str | None, attempt: int | None
) -> AsyncIterator[str]:
    """The lines of one attempt's log as they are now (see `Client.logs`)."""
    chosen = pick_node(await client.nodes(ex_id), node)
    if chosen is None or not chosen.attempts:
        where = f"node {node}" if node else "any task node"
        raise NotFoundError(f"no attempts of {where} in {ex_id.name}")
    path = _local_path(_picked(chosen, attempt))
    if path is None or not path.is_file():
        return
    async with await anyio.open_file(path, errors="replace") as lines:
        async for line in lines:
            yield line.rstrip("\n")


async def follow_logs(
    client: Client, ex_id: ExecutionId, node: str | None, attempt: int | None
) -> AsyncIterator[str]:
    """The lines of a task node's log as they are written, until it has ended (see `Client.logs`).

    Waits for the node to start; without `attempt`, goes on with each retry's log.
    """
    chosen = await _started_node(client, ex_id, node)
    assert chosen.raw is not None and chosen.raw.id is not None
    node_key: core.NodeExecutionIdentifier = chosen.raw.id
    current = _picked(chosen, attempt)
    while True:
        path = _local_path(current)
        if path is None:
            return  # not readable from here: the caller shows the links
        async for line in _tail(client, node_key, current.number, path):
            yield line
        if attempt is not None:
            return
        following = await _next_attempt(client, node_key, current.number)
        if following is None:
            return
        current = following


async def _started_node(client: Client, ex_id: ExecutionId, node: str | None) -> NodeExecution:
    """The node once it has an attempt; NotFoundError when the run ends without one."""
    while True:
        ended = (await client.get_execution(ex_id, with_outputs=False)).phase.is_terminal
        chosen = pick_node(await client.nodes(ex_id), node)
        if chosen is not None and chosen.attempts:
            return chosen
        if ended:
            where = f"node {node}" if node else "any task node"
            raise NotFoundError(f"no attempts of {where} in {ex_id.name}; the run has ended")
        await anyio.sleep(_POLL)


async def _attempt_phase(client: Client, node_key: core.NodeExecutionIdentifier, number: int) -> str:
    found = [a.phase for a in await list_attempts(client, node_key) if a.number == number]
    return found[0] if found else "UNDEFINED"


async def _tail(
    client: Client, node_key: core.NodeExecutionIdentifier, number: int, path: Path
) -> AsyncIterator[str]:
    """Lines of `path` as they come, until attempt `number` has ended and all it wrote is read."""
    position = 0
    pending = b""
    while True:
        # Phase first, then read: what the attempt wrote before it ended is all in the file by then.
        ended = await _attempt_phase(client, node_key, number) in _ATTEMPT_ENDED
        while chunk := await anyio.to_thread.run_sync(_read_from, path, position):
            position += len(chunk)
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                yield line.decode(errors="replace")
        if ended:
            if pending:
                yield pending.decode(errors="replace")
            return
        await anyio.sleep(_POLL)


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(position)
            return file.read(_CHUNK)
    except FileNotFoundError:
        return b""


async def _next_attempt(client: Client, node_key: core.NodeExecutionIdentifier, after: int) -> Attempt | None:
    """The attempt after `after` once it starts, or None when the node has ended without one."""
    while True:
        newer = [a for a in await list_attempts(client, node_key) if a.number > after]
        if newer:
            return newer[0]
        raw = await client._admin("get_node_execution", admin.NodeExecutionGetRequest(id=node_key), read=True)
        if node_from_proto(raw).phase in _NODE_ENDED:
            # A retry may have been recorded just before the node ended.
            newer = [a for a in await list_attempts(client, node_key) if a.number > after]
            return newer[0] if newer else None
        await anyio.sleep(_POLL)
