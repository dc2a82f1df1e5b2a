"""`asyncrun logs --follow` and `client.logs(..., follow=True)`: lines while the task runs, then the end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")

FLOWS = (
    "import os, time\n"
    "from asyncrun import task, workflow\n\n"
    "@task\ndef ticker(release: str) -> int:\n"
    "    print('tick 1', flush=True)\n"
    "    while not os.path.exists(release):\n"
    "        time.sleep(0.05)\n"
    "    print('tick 2', flush=True)\n"
    "    return 2\n\n"
    "@workflow\ndef ticking(release: str) -> int:\n    return ticker(release=release)\n"
)


@pytest.fixture
def flows(tmp_path):
    from asyncrun.sdk._loader import load_file

    (tmp_path / "flows.py").write_text(FLOWS)
    return load_file(tmp_path / "flows.py").module


async def test_logs_follow_prints_lines_while_the_task_runs(sandbox_env, flows, tmp_path) -> None:
    from asyncrun import Client

    release = tmp_path / "release"
    async with Client.from_config() as client:
        run = await client.run(flows.ticking, {"release": str(release)})
        # started before the task has: the command waits for the node, then follows it
        with anyio.fail_after(180):
            async with await anyio.open_process(
                [ASYNCRUN, "logs", run.id.name, "n0", "--follow"], env=dict(os.environ)
            ) as process:
                assert process.stdout is not None
                seen = b""
                async for chunk in process.stdout:
                    seen += chunk
                    if b"tick 1\n" in seen:
                        break
                # the task is still waiting for us: tick 1 came while it ran
                assert b"tick 2" not in seen
                release.touch()
                async for chunk in process.stdout:
                    seen += chunk
                assert await process.wait() == 0
        assert seen.decode().splitlines() == ["tick 1", "tick 2"]
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
    assert ended.phase == "SUCCEEDED"


async def test_client_logs_follow_ends_with_the_attempt(sandbox_env, flows, tmp_path) -> None:
    from asyncrun import Client

    release = tmp_path / "release"
    async with Client.from_config() as client:
        run = await client.run(flows.ticking, {"release": str(release)})
        lines = []
        with anyio.fail_after(180):
            async for line in client.logs(run, follow=True):
                lines.append(line)
                if line == "tick 1":
                    release.touch()
    assert lines == ["tick 1", "tick 2"]


async def test_logs_follow_of_a_node_that_never_ran_is_one_line(sandbox_env, flows, tmp_path) -> None:
    from asyncrun import Client

    (tmp_path / "release").touch()
    async with Client.from_config() as client:
        run = await client.run(flows.ticking, {"release": str(tmp_path / "release")}, wait=True)
    assert run.phase == "SUCCEEDED"
    result = await anyio.run_process(
        [ASYNCRUN, "logs", run.id.name, "n9", "--follow"], env=dict(os.environ), check=False
    )
    err = result.stderr.decode()
    assert result.returncode == 1 and "n9" in err and len(err.strip().splitlines()) == 1, err
