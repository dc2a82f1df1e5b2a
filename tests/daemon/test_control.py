"""The CLI side: start/stop/status of a background daemon, crowds of starters, idle exit, light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import anyio
import pytest

from asyncrun._filelock import is_locked
from asyncrun.daemon import DaemonConnection, daemon_status, start_daemon, stop_daemon
from asyncrun.daemon._paths import lock_path

from .conftest import daemon_log, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

HEAVY = (
    "grpclib",
    "betterproto2",
    "httpx",
    "yaml",
    "h2",
    "asyncrun.client",
    "asyncrun.sdk",
    "asyncrun._proto",
)


def _heavy(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_cli_side_imports_are_light() -> None:
    code = (
        "import sys, json; import asyncrun.daemon as d; "
        "d.DaemonConnection, d.wait, d.status, d.watch, d.Target; "
        "d.start_daemon, d.stop_daemon, d.daemon_status; "
        "import asyncrun.daemon._connect, asyncrun.daemon._control, asyncrun.daemon._protocol; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert _heavy(json.loads(out)) == []


def test_the_import_check_can_fail() -> None:
    code = "import sys, json; import asyncrun.daemon._server; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "grpclib" in _heavy(json.loads(out))


_WAIT_AND_STATUS = """
import anyio, json, sys
from asyncrun.daemon import Target, status, wait

async def main():
    target = Target(endpoint=sys.argv[1], insecure=True, project="flytesnacks", domain="development")
    result = await wait(["cli1"], target=target, timeout=20)
    current = await status(["cli1"], target=target)
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("grpclib", "betterproto2", "httpx", "yaml"))
    print(json.dumps({"exit": result.exit_code, "phase": current.executions[0].phase, "heavy": heavy}))

anyio.run(main)
"""


async def test_a_cli_process_waits_through_the_daemon_without_grpc(stub, spawned) -> None:
    stub.add("cli1", "RUNNING")
    env = {**os.environ, "ASYNCRUN_DAEMON_SOCKET": str(spawned.socket_path)}
    async with anyio.create_task_group() as tg:
        outcome: list = []

        async def run() -> None:
            outcome.append(
                await anyio.run_process([sys.executable, "-c", _WAIT_AND_STATUS, stub.endpoint], env=env)
            )

        tg.start_soon(run)
        await anyio.sleep(1.0)
        stub.set_phase("cli1", "FAILED", error=("E", "boom"))
    result = json.loads(outcome[0].stdout)
    assert result == {"exit": 1, "phase": "FAILED", "heavy": []}, outcome[0].stderr


async def test_start_status_stop(settings) -> None:
    settings = replace(settings, idle_timeout=60)
    assert await daemon_status(socket_path=settings.socket_path) is None
    status, started = await start_daemon(settings)
    assert started and status.pid != os.getpid() and status.tracked == 0 and status.uptime >= 0
    assert status.socket == str(settings.socket_path)
    again, started_again = await start_daemon(settings)
    assert not started_again and again.pid == status.pid
    stopped = await stop_daemon(socket_path=settings.socket_path)
    assert stopped is not None and stopped.pid == status.pid
    assert not is_locked(lock_path(settings.socket_path))
    assert not settings.socket_path.exists()
    assert await stop_daemon(socket_path=settings.socket_path) is None


_STATUS_ONCE = """
import anyio, json, sys
from asyncrun.daemon import DaemonConnection

async def main():
    async with DaemonConnection(sys.argv[1]) as conn:
        print(json.dumps({"pid": conn.daemon["pid"], "started": conn.started_daemon}))

anyio.run(main)
"""


async def test_a_crowd_of_clients_starts_one_daemon(settings) -> None:
    env = {**os.environ, "ASYNCRUN_DAEMON_IDLE_TIMEOUT": "30"}
    results: list[dict] = []

    async def one() -> None:
        done = await anyio.run_process(
            [sys.executable, "-c", _STATUS_ONCE, str(settings.socket_path)], env=env
        )
        results.append(json.loads(done.stdout))

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(one)
        assert len({r["pid"] for r in results}) == 1, daemon_log()
        assert sum(r["started"] for r in results) == 1
    finally:
        await stop_daemon(socket_path=settings.socket_path)


async def test_idle_daemon_exits_but_not_while_tracking(stub, target, settings) -> None:
    settings = replace(settings, idle_timeout=1.0)
    stub.add("idle1", "RUNNING")
    async with DaemonConnection(settings=settings) as conn:
        assert conn.started_daemon
        await conn.track(["idle1"], target=target)
    await anyio.sleep(2.5)  # no connection, but a run is being tracked: stays up
    assert await daemon_status(socket_path=settings.socket_path) is not None
    stub.set_phase("idle1", "SUCCEEDED")

    async def locked() -> bool:
        return is_locked(lock_path(settings.socket_path))

    await eventually(locked, lambda held: not held)
    assert not settings.socket_path.exists()
    # The next call starts a new one, which still knows the finished run.
    async with DaemonConnection(settings=settings) as conn:
        assert conn.started_daemon
        (state,) = (await conn.status(["idle1"], target=target)).executions
        assert state.phase == "SUCCEEDED" and state.tracked
        await conn.shutdown()
