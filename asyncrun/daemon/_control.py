"""Start, stop and inspect the background daemon (`asyncrun daemon start|stop|status`); CLI side.

The daemon is started detached (`python -m asyncrun.daemon serve`, a new session, output to the
daemon log). A crowd of CLIs that all find no daemon start exactly one: they queue on a start lock
beside the socket, and the daemon itself holds a lock for its whole life. Stdlib and anyio only.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .._filelock import FileLock, is_locked
from ._paths import (
    PidInfo,
    default_log_path,
    ensure_private_dir,
    lock_path,
    pid_path,
    resolve_socket,
    start_lock_path,
)
from ._protocol import DaemonError, DaemonUnavailableError

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from ._settings import DaemonSettings

_SPAWNED: list[subprocess.Popen[bytes]] = []  # kept so they are reaped, not left as zombies


@dataclass(frozen=True)
class DaemonStatus:
    """What `asyncrun daemon status` shows."""

    pid: int
    version: str
    socket: str
    journal: str
    started_at: float
    uptime: float
    tracked: int  # executions in the journal (finished ones are kept for a while)
    active: int  # executions still being polled
    connections: int
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    pollers: list[dict[str, Any]] = field(default_factory=list)
    answering: bool = True  # False: known from its lock and pid file only (the counters are 0)

    @classmethod
    def from_pid_info(cls, info: PidInfo) -> DaemonStatus:
        """What the pid file of a daemon that holds its lock but does not answer tells."""
        return cls(
            pid=info.pid,
            version=info.version,
            socket=info.socket,
            journal=info.journal,
            started_at=info.started_at,
            uptime=max(0.0, time.time() - info.started_at),
            tracked=0,
            active=0,
            connections=0,
            answering=False,
        )

    @classmethod
    def from_json(cls, info: dict[str, Any]) -> DaemonStatus:
        return cls(
            pid=int(info["pid"]),
            version=str(info.get("version", "")),
            socket=str(info.get("socket", "")),
            journal=str(info.get("journal", "")),
            started_at=float(info.get("started_at", 0.0)),
            uptime=float(info.get("uptime", 0.0)),
            tracked=int(info.get("tracked", 0)),
            active=int(info.get("active", 0)),
            connections=int(info.get("connections", 0)),
            endpoints=list(info.get("endpoints", [])),
            pollers=list(info.get("pollers", [])),
        )


async def answers(socket_path: Path) -> bool:
    """Whether a daemon accepts connections on `socket_path`."""
    try:
        stream = await anyio.connect_unix(socket_path)
    except OSError:
        return False
    await stream.aclose()
    return True


def spawn_command(socket_path: Path, settings: DaemonSettings | None = None) -> list[str]:
    """The command that starts a daemon; other knobs come from `ASYNCRUN_DAEMON_*` in the environment."""
    args = settings.as_args() if settings is not None else []
    return [sys.executable, "-m", "asyncrun.daemon", "serve", *args, "--socket-path", str(socket_path)]


def _spawn(socket_path: Path, settings: DaemonSettings | None) -> subprocess.Popen[bytes]:
    import subprocess  # only when a daemon has to be started

    for old in list(_SPAWNED):
        if old.poll() is not None:
            _SPAWNED.remove(old)
    log_path = default_log_path()
    ensure_private_dir(log_path.parent)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            spawn_command(socket_path, settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the CLI that started it, and its Ctrl-C
            close_fds=True,
        )
    _SPAWNED.append(process)
    return process


def _log_tail() -> str:
    try:
        lines = [line for line in default_log_path().read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# How long a CLI waits for a daemon it started to answer. Only a daemon that neither answers nor exits
# makes anyone wait this long (one that exits is reported at once); on a machine busy with hundreds of
# processes its interpreter can take tens of seconds to get going, which is not a failure.
START_TIMEOUT = 60.0


async def ensure_running(
    socket_path: Path, *, start_timeout: float = START_TIMEOUT, settings: DaemonSettings | None = None
) -> bool:
    """Make sure a daemon answers on `socket_path`, starting one if needed; True if this call started it."""
    if await answers(socket_path):
        return False
    ensure_private_dir(socket_path.parent)
    deadline = time.monotonic() + start_timeout
    start_lock = FileLock(start_lock_path(socket_path))
    while not start_lock.try_acquire():
        if await answers(socket_path):
            return False
        if time.monotonic() > deadline:
            raise DaemonUnavailableError(
                f"timed out waiting for another process to start the daemon ({socket_path})"
            )
        await anyio.sleep(0.02)
    try:
        if await answers(socket_path):
            return False
        # A daemon may hold its lock and still be loading its journal: then wait rather than spawn.
        process = None if is_locked(lock_path(socket_path)) else _spawn(socket_path, settings)
        while time.monotonic() < deadline:
            if await answers(socket_path):
                return process is not None
            if process is not None and process.poll() is not None and not is_locked(lock_path(socket_path)):
                break
            await anyio.sleep(0.02)
        tail = _log_tail()
        raise DaemonUnavailableError(
            f"the asyncrun daemon did not start on {socket_path} (log: {default_log_path()})"
            + (f": {tail}" if tail else "")
        )
    finally:
        start_lock.release()


async def start(
    settings: DaemonSettings | None = None,
    *,
    socket_path: str | os.PathLike[str] | None = None,
    start_timeout: float = START_TIMEOUT,
) -> tuple[DaemonStatus, bool]:
    """Start the daemon in the background unless it runs; returns (its status, started by this call)."""
    path = settings.socket_path if settings is not None else resolve_socket(socket_path)
    started = await ensure_running(path, start_timeout=start_timeout, settings=settings)
    current = await status(socket_path=path)
    if current is None:
        raise DaemonUnavailableError(f"the daemon on {path} started but does not answer")
    return current, started


# How long `status` waits for a daemon that holds its lock to answer (it rebinds a lost socket in ~1 s).
_SETTLE_SECONDS = 5.0


async def status(*, socket_path: str | os.PathLike[str] | None = None) -> DaemonStatus | None:
    """The running daemon's status, or None when none runs (this never starts one).

    The daemon is found by its lock, not by its socket file: while the lock is held and the socket does
    not answer (the file was deleted and the daemon is binding it again), this waits a few seconds, then
    reports what the pid file says (`answering=False`).
    """
    path = resolve_socket(socket_path)
    deadline = time.monotonic() + _SETTLE_SECONDS
    while True:
        current = await _ask_status(path)
        if current is not None:
            return current
        if not is_locked(lock_path(path)):
            return None
        if time.monotonic() >= deadline:
            info = PidInfo.read(pid_path(path))
            return DaemonStatus.from_pid_info(info) if info is not None else None
        await anyio.sleep(0.1)


async def _ask_status(path: Path) -> DaemonStatus | None:
    from ._connect import DaemonConnection

    try:
        async with DaemonConnection(path, autostart=False) as conn:
            reply = await conn.request("status", executions=False)
    except DaemonError:
        return None
    return DaemonStatus.from_json(reply["daemon"])


async def stop(
    *, socket_path: str | os.PathLike[str] | None = None, grace: float = 10.0
) -> DaemonStatus | None:
    """Stop the daemon: a `shutdown` request, then SIGTERM, then SIGKILL (each given `grace` / 2 s).

    Returns its last status, or None if none was running.
    """
    from ._connect import DaemonConnection

    path = resolve_socket(socket_path)
    before = await status(socket_path=path)
    pid_info = PidInfo.read(pid_path(path))
    if before is None and not is_locked(lock_path(path)):
        return None
    try:
        async with DaemonConnection(path, autostart=False) as conn:
            await conn.request("shutdown")
    except DaemonError:
        pass
    if before is None and pid_info is not None:
        before = DaemonStatus.from_pid_info(pid_info)
    pid = before.pid if before is not None else None
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
        deadline = time.monotonic() + grace / 2
        # The lock is the one sign of life that a zombie or a stuck daemon cannot fake, so poll it.
        while is_locked(lock_path(path)) and time.monotonic() < deadline:  # noqa: ASYNC110
            await anyio.sleep(0.05)
        if not is_locked(lock_path(path)):
            break
    return before
