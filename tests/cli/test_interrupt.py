"""Ctrl-C and commands that must end: real `asyncrun` processes, a real sandbox and daemon.

Each interrupt test waits for a line that proves the command is waiting (never a sleep), sends SIGINT
and expects exactly one line on stderr and exit 130; remote runs go on and the line says how to
reattach.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
# SIGINT may be ignored in this process (a test run started in the background inherits that, and an
# ignored signal stays ignored across exec): the child gets the default disposition back first.
WITH_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
    ASYNCRUN,
]

SLOW = """\
import asyncio

from asyncrun import task, workflow


@task
async def slow(s: int = 240) -> int:
    print("started", flush=True)
    await asyncio.sleep(s)
    return s


@task
def quick(n: int = 1) -> int:
    return n


@workflow
def wf(s: int = 240) -> int:
    return slow(s=s)
"""


class Interrupted:
    def __init__(self, code: int, before: str, stderr_after: str, stdout: str) -> None:
        self.code = code
        self.before = before
        self.stderr_after = stderr_after
        self.stdout = stdout


async def interrupt_when(args: list[str], marker: str, *, stream: str = "stderr") -> Interrupted:
    """Start `asyncrun ARGS`, wait until `marker` appears on `stream`, send SIGINT, collect the rest."""
    async with await anyio.open_process([*WITH_SIGINT, *args]) as process:
        assert process.stdout is not None and process.stderr is not None
        watched = process.stderr if stream == "stderr" else process.stdout
        other = process.stdout if stream == "stderr" else process.stderr
        seen = b""
        other_seen: list[bytes] = []

        async def drain_other() -> None:
            async for chunk in other:
                other_seen.append(chunk)

        with anyio.fail_after(180):
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain_other)
                while marker.encode() not in seen:
                    try:
                        seen += await watched.receive()
                    except anyio.EndOfStream:
                        pytest.fail(f"{args} ended before printing {marker!r}: {seen.decode()}")
                # The other stream so far belongs to "before"; what follows SIGINT is collected anew.
                before_other = b"".join(other_seen)
                other_seen.clear()
                process.send_signal(signal.SIGINT)
                rest = b""
                async for chunk in watched:
                    rest += chunk
                await process.wait()
        after_other = b"".join(other_seen)
        if stream == "stderr":
            return Interrupted(process.returncode or 0, seen.decode(), rest.decode(), after_other.decode())
        before = before_other.decode()
        return Interrupted(
            process.returncode or 0, before, after_other.decode(), seen.decode() + rest.decode()
        )


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def slow_file(tmp_path: Path) -> Path:
    path = tmp_path / "slow_wf.py"
    path.write_text(SLOW)
    return path


async def test_ctrl_c_in_run_remote_wait_through_the_daemon(sandbox_env, slow_file) -> None:
    result = await interrupt_when(
        ["run", "--remote", "--wait", "--name", "int-daemon", str(slow_file), "wf"], "int-daemon: RUNNING"
    )
    assert result.code == 130, result.stderr_after
    assert one_line(result.stderr_after) == (
        f"int-daemon continues on {sandbox_env.endpoint}; `asyncrun wait int-daemon` reattaches"
    )


async def test_ctrl_c_in_run_remote_wait_without_the_daemon(sandbox_env, slow_file) -> None:
    args = ["run", "--remote", "--wait", "--no-daemon", "--name", "int-here", str(slow_file), "wf"]
    result = await interrupt_when(args, "int-here: RUNNING")
    assert result.code == 130, result.stderr_after
    assert one_line(result.stderr_after) == (
        f"int-here continues on {sandbox_env.endpoint}; `asyncrun wait int-here` reattaches"
    )


async def test_ctrl_c_in_wait_and_watch_leaves_the_run_going(sandbox_env, slow_file) -> None:
    launched = await anyio.run_process(
        [ASYNCRUN, "run", "--remote", "--name", "int-wait", str(slow_file), "wf"], check=False
    )
    assert launched.returncode == 0, launched.stderr.decode()

    result = await interrupt_when(["wait", "int-wait"], "int-wait: RUNNING")
    assert result.code == 130, result.stderr_after
    assert one_line(result.stderr_after) == (
        f"int-wait continues on {sandbox_env.endpoint}; `asyncrun wait int-wait` reattaches"
    )

    result = await interrupt_when(["watch", "int-wait"], "int-wait  RUNNING", stream="stdout")
    assert result.code == 130, result.stderr_after
    assert one_line(result.stderr_after) == (
        "stopped watching; the runs go on (`asyncrun watch int-wait` follows them again)"
    )

    status = await anyio.run_process([ASYNCRUN, "status", "int-wait"], check=False)
    assert status.stdout.decode().split()[:2] == ["int-wait", "RUNNING"]  # Ctrl-C aborted nothing


async def test_ctrl_c_in_a_local_run(slow_file) -> None:
    result = await interrupt_when(["run", str(slow_file), "slow"], "started", stream="stdout")
    assert result.code == 130, result.stderr_after
    assert one_line(result.stderr_after) == "interrupted: the local run of slow_wf.slow stopped"


async def test_watch_of_named_runs_ends_when_they_have_finished(sandbox_env, slow_file) -> None:
    for name in ("fin-a", "fin-b"):
        launched = await anyio.run_process(
            [ASYNCRUN, "run", "--remote", "--name", name, str(slow_file), "quick", "--n", "2"], check=False
        )
        assert launched.returncode == 0, launched.stderr.decode()
    with anyio.fail_after(120):  # a watch that never ends fails here
        result = await anyio.run_process([ASYNCRUN, "watch", "fin-a", "fin-b"], check=False)
    assert result.returncode == 0, result.stderr.decode()
    last = {line.split()[0]: line.split()[1] for line in result.stdout.decode().splitlines() if line.strip()}
    assert last == {"fin-a": "SUCCEEDED", "fin-b": "SUCCEEDED"}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released without listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["wait", "watch"])
async def test_wait_and_watch_on_an_endpoint_never_reachable_end_with_exit_6(
    command, monkeypatch, tmp_path
) -> None:
    port = closed_port()
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": f"127.0.0.1:{port}",
        "FLYTE_PLATFORM_INSECURE": "true",
        "HOME": str(tmp_path / "home"),
    }
    env.pop("FLYTECTL_CONFIG", None)
    with anyio.fail_after(120):  # waiting forever fails here
        result = await anyio.run_process([ASYNCRUN, command, "typo-run"], env=env, check=False)
    assert result.returncode == 6, result.stderr.decode()
    line = one_line(result.stderr.decode())
    assert line.startswith("Error: cannot reach the control plane at 127.0.0.1:"), result.stderr.decode()
