"""flytekit 1.16.31's real `pyflyte run --remote --wait` and FlyteRemote against a sandbox started here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from .pyflyte_remote import pyflyte_remote

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

BIN = Path(sys.executable).parent
PYFLYTE = str(BIN / "pyflyte")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

WORKFLOWS = (Path(__file__).parents[1] / "flytekit_wfs.py").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wfs.py").write_text(WORKFLOWS)
    return folder


async def pyflyte(sandbox, project: Path, *args: str) -> tuple[int, str]:
    return await pyflyte_remote(sandbox, project, *args)


def remote_outputs(endpoint: str, name: str, tp: type) -> dict:
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True),
        default_project="flytesnacks",
        default_domain="development",
    )
    execution = remote.sync(remote.fetch_execution(name=name))
    assert execution.is_done
    return {key: execution.outputs.get(key, as_type=tp) for key in execution.outputs}


async def test_single_task(sandbox, project: Path) -> None:
    code, out = await pyflyte(sandbox, project, "--name", "single-task", "wfs.py", "say_hello", "--name", "y")
    assert code == 0, out
    outputs = await anyio.to_thread.run_sync(remote_outputs, sandbox.endpoint, "single-task", str)
    assert outputs == {"o0": "hello y"}


async def test_failing_workflow(sandbox, project: Path) -> None:
    code, out = await pyflyte(sandbox, project, "--name", "fails", "wfs.py", "failing", "--n", "7")
    assert code != 0
    assert "did not complete successfully" in out and "FAILED" in out
    assert "exploded with 7" in out


async def asyncrun_cli(sandbox, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": sandbox.endpoint,
        "FLYTE_PLATFORM_INSECURE": "True",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = await anyio.run_process([str(BIN / "asyncrun"), *args], env=env, check=False)
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


async def test_asyncrun_launches_a_launch_plan_registered_by_pyflyte(sandbox, project: Path) -> None:
    code, out = await pyflyte(sandbox, project, "--name", "by-pyflyte", "wfs.py", "wf", "--name", "p")
    assert code == 0, out
    assert "has succeeded" in out
    outputs = await anyio.to_thread.run_sync(remote_outputs, sandbox.endpoint, "by-pyflyte", str)
    assert outputs == {"o0": "HELLO P HELLO P"}
    code, out = await asyncrun_cli(sandbox, "run", "remote-launchplan")
    assert "wfs.wf" in out.split(), out
    code, out = await asyncrun_cli(
        sandbox, "run", "--wait", "--output", "json", "remote-launchplan", "wfs.wf", "--name", "from-asyncrun"
    )
    assert code == 0, out
    import json

    result = json.loads(out.strip().splitlines()[-1])
    # the launch plan's default (times=2) applied, the given name used
    assert result["outputs"] == {"o0": "HELLO FROM-ASYNCRUN HELLO FROM-ASYNCRUN"}


async def test_pyflyte_launches_a_launch_plan_registered_by_asyncrun(sandbox, project: Path) -> None:
    code, out = await asyncrun_cli(sandbox, "run", "--remote", str(EXAMPLES / "hello.py"), "wf")
    assert code == 0, out
    code, out = await pyflyte(
        sandbox, project, "--name", "pyflyte-on-ours", "remote-launchplan", "hello.wf", "--name", "q"
    )
    assert code == 0, out
    outputs = await anyio.to_thread.run_sync(remote_outputs, sandbox.endpoint, "pyflyte-on-ours", str)
    assert outputs == {"o0": "HELLO Q HELLO Q"}
