"""Walking the nodes of a flyteidl workflow: those nested in branches and array nodes included.

Shared by the sandbox's compiler (what a workflow references) and the client (which gate a node id
names), which must agree on where nodes can hide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ._proto.flyteidl import core


def inner_nodes(node: core.Node) -> Iterator[core.Node]:
    """The nodes inside `node`: the cases of a branch and the sub-node of an array node (recursively)."""
    if node.branch_node is not None and node.branch_node.if_else is not None:
        block = node.branch_node.if_else
        for case in [block.case, *block.other]:
            if case is not None and case.then_node is not None:
                yield case.then_node
                yield from inner_nodes(case.then_node)
        if block.else_node is not None:
            yield block.else_node
            yield from inner_nodes(block.else_node)
    if node.array_node is not None and node.array_node.node is not None:
        yield node.array_node.node
        yield from inner_nodes(node.array_node.node)


def all_nodes(nodes: Iterable[core.Node]) -> Iterator[core.Node]:
    """Each of `nodes`, followed by the nodes inside it."""
    for node in nodes:
        yield node
        yield from inner_nodes(node)
