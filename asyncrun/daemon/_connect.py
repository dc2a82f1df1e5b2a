"""The CLI side of the daemon: `DaemonConnection` and one-call helpers (`wait`, `status`, `watch`, …).

```python
async with DaemonConnection() as daemon:            # starts the daemon if none runs
    result = await daemon.wait(["p:d:name"], timeout=600)
    sys.exit(result.exit_code)                      # 0, 1 failed, 3 aborted, 4 timed out, 5 wait timeout
```

A connection multiplexes requests (each has an id; a reader task routes replies and events). If the
daemon goes away mid-request — killed, restarted, upgraded — `wait`, `status`, `watch` and the other
helpers reconnect (starting a new daemon, which resumes from its journal) and re-issue the request:
a wait keeps its subscriber id and its remaining timeout. Imports only the stdlib and anyio, never
grpclib, betterproto2 or httpx, so `asyncrun wait/status/watch` start fast.
"""

from __future__ import annotations

import os
import random
import time
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import (
    AuthenticationError,
    ConfigError,
)
from .._exceptions import DaemonDisconnectedError as DaemonDisconnectedError
from . import _protocol as p
from ._control import START_TIMEOUT, ensure_running
from ._paths import resolve_socket
from ._protocol import DaemonError, DaemonRequestError, DaemonUnavailableError, Target
from ._results import ExecutionState, LaunchResult, StatusResult, WaitResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from anyio.abc import SocketStream, TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._settings import DaemonSettings

JSON = dict[str, Any]
_TRACK_CHUNK = 2000
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _auth_error(event: JSON) -> AuthenticationError | ConfigError:
    """The daemon could not authenticate to the control plane: the waiter ends with that error."""
    from .. import _exceptions

    cls = getattr(_exceptions, str(event.get("error_type")), None)
    if not (isinstance(cls, type) and issubclass(cls, AuthenticationError | ConfigError)):
        cls = AuthenticationError
    return cls(str(event.get("last_error") or "the control plane refused the daemon's credentials"))


