"""`asyncrun run --remote` and `remote-*` against a real sandbox started by the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner
from sandbox.conftest import assert_eventually

from asyncrun.cli import cli

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HELLO = str(EXAMPLES / "hello.py")
TYPES = str(EXAMPLES / "types_demo.py")


async def asyncrun(*args: str) -> tuple[int, str, str]:
    result = await CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


async def test_workflow_with_wait_prints_outputs(sandbox_env) -> None:
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--name", "hello-wf", HELLO, "wf", "--name", "x"
    )
    assert code == 0, err
    assert out.strip() == "HELLO X HELLO X"
    assert "Execution hello-wf created" in err and "SUCCEEDED" in err


async def test_task_and_launch_plan(sandbox_env) -> None:
    code, out, err = await asyncrun("run", "--remote", "--wait", HELLO, "say_hello", "--name", "y")
    assert (code, out.strip()) == (0, "hello y"), err
    code, out, err = await asyncrun("run", "--remote", "--wait", "--output", "json", TYPES, "summarize_lp")
    assert code == 0, err
    result = json.loads(out)
    assert result["phase"] == "SUCCEEDED"
    assert result["outputs"] == {"o0": 1, "o1": 5.0, "o2": "short"}


async def test_a_task_launched_alone_gets_its_defaults(sandbox_env) -> None:
    # No launch plan carries a task's defaults: the client sends them, or the run would be refused.
    code, out, err = await asyncrun("run", "--remote", "--wait", HELLO, "shout", "--s", "hi")
    assert (code, out.strip()) == (0, "HI"), err


async def test_failing_workflow_exits_1_with_the_task_error(sandbox_env, tmp_path) -> None:
    bad = tmp_path / "failing_wf.py"
    bad.write_text(
        "from asyncrun import task, workflow\n\n"
        "@task\ndef boom(n: int) -> int:\n    raise ValueError(f'kaboom {n}')\n\n"
        "@workflow\ndef wf(n: int = 3) -> int:\n    return boom(n=n)\n"
    )
    code, out, err = await asyncrun("run", "--remote", "--wait", str(bad), "wf", "--n", "4")
    assert code == 1
    assert "failed" in err and "kaboom 4" in err


async def test_remote_entities(sandbox_env) -> None:
    code, _, err = await asyncrun("run", "--remote", HELLO, "wf")
    assert code == 0, err
    code, out, err = await asyncrun("run", "remote-launchplan")
    assert code == 0, err
    assert "hello.wf" in out.split()
    code, out, err = await asyncrun("run", "--wait", "remote-launchplan", "hello.wf", "--name", "lp")
    assert (code, out.strip()) == (0, "HELLO LP HELLO LP"), err
    code, out, _ = await asyncrun("run", "remote-workflow")
    assert "hello.wf" in out.split()
    code, out, err = await asyncrun("run", "--wait", "remote-workflow", "hello.wf", "--times", "1")
    assert (code, out.strip()) == (0, "HELLO WORLD"), err
    code, out, _ = await asyncrun("run", "remote-task")
    assert {"hello.say_hello", "hello.shout"} <= set(out.split())
    code, out, err = await asyncrun(
        "run", "--wait", "remote-task", "hello.shout", "--s", "hey", "--times", "2"
    )
    assert (code, out.strip()) == (0, "HEY HEY"), err


async def test_remote_launchplan_with_version(sandbox_env) -> None:
    from asyncrun import Client

    code, _, err = await asyncrun("run", "--remote", HELLO, "wf")
    assert code == 0, err
    async with Client.from_config() as client:
        lp = await client.fetch_launch_plan("hello.wf")
    version = lp.id.version
    code, out, err = await asyncrun(
        "run", "--wait", "remote-launchplan", f"hello.wf:{version}", "--name", "v"
    )
    assert (code, out.strip()) == (0, "HELLO V HELLO V"), err
    code, out, err = await asyncrun("run", "remote-launchplan", "hello.wf:nosuchversion")
    assert code == 1 and "Traceback" not in err


async def test_python_api_local_and_fetched_entities(sandbox_env) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import hello  # the README example
    finally:
        sys.path.remove(str(EXAMPLES))
    from asyncrun import Client

    async with Client.from_config() as client:
        ex = await client.run(hello.wf, {"name": "api"}, wait=True)
        assert ex.phase == "SUCCEEDED" and ex.outputs == {"o0": "HELLO API HELLO API"}
        assert ex.url.endswith(f"/executions/{ex.id.name}")
        lp = await client.fetch_launch_plan("hello.wf")
        ex2 = await client.run(lp, {"name": "again", "times": 1})
        done = await client.wait_all([ex2])
        assert done[0].outputs == {"o0": "HELLO AGAIN"}
        finished = [e async for e in client.as_completed([await client.run(lp, {"name": "c"})])]
        assert finished[0].phase == "SUCCEEDED"


async def test_same_name_same_inputs_attaches_different_inputs_fails(sandbox_env) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import hello
    finally:
        sys.path.remove(str(EXAMPLES))
    from asyncrun import Client
    from asyncrun._exceptions import AlreadyExistsError

    async with Client.from_config() as client:
        first = await client.run(hello.wf, {"name": "same"}, name="dup-check")
        again = await client.run(hello.wf, {"name": "same"}, name="dup-check")
        assert again.id == first.id
        assert (first.attached, again.attached) == (False, True)  # typed: no message to search
        with pytest.raises(AlreadyExistsError, match="different"):
            await client.run(hello.wf, {"name": "other"}, name="dup-check")


async def test_endpoint_down_is_one_line(monkeypatch, tmp_path) -> None:
    """How soon it gives up (<= 8 s) is measured by scripts/bench/failfast.py; the bound here only
    keeps a hang from stalling the suite."""
    import socket

    import anyio

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLYTE_PLATFORM_URL", f"127.0.0.1:{port}")
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
    monkeypatch.setenv("HOME", str(tmp_path))
    with anyio.fail_after(60):
        code, out, err = await asyncrun("run", "remote-launchplan")
    assert code == 6
    assert len(err.strip().splitlines()) == 1 and "cannot reach" in err


async def test_wait_without_daemon_and_wait_timeout(sandbox_env, tmp_path) -> None:
    code, out, err = await asyncrun("run", "--remote", "--wait", "--no-daemon", HELLO, "wf", "--name", "nd")
    assert (code, out.strip()) == (0, "HELLO ND HELLO ND"), err
    slow = tmp_path / "slow_mod.py"
    slow.write_text(
        "import time\nfrom asyncrun import task\n\n"
        "@task\ndef nap(s: int) -> int:\n    time.sleep(s)\n    return s\n"
    )
    for extra in ([], ["--no-daemon"]):
        code, out, err = await asyncrun(
            "run", "--remote", "--wait", "--wait-timeout", "0.5", *extra, str(slow), "nap", "--s", "30"
        )
        assert code == 5, err
        assert "stopped waiting" in err


async def test_batch_launches_each_line_once(sandbox_env, tmp_path) -> None:
    batch = tmp_path / "inputs.jsonl"
    batch.write_text('{"name": "a"}\n{"name": "b", "times": 1}\n\n{"name": "c"}\n')
    code, out, err = await asyncrun("run", "--remote", "--wait", "--batch", str(batch), HELLO, "wf")
    assert code == 0, err
    manifest = [json.loads(line) for line in out.splitlines()]
    assert [m["line"] for m in manifest] == [1, 2, 3]
    assert [m["outputs"] for m in manifest] == [
        {"o0": "HELLO A HELLO A"},
        {"o0": "HELLO B"},
        {"o0": "HELLO C HELLO C"},
    ]
    # The same batch again attaches to the same executions: nothing new is started.
    code, out2, err = await asyncrun("run", "--remote", "--wait", "--batch", str(batch), HELLO, "wf")
    assert code == 0, err
    again = [json.loads(line) for line in out2.splitlines()]
    assert [m["execution"]["name"] for m in again] == [m["execution"]["name"] for m in manifest]
    from asyncrun import Client

    async with Client.from_config() as client:
        page, _ = await client.list_executions(limit=100)
    assert len({ex.id.name for ex in page}) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "a"}\nnot json\n')
    code, out, err = await asyncrun("run", "--remote", "--batch", str(bad), HELLO, "wf")
    assert code == 2 and "line 2 is not JSON" in err


async def test_watch_yields_each_phase_change_with_one_list_call_per_tick(
    sandbox, sandbox_env, tmp_path
) -> None:
    """`client.watch`: each change once, outputs of successes, the runs' states from ListExecutions
    (one call per poll for all of them, through a recording proxy), GetExecution only for outputs."""
    from asyncrun import Client
    from asyncrun.sdk._loader import load_file

    from .proxy import start_proxy

    (tmp_path / "watched.py").write_text(
        "from asyncrun import task, workflow\n\n"
        "@task\ndef echo(s: str) -> str:\n    return s.upper()\n\n"
        "@task\ndef boom(n: int) -> int:\n    raise ValueError(f'kaboom {n}')\n\n"
        "@workflow\ndef ok(s: str) -> str:\n    return echo(s=s)\n\n"
        "@workflow\ndef bad(n: int = 3) -> int:\n    return boom(n=n)\n"
    )
    module = load_file(tmp_path / "watched.py").module
    host, port = sandbox.endpoint.rsplit(":", 1)
    proxy, server, upstream = await start_proxy(host, int(port))
    try:
        async with Client.from_config(endpoint=proxy.endpoint, insecure=True) as client:
            good = [await client.run(module.ok, {"s": f"w{i}"}) for i in range(3)]
            failed = await client.run(module.bad, {"n": 2})
            proxy.log.clear()
            seen: dict[str, list[str]] = {}
            finals = {}
            async for ex in client.watch([*good, failed], poll_interval=0.5):
                seen.setdefault(ex.id.name, []).append(str(ex.phase))
                finals[ex.id.name] = ex
    finally:
        server.close()
        upstream.close()
    assert set(seen) == {ex.id.name for ex in [*good, failed]}
    for phases in seen.values():
        assert len(phases) == len(set(phases)), phases  # each change once
    for i, ex in enumerate(good):
        assert finals[ex.id.name].phase == "SUCCEEDED"
        assert finals[ex.id.name].outputs == {"o0": f"W{i}"}
    assert finals[failed.id.name].phase == "FAILED"
    assert "kaboom 2" in str(finals[failed.id.name].error)
    methods = [r.path.rsplit("/", 1)[-1] for r in proxy.log]
    assert methods.count("GetExecutionData") == len(good)  # the outputs of each success, once
    assert methods.count("ListExecutions") >= 1
    assert set(methods) == {"ListExecutions", "GetExecutionData"}  # no per-run polling


async def test_concurrent_waits_share_batched_polls(sandbox, sandbox_env, tmp_path) -> None:
    """N concurrent `client.wait` calls on N runs (and a `wait_all`) poll together: at most
    ceil(N/100) list calls per poll, no GetExecution per waiter, outputs read once per run (a
    recording proxy). The runs wait at an approval gate (no task process), released once the
    waiters have polled them."""
    import math

    import anyio

    from asyncrun import Client
    from asyncrun.sdk._loader import load_file

    from .proxy import start_proxy

    (tmp_path / "waited.py").write_text(
        "from asyncrun import approve, workflow\n\n"
        "@workflow\ndef gated(x: int) -> int:\n    return approve(x, 'go')\n"
    )
    module = load_file(tmp_path / "waited.py").module
    host, port = sandbox.endpoint.rsplit(":", 1)
    proxy, server, upstream = await start_proxy(host, int(port))
    waiters = 150
    try:
        async with (
            Client.from_config(endpoint=sandbox.endpoint, insecure=True) as direct,
            Client.from_config(endpoint=proxy.endpoint, insecure=True) as client,
        ):
            gated = await direct.register(module.gated)
            launched = await direct.run_many(gated, [{"x": i} for i in range(waiters)])
            runs = [line.execution for line in launched]
            assert all(run is not None for run in runs), launched
            proxy.log.clear()
            results = {}

            async def wait_one(index: int) -> None:
                run = runs[index]
                target = (run, run.id, run.id.name)[index % 3]  # every form a caller may pass
                results[index] = await client.wait(target, poll_interval=0.5)

            async def waited_for_all() -> bool:
                listed = b"".join(r.request for r in proxy.log if r.path.endswith("/ListExecutions"))
                return all(run.id.name.encode() in listed for run in runs)

            async with anyio.create_task_group() as tg:
                for index in range(waiters):
                    tg.start_soon(wait_one, index)
                await assert_eventually(waited_for_all, what="every run to be polled while gated")
                async with anyio.create_task_group() as approvals:
                    for run in runs:
                        approvals.start_soon(_approve_when_gated, direct, run)
    finally:
        server.close()
        upstream.close()
    assert len(results) == waiters
    assert [results[i].outputs for i in range(waiters)] == [{"o0": i} for i in range(waiters)]
    methods = [r.path.rsplit("/", 1)[-1] for r in proxy.log]
    assert "GetExecution" not in methods  # no call per waiter: their states come from the list
    lists = [r for r in proxy.log if r.path.endswith("/ListExecutions")]
    polls_of_one_run = max(sum(run.id.name.encode() in r.request for r in lists) for run in runs)
    assert polls_of_one_run >= 2  # polled while gated, and again after the approval
    assert len(lists) <= polls_of_one_run * math.ceil(waiters / 100)
    assert methods.count("GetExecutionData") <= len(runs)  # the outputs of each run, once


async def _approve_when_gated(client, run) -> None:
    async def gated() -> bool:
        return any(signal.signal_id == "go" for signal in await client.signals(run))

    await assert_eventually(gated, what=f"{run.id.name}'s gate")
    await client.approve(run, "go")
