"""`asyncrun sandbox start|status|stop` as real processes, and a SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from asyncrun import Client
from asyncrun.sdk._loader import load_file

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sandbox_cmd(action: str, data_dir: Path, port: int, http_port: int) -> list[str]:
    cmd = [ASYNCRUN, "sandbox", action, "--data-dir", str(data_dir)]
    if action == "start":
        cmd += [
            "--port",
            str(port),
            "--http-port",
            str(http_port),
            "--task-path",
            str(Path(sys.executable).parent),
        ]
    return cmd


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


SLOW = textwrap.dedent(
    """
    import time
    from asyncrun import task

    @task
    def slow(seconds: int) -> int:
        time.sleep(seconds)
        return seconds
    """
)


async def test_start_status_stop_and_sigkill_mid_execution(tmp_path: Path) -> None:
    data_dir, port, http_port = tmp_path / "sb", free_port(), free_port()
    started = run(sandbox_cmd("start", data_dir, port, http_port))
    assert started.returncode == 0, started.stderr
    assert f"127.0.0.1:{port}" in started.stdout and f"http://127.0.0.1:{http_port}/console" in started.stdout
    again = run(sandbox_cmd("start", data_dir, port, http_port))
    assert "already running" in again.stdout
    status = run(sandbox_cmd("status", data_dir, port, http_port))
    assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout and "uptime" in status.stdout

    project = tmp_path / "proj"
    project.mkdir()
    (project / "slow_tasks.py").write_text(SLOW)
    slow = load_file(project / "slow_tasks.py").entity("slow")
    async with Client.from_config(endpoint=f"127.0.0.1:{port}", insecure=True) as client:
        execution = await client.run(slow, {"seconds": 20})
        running = await client.wait(execution, wait_for="running", timeout=30)
        assert running.phase == "RUNNING"

        pid = json.loads((data_dir / "sandbox.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        with anyio.fail_after(10):
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                await anyio.sleep(0.05)

        restarted = run(sandbox_cmd("start", data_dir, port, http_port))
        assert restarted.returncode == 0, restarted.stderr + restarted.stdout
        assert "sandbox started" in restarted.stdout
        await client.aclose()
        after = await client.get_execution(execution.id)
        assert after.phase.is_terminal
        assert after.phase == "FAILED" and "sandbox restarted" in (after.error.message if after.error else "")
        task = await client.fetch_task("slow_tasks.slow")
        assert execution.target is not None and task.id.version == execution.target.version
        names = await client.list_entities("task")
        assert "slow_tasks.slow" in names

    stopped = run(sandbox_cmd("stop", data_dir, port, http_port))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert run(sandbox_cmd("status", data_dir, port, http_port)).returncode == 1
    assert "no sandbox is running" in run(sandbox_cmd("stop", data_dir, port, http_port)).stdout


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run(sandbox_cmd("start", tmp_path / "sb", port, free_port()))
    assert result.returncode == 2
    assert "in use" in result.stderr and "Traceback" not in result.stderr
