"""`await client.run(flytekit_entity, inputs, wait=True)`: a flytekit object registered and launched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import CORPUS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]


async def test_client_runs_a_flytekit_workflow(sandbox, tmp_path: Path, monkeypatch) -> None:
    from asyncrun.client import Client
    from asyncrun.sdk._loader import load_file

    monkeypatch.setenv("HOME", str(tmp_path))
    project = tmp_path / "apiproj"
    project.mkdir()
    shutil.copy(CORPUS / "c01_chain.py", project / "api_chain.py")
    module = load_file(project / "api_chain.py").module
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as client:
        execution = await client.run(module.wf, {"name": "api"}, wait=True)
        assert str(execution.phase) == "SUCCEEDED", execution.error
        assert execution.outputs == {"o0": "HELLO API HELLO API"}
        task_run = await client.run(module.say_hello, {"name": "t"}, wait=True)
        assert task_run.outputs == {"o0": "hello t"}
        assert task_run.target is not None and task_run.target.name == "api_chain.say_hello"


async def test_client_refuses_what_is_not_an_entity() -> None:
    from asyncrun._exceptions import UsageError
    from asyncrun.interop import adapt

    with pytest.raises(UsageError, match="is not a flytekit task, workflow or launch plan"):
        adapt(object())