class DaemonConnection:
    """A connection to this user's daemon; use as `async with DaemonConnection() as daemon:`.

    Args:
        socket_path: the daemon's socket (default: `default_socket_path()`).
        autostart: start a daemon in the background when none answers.
        start_timeout: how long to wait for a daemon to come up.
        settings: knobs for a daemon this connection starts (default: `ASYNCRUN_DAEMON_*` variables).
        reconnects: how many times one helper call reconnects after losing the daemon.
        client: a name for the daemon's logs.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        autostart: bool = True,
        start_timeout: float = START_TIMEOUT,
        settings: DaemonSettings | None = None,
        reconnects: int = 5,
        client: str = "asyncrun",
    ) -> None:
        self.socket_path = settings.socket_path if settings is not None else resolve_socket(socket_path)
        self.autostart = autostart
        self.start_timeout = start_timeout
        self.settings = settings
        self.reconnects = reconnects
        self.client = client
        self.daemon: JSON = {}
        self.started_daemon = False  # whether this connection had to start a daemon
        self._stream: SocketStream | None = None
        self._tg: TaskGroup | None = None
        self._pending: dict[int, MemoryObjectSendStream[JSON]] = {}
        self._next_id = 0
        self._generation = 0
        self._connect_lock = anyio.Lock()
        self._send_lock = anyio.Lock()

    async def __aenter__(self) -> DaemonConnection:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._connect()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._drop_stream()
        if self._tg is not None:
            tg, self._tg = self._tg, None
            tg.cancel_scope.cancel()
            # The block's own exception propagates as it is, not wrapped in an ExceptionGroup.
            await tg.__aexit__(None, None, None)

    @property
    def connected(self) -> bool:
        return self._stream is not None

    # ---------------------------------------------------------------- low level

    async def _connect(self) -> None:
        assert self._tg is not None, "use DaemonConnection as an async context manager"
        try:
            stream = await anyio.connect_unix(self.socket_path)
        except OSError as exc:
            if not self.autostart:
                raise DaemonUnavailableError(
                    f"no asyncrun daemon answers on {self.socket_path}: {exc.strerror or exc}"
                ) from None
            started = await ensure_running(
                self.socket_path, start_timeout=self.start_timeout, settings=self.settings
            )
            self.started_daemon = self.started_daemon or started
            try:
                stream = await anyio.connect_unix(self.socket_path)
            except OSError as again:
                raise DaemonUnavailableError(
                    f"the asyncrun daemon on {self.socket_path} does not answer: {again.strerror or again}"
                ) from None
        self._generation += 1
        self._stream = stream
        self._tg.start_soon(self._read, stream, self._generation)
        hello = await self._request_once("hello", {"version": p.PROTOCOL_VERSION, "client": self.client})
        self.daemon = hello.get("daemon", {})

    async def reconnect(self, seen_generation: int | None = None) -> None:
        """Connect again (starting a daemon if needed) unless another task already did."""
        async with self._connect_lock:
            if seen_generation is not None and seen_generation != self._generation and self.connected:
                return
            await self._drop_stream()
            await self._connect()

    async def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()
        self._fail_pending({"_lost": True})

    def _fail_pending(self, message: JSON) -> None:
        pending, self._pending = self._pending, {}
        for queue in pending.values():
            try:
                queue.send_nowait(message)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            queue.close()

    async def _read(self, stream: SocketStream, generation: int) -> None:
        reader = p.LineReader(stream, p.MAX_REPLY_LINE)
        lost: JSON = {"_lost": True}
        try:
            while (line := await reader.receive_line()) is not None:
                try:
                    message = p.decode(line)
                except p.ProtocolError:
                    continue
                rid = message.get("id")
                queue = self._pending.get(rid) if isinstance(rid, int) else None
                if queue is None or not isinstance(rid, int):
                    if rid is None and message.get("ok") is False:
                        lost = message  # e.g. "forbidden": the daemon answers before closing
                        break
                    continue
                queue.send_nowait(message)
                if "ok" in message:
                    self._pending.pop(rid, None)
                    queue.close()
        except (p.LineTooLongError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            if generation == self._generation:
                self._stream = None
                self._fail_pending(lost)
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def _open(self, op: str, fields: JSON) -> tuple[int, MemoryObjectReceiveStream[JSON]]:
        if self._stream is None:
            raise DaemonDisconnectedError(f"not connected to the daemon on {self.socket_path}")
        self._next_id += 1
        rid = self._next_id
        send, receive = anyio.create_memory_object_stream[JSON](float("inf"))
        self._pending[rid] = send
        try:
            async with self._send_lock:
                await self._stream.send(p.encode({"op": op, "id": rid, **fields}))
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._pending.pop(rid, None)
            raise DaemonDisconnectedError(f"lost the daemon on {self.socket_path}") from None
        return rid, receive

    @staticmethod
    def _check(message: JSON) -> JSON:
        if message.get("_lost"):
            raise DaemonDisconnectedError("lost the connection to the asyncrun daemon")
        return p.raise_for_error(message)

    async def _request_once(self, op: str, fields: JSON) -> JSON:
        _, receive = await self._open(op, fields)
        async with receive:
            async for message in receive:
                if "event" not in message:
                    return self._check(message)
        raise DaemonDisconnectedError("lost the connection to the asyncrun daemon")

    async def _stream_once(self, op: str, fields: JSON) -> AsyncIterator[JSON]:
        rid, receive = await self._open(op, fields)
        try:
            async with receive:
                async for message in receive:
                    if "event" in message:
                        yield message
                    else:
                        yield self._check(message)
                        return
            raise DaemonDisconnectedError("lost the connection to the asyncrun daemon")
        finally:
            stream = self._stream
            if rid in self._pending and stream is not None:
                # The caller stopped early: cancel the request so the daemon stops streaming it.
                self._pending.pop(rid, None)
                with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                    try:
                        async with self._send_lock:
                            await stream.send(p.encode({"op": "cancel", "request": rid}))
                    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass

    async def _retrying(self, attempt: Callable[[], Any]) -> Any:
        """Run `attempt`, reconnecting (and so restarting the daemon if needed) when the daemon is lost."""
        failures = 0
        while True:
            generation = self._generation
            try:
                return await attempt()
            except DaemonDisconnectedError:
                failures += 1
                if failures > self.reconnects:
                    raise
                await anyio.sleep(random.uniform(0, min(1.0, 0.05 * 2**failures)))
                try:
                    await self.reconnect(generation)
                except DaemonUnavailableError:
                    if failures >= self.reconnects:
                        raise

    # ---------------------------------------------------------------- requests

    async def request(self, op: str, **fields: Any) -> JSON:
        """Send one request and return its reply (raises `DaemonRequestError` for an error reply)."""
        return await self._request_once(op, fields)

    def stream(self, op: str, **fields: Any) -> AsyncIterator[JSON]:
        """Send one request and yield its events, then its reply (the item with "ok")."""
        return self._stream_once(op, fields)

    async def status(
        self,
        ids: Iterable[str] = (),
        *,
        target: Target | None = None,
        outputs: bool = False,
        executions: bool = True,
    ) -> StatusResult:
        """The daemon's own status and the state of `ids` (all tracked runs when `ids` is empty)."""
        fields = {
            "ids": list(ids),
            "target": _target(target).to_json(),
            "outputs": outputs,
            "executions": executions,
        }
        reply = await self._retrying(lambda: self._request_once("status", fields))
        return StatusResult(reply["daemon"], [ExecutionState.from_json(s) for s in reply["executions"]])

    async def track(
        self, ids: Iterable[str], *, target: Target | None = None, outputs: bool = False
    ) -> list[ExecutionState]:
        """Ask the daemon to follow these runs until they end, whether or not anyone waits."""
        wanted, states = list(ids), []
        for start in range(0, len(wanted), _TRACK_CHUNK):
            fields = {
                "ids": wanted[start : start + _TRACK_CHUNK],
                "target": _target(target).to_json(),
                "outputs": outputs,
            }
            reply = await self._retrying(lambda f=fields: self._request_once("track", f))  # type: ignore[misc]
            states += [ExecutionState.from_json(s) for s in reply["executions"]]
        return states

    async def untrack(self, ids: Iterable[str], *, target: Target | None = None) -> int:
        fields = {"ids": list(ids), "target": _target(target).to_json()}
        reply = await self._retrying(lambda: self._request_once("untrack", fields))
        return int(reply.get("untracked", 0))

    async def wait(
        self,
        ids: Iterable[str],
        *,
        wait_for: str = "terminal",
        timeout: float | None = None,  # noqa: ASYNC109 - ends the waiting only; the runs go on
        outputs: bool = False,
        target: Target | None = None,
        on_event: Callable[[JSON], None] | None = None,
        abort_on_timeout: bool = False,
    ) -> WaitResult:
        """Wait until every run is terminal (or running, with `wait_for="running"`), or `timeout` passes.

        `on_event` receives each event: `update` (states that changed), `endpoint` (the control plane
        is unreachable/throttled/ok again) and, from this library, `{"event": "reconnected"}` after the
        daemon was lost and found again. With `abort_on_timeout`, runs still going at the timeout
        are terminated. The result's `exit_code` is what the CLI should exit with.
        """
        wanted = list(ids)
        subscriber = os.urandom(16).hex()  # the same across reconnects, so the daemon counts one waiter
        deadline = None if timeout is None else time.monotonic() + timeout
        target_json = _target(target).to_json()
        rounds = 0

        async def attempt() -> JSON:
            nonlocal rounds
            rounds += 1
            if rounds > 1 and on_event is not None:
                on_event({"event": "reconnected", "daemon": self.daemon})
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            fields = {
                "ids": wanted,
                "target": target_json,
                "wait_for": wait_for,
                "timeout": remaining,
                "outputs": outputs,
                "events": True,  # also to hear of a control plane that refuses the daemon's token
                "subscriber": subscriber,
            }
            async for message in self._stream_once("wait", fields):
                if "event" in message:
                    if message.get("event") == "endpoint" and message.get("state") == "unauthenticated":
                        raise _auth_error(message)
                    if on_event is not None:
                        on_event(message)
                else:
                    return message
            raise DaemonDisconnectedError("lost the connection to the asyncrun daemon")

        reply = await self._retrying(attempt)
        result = WaitResult(
            [ExecutionState.from_json(s) for s in reply["executions"]], bool(reply["timed_out"])
        )
        if result.timed_out and abort_on_timeout:
            running = [ex.id for ex in result.executions if ex.found and not ex.terminal]
            if running:
                answers = await self.terminate(running, target=target)
                result = WaitResult(result.executions, True, [a["id"] for a in answers if a.get("ok")])
        return result

    async def watch(self, ids: Iterable[str] = (), *, target: Target | None = None) -> AsyncIterator[JSON]:
        """Events for `ids` (every tracked run when empty): a `snapshot`, then `update`s and `endpoint`s.

        After losing the daemon it reconnects, yields `{"event": "reconnected"}` and a fresh snapshot.
        """
        fields = {"ids": list(ids), "target": _target(target).to_json()}
        failures = 0
        while True:
            generation = self._generation
            try:
                async for message in self._stream_once("watch", fields):
                    failures = 0
                    if "event" in message:
                        yield message
                    else:
                        return
            except DaemonDisconnectedError:
                failures += 1
                if failures > self.reconnects:
                    raise
            await anyio.sleep(random.uniform(0, min(1.0, 0.05 * 2**failures)))
            await self.reconnect(generation)
            yield {"event": "reconnected", "id": None, "daemon": self.daemon}

    async def launch(
        self,
        entity: str,
        *,
        kind: str = "launch_plan",
        version: str | None = None,
        inputs: JSON | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        options: JSON | None = None,
        outputs: bool = False,
        target: Target | None = None,
    ) -> LaunchResult:
        """Launch a registered entity through the daemon, which then tracks the run.

        `inputs` are JSON values (files as absolute paths or remote URIs); `options` are the fields of
        `ExecutionOptions`. Without `name` or `idempotency_key` a name is chosen here, so a launch
        retried after losing the daemon cannot start a second run.
        """
        if name is None and idempotency_key is None:
            name = "a" + "".join(random.choices(_NAME_ALPHABET, k=19))
        fields: JSON = {
            "entity": {"kind": kind, "name": entity, **({"version": version} if version else {})},
            "inputs": inputs or {},
            "options": options or {},
            "outputs": outputs,
            "target": _target(target).to_json(),
            **({"name": name} if name else {}),
            **({"idempotency_key": idempotency_key} if idempotency_key else {}),
        }
        reply = await self._retrying(lambda: self._request_once("launch", fields))
        return LaunchResult(ExecutionState.from_json(reply["execution"]), bool(reply["created"]))

    async def terminate(
        self, ids: Iterable[str], *, cause: str = "terminated by asyncrun", target: Target | None = None
    ) -> list[JSON]:
        """Abort runs; one `{"id", "ok", "error"?}` per id."""
        fields = {"ids": list(ids), "cause": cause, "target": _target(target).to_json()}
        reply = await self._retrying(lambda: self._request_once("terminate", fields))
        return list(reply["results"])

    async def shutdown(self) -> None:
        """Ask the daemon to exit (its journal keeps every tracked run for the next one)."""
        await self._request_once("shutdown", {})


