"""Task processes die with a SIGKILLed sandbox, and a restarted sandbox kills what their groups left
running, so nothing writes into runs the restart marked FAILED (issue 12, item 13)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import pytest

from asyncrun import Client
from asyncrun.sdk._loader import load_file

from .conftest import assert_eventually
from .test_restart_cli import free_port, run, sandbox_cmd

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

LINGER = textwrap.dedent(
    """
    import os, subprocess, time
    from asyncrun import task

    @task
    def linger(marker: str) -> int:
        helper = subprocess.Popen(["sleep", "600"])  # in the task's process group
        with open(marker + ".tmp", "w") as handle:
            handle.write(f"{os.getpid()} {helper.pid}")
        os.replace(marker + ".tmp", marker)
        time.sleep(600)
        return 1
    """
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def test_task_processes_die_with_the_sandbox_and_leftovers_die_on_restart(tmp_path: Path) -> None:
    data_dir, port, http_port = tmp_path / "sb", free_port(), free_port()
    started = run(sandbox_cmd("start", data_dir, port, http_port))
    assert started.returncode == 0, started.stderr
    project = tmp_path / "proj"
    project.mkdir()
    (project / "linger_tasks.py").write_text(LINGER)
    marker = tmp_path / "pids"
    linger = load_file(project / "linger_tasks.py").entity("linger")
    task_pid = helper_pid = 0
    try:
        async with Client.from_config(endpoint=f"127.0.0.1:{port}", insecure=True) as client:
            execution = await client.run(linger, {"marker": str(marker)})

            async def marker_written() -> bool:
                return marker.exists()

            await assert_eventually(marker_written, within=60, what="the task to start")
            task_pid, helper_pid = map(int, marker.read_text().split())
            assert alive(task_pid) and alive(helper_pid)

            sandbox_pid = json.loads((data_dir / "sandbox.json").read_text())["pid"]
            os.kill(sandbox_pid, signal.SIGKILL)

            async def task_gone() -> bool:
                return not alive(task_pid)

            await assert_eventually(task_gone, within=30, what="the task process to die with the sandbox")

            restarted = run(sandbox_cmd("start", data_dir, port, http_port))
            assert restarted.returncode == 0, restarted.stderr + restarted.stdout

            async def helper_gone() -> bool:
                return not alive(helper_pid)

            await assert_eventually(helper_gone, within=30, what="the restart to kill the task's group")
            await client.aclose()
            after = await client.get_execution(execution.id)
            assert after.phase == "FAILED" and "sandbox restarted" in (
                after.error.message if after.error else ""
            )
    finally:
        for pid in (task_pid, helper_pid):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        run(sandbox_cmd("stop", data_dir, port, http_port))


def test_a_recycled_pid_is_not_killed(tmp_path: Path) -> None:
    """The pid file's group is killed only while a process in it carries the attempt's token."""
    import subprocess

    from asyncrun.sandbox._process import kill_leftover_groups

    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        node = tmp_path / "n0"
        node.mkdir()
        (node / "0.pid").write_text(f"{bystander.pid} not-its-token\n")
        assert kill_leftover_groups(tmp_path) == 0
        assert bystander.poll() is None
        token = "b" * 32
        tagged = subprocess.Popen(
            ["sleep", "600"], start_new_session=True, env={**os.environ, "ASYNCRUN_ATTEMPT_TOKEN": token}
        )
        (node / "1.pid").write_text(f"{tagged.pid} {token}\n")
        assert kill_leftover_groups(tmp_path) == 1
        assert tagged.wait(timeout=600) == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
