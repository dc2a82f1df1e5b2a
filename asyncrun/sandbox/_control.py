"""Start, stop and inspect a background sandbox (`asyncrun sandbox start|stop|status`)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._exceptions import SandboxStartError as SandboxStartError
from .._exceptions import UsageError
from .._filelock import FileLock, is_locked
from .._paths import make_dir
from ._config import STATE_FILE, SandboxConfig, SandboxInfo

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

START_LOCK = "start.lock"  # held while one process starts the sandbox of a data folder
SERVE_LOCK = "sandbox.lock"  # held by the sandbox serving a data folder (see _server.running_sandbox)
PORTS_HINT = "pick free ports with --port/--http-port or ASYNCRUN_SANDBOX_PORT/ASYNCRUN_SANDBOX_HTTP_PORT"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def running(data_dir: Path) -> SandboxInfo | None:
    """The sandbox serving `data_dir`, if one is up and answering."""
    info = SandboxInfo.read(data_dir)
    if info is None or not pid_alive(info.pid) or not answers(info.host, info.port):
        return None
    return info


async def ensure_running(
    config: SandboxConfig, *, progress: Callable[[str], None] | None = None
) -> SandboxInfo | None:
    """Make sure something answers at the sandbox's gRPC port, starting the sandbox of
    `config.data_dir` in the background when nothing does.

    Concurrent callers, in this process or others, wait on one start lock: one of them starts the
    sandbox and the others use it. Returns the sandbox this call started, or None when something
    already answered (this call's sandbox, another one, or any other server: the caller finds out).
    """
    import anyio

    if await anyio.to_thread.run_sync(answers, config.host, config.port):
        return None
    if progress is not None:
        progress(f"nothing answers at {config.host}:{config.port}: starting the local sandbox…")
    info, started = await anyio.to_thread.run_sync(start_background, config, abandon_on_cancel=True)
    return info if started else None


def start_background(config: SandboxConfig, *, timeout: float = 60.0) -> tuple[SandboxInfo, bool]:
    """Start `asyncrun sandbox serve` detached; returns (info, started_now). A no-op if one is running
    on the same ports; a `UsageError` if the sandbox of this data folder runs on other ports.

    Blocking. Callers in other processes are serialized by a lock on the data folder, so concurrent
    starts start one sandbox and all of them return it.
    """
    data_dir = config.data_dir.expanduser().resolve()
    make_dir(data_dir, mode=0o700)  # a clear error when $ASYNCRUN_HOME is a file
    start_lock = FileLock(data_dir / START_LOCK)
    if not start_lock.acquire(timeout + 5):
        raise SandboxStartError(f"timed out waiting for another process to start the sandbox of {data_dir}")
    try:
        return _start_locked(config, data_dir, timeout)
    finally:
        start_lock.release()


def _start_locked(config: SandboxConfig, data_dir: Path, timeout: float) -> tuple[SandboxInfo, bool]:
    deadline = time.monotonic() + timeout
    # A sandbox started by hand (`sandbox serve`) may hold the folder and still be coming up.
    while running(data_dir) is None and is_locked(data_dir / SERVE_LOCK) and time.monotonic() < deadline:
        time.sleep(0.05)
    existing = running(data_dir)
    if existing is not None:
        _check_same_place(existing, config)
        return existing, False
    if is_locked(data_dir / SERVE_LOCK):
        raise SandboxStartError(
            f"a sandbox holds {data_dir} but does not answer; stop it (asyncrun sandbox stop) and start again"
        )
    _check_free(config.host, config.port)
    _check_free(config.host, config.http_port)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    log_path = data_dir / "sandbox.log"
    process = _spawn(config, data_dir, log_path)
    while time.monotonic() < deadline:
        info = SandboxInfo.read(data_dir)
        if info is not None and info.pid == process.pid and answers(info.host, info.port):
            return info, True
        if process.poll() is not None:
            break
        time.sleep(0.05)
    else:
        process.terminate()
    tail = _tail(log_path).removeprefix("Error: ")
    raise SandboxStartError(f"the sandbox did not start{': ' + tail if tail else ''} (log: {log_path})")


def _check_same_place(existing: SandboxInfo, config: SandboxConfig) -> None:
    """A start that asks for other ports (or another address) than the running sandbox's is refused:
    saying "already running" would leave the caller looking for it where it is not."""
    wanted = (config.host, config.port or existing.port, config.http_port or existing.http_port)
    if (existing.host, existing.port, existing.http_port) == wanted:
        return
    raise UsageError(
        f"the sandbox of {existing.data_dir} already runs on {existing.endpoint} (HTTP port "
        f"{existing.http_port}, pid {existing.pid}), not on {config.host}:{config.port} (HTTP port "
        f"{config.http_port}); use it there, or stop it first (asyncrun sandbox stop) to move it"
    )


def _check_free(host: str, port: int) -> None:
    """Fail before spawning, in one line, when a port cannot be bound (the server would fail the same)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot start the sandbox: port {port} on {host} is not free ({exc.strerror}); {PORTS_HINT}"
            ) from None


def _spawn(config: SandboxConfig, data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "asyncrun.cli",
        "sandbox",
        "serve",
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--http-port",
        str(config.http_port),
        "--data-dir",
        str(data_dir),
        "--rpc-delay-ms",
        str(config.rpc_delay_ms),
    ]
    for folder in config.task_path:
        cmd += ["--task-path", folder]
    if config.blob_store:
        cmd += ["--blob-store", config.blob_store]
    if config.s3_endpoint:
        cmd += ["--s3-endpoint", config.s3_endpoint]
    if config.auth:
        cmd += ["--auth", "--auth-token-lifetime", str(config.auth_token_lifetime)]
    # Without the completion variable: a child that saw it would answer as a completer, not serve.
    env = {key: value for key, value in os.environ.items() if key != "_ASYNCRUN_COMPLETE"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            env=env,
        )


def _tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def stop(data_dir: Path, *, timeout: float = 15.0) -> SandboxInfo | None:
    """Stop the sandbox serving `data_dir` (SIGTERM, then SIGKILL after `timeout`); None if none ran."""
    info = SandboxInfo.read(data_dir.expanduser().resolve())
    if info is None or not pid_alive(info.pid):
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    return info


@dataclass(frozen=True)
class SandboxStatus:
    info: SandboxInfo
    uptime: float
    counts: dict[str, int]


def status(data_dir: Path) -> SandboxStatus | None:
    """Endpoint, pid, uptime and how many entities and executions the sandbox holds."""
    data_dir = data_dir.expanduser().resolve()
    info = running(data_dir)
    if info is None:
        return None
    return SandboxStatus(info, time.time() - info.started_at, counts(data_dir / "sandbox.db"))


def counts(db: Path) -> dict[str, int]:
    """Row counts, read straight from the SQLite file (WAL lets a reader in beside the server)."""
    result: dict[str, int] = {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2) as conn:
            for table in ("tasks", "workflows", "launch_plans", "executions"):
                try:
                    result[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                except sqlite3.Error:
                    continue
    except sqlite3.Error:
        pass
    return result
