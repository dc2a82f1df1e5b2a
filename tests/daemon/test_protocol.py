"""The wire protocol: validation units, and a live daemon that survives whatever a client sends."""

from __future__ import annotations

import json
import os
import socket
import stat

import anyio
import pytest

from asyncrun.daemon import _protocol as p
from asyncrun.daemon import _requests as requests

from .stub_admin import DOMAIN, PROJECT

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------- units


def test_encode_decode_round_trip() -> None:
    line = p.encode({"op": "status", "id": 3, "text": "é\n"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # newlines inside strings are escaped
    assert p.decode(line[:-1]) == {"op": "status", "id": 3, "text": "é\n"}


@pytest.mark.parametrize("count", [0, 1, 999, 1000, 2500])
def test_lazy_lists_encode_as_the_list_would(count: int) -> None:
    items = [f"run-{i}" for i in range(count)]
    made: list[str] = []

    def state(name: str) -> dict:
        made.append(name)
        return {"name": name, "phase": "RUNNING", "text": "é"}

    lazy = p.encode({"ok": True, "executions": p.Lazy(items, state), "total": count})
    alone = p.encode({"executions": p.Lazy(items, state)})
    assert made == items + items  # each state made once per encoding, in order
    states = [state(n) for n in items]
    assert lazy == p.encode({"ok": True, "executions": states, "total": count})
    assert alone == p.encode({"executions": states})


@pytest.mark.parametrize(
    ("line", "code"),
    [(b"{not json", p.BAD_JSON), (b"[1, 2]", p.BAD_JSON), (b'"op"', p.BAD_JSON), (b"\xff\xfe", p.BAD_JSON)],
)
def test_decode_rejects(line: bytes, code: str) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.decode(line)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"id": 1}, p.BAD_REQUEST),
        ({"op": "fly", "id": 1}, p.UNKNOWN_OP),
        ({"op": "hello", "id": 1, "version": "1"}, p.BAD_REQUEST),
        ({"op": "wait", "id": 1}, p.BAD_REQUEST),
        ({"op": "wait", "id": 1, "ids": []}, p.BAD_REQUEST),
        ({"op": "wait", "id": 1, "ids": ["a"], "wait_for": "soon"}, p.BAD_REQUEST),
        ({"op": "wait", "id": 1, "ids": ["a"], "timeout": -1}, p.BAD_REQUEST),
        ({"op": "wait", "id": 1, "ids": ["a"], "timeout": True}, p.BAD_REQUEST),
        ({"op": "track", "id": 1, "ids": [{"project": "p", "domain": "d"}]}, p.BAD_REQUEST),
        ({"op": "track", "id": 1, "ids": [3]}, p.BAD_REQUEST),
        ({"op": "track", "id": 1, "ids": ["a"] * (p.MAX_IDS + 1)}, p.BAD_REQUEST),
        ({"op": "track", "id": 1, "ids": ["a"], "target": "prod"}, p.BAD_REQUEST),
        ({"op": "track", "id": 1, "ids": ["a"], "target": {"env": {"HOME": 1}}}, p.BAD_REQUEST),
        ({"op": "launch", "id": 1}, p.BAD_REQUEST),
        ({"op": "launch", "id": 1, "entity": {"kind": "pipeline", "name": "x"}}, p.BAD_REQUEST),
        ({"op": "status", "id": [1]}, p.BAD_REQUEST),
        ({"op": "status", "id": True}, p.BAD_REQUEST),
    ],
)
def test_parse_request_rejects(message: dict, code: str) -> None:
    with pytest.raises(p.ProtocolError) as info:
        requests.parse_request(message)
    assert info.value.code == code


def test_parse_request_accepts_and_normalises() -> None:
    request = requests.parse_request(
        {
            "op": "wait",
            "id": "w",
            "ids": ["n1", {"project": "p", "domain": "d", "name": "n2"}],
            "timeout": 5,
            "extra": "ignored",
        }
    )
    assert isinstance(request, requests.Wait)
    assert request.ids == ("n1", "p:d:n2") and request.timeout == 5.0 and request.wait_for == "terminal"
    target = requests.parse_request(
        {"op": "track", "ids": ["a"], "target": {"env": {"HOME": "/h", "PATH": "/x"}}}
    ).target
    assert target.env == {"HOME": "/h"}  # only the Flyte variables are forwarded


