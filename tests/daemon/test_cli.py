"""The thin CLI over the daemon: `asyncrun wait|status` as real processes, against a scripted admin."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")


def cli_env(stub, settings) -> dict[str, str]:
    return {
        **os.environ,
        "ASYNCRUN_DAEMON_SOCKET": str(settings.socket_path),
        "FLYTE_PLATFORM_URL": stub.endpoint,
        "FLYTE_PLATFORM_INSECURE": "true",
    }


async def test_200_concurrent_wait_processes_exit_with_the_right_code(stub, spawned) -> None:
    expected: dict[str, int] = {}
    for i in range(200):
        name = f"w{i:03d}"
        stub.add(name, "RUNNING", o0=i)
        expected[name] = (0, 1, 3)[i % 3]
    env = cli_env(stub, spawned)
    codes: dict[str, int] = {}

    async def one(name: str) -> None:
        result = await anyio.run_process([ASYNCRUN, "wait", name], env=env, check=False)
        codes[name] = result.returncode

    async with anyio.create_task_group() as tg:
        for name in expected:
            tg.start_soon(one, name)
        await anyio.sleep(2)  # let most of them connect; late ones see the final phase at once
        for i, name in enumerate(expected):
            phase = ("SUCCEEDED", "FAILED", "ABORTED")[i % 3]
            stub.set_phase(name, phase, error=("USER:Boom", "boom") if phase == "FAILED" else None)
    assert codes == expected
    # one poller for all of them: far fewer list calls than processes × polls
    assert stub.calls["get_execution"] == 0  # the stub counts calls by method name


async def test_wait_timeout_exits_5_and_abort_on_timeout_terminates(stub, spawned) -> None:
    stub.add("slowpoke", "RUNNING")
    env = cli_env(stub, spawned)
    result = await anyio.run_process(
        [ASYNCRUN, "wait", "slowpoke", "--wait-timeout", "1"], env=env, check=False
    )
    assert result.returncode == 5
    assert stub.runs["slowpoke"].phase == "RUNNING"
    assert "stopped waiting (--wait-timeout); the runs go on" in result.stderr.decode()
    result = await anyio.run_process(
        [ASYNCRUN, "wait", "slowpoke", "--wait-timeout", "1", "--abort-on-timeout"], env=env, check=False
    )
    assert result.returncode == 5
    assert stub.runs["slowpoke"].phase == "ABORTED"
    assert "terminated flytesnacks:development:slowpoke" in result.stderr.decode()


async def test_wait_for_an_unknown_execution_says_not_found(stub, spawned) -> None:
    result = await anyio.run_process([ASYNCRUN, "wait", "ghost"], env=cli_env(stub, spawned), check=False)
    assert result.returncode == 1
    assert result.stdout.decode().split()[:3] == ["ghost", "NOT", "FOUND"]


async def test_ndjson_events_and_summary(stub, spawned) -> None:
    stub.add("nd1", "RUNNING", o0=7)
    env = cli_env(stub, spawned)
    async with await anyio.open_process([ASYNCRUN, "wait", "nd1", "--output", "ndjson"], env=env) as process:
        await anyio.sleep(1)
        stub.set_phase("nd1", "SUCCEEDED")
        out = await process.stdout.receive(1 << 20) if process.stdout else b""
        chunks = [out]
        async for chunk in process.stdout:  # type: ignore[union-attr]
            chunks.append(chunk)
        await process.wait()
    lines = [json.loads(line) for line in b"".join(chunks).decode().splitlines() if line.strip()]
    assert process.returncode == 0
    assert any(line.get("event") == "update" for line in lines)
    summary = lines[-1]["summary"]
    assert summary["exit_code"] == 0 and summary["executions"][0]["phase"] == "SUCCEEDED"


async def test_status_one_line_per_execution(stub, spawned) -> None:
    stub.add("st1", "RUNNING")
    stub.add("st2", "SUCCEEDED")
    env = cli_env(stub, spawned)
    result = await anyio.run_process(
        [ASYNCRUN, "status", "st1", "flytesnacks:development:st2"], env=env, check=False
    )
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert [line.split()[:2] for line in lines] == [["st1", "RUNNING"], ["st2", "SUCCEEDED"]]


async def test_wait_status_watch_paths_load_no_grpc_stack(stub, spawned) -> None:
    code = (
        "import sys\n"
        "from asyncrun.cli import main\n"
        "sys.argv = ['asyncrun'] + sys.argv[1:]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('grpclib', 'betterproto2', 'httpx'))\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    stub.add("light", "SUCCEEDED")
    env = cli_env(stub, spawned)
    for args in (["status"], ["wait", "light"], ["watch", "--help"]):
        out = await anyio.run_process([sys.executable, "-c", code, *args], env=env, check=False)
        stdout = out.stdout.decode()
        heavy_line = [line for line in stdout.splitlines() if line.startswith("HEAVY=")]
        assert heavy_line == ["HEAVY="], (args, stdout, out.stderr.decode())


async def test_status_with_a_running_daemon_needs_no_event_loop(stub, spawned) -> None:
    """`asyncrun status` talks to a running daemon over a blocking socket: asyncio is never imported."""
    code = (
        "import sys\n"
        "from asyncrun.cli import main\n"
        "sys.argv = ['asyncrun', 'status', 'quick']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    print('EXIT=' + str(exc.code))\n"
        "loops = sorted(m for m in sys.modules if m.split('.')[0] in ('asyncio', 'anyio'))\n"
        "print('LOOPS=' + ','.join(loops))\n"
    )
    stub.add("quick", "RUNNING")
    out = await anyio.run_process([sys.executable, "-c", code], env=cli_env(stub, spawned), check=False)
    lines = out.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["quick", "RUNNING"], (lines, out.stderr.decode())
    assert "LOOPS=" in lines, lines


async def test_status_starts_a_daemon_when_none_runs(stub, settings) -> None:
    """No daemon: the blocking path steps aside and the full connection starts one."""
    stub.add("late", "QUEUED")
    env = cli_env(stub, settings)
    env.update({f"ASYNCRUN_DAEMON_{k}": v for k, v in {"IDLE_TIMEOUT": "0", "MIN_INTERVAL": "0.2"}.items()})
    try:
        result = await anyio.run_process([ASYNCRUN, "status", "late"], env=env, check=False)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().split()[:2] == ["late", "QUEUED"]
        assert settings.socket_path.exists()
    finally:
        await anyio.run_process([ASYNCRUN, "daemon", "stop"], env=env, check=False)


async def test_status_of_a_run_the_control_plane_refuses_to_show_is_an_error(stub, spawned) -> None:
    """Not `UNKNOWN` and exit 0: the line says the lookup failed, stderr says why, with its exit code."""
    from grpclib.const import Status

    stub.fail_with = Status.PERMISSION_DENIED
    result = await anyio.run_process([ASYNCRUN, "status", "hidden"], env=cli_env(stub, spawned), check=False)
    assert result.returncode == 1, result.stderr.decode()
    assert result.stdout.decode().split()[:3] == ["hidden", "LOOKUP", "FAILED"]
    errors = [line for line in result.stderr.decode().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "PERMISSION_DENIED" in errors[0], result.stderr.decode()
    stub.fail_with = None
    again = await anyio.run_process([ASYNCRUN, "status", "hidden"], env=cli_env(stub, spawned), check=False)
    # A run that does not exist is an error for `status` as for `wait` (exit 1), without a dead link.
    assert again.returncode == 1 and again.stdout.decode().split() == ["hidden", "NOT", "FOUND"]


async def test_wait_on_a_control_plane_that_is_slow_to_answer_its_first_contact_is_not_exit_6(
    stub, spawned
) -> None:
    """A busy machine: the control plane accepts connections but says nothing for longer than the
    daemon's first-contact budget. It is there, so the wait goes on and ends with the run's code
    (only a refused or wrong endpoint is "cannot reach the control plane", exit 6)."""
    from asyncrun.daemon._service import FIRST_CONTACT_BUDGET

    stub.add("slowstart", "RUNNING")
    release = anyio.Event()
    accepted = 0
    host, port = stub.endpoint.rsplit(":", 1)

    async def pipe(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
        try:
            async for chunk in src:
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            await dst.aclose()

    async def relay(client: anyio.abc.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        async with client:
            await release.wait()  # silent until the control plane "wakes up"
            async with await anyio.connect_tcp(host, int(port)) as upstream, anyio.create_task_group() as tg:
                tg.start_soon(pipe, client, upstream)
                tg.start_soon(pipe, upstream, client)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    relay_port = listener.extra(anyio.abc.SocketAttribute.local_port)
    env = {
        **cli_env(stub, spawned),
        "FLYTE_PLATFORM_URL": f"127.0.0.1:{relay_port}",
        "ASYNCRUN_CONNECT_TIMEOUT": "0.5",
    }
    result = None
    exited = anyio.Event()

    async def wait_process() -> None:
        nonlocal result
        result = await anyio.run_process([ASYNCRUN, "wait", "slowstart"], env=env, check=False)
        exited.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, relay)
        async with anyio.create_task_group() as waiting:
            waiting.start_soon(wait_process)
            # Silent for longer than the first-contact budget (the old daemon then answered exit 6).
            with anyio.move_on_after(FIRST_CONTACT_BUDGET + 5):
                await exited.wait()
            assert accepted >= 1
            release.set()
            stub.set_phase("slowstart", "SUCCEEDED")
        tg.cancel_scope.cancel()
    assert result is not None
    assert result.returncode == 0, result.stderr.decode()
