"""The daemon process: a Unix-socket listener, one task per connection, idle exit and signals.

Only the owner may talk to the daemon: the socket is 0600 in a 0700 folder, and each connection's
peer uid (SO_PEERCRED) must equal the daemon's own, else it gets one `forbidden` error and is closed.
A connection that breaks the protocol gets error replies; nothing a client sends ends the daemon.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.abc import SocketAttribute

from .._version import __version__
from . import _protocol as p
from . import _requests as r
from ._journal import Journal
from ._paths import DaemonPathError, PidInfo, acquire_daemon_lock, ensure_private_dir, pid_path
from ._service import Service

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from anyio.abc import SocketStream, TaskGroup

    from .._filelock import FileLock
    from ._protocol import JSON
    from ._settings import DaemonSettings

log = logging.getLogger("asyncrun.daemon")

SOCKET_CHECK_INTERVAL = 1.0  # seconds between checks that the socket file is still ours
OUTBOX_MESSAGES = 4096  # queued messages per connection before a consumer counts as stuck
STREAMING_OPS = ("wait", "watch")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int] | None:
    """(pid, uid, gid) of the process at the other end of a Unix socket; None where unsupported."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None  # not Linux: the 0700 folder is the only guard
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return pid, uid, gid


def peer_refusal(credentials: tuple[int, int, int] | None, own_uid: int) -> str | None:
    """Why a peer is refused (a message), or None when it may talk to this daemon."""
    if credentials is None:
        return None
    pid, uid, _ = credentials
    if uid != own_uid:
        return f"this daemon belongs to uid {own_uid}; process {pid} runs as uid {uid}"
    return None


