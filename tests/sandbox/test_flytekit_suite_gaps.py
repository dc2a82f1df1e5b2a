"""What flytekit's own remote integration suite (scripts/compat/flytekit_remote_suite.sh) needs from the
sandbox that our other tests did not show, with flytekit 1.16.31's real `pyflyte run --remote` and
`FlyteRemote`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from .pyflyte_remote import pyflyte_remote

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

WORKFLOWS = (Path(__file__).parent / "flytekit_suite_wfs.py").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wfs.py").write_text(WORKFLOWS)
    return folder


def flyte_remote(endpoint: str) -> Any:
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    return FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True),
        default_project="flytesnacks",
        default_domain="development",
    )


def outputs_of(endpoint: str, name: str) -> dict[str, Any]:
    remote = flyte_remote(endpoint)
    execution = remote.fetch_execution(name=name)
    assert execution.closure.phase == 4, execution.closure.error  # SUCCEEDED
    return {key: execution.outputs.get(key) for key in execution.outputs}


@pytest.mark.parametrize(("flags", "expected"), [((), 0.5), (("--get_area",), 0.75)], ids=["echo", "area"])
async def test_echo_task_passes_its_inputs_on(sandbox, project, flags, expected) -> None:
    """flytekit's `Echo` task has no container: FlytePropeller's echo plugin returns its inputs as its
    outputs. The sandbox used to refuse the workflow at registration."""
    name = f"echo-{len(flags)}"
    code, out = await pyflyte_remote(sandbox, project, "--name", name, "wfs.py", "echo_wf", *flags)
    assert code == 0, out
    assert await anyio.to_thread.run_sync(outputs_of, sandbox.endpoint, name) == {"o0": expected}


def map_node_report(endpoint: str, name: str) -> tuple[list[int], int, list[tuple[int, int]]]:
    """The outputs, and node n0's task executions and their external resources as FlyteRemote syncs them."""
    remote = flyte_remote(endpoint)
    execution = remote.sync_execution(remote.fetch_execution(name=name), sync_nodes=True)
    attempts = execution.node_executions["n0"].task_executions
    resources = [(r.index, r.phase) for r in attempts[0].closure.metadata.external_resources]
    return execution.outputs["o0"], len(attempts), resources


async def test_a_map_tasks_indices_are_the_external_resources_of_one_task_execution(sandbox, project) -> None:
    """FlytePropeller reports an array node as one task execution whose `external_resources` are its
    indices; flytekit's `test_execute_workflow_with_maptask` reads them there."""
    code, out = await pyflyte_remote(sandbox, project, "--name", "mapped", "wfs.py", "mapped_wf")
    assert code == 0, out
    outputs, attempts, resources = await anyio.to_thread.run_sync(map_node_report, sandbox.endpoint, "mapped")
    assert outputs == [4, 5, 6]
    assert attempts == 1
    assert resources == [(0, 3), (1, 3), (2, 3)]  # each index SUCCEEDED


def dynamic_node_report(endpoint: str, name: str) -> tuple[list[int], list[str], list[tuple[int, int]]]:
    """The outputs, the dynamic node n0's children, and its map node's indices, as FlyteRemote syncs them."""
    remote = flyte_remote(endpoint)
    execution = remote.sync_execution(remote.fetch_execution(name=name), sync_nodes=True)
    children = execution.node_executions["n0"].subworkflow_node_executions
    attempts = children["n0-0-dn0"].task_executions
    resources = [(r.index, r.phase) for r in attempts[0].closure.metadata.external_resources]
    return execution.outputs["o0"], sorted(children), resources


async def test_a_dynamic_node_is_a_parent_node_with_its_workflow(sandbox, project) -> None:
    """A dynamic node is a parent node whose GetNodeExecutionData holds the workflow its task built, so
    FlyteRemote syncs its children (flytekit's `test_execution_workflow_with_maptask_in_dynamic`)."""
    code, out = await pyflyte_remote(sandbox, project, "--name", "dynmapped", "wfs.py", "dynamic_mapped_wf")
    assert code == 0, out
    outputs, children, resources = await anyio.to_thread.run_sync(
        dynamic_node_report, sandbox.endpoint, "dynmapped"
    )
    assert outputs == [2, 3, 4]
    assert "n0-0-dn0" in children
    assert resources == [(0, 3), (1, 3), (2, 3)]


def launching_node_report(endpoint: str, name: str) -> tuple[list[int], bool, dict[str, str]]:
    """The outputs, whether the dynamic node n1 is a parent, and its children's child runs' phases."""
    remote = flyte_remote(endpoint)
    execution = remote.sync_execution(remote.fetch_execution(name=name), sync_nodes=True)
    node = execution.node_executions["n1"]
    children = {
        node_id: child.closure.workflow_node_metadata.execution_id.name
        for node_id, child in node.subworkflow_node_executions.items()
        if child.closure.workflow_node_metadata is not None
    }
    return execution.outputs["o0"], node.metadata.is_parent_node, children


async def test_a_dynamic_node_that_calls_launch_plans_is_a_parent_node_too(sandbox, project) -> None:
    """The workflow a dynamic task built compiles with the interfaces of the launch plans it calls, so its
    node is a parent node whose children (launch-plan nodes, each naming its child run) FlyteRemote syncs."""
    args = ("--name", "dynlaunch", "wfs.py", "dynamic_launching_wf")
    code, out = await pyflyte_remote(sandbox, project, *args)
    assert code == 0, out
    outputs, is_parent, children = await anyio.to_thread.run_sync(
        launching_node_report, sandbox.endpoint, "dynlaunch"
    )
    assert outputs == [2, 3]
    assert is_parent
    assert sorted(children) == ["n1-0-dn0", "n1-0-dn1"], children
    assert all(children.values()), children  # each names the run it launched
