"""`asyncrun recover` / `client.recover` (RecoverExecution): what succeeded is reused, the rest runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner

from asyncrun.cli import cli

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

FLOWS = (
    "import os\n"
    "from asyncrun import task, workflow\n\n"
    "@task\ndef first(log: str, x: int) -> int:\n"
    "    with open(log, 'a') as f:\n"
    "        f.write('first ran\\n')\n"
    "    return x * 10\n\n"
    "@task\ndef second(y: int, flag: str) -> int:\n"
    "    if not os.path.exists(flag):\n"
    "        raise ValueError('not yet')\n"
    "    return y + 1\n\n"
    "@workflow\ndef pipeline(log: str, flag: str, x: int) -> int:\n"
    "    return second(y=first(log=log, x=x), flag=flag)\n"
)


async def asyncrun(*args: str) -> tuple[int, str, str]:
    result = await CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def flows(tmp_path):
    from asyncrun.sdk._loader import load_file

    (tmp_path / "flows.py").write_text(FLOWS)
    return load_file(tmp_path / "flows.py").module


async def test_recover_reuses_the_nodes_that_succeeded(sandbox_env, flows, tmp_path: Path) -> None:
    from asyncrun import Client

    log, flag = tmp_path / "first.log", tmp_path / "flag"
    async with Client.from_config() as client:
        failed = await client.run(flows.pipeline, {"log": str(log), "flag": str(flag), "x": 4}, wait=True)
        assert failed.phase == "FAILED" and "not yet" in failed.error.message
        assert log.read_text().splitlines() == ["first ran"]
        flag.touch()

        code, out, err = await asyncrun("recover", failed.id.name, "--wait", "-o", "json")
        assert code == 0, err
        new = json.loads(out)
        assert new["name"] != failed.id.name and new["phase"] == "SUCCEEDED"
        assert await client.fetch_outputs(client._execution_id(new["name"])) == {"o0": 41}
        # first's task did not run again: its outputs came from the failed run
        assert log.read_text().splitlines() == ["first ran"]
        phases = {n.node_id: n.phase for n in await client.nodes(new["name"]) if n.node_id != "start-node"}
        assert phases == {"n0": "RECOVERED", "n1": "SUCCEEDED"}

        # a relaunch, by contrast, runs everything again
        again = await client.relaunch(failed, wait=True)
    assert again.phase == "SUCCEEDED"
    assert log.read_text().splitlines() == ["first ran", "first ran"]


async def test_recover_of_an_unknown_run_is_one_line(sandbox_env) -> None:
    code, _, err = await asyncrun("recover", "nosuchrun")
    assert code == 1 and "nosuchrun" in err and len(err.strip().splitlines()) == 1, err


async def test_help() -> None:
    code, out, _ = await asyncrun("recover", "--help")
    assert code == 0 and "--output" in out and "--wait" in out


CACHED = (
    "from asyncrun import task, workflow\n\n"
    "@task(cache=True, cache_version='1')\ndef counted(log: str, x: int) -> int:\n"
    "    with open(log, 'a') as f:\n"
    "        f.write('ran\\n')\n"
    "    return x + 1\n\n"
    "@workflow\ndef cached(log: str, x: int) -> int:\n"
    "    return counted(log=log, x=x)\n"
)


async def test_relaunch_is_flyteadmins_relaunch_and_can_overwrite_the_cache(
    sandbox_env, tmp_path: Path
) -> None:
    from asyncrun import Client
    from asyncrun.exceptions import NotFoundError
    from asyncrun.sdk._loader import load_file

    (tmp_path / "cached_flows.py").write_text(CACHED)
    module = load_file(tmp_path / "cached_flows.py").module
    log = tmp_path / "ran.log"
    async with Client.from_config() as client:
        first = await client.run(module.cached, {"log": str(log), "x": 1}, wait=True)
        again = await client.relaunch(first, wait=True)  # a cache hit: the task does not run
        assert log.read_text().splitlines() == ["ran"]
        relaunch = ("relaunch", first.id.name, "--overwrite-cache", "--wait", "-o", "json")
        code, out, err = await asyncrun(*relaunch)
        assert code == 0, err
        assert log.read_text().splitlines() == ["ran", "ran"]  # recomputed
        overwritten = json.loads(out)["name"]
        for name in (again.id.name, overwritten):
            run = await client.get_execution(name)
            assert run.outputs == {"o0": 2}
            metadata = run.raw.spec.metadata  # as FlyteAdmin records a relaunch
            assert metadata.mode.name == "RELAUNCH" and metadata.reference_execution.name == first.id.name
        with pytest.raises(NotFoundError):
            await client.relaunch("nosuchrun")
