"""Runs launched without --wait are tracked by the daemon: `status` and `watch` show them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.py")


async def test_a_run_launched_without_wait_shows_in_status_and_watch(sandbox_env) -> None:
    env = dict(os.environ)
    launched = await anyio.run_process(
        [ASYNCRUN, "run", "--remote", "--output", "json", HELLO, "wf", "--name", "tracked"],
        env=env,
        check=False,
    )
    assert launched.returncode == 0, launched.stderr.decode()
    name = json.loads(launched.stdout)["execution"]["name"]
    try:
        status = await anyio.run_process([ASYNCRUN, "status", "-o", "json"], env=env, check=False)
        assert status.returncode == 0, status.stderr.decode()
        assert name in [state["name"] for state in json.loads(status.stdout)]
        with anyio.fail_after(180):  # `watch ID` ends once its run has ended
            watched = await anyio.run_process([ASYNCRUN, "watch", name], env=env, check=False)
        assert watched.returncode == 0, watched.stderr.decode()
        assert name in watched.stdout.decode() and "SUCCEEDED" in watched.stdout.decode()
    finally:
        await anyio.run_process([ASYNCRUN, "daemon", "stop"], env=env, check=False)
