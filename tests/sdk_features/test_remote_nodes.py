"""What only a remote run shows: a dynamic task's children are node executions of their own (built
from its futures.pb), and approve / wait_for_input gates released through FlyteRemote."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from .conftest import asyncrun

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


def remote_for(endpoint: str) -> Any:
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    return FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True),
        default_project="flytesnacks",
        default_domain="development",
    )


def node_ids(endpoint: str, name: str) -> list[str]:
    """Every node execution of the run, children included (FlyteAdmin's ListNodeExecutions by parent)."""
    remote = remote_for(endpoint)
    execution_id = remote.fetch_execution(name=name).id
    found: list[str] = []

    def walk(parent: str | None) -> None:
        page, _ = remote.client.list_node_executions(execution_id, limit=100, unique_parent_id=parent)
        for node in page:
            found.append(node.id.node_id)
            if node.metadata.is_parent_node or node.metadata.is_dynamic:
                walk(node.id.node_id)

    walk(None)
    return found


def release(endpoint: str, name: str, signal_id: str, how: str, value: Any = None) -> dict[str, Any]:
    """Wait (bounded) for the gate to ask for `signal_id`, release it via FlyteRemote, wait for the end."""
    remote = remote_for(endpoint)
    deadline = time.monotonic() + 120
    while not any(s.id.signal_id == signal_id for s in remote.list_signals(name)):
        assert time.monotonic() < deadline, f"the gate never asked for {signal_id}"
        time.sleep(0.2)
    if how == "approve":
        remote.approve(signal_id, name)
    elif how == "reject":
        remote.reject(signal_id, name)
    else:
        remote.set_signal(signal_id, name, value)
    execution = remote.wait(
        remote.fetch_execution(name=name), timeout=timedelta(minutes=3), poll_interval=timedelta(seconds=1)
    )
    outputs = {}
    if execution.is_successful:
        outputs = {key: execution.outputs.get(key) for key in execution.outputs}
    return {"outputs": outputs, "phase": execution.closure.phase}


async def test_a_dynamic_tasks_children_are_node_executions(sandbox_env, project: Path) -> None:
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--no-daemon", "--name", "dyn-run", str(project), "dyn", "--n", "3"
    )
    assert (code, out.strip()) == (0, "6"), err
    ids = await anyio.to_thread.run_sync(node_ids, sandbox_env.endpoint, "dyn-run")
    # n0 (nested) expands into fan_out(1..3) and total; each fan_out expands again.
    assert len(ids) > 6, ids


@pytest.mark.parametrize(("how", "phase", "outputs"), [("approve", 4, {"o0": "small 2"}), ("reject", 6, {})])
async def test_approve_released_by_flyteremote(
    sandbox_env, project: Path, how: str, phase: int, outputs: dict
) -> None:
    name = f"approve-{how}"
    code, _, err = await asyncrun("run", "--remote", "--name", name, str(project), "approved", "--n", "2")
    assert code == 0, err
    ended = await anyio.to_thread.run_sync(release, sandbox_env.endpoint, name, "review", how)
    assert ended == {"outputs": outputs, "phase": phase}  # SUCCEEDED=4, FAILED=6


async def test_wait_for_input_released_by_flyteremote(sandbox_env, project: Path) -> None:
    code, _, err = await asyncrun("run", "--remote", "--name", "asking", str(project), "asked")
    assert code == 0, err
    ended = await anyio.to_thread.run_sync(release, sandbox_env.endpoint, "asking", "title", "set", "Dr")
    assert ended == {"outputs": {"o0": "hello Dr"}, "phase": 4}


async def test_gates_read_local_signals_from_the_environment(project: Path) -> None:
    env = {**os.environ, "ASYNCRUN_SIGNAL_REVIEW": "true", "ASYNCRUN_SIGNAL_TITLE": "Dr"}
    assert (await asyncrun("run", str(project), "approved", "--n", "2", env=env))[:2] == (0, "small 2\n")
    assert (await asyncrun("run", str(project), "asked", env=env))[:2] == (0, "hello Dr\n")
    env["ASYNCRUN_SIGNAL_REVIEW"] = "false"
    code, _, err = await asyncrun("run", str(project), "approved", "--n", "2", env=env)
    assert code == 1 and "reject" in err, err
    del env["ASYNCRUN_SIGNAL_TITLE"]
    code, _, err = await asyncrun("run", str(project), "asked", env=env)
    assert code != 0 and "ASYNCRUN_SIGNAL_TITLE" in err, err


def execution_names(endpoint: str) -> list[str]:
    remote = remote_for(endpoint)
    page, _ = remote.client.list_executions_paginated("flytesnacks", "development", limit=100)
    return [execution.id.name for execution in page]


async def test_an_async_workflows_tasks_are_child_executions(sandbox_env, project: Path) -> None:
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--no-daemon", "--name", "eager", str(project), "pipeline", "--n", "6"
    )
    assert (code, out.strip()) == (0, "20"), err
    names = await anyio.to_thread.run_sync(execution_names, sandbox_env.endpoint)
    # the parent, five squares (0, 1, 2, 4, 5) and the total, each an execution users can see
    assert "eager" in names and len(names) == 7, names
