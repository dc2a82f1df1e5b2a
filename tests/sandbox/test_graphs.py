"""Compiling registered flyteidl to the engine's graph (`sandbox._graphs`)."""

from __future__ import annotations

import pytest

from asyncrun import engine
from asyncrun._proto.flyteidl import core
from asyncrun.sandbox._graphs import dynamic_graph

TASK = core.Identifier(resource_type=core.ResourceType.TASK, project="p", domain="d", name="t", version="1")


def retries_of(node_retries: int | None, task_retries: int) -> int:
    template = core.TaskTemplate(
        id=TASK, metadata=core.TaskMetadata(retries=core.RetryStrategy(retries=task_retries))
    )
    metadata = core.NodeMetadata(
        name="t", retries=core.RetryStrategy(retries=node_retries) if node_retries is not None else None
    )
    node = core.Node(id="n0", metadata=metadata, task_node=core.TaskNode(reference_id=TASK))
    graph = dynamic_graph(core.DynamicJobSpec(nodes=[node], tasks=[template]), {}, {})
    kind = graph.nodes[0].kind
    assert isinstance(kind, engine.TaskCall)
    return kind.retries


@pytest.mark.parametrize(
    ("node_retries", "task_retries", "expected"),
    [(None, 3, 3), (0, 3, 3), (2, 3, 2), (5, 0, 5), (0, 0, 0)],
)
def test_a_node_retry_strategy_wins_only_when_it_sets_retries(
    node_retries: int | None, task_retries: int, expected: int
) -> None:
    assert retries_of(node_retries, task_retries) == expected
