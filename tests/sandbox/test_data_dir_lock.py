"""One sandbox per data folder: a second one would run every queued execution a second time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncrun.exceptions import UsageError
from asyncrun.sandbox import SandboxConfig, running_sandbox

pytestmark = pytest.mark.anyio


async def test_a_second_sandbox_on_the_same_folder_is_refused(tmp_path) -> None:
    config = SandboxConfig(data_dir=tmp_path / "sb", port=0, http_port=0)
    async with running_sandbox(config):
        with pytest.raises(UsageError, match=rf"another sandbox \(pid {os.getpid()}\) uses .*sb; stop it"):
            async with running_sandbox(config):
                pass
        async with running_sandbox(SandboxConfig(data_dir=tmp_path / "other", port=0, http_port=0)):
            pass  # another folder is fine
    async with running_sandbox(config):
        pass  # and the folder is free again once the first has stopped


def test_serve_on_a_busy_folder_exits_2_with_one_line(tmp_path) -> None:
    asyncrun = str(Path(sys.executable).parent / "asyncrun")
    data_dir = tmp_path / "sb"
    env = {**os.environ, "ASYNCRUN_HOME": str(tmp_path / "home")}
    started = subprocess.run(
        [asyncrun, "sandbox", "start", "--data-dir", str(data_dir), "--port", "0", "--http-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        second = subprocess.run(
            [asyncrun, "sandbox", "serve", "--data-dir", str(data_dir), "--port", "0", "--http-port", "0"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: another sandbox (pid "), lines
    finally:
        subprocess.run([asyncrun, "sandbox", "stop", "--data-dir", str(data_dir)], env=env, check=False)
