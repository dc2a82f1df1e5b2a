from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from asyncrun.daemon import DaemonSettings, Target

from .stub_admin import DOMAIN, PROJECT, StubAdmin, serving


@pytest.fixture
def short_dir():
    """A short folder for Unix sockets (sun_path holds ~107 bytes; pytest's tmp_path may not fit)."""
    path = Path(tempfile.mkdtemp(prefix="ard-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(short_dir, tmp_path) -> DaemonSettings:
    """Quick polling, no idle exit, generous rate limit: the defaults a test can reason about."""
    return DaemonSettings(
        socket_path=short_dir / "run" / "daemon.sock",
        journal_path=tmp_path / "daemon" / "journal.sqlite3",
        idle_timeout=0,
        min_interval=0.2,
        max_interval=1.0,
        rate=500,
        burst=500,
        call_timeout=2.0,
        backoff_base=0.2,
        backoff_cap=1.0,
    )


@pytest.fixture
async def stub():
    admin = StubAdmin()
    async with serving(admin) as endpoint:
        admin.endpoint = endpoint  # type: ignore[attr-defined]
        yield admin


@pytest.fixture
def target(stub) -> Target:
    return Target(endpoint=stub.endpoint, insecure=True, project=PROJECT, domain=DOMAIN)


@pytest.fixture
async def daemon(settings):
    """A daemon serving in this event loop."""
    from asyncrun.daemon import running_daemon

    async with running_daemon(settings) as running:
        yield running


@pytest.fixture
async def spawned(settings):
    """A daemon in its own process, started the way the CLI starts one; killed (by pid) at the end."""
    import os
    import signal

    from asyncrun.daemon._control import ensure_running, status
    from asyncrun.daemon._paths import PidInfo, pid_path

    await ensure_running(settings.socket_path, settings=settings)
    yield settings
    info = PidInfo.read(pid_path(settings.socket_path))
    current = await status(socket_path=settings.socket_path)
    for pid in {p for p in (info.pid if info else None, current.pid if current else None) if p}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def daemon_log() -> str:
    """The spawned daemons' log (for assertion messages)."""
    from asyncrun.daemon._paths import default_log_path

    try:
        return default_log_path().read_text()[-4000:]
    except OSError:
        return ""


def memory_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB, from /proc."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


async def eventually(probe, check=bool, *, within: float = 20.0, every: float = 0.05):
    """Await `probe()` until `check(value)` holds; fails after `within` seconds. The one polling helper:
    used only where the thing to wait for lives in another process and cannot signal us."""
    import anyio

    with anyio.fail_after(within):
        while True:
            value = await probe()
            if check(value):
                return value
            await anyio.sleep(every)