class Connection:
    """One client: reads requests, runs each in its own task, writes replies and events in order."""

    def __init__(self, stream: SocketStream, service: Service, max_line: int) -> None:
        self.stream = stream
        self.service = service
        self.max_line = max_line
        self.greeted = False
        self.requests: dict[Any, tuple[str, anyio.CancelScope]] = {}
        self._outbox_in, self._outbox_out = anyio.create_memory_object_stream[bytes](OUTBOX_MESSAGES)
        self._scope = anyio.CancelScope()

    def send_event(self, message: JSON) -> None:
        """Queue an event without waiting; a client too slow to keep up is disconnected (it resyncs)."""
        try:
            self._outbox_in.send_nowait(p.encode(message))
        except anyio.WouldBlock:
            log.warning("a client fell %d messages behind; disconnecting it", OUTBOX_MESSAGES)
            self._scope.cancel()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def send_reply(self, message: JSON) -> None:
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self._outbox_in.send(p.encode(message))

    async def serve(self) -> None:
        with self._scope:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._write_all, outer)
                async with anyio.create_task_group() as requests:
                    await self._read_all(requests)
                    # The client is done sending: streams end now, other requests still get replies.
                    for op, scope in self.requests.values():
                        if op in STREAMING_OPS:
                            scope.cancel()
                self._outbox_in.close()

    async def _write_all(self, outer: TaskGroup) -> None:
        try:
            async for data in self._outbox_out:
                await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            outer.cancel_scope.cancel()  # the client is gone: stop its waits too

    async def _read_all(self, requests: TaskGroup) -> None:
        reader = p.LineReader(self.stream, self.max_line)
        while True:
            try:
                line = await reader.receive_line()
            except p.LineTooLongError:
                await self.send_reply(
                    p.error_reply(None, p.TOO_LARGE, f"message longer than {self.max_line} bytes; skipped")
                )
                continue
            except OSError:
                return
            if line is None:
                return
            if line.strip():
                await self._on_line(line, requests)

    async def _on_line(self, line: bytes, requests: TaskGroup) -> None:
        try:
            request = r.parse_request(p.decode(line))
        except p.ProtocolError as exc:
            await self.send_reply(p.error_reply(exc.request_id, exc.code, exc.message))
            return
        rid = request.request_id
        if isinstance(request, r.Hello):
            await self.send_reply(self._hello(request))
        elif not self.greeted:
            await self.send_reply(
                p.error_reply(rid, p.HANDSHAKE_REQUIRED, 'send {"op": "hello", "version": 1} first')
            )
        elif isinstance(request, r.Cancel):
            entry = self.requests.get(request.request)
            if entry is not None:
                entry[1].cancel()
            await self.send_reply(p.reply(rid, cancelled=entry is not None))
        elif rid is not None and rid in self.requests:
            await self.send_reply(
                p.error_reply(rid, p.BAD_REQUEST, f"request id {rid!r} is already in flight")
            )
        else:
            # Registered before the task starts, so a `cancel` or a duplicate id right behind it is seen.
            key = rid if rid is not None else object()
            scope = anyio.CancelScope()
            self.requests[key] = (request.op, scope)
            requests.start_soon(self._run, request, key, scope)

    def _hello(self, request: r.Hello) -> JSON:
        if request.version not in p.SUPPORTED_VERSIONS:
            return p.error_reply(
                request.request_id,
                p.UNSUPPORTED_VERSION,
                f"protocol version {request.version} is not supported; this daemon ({__version__}) speaks "
                f"{', '.join(map(str, p.SUPPORTED_VERSIONS))}",
                supported=list(p.SUPPORTED_VERSIONS),
            )
        self.greeted = True
        return p.reply(request.request_id, version=request.version, daemon=self.service.daemon_info())

    async def _run(self, request: r.Request, key: object, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                answer = await self.service.handle(self, request)
            finally:
                self.requests.pop(key, None)
        if scope.cancelled_caught:
            answer = p.reply(request.request_id, cancelled=True)
        await self.send_reply(answer)


@dataclass
class RunningDaemon:
    """A daemon serving in this event loop (see `running_daemon`)."""

    service: Service
    info: PidInfo

    def stop(self) -> None:
        self.service.shutdown_requested.set()


@asynccontextmanager
async def running_daemon(
    settings: DaemonSettings, *, lock: FileLock | None = None
) -> AsyncIterator[RunningDaemon]:
    """Serve in this event loop for the duration of the block (tests, `serve`).

    Raises `DaemonAlreadyRunningError` if another daemon holds the socket's or the journal's lock.
    """
    socket_path = settings.socket_path
    if lock is None:
        lock = await anyio.to_thread.run_sync(acquire_daemon_lock, socket_path)
    journal: Journal | None = None
    service: Service | None = None
    try:
        ensure_private_dir(socket_path.parent)
        journal = await anyio.to_thread.run_sync(Journal.open, settings.journal_path)
        async with anyio.create_task_group() as tg:
            service = Service(settings, journal, tg)
            await service.load()
            info = PidInfo(
                os.getpid(), str(socket_path), service.started_at, str(settings.journal_path), __version__
            )
            # The pid file first, then the socket: whoever can connect can also read who answers.
            info.write(pid_path(socket_path))
            listener = await _bind(socket_path)
            tg.start_soon(_serve_socket, socket_path, listener, service, info, tg)
            tg.start_soon(service.housekeeping)
            try:
                yield RunningDaemon(service, info)
            finally:
                tg.cancel_scope.cancel()
    finally:
        with suppress(OSError):
            socket_path.unlink()
        with suppress(OSError):
            pid_path(socket_path).unlink()
        if service is not None:
            service.close()
        if journal is not None:
            journal.close()
        lock.release()


async def _bind(socket_path: Path) -> Any:
    with suppress(FileNotFoundError):
        os.unlink(socket_path)  # we hold the lock, so whatever is here is stale
    return await anyio.create_unix_listener(socket_path, mode=0o600)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


async def _serve_socket(
    socket_path: Path, listener: Any, service: Service, info: PidInfo, tg: TaskGroup
) -> None:
    """Accept connections; when the socket file is deleted or replaced, bind it again (or exit).

    A daemon whose socket file is gone is unreachable, and CLIs that find its lock held would wait for
    it in vain; so the file is checked every `SOCKET_CHECK_INTERVAL` seconds, like the pid file.
    """
    while True:
        bound = _identity(socket_path)
        async with anyio.create_task_group() as accepting:
            accepting.start_soon(_accept_forever, listener, service, tg)
            while bound is not None and _identity(socket_path) == bound:
                if not pid_path(socket_path).exists():
                    with suppress(OSError):
                        info.write(pid_path(socket_path))
                await anyio.sleep(SOCKET_CHECK_INTERVAL)
            accepting.cancel_scope.cancel()
        await listener.aclose()
        log.warning("the socket file %s was removed or replaced: binding it again", socket_path)
        try:
            ensure_private_dir(socket_path.parent)
            listener = await _bind(socket_path)
            info.write(pid_path(socket_path))
        except (OSError, DaemonPathError) as exc:
            log.error("cannot bind %s again (%s): exiting", socket_path, exc)
            service.shutdown_requested.set()
            return


async def _accept_forever(listener: Any, service: Service, tg: TaskGroup) -> None:
    async def handle(stream: SocketStream) -> None:
        try:
            await _serve_connection(stream, service)
        except Exception:
            log.exception("a connection failed")  # never takes the daemon down

    await listener.serve(handle, task_group=tg)


async def _serve_connection(stream: SocketStream, service: Service) -> None:
    async with stream:
        refusal = peer_refusal(peer_credentials(stream.extra(SocketAttribute.raw_socket)), os.getuid())
        if refusal is not None:
            log.warning("refused a connection: %s", refusal)
            with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                await stream.send(p.encode(p.error_reply(None, p.FORBIDDEN, refusal)))
                await stream.send_eof()
                # Read (and drop) what the peer already sent: closing with unread data would reset
                # the connection and could destroy the refusal before the peer reads it.
                with anyio.move_on_after(1):
                    for _ in range(16):
                        await stream.receive()
            return
        service.connections += 1
        try:
            await Connection(stream, service, p.MAX_REQUEST_LINE).serve()
        finally:
            service.connections -= 1


async def _exit_when_idle(service: Service, after: float) -> None:
    idle_since = time.monotonic()
    while True:
        await anyio.sleep(min(1.0, after / 4))
        if service.busy():
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= after:
            log.info("idle for %.0f s with nothing tracked: exiting", after)
            service.shutdown_requested.set()
            return


async def _stop_on_signal(service: Service) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: stopping", signal.Signals(signum).name)
            service.shutdown_requested.set()
            return


async def serve(
    settings: DaemonSettings,
    *,
    on_ready: Callable[[PidInfo], None] | None = None,
    lock: FileLock | None = None,
) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT, a `shutdown` request, or idleness."""
    async with running_daemon(settings, lock=lock) as daemon:
        log.info("asyncrun daemon %s serving on %s (pid %d)", __version__, settings.socket_path, os.getpid())
        if on_ready is not None:
            on_ready(daemon.info)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, daemon.service)
            if settings.idle_timeout > 0:
                tg.start_soon(_exit_when_idle, daemon.service, settings.idle_timeout)
            await daemon.service.shutdown_requested.wait()
            await anyio.sleep(0.05)  # lets the reply to a `shutdown` request reach its client
            tg.cancel_scope.cancel()
    log.info("daemon stopped")
