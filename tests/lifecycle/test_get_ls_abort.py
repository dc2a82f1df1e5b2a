"""`asyncrun ls | get | abort` and `client.nodes` / `client.abort` against a real sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner

from asyncrun.cli import cli

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.py")

FLOWS = (
    "import time\n"
    "from asyncrun import task, workflow\n\n"
    "@task\ndef shout(s: str) -> str:\n    print(f'shouting {s}')\n    return s.upper()\n\n"
    "@task\ndef boom(s: str) -> str:\n    raise ValueError(f'kaboom {s}')\n\n"
    "@task\ndef slow(n: int) -> int:\n    time.sleep(n)\n    return n\n\n"
    "@workflow\ndef inner(s: str) -> str:\n    return shout(s=s)\n\n"
    "@workflow\ndef outer(s: str) -> str:\n    return inner(s=shout(s=s))\n\n"
    "@workflow\ndef failing(s: str) -> str:\n    return boom(s=shout(s=s))\n\n"
    "@workflow\ndef sleepy(n: int = 600) -> int:\n    return slow(n=n)\n"
)


async def asyncrun(*args: str) -> tuple[int, str, str]:
    result = await CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def flows(tmp_path):
    from asyncrun.sdk._loader import load_file

    (tmp_path / "flows.py").write_text(FLOWS)
    return load_file(tmp_path / "flows.py").module


async def test_get_shows_the_node_tree_of_a_sub_workflow_run(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(flows.outer, {"s": "hi"}, wait=True)
        nodes = await client.nodes(run)
    assert run.phase == "SUCCEEDED"
    task_nodes = [n for n in nodes if n.attempts]
    assert task_nodes and all(n.phase == "SUCCEEDED" for n in nodes)
    assert task_nodes[0].attempts[0].task.endswith("shout")
    parents = [n for n in nodes if n.is_parent]
    assert parents and parents[0].children  # the sub-workflow's own nodes

    code, out, err = await asyncrun("get", run.id.name, "--nodes", "--inputs", "--outputs", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)  # one JSON object
    assert shown["execution"]["name"] == run.id.name and shown["execution"]["phase"] == "SUCCEEDED"
    assert shown["inputs"] == {"s": "hi"}
    assert shown["outputs"] == {"o0": "HI"}
    assert [n["node_id"] for n in shown["nodes"]] == [n.node_id for n in nodes]
    assert any(n["children"] for n in shown["nodes"])

    code, out, err = await asyncrun("get", run.id.name, "--nodes")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{run.id.name}  ")
    assert "SUCCEEDED" in out and ("├── " in out or "└── " in out)

    code, out, err = await asyncrun("ls", "-o", "json")
    assert code == 0, err
    assert run.id.name in [ex["name"] for ex in json.loads(out)["executions"]]
    code, out, err = await asyncrun("ls")
    assert code == 0 and any(line.startswith(run.id.name) for line in out.splitlines())


async def test_get_names_the_failed_node(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(flows.failing, {"s": "x"}, wait=True)
    assert run.phase == "FAILED"
    code, out, err = await asyncrun("get", run.id.name, "--nodes", "-o", "json")
    assert code == 0, err
    failed = [n for n in json.loads(out)["nodes"] if n["phase"] == "FAILED"]
    assert failed and "kaboom X" in json.dumps(failed)
    code, out, err = await asyncrun("get", run.id.name, "--nodes")
    assert "error: " in out and "kaboom X" in out


async def test_abort_ends_a_running_run_aborted(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(flows.sleepy, {"n": 600})
        await client.wait(run, wait_for="running", poll_interval=0.5)
        code, out, err = await asyncrun("abort", run.id.name, "--cause", "enough", "-o", "json")
        assert code == 0, err
        assert json.loads(out) == {
            "aborted": [{"project": run.id.project, "domain": run.id.domain, "name": run.id.name}],
            "failed": [],
        }
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
    assert ended.phase == "ABORTED"
    assert "enough" in ended.abort_cause


async def test_abort_of_several_runs_reports_each_and_aborts_the_others(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(flows.sleepy, {"n": 600})
        code, out, err = await asyncrun("abort", "nosuchrun", run.id.name, "--cause", "enough")
        assert code == 1, err  # the unknown run's error: exit 1
        assert out.splitlines() == [f"{run.id.name}  aborting (enough)"]
        said = [line for line in err.splitlines() if line.strip()]
        assert len(said) == 1 and said[0].startswith("nosuchrun  not aborted: "), err
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
    assert ended.phase == "ABORTED" and "enough" in ended.abort_cause
    runs_json = await asyncrun("abort", "nosuchrun", "-o", "json")
    assert runs_json[0] == 1 and json.loads(runs_json[1])["failed"][0]["name"] == "nosuchrun"


async def test_commands_look_where_run_remote_launched(sandbox_env, monkeypatch) -> None:
    """FLYTE_LOCAL_PROJECT (pyflyte's fallback) moves `run --remote`; `get`, `ls`, `abort`, `relaunch`,
    `wait` and `status` look for bare names in the same project."""
    import os

    import anyio

    monkeypatch.setenv("FLYTE_LOCAL_PROJECT", "default")
    monkeypatch.delenv("FLYTE_DEFAULT_PROJECT", raising=False)
    code, out, err = await asyncrun("run", "--remote", "-o", "json", HELLO, "say_hello", "--name", "x")
    assert code == 0, err
    launched = json.loads(out)["execution"]
    assert launched["project"] == "default"
    code, out, err = await asyncrun("get", launched["name"], "-o", "json")
    assert code == 0, err
    assert json.loads(out)["execution"]["project"] == "default"
    code, out, err = await asyncrun("ls", "-o", "json")
    assert code == 0 and launched["name"] in [row["name"] for row in json.loads(out)["executions"]], err
    env = dict(os.environ)
    try:
        with anyio.fail_after(150):
            waited = await anyio.run_process(
                [ASYNCRUN, "wait", launched["name"], "-o", "json"], env=env, check=False
            )
        assert waited.returncode == 0, waited.stderr.decode()
        states = json.loads(waited.stdout)["summary"]["executions"]
        assert [(s["project"], s["phase"]) for s in states] == [("default", "SUCCEEDED")]
    finally:
        await anyio.run_process([ASYNCRUN, "daemon", "stop"], env=env, check=False)


async def test_get_of_an_unknown_run_is_one_line(sandbox_env) -> None:
    code, out, err = await asyncrun("get", "nosuchrun")
    assert code == 1 and "nosuchrun" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["ls", "get", "abort", "logs", "relaunch"])
async def test_help(command: str) -> None:
    code, out, _ = await asyncrun(command, "--help")
    assert code == 0 and "--output" in out


async def test_logs_print_what_a_task_printed(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(flows.outer, {"s": "loud"}, wait=True)
        lines = [line async for line in client.logs(run, "n0")]
    assert "shouting loud" in lines
    code, out, err = await asyncrun("logs", run.id.name, "n0")
    assert code == 0, err
    assert "shouting loud" in out.splitlines()
    code, out, err = await asyncrun("logs", run.id.name, "n0", "--attempt", "7")
    assert code == 1 and "no attempt 7" in err


async def test_relaunch_runs_again_with_identical_inputs(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        first = await client.run(flows.outer, {"s": "again"}, wait=True)
        code, out, err = await asyncrun("relaunch", first.id.name, "--wait", "-o", "json")
        assert code == 0, err
        new = json.loads(out)
        assert new["name"] != first.id.name and new["phase"] == "SUCCEEDED"
        assert await client.fetch_inputs(new["name"]) == await client.fetch_inputs(first) == {"s": "again"}
        assert await client.fetch_outputs(client._execution_id(new["name"])) == {"o0": "AGAIN"}
        assert new["entity"] == (first.target.name if first.target else None)


async def test_abort_wait_returns_once_the_run_is_aborted(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(flows.sleepy, {"n": 600})
        await client.wait(run, wait_for="running", poll_interval=0.5)
        code, out, err = await asyncrun("abort", run.id.name, "--cause", "enough", "--wait")
        assert code == 0, err
        assert out.splitlines() == [f"{run.id.name}  ABORTED (enough)"]
        # it had ended when the command returned: no wait needed to see it
        assert (await client.get_execution(run, with_outputs=False)).phase == "ABORTED"

        other = await client.run(flows.sleepy, {"n": 600})
        code, out, err = await asyncrun("abort", other.id.name, "nosuchrun", "--wait", "-o", "json")
        assert code == 1, err
        shown = json.loads(out)
        assert shown["aborted"] == [
            {
                "project": other.id.project,
                "domain": other.id.domain,
                "name": other.id.name,
                "phase": "ABORTED",
            }
        ]
        assert [f["name"] for f in shown["failed"]] == ["nosuchrun"]


async def test_ls_filters_by_phase_entity_and_since(sandbox_env, flows) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        good = await client.run(flows.outer, {"s": "a"}, wait=True)
        bad = await client.run(flows.failing, {"s": "b"}, wait=True)
    assert (good.phase, bad.phase) == ("SUCCEEDED", "FAILED")

    async def names(*args: str) -> list[str]:
        code, out, err = await asyncrun("ls", "-o", "json", *args)
        assert code == 0, err
        return [row["name"] for row in json.loads(out)["executions"]]

    assert await names() == [bad.id.name, good.id.name]  # newest first
    assert await names("--phase", "failed") == [bad.id.name]
    assert await names("--phase", "SUCCEEDED", "--phase", "FAILED") == [bad.id.name, good.id.name]
    assert await names("--phase", "RUNNING") == []
    assert await names("--entity", good.target.name) == [good.id.name]
    assert await names("--since", "1h") == [bad.id.name, good.id.name]
    assert await names("--since", "0") == []  # created before now
    assert await names("--limit", "1") == [bad.id.name]
    code, _, err = await asyncrun("ls", "--phase", "DONE")
    assert code == 2 and "DONE" in err
