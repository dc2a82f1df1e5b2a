"""A control plane that does not answer is `UnreachableError` (exit 6), never an ExceptionGroup,
also when it happens inside the client's task groups (registration, wait_all, batches)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from asyncrun._exceptions import UnreachableError, UsageError, one_error
from asyncrun.client import Client, Execution, ExecutionId, Phase

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ASYNCRUN = Path(sys.executable).parent / "asyncrun"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_register_against_a_closed_port_raises_unreachable() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import hello
    finally:
        sys.path.remove(str(EXAMPLES))
    client = Client.from_config(endpoint=f"127.0.0.1:{closed_port()}", insecure=True, unreachable_timeout=0.3)
    async with client:
        with pytest.raises(UnreachableError, match="cannot reach the control plane"):
            await client.register(hello.wf)


async def test_wait_all_raises_unreachable() -> None:
    client = Client.from_config(endpoint=f"127.0.0.1:{closed_port()}", insecure=True, unreachable_timeout=0.3)
    runs = [Execution(ExecutionId("p", "d", f"n{i}"), Phase.RUNNING, "") for i in range(3)]
    async with client:
        with pytest.raises(UnreachableError):
            await client.wait_all(runs)


def test_cli_exits_6_with_one_line(tmp_path) -> None:
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": f"127.0.0.1:{closed_port()}",
        "FLYTE_PLATFORM_INSECURE": "true",
        "HOME": str(tmp_path),
    }
    env.pop("FLYTECTL_CONFIG", None)
    result = subprocess.run(
        [str(ASYNCRUN), "run", "--remote", str(EXAMPLES / "hello.py"), "wf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 6, result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: cannot reach the control plane at 127.0.0.1:")
    assert "Traceback" not in result.stderr


async def test_one_error_leaves_other_groups_alone() -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    with pytest.raises(UsageError):
        with one_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(fail, UsageError("a"))
    with pytest.raises(ExceptionGroup):
        with one_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(fail, UsageError("a"))
                tg.start_soon(fail, ValueError("a bug"))
