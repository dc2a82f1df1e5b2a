"""`ASYNCRUN_HOME` naming a file (or a folder under a file): every command that needs the state
folder says so in one line, naming the path, and exits 2 — no NotADirectoryError traceback."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def commands() -> list[list[str]]:
    return [
        ["sandbox", "start", "--port", str(free_port()), "--http-port", str(free_port())],
        ["sandbox", "serve", "--port", "0", "--http-port", "0"],
        ["daemon", "start"],
        ["wait", "flytesnacks:development:nope"],
        ["status", "flytesnacks:development:nope"],
    ]


@pytest.mark.parametrize("under", [False, True], ids=["home-is-a-file", "home-under-a-file"])
async def test_state_folder_that_is_a_file_is_one_line_exit_2(tmp_path, monkeypatch, under) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    home = blocker / "deeper" if under else blocker
    monkeypatch.setenv("ASYNCRUN_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for args in commands():
        with anyio.fail_after(60):
            result = await anyio.run_process([ASYNCRUN, *args], check=False, env=dict(os.environ))
        err = result.stderr.decode()
        assert result.returncode == 2, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert f"{blocker} is a file, not a folder" in err and "ASYNCRUN_HOME" in err, (args, err)
