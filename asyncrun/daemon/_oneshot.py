"""One request to a running daemon over a blocking socket: no event loop, no anyio.

`asyncrun status` asks a local daemon one question, which takes well under a millisecond; importing
asyncio (with ssl) and anyio's backend would take most of the command's run time. This path speaks the
same protocol (`_protocol`) over a plain socket, and steps aside (returns None) whenever the full
`DaemonConnection` is needed instead: no daemon answers (one must be started), or the daemon went
away mid-request (reconnect and ask again).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from . import _protocol as p
from ._paths import resolve_socket
from ._results import ExecutionState, StatusResult

if TYPE_CHECKING:
    from collections.abc import Iterable

JSON = dict[str, Any]
ANSWER_TIMEOUT = 30.0  # a daemon that accepts the connection but says nothing for this long is stuck


def request(
    op: str,
    fields: JSON,
    *,
    socket_path: str | os.PathLike[str] | None = None,
    client: str = "asyncrun",
) -> JSON | None:
    """Say hello, send one request and return its reply; None if no daemon answers or it went away.

    An error reply raises `DaemonRequestError`; a daemon that stays silent raises `DaemonUnavailableError`.
    """
    path = resolve_socket(socket_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT)
        try:
            sock.connect(os.fspath(path))
        except OSError:
            return None
        with sock.makefile("rb") as replies:
            try:
                hello = {"op": "hello", "id": 1, "version": p.PROTOCOL_VERSION, "client": client}
                if _exchange(sock, replies, hello) is None:
                    return None
                return _exchange(sock, replies, {"op": op, "id": 2, **fields})
            except TimeoutError:
                raise p.DaemonUnavailableError(
                    f"the asyncrun daemon on {path} did not answer within {ANSWER_TIMEOUT:.0f} s"
                ) from None
            except OSError:
                return None


def _exchange(sock: socket.socket, replies: Any, message: JSON) -> JSON | None:
    """Send `message`; return its reply, skipping events (None when the connection ends first)."""
    sock.sendall(p.encode(message))
    while line := replies.readline(p.MAX_REPLY_LINE + 1):
        if len(line) > p.MAX_REPLY_LINE or not line.endswith(b"\n"):
            return None
        try:
            reply = p.decode(line)
        except p.ProtocolError:
            continue  # as DaemonConnection does: a line it cannot read is skipped
        if "ok" in reply and reply.get("id") in (message["id"], None):
            return p.raise_for_error(reply)
    return None


def status(
    ids: Iterable[str] = (),
    *,
    target: p.Target | None = None,
    outputs: bool = False,
    socket_path: str | os.PathLike[str] | None = None,
) -> StatusResult | None:
    """What `DaemonConnection.status` returns, if a daemon is running; else None (start one that way)."""
    fields = {
        "ids": list(ids),
        "target": (target if target is not None else p.Target.from_environment()).to_json(),
        "outputs": outputs,
        "executions": True,
    }
    reply = request("status", fields, socket_path=socket_path)
    if reply is None:
        return None
    return StatusResult(reply["daemon"], [ExecutionState.from_json(s) for s in reply["executions"]])
