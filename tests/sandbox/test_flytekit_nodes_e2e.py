"""What the flytekit corpus (tests/sandbox/test_flytekit_corpus_remote.py, one case per feature) does not
show, with flytekit 1.16.31's real `pyflyte run --remote`: a failure handler's inputs and error, cache
statuses with `--overwrite-cache`, and a rejected approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from .pyflyte_remote import pyflyte_remote

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

WORKFLOWS = (Path(__file__).parent / "flytekit_nodes_wfs.py").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wfs.py").write_text(WORKFLOWS)
    return folder


def fetch(endpoint: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The execution's outputs (as Python values) and, by node id, (phase, cache status) of every node,
    children included."""
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True),
        default_project="flytesnacks",
        default_domain="development",
    )
    execution = remote.sync_execution(remote.fetch_execution(name=name), sync_nodes=True)
    outputs = {}
    if execution.outputs is not None and execution.closure.phase == 4:  # SUCCEEDED
        outputs = {key: execution.outputs.get(key) for key in execution.outputs}
    phases: dict[str, Any] = {}

    def walk(nodes: dict[str, Any]) -> None:
        for node_id, node in nodes.items():
            metadata = node.closure.task_node_metadata
            phases[node_id] = (node.closure.phase, metadata.cache_status if metadata else None)
            walk(getattr(node, "subworkflow_node_executions", None) or {})

    walk(execution.node_executions)
    return outputs, phases


async def run_and_fetch(
    sandbox: Any, project: Path, name: str, *args: str, options: tuple[str, ...] = ()
) -> tuple[int, str, dict, dict]:
    code, out = await pyflyte_remote(sandbox, project, "--name", name, *options, "wfs.py", *args)
    assert f"executions/{name}" in out, out  # the run was created
    outputs, phases = await anyio.to_thread.run_sync(fetch, sandbox.endpoint, name)
    return code, out, outputs, phases


async def test_failure_node_runs_with_inputs_and_error_and_the_run_fails(
    sandbox: Any, project: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "cleaned"
    code, out = await pyflyte_remote(
        sandbox, project, "--name", "guarded", "wfs.py", "guarded", "--n", "5", "--marker", str(marker)
    )
    assert code != 0 and "exploded with 5" in out
    text = marker.read_text()
    assert text.startswith("n=5 err=") and "exploded with 5" in text


async def test_cache_hit_and_overwrite_cache(sandbox: Any, project: Path) -> None:
    # CatalogCacheStatus: HIT=2, POPULATED=3
    code, out, first, nodes = await run_and_fetch(sandbox, project, "cache-1", "cached", "--n", "5")
    assert code == 0, out
    assert nodes["n0"][1] == 3
    code, out, second, nodes = await run_and_fetch(sandbox, project, "cache-2", "cached", "--n", "5")
    assert code == 0, out
    assert second == first and nodes["n0"][1] == 2
    code, out, third, nodes = await run_and_fetch(
        sandbox, project, "cache-3", "cached", "--n", "5", options=("--overwrite-cache",)
    )
    assert code == 0, out
    assert third != first and nodes["n0"][1] == 3
    code, out, fourth, nodes = await run_and_fetch(sandbox, project, "cache-4", "cached", "--n", "5")
    assert fourth == third and nodes["n0"][1] == 2


def reject_gate(endpoint: str, name: str, signal_id: str) -> dict[str, Any]:
    """Wait (bounded) for the run's gate to ask for `signal_id`, reject it through FlyteRemote, and
    wait for the run to end; returns its outputs ({} when it failed) and phase."""
    import time
    from datetime import timedelta

    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True),
        default_project="flytesnacks",
        default_domain="development",
    )
    deadline = time.monotonic() + 120
    while not any(s.id.signal_id == signal_id for s in remote.list_signals(name)):
        assert time.monotonic() < deadline, f"the gate never asked for {signal_id}"
        time.sleep(0.2)
    remote.reject(signal_id, name)
    execution = remote.wait(
        remote.fetch_execution(name=name), timeout=timedelta(minutes=3), poll_interval=timedelta(seconds=1)
    )
    outputs = {}
    if execution.is_successful:
        outputs = {key: execution.outputs.get(key) for key in execution.outputs}
    return {"outputs": outputs, "phase": execution.closure.phase}


async def test_a_rejected_approval_fails_the_run(sandbox: Any, project: Path) -> None:
    code, out = await pyflyte_remote(
        sandbox, project, "--name", "gate-reject", "wfs.py", "approval", "--n", "4", wait=False
    )
    assert code == 0, out
    ended = await anyio.to_thread.run_sync(reject_gate, sandbox.endpoint, "gate-reject", "ok-to-double")
    assert ended == {"outputs": {}, "phase": 6}  # FAILED
