"""Wires the sandbox together: SQLite store, executor, gRPC (AdminService, DataProxyService and
SignalService, and with `auth` AuthMetadataService) and HTTP (with `auth`, also the OAuth2 issuer of
`_auth.py`)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from grpclib.server import Server

from .._exceptions import UsageError
from .._filelock import FileLock
from .._paths import make_dir
from ._config import STATE_FILE, SandboxConfig, SandboxInfo

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._auth import AuthServer

log = logging.getLogger("asyncrun.sandbox")

# The authorization server of each in-process `--auth` sandbox, by gRPC port (tests revoke tokens).
running_auth: dict[int, AuthServer] = {}


def announce_console(server: Server, console_url: str) -> None:
    """Tell clients where the console is (it is not on the gRPC port, where Flyte's would be): every
    answer carries it in its initial metadata, so links printed by clients open the console."""
    from grpclib.events import SendInitialMetadata, listen

    async def add_header(event: SendInitialMetadata) -> None:
        event.metadata["x-asyncrun-console"] = console_url

    listen(server, SendInitialMetadata, add_header)


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; binding here (not in the servers) makes port 0 and "in use" errors plain."""
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets of that proto, and
    # without it Nagle's algorithm adds ~40 ms to every small gRPC reply.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick free ports with --port/--http-port "
            "or ASYNCRUN_SANDBOX_PORT/ASYNCRUN_SANDBOX_HTTP_PORT"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def running_sandbox(config: SandboxConfig) -> AsyncIterator[SandboxInfo]:
    """Run the sandbox in this event loop for the duration of the block (tests, `sandbox serve`)."""
    data_dir = config.data_dir.expanduser().resolve()
    make_dir(data_dir, mode=0o700)  # a clear error when $ASYNCRUN_HOME is a file
    # One sandbox per data folder: two would both run every queued execution.
    lock = FileLock(data_dir / "sandbox.lock")
    if not lock.try_acquire():
        holder = (data_dir / "sandbox.lock").read_text().strip()
        raise UsageError(
            f"another sandbox (pid {holder or '?'}) uses {data_dir}; stop it "
            f"(asyncrun sandbox stop --data-dir {data_dir}) or choose another --data-dir"
        )
    (data_dir / "sandbox.lock").write_text(f"{os.getpid()}\n")
    try:
        async with _serving(config, data_dir) as info:
            yield info
    finally:
        lock.release()


@asynccontextmanager
async def _serving(config: SandboxConfig, data_dir: Path) -> AsyncIterator[SandboxInfo]:
    from ._admin import AdminService
    from ._blobs import BlobStore
    from ._dataproxy import DataProxyService
    from ._http import create_app, serve_http
    from ._objectstore import ObjectBlobStore
    from ._runner import Runner
    from ._signals import Signals, SignalService
    from ._signing import Signer
    from ._store import Store

    objects = (
        ObjectBlobStore(config.blob_store, endpoint_url=config.s3_endpoint) if config.blob_store else None
    )
    if objects is not None:
        await anyio.to_thread.run_sync(_check_bucket, objects)
    grpc_sock = _bind(config.host, config.port)
    http_sock = _bind(config.host, config.http_port)
    port, http_port = grpc_sock.getsockname()[1], http_sock.getsockname()[1]
    # Signed URLs must name an address clients can reach, not a wildcard bind address.
    public_host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    http_base = f"http://{public_host}:{http_port}"

    store = await Store.open(data_dir / "sandbox.db")
    try:
        # Task processes find `asyncrun-execute` (installed next to this Python) without an activated venv.
        task_path = [*config.task_path, str(Path(sys.executable).parent)]
        # run_forever recovers interrupted runs first
        signal_store = Signals(store)  # shared: SetSignal wakes the gates the runner has waiting
        # Tasks that launch runs themselves (async workflows) reach this sandbox's FlyteAdmin API.
        admin_env = {"FLYTE_PLATFORM_URL": f"{public_host}:{port}", "FLYTE_PLATFORM_INSECURE": "true"}
        runner = Runner(
            store,
            data_dir,
            task_path=task_path,
            object_store=objects,
            signals=signal_store,
            task_env=admin_env,
            # ASYNCRUN_SANDBOX_WARM_WORKERS=0 starts every task process cold (see _warm.py).
            warm_workers=os.environ.get("ASYNCRUN_SANDBOX_WARM_WORKERS", "1") != "0",
        )
        admin = AdminService(store, runner, console_url=f"{http_base}/console")
        blobs = BlobStore(data_dir / "blobs")
        signer = Signer.load_or_create(data_dir / "secret")
        dataproxy = DataProxyService(objects or blobs, signer, http_base, admin=admin)
        signals = SignalService(signal_store)
        for service in (admin, dataproxy, signals):
            service.rpc_delay = config.rpc_delay_ms / 1000
        services: list[Any] = [admin, dataproxy, signals]
        auth = None
        if config.auth:
            from ._auth import AuthMetadataService, AuthServer

            auth = AuthServer(http_base, token_lifetime=config.auth_token_lifetime)
            for service in services:
                service.authorize = auth.check
            services.append(AuthMetadataService(auth))  # discovery answers without a token
        grpc = Server(services)
        announce_console(grpc, f"{http_base}/console")
        await grpc.start(sock=grpc_sock)
        app = create_app(
            blobs,
            signer,
            admin,
            max_upload_bytes=config.max_upload_bytes,
            files_roots=(data_dir / "executions", blobs.root),
        )
        if auth is not None:
            app.router.routes.extend(auth.routes())
        async with anyio.create_task_group() as tg:
            await tg.start(runner.run_forever)
            await tg.start(partial(serve_http, app, sock=http_sock))
            info = SandboxInfo(os.getpid(), config.host, port, http_port, time.time(), str(data_dir))
            if auth is not None:
                info = replace(
                    info,
                    auth_issuer=auth.issuer,
                    auth_client_id=auth.client_id,
                    auth_client_secret=auth.client_secret,
                )
                running_auth[info.port] = auth
            try:
                yield info
            finally:
                grpc.close()
                await grpc.wait_closed()
                tg.cancel_scope.cancel()
                running_auth.pop(info.port, None)
    finally:
        await store.close()
        grpc_sock.close()
        http_sock.close()


def _check_bucket(objects: Any) -> None:
    """Fail at start, in one line, when the bucket cannot be reached (rather than at the first upload)."""
    client = objects.client  # StorageExtraError without asyncrun[s3]
    import botocore.exceptions

    try:
        client.head_bucket(Bucket=objects.bucket)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise UsageError(
            f"cannot use --blob-store {objects.base_uri}: bucket {objects.bucket!r} answered {code}; "
            "create it or check the credentials"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise UsageError(f"cannot reach --blob-store {objects.base_uri}: {exc}") from None


def _use_pidfd_child_watcher() -> None:
    """Python 3.11 waits for each task process in a thread of its own; a pidfd watcher (the default
    from 3.12 on) waits on the event loop instead, which is cheaper when tasks start by the dozen."""
    import asyncio

    if sys.version_info < (3, 12) and hasattr(os, "pidfd_open"):
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)


async def serve(config: SandboxConfig, *, on_ready: Any = None) -> None:
    """Run in the foreground until SIGTERM or SIGINT; writes `sandbox.json` while it answers."""
    _use_pidfd_child_watcher()
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
