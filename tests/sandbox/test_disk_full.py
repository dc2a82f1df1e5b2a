"""A full disk fails the execution that hit it, with a clear error; the sandbox keeps serving and leaves
no temp files (issue 12, item 12)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from asyncrun import _storage
from asyncrun.sandbox._admin import AdminService
from asyncrun.sandbox._runner import Runner
from asyncrun.sandbox._store import Store

from .conftest import INT, STR, integer, literals, script_args, task_id, task_template, variables
from .test_runner import Phase, finished, launch, one_task_workflow

pytestmark = pytest.mark.anyio


def limit_database(store: Store, headroom_pages: int) -> None:
    """Let the database grow by only a few pages: SQLite then fails writes with SQLITE_FULL ("database
    or disk is full"), exactly as on a full disk, without needing a small file system."""
    connection = store._connection
    assert connection is not None
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages + headroom_pages}")


async def test_outputs_too_big_for_the_disk_fail_that_execution_only(
    store: Store, runner: Runner, service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    big = task_template(
        task_id("big"), outputs=variables(o0=STR), args=script_args(task_script, "big", "3000000")
    )
    add = task_template(
        task_id("add"),
        inputs=variables(a=INT, b=INT),
        outputs=variables(o0=INT),
        args=script_args(task_script, "add"),
    )
    # Room for registering and running small things, not for a 3 MB output.
    big_template = one_task_workflow("bigwf", big)
    add_template = one_task_workflow("addwf", add, a=INT, b=INT)
    limit_database(store, headroom_pages=300)

    key = await launch(service, "too-big", big_template, [big])
    ended = await finished(service, key)
    assert ended.closure is not None and ended.closure.phase == Phase.FAILED
    assert ended.closure.error is not None and ended.closure.error.code == "DiskFull"
    assert "ran out of disk space" in ended.closure.error.message
    assert "free space there" in ended.closure.error.message

    # The runner and the admin service still work: a small run after it succeeds.
    small = await launch(service, "small", add_template, [add], literals(a=integer(1), b=integer(2)))
    done = await finished(service, small)
    assert done.closure is not None and done.closure.phase == Phase.SUCCEEDED, done.closure
    assert not list((tmp_path / "data").rglob("*.tmp"))


def test_a_failed_local_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = Path.write_bytes

    def half_then_full(self: Path, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(Exception, match="No space left"):
        _storage.write_bytes(str(tmp_path / "outputs.pb"), b"x" * 1000)
    from asyncrun.sandbox._task_nodes import write_bytes

    with pytest.raises(OSError, match="No space left"):
        write_bytes(tmp_path / "inputs.pb", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


BIG = textwrap.dedent(
    """
    from asyncrun import task, workflow

    @task
    def make(n: int) -> str:
        return "x" * n

    @workflow
    def wf(n: int = 1500000) -> str:
        return make(n=n)
    """
)


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 4 MB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root; the SQLite test above covers the logic")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.timeout(300)
def test_run_remote_wait_on_a_full_disk_fails_clearly_and_the_sandbox_keeps_serving(
    tiny_disk: Path, tmp_path: Path
) -> None:
    """The issue's reproduction: the sandbox's data folder on a small tmpfs, a run whose output does
    not fit. Before the fix, the sandbox crashed and `--wait` waited forever."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "big.py").write_text(BIG)
    env = {
        **os.environ,
        "ASYNCRUN_HOME": str(tiny_disk / "home"),
        "HOME": str(tmp_path / "home"),
        "ASYNCRUN_DAEMON_SOCKET": str(Path("/tmp") / f"ard-{uuid.uuid4().hex[:8]}.sock"),
    }
    env.pop("FLYTE_PLATFORM_URL", None)
    env.pop("FLYTECTL_CONFIG", None)
    asyncrun = str(Path(sys.executable).parent / "asyncrun")
    data_dir = tiny_disk / "sb"
    port, http_port = _free_port(), _free_port()
    start = [asyncrun, "sandbox", "start", "--data-dir", str(data_dir), "--port", str(port)]
    start += ["--http-port", str(http_port), "--task-path", str(Path(sys.executable).parent)]
    started = subprocess.run(start, capture_output=True, text=True, env=env, timeout=120)
    assert started.returncode == 0, started.stderr
    env["FLYTE_PLATFORM_URL"] = f"127.0.0.1:{port}"
    env["FLYTE_PLATFORM_INSECURE"] = "true"
    try:
        result = subprocess.run(
            [asyncrun, "run", "--remote", "--wait", "--no-daemon", "big.py", "wf"],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "ran out of disk space" in result.stdout + result.stderr
        status = subprocess.run(
            [asyncrun, "sandbox", "status", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert not list(tiny_disk.rglob("*.tmp"))
    finally:
        subprocess.run([asyncrun, "sandbox", "stop", "--data-dir", str(data_dir)], env=env, timeout=600)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
