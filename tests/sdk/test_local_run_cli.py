"""Local runs of the installed `asyncrun` script: what a user sees when the run or its cache misbehaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")


def write(folder: Path, source: str, name: str = "user_tasks.py") -> Path:
    path = folder / "project" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def asyncrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASYNCRUN, *args], capture_output=True, text=True, env=env, check=False)


CACHED = """
    from asyncrun import task, workflow

    @task(cache=True, cache_version="1")
    def double(x: int) -> int:
        return x * 2

    @task(cache=True, cache_version="1")
    def add_one(x: int) -> int:
        return x + 1

    @workflow
    def wf(x: int = 20) -> int:
        return add_one(x=double(x=x))
"""


def test_a_cache_that_cannot_be_written_still_prints_the_result_and_warns_once(tmp_path: Path) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder")
    file = write(tmp_path, CACHED)
    result = asyncrun("run", str(file), "wf", env={**os.environ, "ASYNCRUN_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "41"
    assert "Traceback" not in result.stderr
    # Two cached tasks, one warning.
    assert result.stderr.count("cannot write the local cache") == 1, result.stderr


SLOW = """
    import time
    from datetime import timedelta

    from asyncrun import task

    @task(timeout=timedelta(seconds=2))
    def nap(seconds: int = 600) -> int:
        print("task started", flush=True)
        time.sleep(seconds)
        return seconds
"""


@pytest.mark.timeout(120)
def test_a_sync_task_timeout_ends_the_run_while_the_thread_still_sleeps(tmp_path: Path) -> None:
    # The task sleeps 600 s; the run must end at the 2 s timeout (this test's own timeout bounds it),
    # with the process not waiting for the abandoned thread at exit.
    file = write(tmp_path, SLOW)
    result = asyncrun("run", str(file), "nap")
    assert result.returncode == 4, result.stderr
    assert "task started" in result.stdout
    assert "timed out after 0:00:02" in result.stderr


@pytest.mark.timeout(120)
def test_ctrl_c_ends_a_local_run_while_a_sync_task_sleeps(tmp_path: Path) -> None:
    file = write(tmp_path, SLOW)
    process = subprocess.Popen(
        [ASYNCRUN, "run", str(file), "nap", "--seconds", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell started in the background ignores SIGINT; the run must see it as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "task started"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate()
    assert process.returncode == 130, err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback


def test_sys_exit_at_import_is_a_definition_error(tmp_path: Path) -> None:
    file = write(tmp_path, "import sys\nsys.exit(3)\n", name="exits_at_import.py")
    result = asyncrun("run", str(file), "anything")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "exits_at_import.py" in lines[0] and "sys.exit(3)" in lines[0], lines


def test_an_import_error_without_text_names_its_type(tmp_path: Path) -> None:
    file = write(tmp_path, "raise MemoryError()\n", name="no_memory.py")
    result = asyncrun("run", str(file), "anything")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "Error: cannot import no_memory.py: MemoryError"
