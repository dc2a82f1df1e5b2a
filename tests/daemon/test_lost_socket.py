"""A daemon whose socket file is deleted stays findable and reachable (issue 12, item 14).

The daemon is found by its lock and pid file, and binds its socket again when the file disappears, so
`daemon status`, `wait` and `daemon stop` keep working instead of waiting for it to idle out.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from asyncrun._filelock import is_locked
from asyncrun.daemon._control import answers, status
from asyncrun.daemon._paths import PidInfo, lock_path, pid_path

from .test_cli import cli_env

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        result = await anyio.run_process([ASYNCRUN, *args], env=env, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_deleted_socket_is_bound_again_and_status_wait_stop_work(stub, spawned) -> None:
    socket_path = spawned.socket_path
    info = PidInfo.read(pid_path(socket_path))
    assert info is not None
    env = cli_env(stub, spawned)
    socket_path.unlink()

    # status finds the running daemon (not "no daemon is running"), with its pid
    code, out, err = await _run(env, "daemon", "status")
    assert code == 0, out + err
    assert f"pid:      {info.pid}" in out

    # the daemon answers on its socket again: a wait is served by the same daemon, not a 15 s failure
    assert await answers(socket_path)
    stub.add("after-unlink", "SUCCEEDED", o0=1)
    code, out, err = await _run(env, "wait", "after-unlink")
    assert code == 0, out + err
    current = await status(socket_path=socket_path)
    assert current is not None and current.pid == info.pid and current.answering

    socket_path.unlink()
    code, out, err = await _run(env, "daemon", "stop")
    assert code == 0 and f"daemon stopped (pid {info.pid})" in out, out + err
    assert not is_locked(lock_path(socket_path))  # the lock dies with the daemon (a zombie holds none)


async def test_stop_finds_a_daemon_that_does_not_answer_by_its_pid_file(stub, spawned) -> None:
    """A daemon that holds its lock but cannot answer (here: stopped with SIGSTOP after its socket was
    deleted) is still reported and stopped, by the pid in its pid file."""
    socket_path = spawned.socket_path
    info = PidInfo.read(pid_path(socket_path))
    assert info is not None
    os.kill(info.pid, signal.SIGSTOP)
    try:
        socket_path.unlink()
        current = await status(socket_path=socket_path)
        assert current is not None and current.pid == info.pid and not current.answering
        code, out, err = await _run(cli_env(stub, spawned), "daemon", "status")
        assert code == 0 and "not answering" in out, out + err
        code, out, err = await _run(cli_env(stub, spawned), "daemon", "stop")
        assert code == 0 and f"daemon stopped (pid {info.pid})" in out, out + err
    finally:
        try:
            os.kill(info.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert not is_locked(lock_path(socket_path))