def test_target_from_environment_makes_paths_absolute(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLYTECTL_CONFIG", "cfg.yaml")
    monkeypatch.setenv("UNRELATED", "x")
    target = p.Target.from_environment("other.yaml", project="p")
    assert target.config == str(tmp_path / "other.yaml")
    assert target.env["FLYTECTL_CONFIG"] == str(tmp_path / "cfg.yaml") and "UNRELATED" not in target.env
    assert p.Target.from_json(target.to_json()) == target


def test_is_settled() -> None:
    assert p.is_settled({"phase": "FAILED"})
    assert not p.is_settled({"phase": "RUNNING"})
    assert p.is_settled({"phase": "RUNNING"}, "running")
    assert not p.is_settled({"phase": "QUEUED"}, "running")
    assert p.is_settled({"phase": "UNDEFINED", "found": False})
    assert not p.is_settled({"phase": "SUCCEEDED", "outputs_state": "pending"}, outputs=True)
    assert p.is_settled({"phase": "SUCCEEDED", "outputs_state": "done"}, outputs=True)
    assert p.is_settled({"phase": "FAILED", "outputs_state": "none"}, outputs=True)


def test_error_code_of() -> None:
    from asyncrun._exceptions import EntityNotFoundError, UnreachableError

    assert p.error_code_of(UnreachableError("x")) == "unreachable"
    assert p.error_code_of(EntityNotFoundError("x")) == "entity_not_found"


async def test_line_reader_skips_an_oversize_line_and_goes_on() -> None:
    left, right = anyio.create_memory_object_stream[bytes](100)

    class Stream:
        async def receive(self, max_bytes: int = 65536) -> bytes:
            return await right.receive()

    reader = p.LineReader(Stream(), max_line=10)  # type: ignore[arg-type]
    for chunk in (b'{"a":1}\n', b"x" * 8, b"y" * 8, b"z" * 50, b"tail\n{", b'"b":2}\n'):
        left.send_nowait(chunk)
    left.close()
    assert await reader.receive_line() == b'{"a":1}'
    with pytest.raises(p.LineTooLongError):
        await reader.receive_line()
    assert await reader.receive_line() == b'{"b":2}'  # the rest of the long line was skipped
    assert await reader.receive_line() is None


# ---------------------------------------------------------------- a live daemon


class RawClient:
    """A bare socket client, to send what DaemonConnection never would."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.reader = p.LineReader(stream, p.MAX_REPLY_LINE)

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self) -> dict:
        with anyio.fail_after(10):
            line = await self.reader.receive_line()
        assert line is not None, "the daemon closed the connection"
        return json.loads(line)

    async def ask(self, message: dict) -> dict:
        await self.send(p.encode(message))
        return await self.receive()


async def _raw(settings) -> RawClient:
    return RawClient(await anyio.connect_unix(settings.socket_path))


async def test_socket_and_folder_are_private(daemon, settings) -> None:
    assert stat.S_IMODE(os.stat(settings.socket_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(settings.socket_path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(settings.journal_path).st_mode) == 0o600


async def test_handshake_is_required_and_versions_checked(daemon, settings) -> None:
    client = await _raw(settings)
    reply = await client.ask({"op": "status", "id": 1})
    assert reply["ok"] is False and reply["error"]["code"] == p.HANDSHAKE_REQUIRED and reply["id"] == 1
    reply = await client.ask({"op": "hello", "id": 2, "version": 99})
    assert reply["error"]["code"] == p.UNSUPPORTED_VERSION and reply["error"]["supported"] == [1]
    reply = await client.ask({"op": "status", "id": 3})
    assert reply["error"]["code"] == p.HANDSHAKE_REQUIRED  # a failed hello does not count
    reply = await client.ask({"op": "hello", "id": 4, "version": 1})
    assert reply["ok"] and reply["version"] == 1 and reply["daemon"]["pid"] == os.getpid()
    reply = await client.ask({"op": "status", "id": 5, "executions": False})
    assert reply["ok"] and reply["daemon"]["tracked"] == 0


async def test_garbage_gets_error_replies_and_the_daemon_stays_up(daemon, settings) -> None:
    client = await _raw(settings)
    await client.ask({"op": "hello", "version": 1})
    cases = [
        (b"{oops\n", p.BAD_JSON),
        (b"\xff\xfe\xfd\n", p.BAD_JSON),
        (b"[1,2,3]\n", p.BAD_JSON),
        (b'{"op": "explode", "id": 7}\n', p.UNKNOWN_OP),
        (b'{"op": "wait", "id": 8, "ids": "all"}\n', p.BAD_REQUEST),
        (b'{"op": "track", "id": 9, "ids": ["n"], "target": {"config": "/nonexistent.yaml"}}\n', "config"),
        (b"x" * (p.MAX_REQUEST_LINE + 10) + b"\n", p.TOO_LARGE),
    ]
    for data, code in cases:
        await client.send(data)
        reply = await client.receive()
        assert reply["ok"] is False and reply["error"]["code"] == code, (data[:40], reply)
    await client.send(b"\n\n   \n")  # blank lines are ignored, not errors
    reply = await client.ask({"op": "status", "id": 10, "executions": False})
    assert reply["ok"] and reply["id"] == 10
    # Other connections never noticed.
    other = await _raw(settings)
    assert (await other.ask({"op": "hello", "version": 1}))["ok"]


async def test_one_request_may_name_a_hundred_thousand_runs(stub, target, daemon, settings) -> None:
    # `untrack` is validated and resolved like `track` and `wait`, and polls nothing.
    assert p.MAX_IDS >= 100_000
    ids = [f"{PROJECT}:{DOMAIN}:run-{i:07d}" for i in range(100_000)]
    line = p.encode({"op": "untrack", "id": 1, "ids": ids, "target": target.to_json()})
    assert len(line) > 3 << 20  # well past the old 1 MiB line limit
    client = await _raw(settings)
    await client.ask({"op": "hello", "version": 1})
    await client.send(line)
    reply = await client.receive()
    assert reply == {"ok": True, "id": 1, "untracked": 0, "still_wanted": 0}


async def test_connections_dropped_mid_message_do_not_hurt(daemon, settings) -> None:
    for data in (b'{"op": "hel', b"\xff" * 5000, b'{"op":"hello","version":1}\n{"op":"wait","ids":["a"]'):
        stream = await anyio.connect_unix(settings.socket_path)
        await stream.send(data)
        await stream.aclose()
    client = await _raw(settings)
    assert (await client.ask({"op": "hello", "version": 1}))["ok"]
    assert daemon.service.connections == 1


async def test_cancel_and_duplicate_ids(stub, target, daemon, settings) -> None:
    stub.add("c1", "RUNNING")
    client = await _raw(settings)
    await client.ask({"op": "hello", "version": 1})
    await client.send(
        p.encode({"op": "wait", "id": "w", "ids": ["c1"], "target": target.to_json(), "events": False})
    )
    duplicate = await client.ask({"op": "wait", "id": "w", "ids": ["c1"], "target": target.to_json()})
    assert duplicate["error"]["code"] == p.BAD_REQUEST
    await client.send(p.encode({"op": "cancel", "id": "c", "request": "w"}))
    replies = {r["id"]: r for r in [await client.receive(), await client.receive()]}
    assert replies["c"] == {"ok": True, "id": "c", "cancelled": True}
    assert replies["w"] == {"ok": True, "id": "w", "cancelled": True}


async def test_half_closed_client_still_gets_its_replies(daemon, settings) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await anyio.to_thread.run_sync(sock.connect, str(settings.socket_path))
    sock.sendall(p.encode({"op": "hello", "id": 1, "version": 1}) + p.encode({"op": "status", "id": 2}))
    sock.shutdown(socket.SHUT_WR)

    def read_all() -> bytes:
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    with anyio.fail_after(10):
        data = await anyio.to_thread.run_sync(read_all)
    sock.close()
    assert [json.loads(line)["id"] for line in data.splitlines()] == [1, 2]
