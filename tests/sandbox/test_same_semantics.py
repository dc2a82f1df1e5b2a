"""One task, run both ways: `asyncrun run` (local) and `asyncrun run --remote --wait` (a real sandbox).

Retries, timeouts, exit codes and value rules must agree (issue 12, items 3, 5 and 6). Both runs are
subprocesses of the installed `asyncrun` script, started with `anyio.run_process` so the sandbox in
this event loop keeps serving.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")

TASKS = textwrap.dedent(
    """
    import time
    from datetime import datetime, timedelta

    from asyncrun import RecoverableError, task


    def count(path: str) -> int:
        with open(path, "a") as f:
            f.write("attempt\\n")
        with open(path) as f:
            return len(f.readlines())


    @task(retries=2)
    def flaky(attempts: str) -> str:
        n = count(attempts)
        if n <= 2:
            raise RecoverableError(f"attempt {n}: try again")
        return f"ok after {n} attempts"


    @task(retries=2)
    def broken(attempts: str) -> str:
        n = count(attempts)
        raise ValueError(f"attempt {n}: broken for good")


    @task(timeout=timedelta(seconds=2))
    def sleepy(attempts: str) -> str:
        count(attempts)
        time.sleep(600)
        return "woke up"


    @task
    def when(t: datetime) -> str:
        return t.isoformat()


    @task
    def big(n: int) -> int:
        return n
    """
)


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / f"semantics_{tmp_path.name[-8:]}.py"
    path.write_text(TASKS)
    return path


async def asyncrun(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = await anyio.run_process([ASYNCRUN, *args], check=False, env=env)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture
def both_ways(sandbox_env, tmp_path: Path):
    """Run `asyncrun run [--remote --wait] FILE TASK ARGS…` locally and remotely; returns both results."""
    env = dict(os.environ)

    async def run(
        file: Path, task: str, *args: str, attempts: Path | None = None, name: str = ""
    ) -> dict[str, tuple]:
        named = ("--name", name) if name else ()
        results = {}
        for where, flags in (("local", ()), ("remote", ("--remote", "--wait", "--no-daemon", *named))):
            extra = ("--attempts", str(attempts.with_suffix(f".{where}"))) if attempts else ()
            results[where] = await asyncrun("run", *flags, str(file), task, *args, *extra, env=env)
        return results

    return run


def attempts_made(attempts: Path, where: str) -> int:
    path = attempts.with_suffix(f".{where}")
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_a_recoverable_error_is_retried_both_ways(both_ways, tasks: Path, tmp_path: Path) -> None:
    attempts = tmp_path / "flaky"
    results = await both_ways(tasks, "flaky", attempts=attempts)
    for where, (code, out, err) in results.items():
        assert code == 0, f"{where}: {err}"
        assert out.strip() == "ok after 3 attempts", where
        assert attempts_made(attempts, where) == 3, where


async def test_any_other_error_is_not_retried_either_way(both_ways, tasks: Path, tmp_path: Path) -> None:
    attempts = tmp_path / "broken"
    results = await both_ways(tasks, "broken", attempts=attempts)
    for where, (code, _, err) in results.items():
        assert code == 1, f"{where}: {err}"
        assert "attempt 1: broken for good" in err, where
        assert attempts_made(attempts, where) == 1, where


async def test_a_task_timeout_exits_4_both_ways(both_ways, tasks: Path, tmp_path: Path) -> None:
    # The task sleeps 600 s; the test's own timeout (240 s) proves both runs ended at the task's timeout.
    attempts = tmp_path / "sleepy"
    results = await both_ways(tasks, "sleepy", attempts=attempts, name="sleepy-run")
    for where, (code, _, err) in results.items():
        assert code == 4, f"{where}: {err}"
        assert "time" in err.lower(), where
        # No retries: at most one attempt (on a busy machine the 2 s may end before the task starts).
        assert attempts_made(attempts, where) <= 1, where
    # `asyncrun wait` (through the daemon) classifies the finished run the same way.
    code, _, err = await asyncrun("wait", "sleepy-run", env=dict(os.environ))
    assert code == 4, err


async def test_a_datetime_reaches_the_task_as_the_same_utc_instant(both_ways, tasks: Path) -> None:
    results = await both_ways(tasks, "when", "--t", "2024-01-05T10:00:00+05:30")
    for where, (code, out, err) in results.items():
        assert code == 0, f"{where}: {err}"
        assert out.strip() == "2024-01-05T04:30:00+00:00", where


async def test_an_int_beyond_int64_is_refused_both_ways(both_ways, tasks: Path) -> None:
    results = await both_ways(tasks, "big", "--n", str(2**63))
    for where, (code, _, err) in results.items():
        assert code == 2, f"{where}: {err}"
        assert "does not fit in a 64-bit integer" in err, where
    results = await both_ways(tasks, "big", "--n", str(2**63 - 1))
    for where, (code, out, err) in results.items():
        assert (code, out.strip()) == (0, str(2**63 - 1)), f"{where}: {err}"