def _target(target: Target | None) -> Target:
    return target if target is not None else Target.from_environment()


# ---------------------------------------------------------------- one-call helpers


async def wait(
    ids: Iterable[str],
    *,
    wait_for: str = "terminal",
    timeout: float | None = None,  # noqa: ASYNC109 - ends the waiting only; the runs go on
    outputs: bool = False,
    target: Target | None = None,
    on_event: Callable[[JSON], None] | None = None,
    abort_on_timeout: bool = False,
    socket_path: str | os.PathLike[str] | None = None,
) -> WaitResult:
    """`DaemonConnection().wait(...)` in one call: what `asyncrun wait ID…` and `--wait` need."""
    async with DaemonConnection(socket_path) as daemon:
        return await daemon.wait(
            ids,
            wait_for=wait_for,
            timeout=timeout,
            outputs=outputs,
            target=target,
            on_event=on_event,
            abort_on_timeout=abort_on_timeout,
        )


async def track(
    ids: Iterable[str],
    *,
    target: Target | None = None,
    outputs: bool = False,
    socket_path: str | os.PathLike[str] | None = None,
) -> list[ExecutionState]:
    """`DaemonConnection().track(...)` in one call: the daemon follows these runs until they end."""
    async with DaemonConnection(socket_path) as daemon:
        return await daemon.track(ids, target=target, outputs=outputs)


async def status(
    ids: Iterable[str] = (),
    *,
    target: Target | None = None,
    outputs: bool = False,
    socket_path: str | os.PathLike[str] | None = None,
) -> StatusResult:
    """The state of `ids`, or of every tracked run: what `asyncrun status [ID…]` needs."""
    async with DaemonConnection(socket_path) as daemon:
        return await daemon.status(ids, target=target, outputs=outputs)


async def watch(
    ids: Iterable[str] = (),
    *,
    target: Target | None = None,
    socket_path: str | os.PathLike[str] | None = None,
) -> AsyncIterator[JSON]:
    """Events of every tracked run (or of `ids`) until the caller stops: what `asyncrun watch` needs."""
    async with DaemonConnection(socket_path) as daemon:
        async for message in daemon.watch(ids, target=target):
            yield message


__all__ = (
    "DaemonConnection",
    "DaemonDisconnectedError",
    "DaemonError",
    "DaemonRequestError",
    "DaemonUnavailableError",
    "ExecutionState",
    "LaunchResult",
    "StatusResult",
    "Target",
    "WaitResult",
    "status",
    "wait",
    "watch",
)
