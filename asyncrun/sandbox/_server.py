"""Wires the sandbox together: SQLite store, executor, gRPC (AdminService + DataProxyService) and HTTP."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from grpclib.server import Server

from .._paths import state_home

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger("asyncrun.sandbox")

DEFAULT_PORT = 30080
DEFAULT_HTTP_PORT = 30081
STATE_FILE = "sandbox.json"


def default_data_dir() -> Path:
    """`$ASYNCRUN_HOME/sandbox` (ASYNCRUN_HOME defaults to `$XDG_STATE_HOME/asyncrun`)."""
    return state_home() / "sandbox"


@dataclass(frozen=True)
class SandboxConfig:
    """How to run the sandbox. Port 0 picks a free port."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_port: int = DEFAULT_HTTP_PORT
    rpc_delay_ms: int = 0
    task_path: tuple[str, ...] = ()
    max_upload_bytes: int = 2 << 30


@dataclass(frozen=True)
class SandboxInfo:
    """Where a running sandbox answers; also what `sandbox.json` in its data dir holds."""

    pid: int
    host: str
    port: int
    http_port: int
    started_at: float
    data_dir: str

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def console_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/console"

    @classmethod
    def read(cls, data_dir: Path) -> SandboxInfo | None:
        try:
            return cls(**json.loads((data_dir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self) -> None:
        path = Path(self.data_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def running_sandbox(config: SandboxConfig) -> AsyncIterator[SandboxInfo]:
    """Run the sandbox in this event loop for the duration of the block (tests, `sandbox serve`)."""
    import uvicorn

    from ._admin import AdminService
    from ._blobs import BlobStore
    from ._dataproxy import DataProxyService
    from ._http import create_app
    from ._runner import Runner
    from ._signing import Signer
    from ._store import Store

    data_dir = config.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    port = config.port or _free_port(config.host)
    http_port = config.http_port or _free_port(config.host)
    http_base = f"http://{config.host}:{http_port}"

    store = await Store.open(data_dir / "sandbox.db")
    try:
        runner = Runner(store, data_dir, task_path=list(config.task_path))
        await runner.recover()
        admin = AdminService(store, runner, console_url=f"{http_base}/console")
        blobs = BlobStore(data_dir / "blobs")
        signer = Signer.load_or_create(data_dir / "secret")
        dataproxy = DataProxyService(blobs, signer, http_base)
        for service in (admin, dataproxy):
            service.rpc_delay = config.rpc_delay_ms / 1000
        grpc = Server([admin, dataproxy])
        await grpc.start(config.host, port)
        app = create_app(blobs, signer, admin, max_upload_bytes=config.max_upload_bytes)
        http = uvicorn.Server(
            uvicorn.Config(app, host=config.host, port=http_port, log_level="warning", lifespan="off")
        )
        async with anyio.create_task_group() as tg:
            await tg.start(runner.run_forever)
            tg.start_soon(http.serve)
            while not http.started:
                await anyio.sleep(0.01)
            info = SandboxInfo(os.getpid(), config.host, port, http_port, time.time(), str(data_dir))
            try:
                yield info
            finally:
                http.should_exit = True
                grpc.close()
                await grpc.wait_closed()
                tg.cancel_scope.cancel()
    finally:
        await store.close()


async def serve(config: SandboxConfig, *, on_ready: Any = None) -> None:
    """Run in the foreground until SIGTERM or SIGINT; writes `sandbox.json` while it answers."""
    async with running_sandbox(config) as info:
        info.write()
        try:
            if on_ready is not None:
                on_ready(info)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
        finally:
            (Path(info.data_dir) / STATE_FILE).unlink(missing_ok=True)
