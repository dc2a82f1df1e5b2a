"""`scripts/bench/get.py` compares only what both sides read: the check before timing refuses node
trees that differ (ids at any level, the launch-plan node's child run) or that are too small."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))

from get import check_same_nodes


def asyncrun_node(node_id: str, children: list[dict[str, Any]] = (), child: str | None = None) -> dict:
    execution = {"project": "p", "domain": "d", "name": child} if child else None
    return {"node_id": node_id, "children": list(children), "child_execution": execution}


def flytekit_node(node_id: str, children: list[dict[str, Any]] = (), child: str | None = None) -> dict:
    runs = [{"name": child, "nodes": ["n0", "start-node"]}] if child else []
    return {"node_id": node_id, "children": list(children), "child_runs": runs}


def trees(node: Any, lp_child: str = "child1", sub: str = "n1-0-n1") -> list[dict[str, Any]]:
    return [
        node("start-node"),
        node("n0"),
        node("n1", [node("n1-0-n0"), node(sub)]),
        node("n2", child=lp_child),
        node("n3"),
        node("n4", [node("n4-0-n0"), node("n4-0-n1")]),
        node("n5"),
    ]


def sides(**flytekit_changes: str) -> tuple[str, str]:
    ours = json.dumps({"execution": {}, "nodes": trees(asyncrun_node)})
    theirs = json.dumps(list(reversed(trees(flytekit_node, **flytekit_changes))))  # order may differ
    return ours, theirs


def test_the_same_tree_in_any_order_passes_and_is_counted() -> None:
    assert check_same_nodes(*sides()) == (11, 2)


@pytest.mark.parametrize("change", [{"sub": "n1-0-n9"}, {"lp_child": "other"}])
def test_a_different_node_or_child_run_stops_the_benchmark(change: dict[str, str]) -> None:
    with pytest.raises(SystemExit, match="different nodes"):
        check_same_nodes(*sides(**change))


def test_a_tree_without_a_child_run_is_too_small() -> None:
    ours = json.dumps({"nodes": [asyncrun_node(f"n{i}") for i in range(9)]})
    theirs = json.dumps([flytekit_node(f"n{i}") for i in range(9)])
    with pytest.raises(SystemExit, match="smaller than the benchmark needs"):
        check_same_nodes(ours, theirs)
