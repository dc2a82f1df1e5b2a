"""The loop-free path to a running daemon (`_oneshot`): a real daemon, a blocking socket."""

from __future__ import annotations

import socket
import threading

import anyio
import pytest

from asyncrun.daemon import DaemonRequestError, DaemonUnavailableError, _oneshot

pytestmark = pytest.mark.anyio


async def test_status_of_a_running_daemon(daemon, settings, stub, target) -> None:
    stub.add("one", "RUNNING")
    result = await anyio.to_thread.run_sync(
        lambda: _oneshot.status(["one"], target=target, socket_path=settings.socket_path)
    )
    assert result is not None
    assert [(s.name, s.phase) for s in result.executions] == [("one", "RUNNING")]
    assert result.daemon["pid"] > 0


async def test_no_daemon_means_none(settings) -> None:
    assert _oneshot.status([], socket_path=settings.socket_path) is None


async def test_an_error_reply_raises(daemon, settings) -> None:
    with pytest.raises(DaemonRequestError) as caught:
        await anyio.to_thread.run_sync(
            lambda: _oneshot.request("no_such_op", {}, socket_path=settings.socket_path)
        )
    assert caught.value.code == "unknown_op"


def _serve_once(path: str, behaviour: str) -> threading.Thread:
    """A one-connection fake daemon that breaks the protocol in one way."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn, server, conn.makefile("rb") as lines:
            lines.readline()
            if behaviour == "hang up":
                return
            conn.sendall(b'not json\n{"event":"update","id":1}\n{"ok":true,"id":1,"daemon":{}}\n')
            lines.readline()
            if behaviour == "silent":
                lines.readline()  # until the client gives up and closes

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_daemon_that_hangs_up_mid_request_means_none(short_dir) -> None:
    path = str(short_dir / "d.sock")
    thread = _serve_once(path, "hang up")
    assert _oneshot.request("status", {}, socket_path=path) is None
    thread.join(5)


def test_a_silent_daemon_is_reported_not_waited_on_forever(short_dir, monkeypatch) -> None:
    monkeypatch.setattr(_oneshot, "ANSWER_TIMEOUT", 0.5)
    path = str(short_dir / "d.sock")
    thread = _serve_once(path, "silent")
    with pytest.raises(DaemonUnavailableError, match="did not answer"):
        _oneshot.request("status", {}, socket_path=path)
    thread.join(5)
