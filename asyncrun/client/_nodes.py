"""A run's node tree: node executions, their attempts (task executions) and log links, as dataclasses.

`Client.nodes` reads it with `ListNodeExecutions` (children of parent nodes — sub-workflows, arrays,
dynamic nodes — through `unique_parent_id`) and `ListTaskExecutions` for the attempts of task nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import one_error
from .._proto.flyteidl import admin, core
from ._types import ExecutionError, ExecutionId

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from ._client import Client

_PAGE = 100
_END_NODE = "end-node"  # Flyte's bookkeeping nodes (start-node is kept: it holds the run's inputs)


@dataclass(frozen=True)
class TaskLogLink:
    """Where one attempt's log can be read."""

    name: str
    uri: str


@dataclass
class Attempt:
    """One attempt of a task node (a task execution)."""

    number: int
    phase: str
    task: str = ""
    error: ExecutionError | None = None
    logs: list[TaskLogLink] = field(default_factory=list)
    started_at: datetime | None = None
    duration: timedelta | None = None
    raw: Any = field(default=None, repr=False, compare=False)


@dataclass
class NodeExecution:
    """One node of a run: its phase, attempts, cache status, error and children (sub-nodes)."""

    node_id: str
    phase: str
    spec_node_id: str = ""
    retry_group: str = ""
    error: ExecutionError | None = None
    cache_status: str = ""
    child_execution: ExecutionId | None = None  # the run a launch-plan node started
    is_parent: bool = False
    is_dynamic: bool = False
    is_array: bool = False
    started_at: datetime | None = None
    duration: timedelta | None = None
    attempts: list[Attempt] = field(default_factory=list)
    children: list[NodeExecution] = field(default_factory=list)
    raw: Any = field(default=None, repr=False, compare=False)


def _error(raw: Any) -> ExecutionError | None:
    if raw is None:
        return None
    return ExecutionError(raw.code, raw.message, core.ExecutionErrorErrorKind(raw.kind).name)


def node_from_proto(raw: admin.NodeExecution) -> NodeExecution:
    closure = raw.closure or admin.NodeExecutionClosure()
    meta = raw.metadata or admin.NodeExecutionMetaData()
    child = None
    if closure.workflow_node_metadata is not None and closure.workflow_node_metadata.execution_id:
        ref = closure.workflow_node_metadata.execution_id
        child = ExecutionId(ref.project, ref.domain, ref.name)
    cache = ""
    if closure.task_node_metadata is not None:
        cache = core.CatalogCacheStatus(closure.task_node_metadata.cache_status).name
    node_id = raw.id.node_id if raw.id else ""
    return NodeExecution(
        node_id=node_id,
        phase=core.NodeExecutionPhase(closure.phase).name,
        spec_node_id=meta.spec_node_id or node_id,
        retry_group=meta.retry_group,
        error=_error(closure.error),
        cache_status=cache,
        child_execution=child,
        is_parent=meta.is_parent_node,
        is_dynamic=meta.is_dynamic,
        is_array=meta.is_array,
        started_at=closure.started_at,
        duration=closure.duration,
        raw=raw,
    )


def attempt_from_proto(raw: admin.TaskExecution) -> Attempt:
    closure = raw.closure or admin.TaskExecutionClosure()
    task = raw.id.task_id.name if raw.id and raw.id.task_id else ""
    return Attempt(
        number=raw.id.retry_attempt if raw.id else 0,
        phase=core.TaskExecutionPhase(closure.phase).name,
        task=task,
        error=_error(closure.error),
        logs=[TaskLogLink(log.name, log.uri) for log in closure.logs],
        started_at=closure.started_at,
        duration=closure.duration,
        raw=raw,
    )


async def list_nodes(client: Client, ex_id: ExecutionId, *, attempts: bool = True) -> list[NodeExecution]:
    """Every node of the run as a tree (parents hold their children), in start order."""
    wf_id = core.WorkflowExecutionIdentifier(project=ex_id.project, domain=ex_id.domain, name=ex_id.name)
    return await _level(client, wf_id, "", attempts)


async def _level(
    client: Client, wf_id: core.WorkflowExecutionIdentifier, parent: str, attempts: bool
) -> list[NodeExecution]:
    raws: list[admin.NodeExecution] = []
    token = ""
    while True:
        request = admin.NodeExecutionListRequest(
            workflow_execution_id=wf_id,
            limit=_PAGE,
            token=token,
            unique_parent_id=parent,
            sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING),
        )
        page = await client._admin("list_node_executions", request, read=True)
        raws += page.node_executions
        token = page.token
        if not token:
            break
    nodes = [node_from_proto(raw) for raw in raws if raw.id and raw.id.node_id != _END_NODE]

    async def fill(node: NodeExecution) -> None:
        if node.is_parent:
            node.children = await _level(client, wf_id, node.node_id, attempts)
        elif attempts and node.child_execution is None and node.node_id != "start-node":
            node.attempts = await list_attempts(client, node.raw.id)

    with one_error():
        async with anyio.create_task_group() as tg:
            for node in nodes:
                tg.start_soon(fill, node)
    return nodes


async def list_attempts(client: Client, node_id: core.NodeExecutionIdentifier) -> list[Attempt]:
    """The attempts (task executions) of one task node, oldest first."""
    request = admin.TaskExecutionListRequest(node_execution_id=node_id, limit=_PAGE)
    page = await client._admin("list_task_executions", request, read=True)
    return sorted((attempt_from_proto(raw) for raw in page.task_executions), key=lambda a: a.number)


def find_node(nodes: list[NodeExecution], node_id: str) -> NodeExecution | None:
    """The node named `node_id` (its unique id or its spec id) anywhere in the tree."""
    for node in nodes:
        if node_id in (node.node_id, node.spec_node_id):
            return node
        found = find_node(node.children, node_id)
        if found is not None:
            return found
    return None


def task_nodes(nodes: list[NodeExecution]) -> list[NodeExecution]:
    """Every node with attempts, depth first."""
    found: list[NodeExecution] = []
    for node in nodes:
        if node.attempts:
            found.append(node)
        found += task_nodes(node.children)
    return found


def pick_node(nodes: list[NodeExecution], node_id: str | None) -> NodeExecution | None:
    """`node_id`'s node, or (None) the last task node that ran."""
    if node_id:
        return find_node(nodes, node_id)
    candidates = task_nodes(nodes)
    return candidates[-1] if candidates else None
