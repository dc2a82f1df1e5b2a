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

from .._exceptions import AsyncrunError, UsageError
from .._paths import make_dir
from ._config import STATE_FILE, SandboxConfig, SandboxInfo

if TYPE_CHECKING:
    from pathlib import Path


class SandboxStartError(AsyncrunError):
    """The background sandbox did not come up."""


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


def start_background(config: SandboxConfig, *, timeout: float = 30.0) -> tuple[SandboxInfo, bool]:
    """Start `asyncrun sandbox serve` detached; returns (info, started_now). A no-op if one is running."""
    data_dir = config.data_dir.expanduser().resolve()
    existing = running(data_dir)
    if existing is not None:
        return existing, False
    if answers(config.host, config.port):
        raise UsageError(
            f"port {config.port} on {config.host} is in use by another program; "
            "stop it or pick another with --port"
        )
    make_dir(data_dir, mode=0o700)  # a clear error when $ASYNCRUN_HOME is a file
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    log_path = data_dir / "sandbox.log"
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
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = SandboxInfo.read(data_dir)
        if info is not None and info.pid == process.pid and answers(info.host, info.port):
            return info, True
        if process.poll() is not None:
            break
        time.sleep(0.05)
    else:
        process.terminate()
    tail = _tail(log_path)
    raise SandboxStartError(f"the sandbox did not start (see {log_path}){': ' + tail if tail else ''}")


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
