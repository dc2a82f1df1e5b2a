"""Fuzz the daemon's socket protocol against a real daemon on a Unix socket (docs/daemon-protocol.md).

Random JSON lines, random bytes, oversize lines, valid-looking requests with wrong types and
half-closed connections: each request line gets exactly one reply (an error for garbage), nothing is
ever answered `internal`, the daemon keeps serving, rejected requests leave the tracked set and the
journal as they were, and a valid request still works afterwards.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon.stub_admin import DOMAIN, PROJECT, StubAdmin, serving
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from asyncrun.daemon import DaemonSettings, running_daemon
from asyncrun.daemon import _protocol as p
from asyncrun.daemon import _requests as r

from .strategies import budget, json_values

pytestmark = pytest.mark.anyio

BASELINE = "fuzz-baseline"  # a run tracked before fuzzing; the fuzz never names it


@pytest.fixture
def socket_dir():
    """A short folder for the socket (sun_path holds ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="arfz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def live(socket_dir, tmp_path):
    """A stub FlyteAdmin and a daemon in this event loop, with one run tracked."""
    stub = StubAdmin()
    stub.add(BASELINE)
    settings = DaemonSettings(
        socket_path=socket_dir / "run" / "daemon.sock",
        journal_path=tmp_path / "daemon" / "journal.sqlite3",
        idle_timeout=0,
        min_interval=0.5,
        max_interval=2.0,
        rate=500,
        burst=500,
        call_timeout=2.0,
    )
    async with serving(stub) as endpoint, running_daemon(settings) as daemon:
        target = {"endpoint": endpoint, "insecure": True, "project": PROJECT, "domain": DOMAIN}
        replies = await exchange(
            settings.socket_path, [p.encode({"op": "track", "id": 1, "ids": [BASELINE], "target": target})]
        )
        assert replies[0]["ok"], replies
        yield daemon, settings, target


async def exchange(socket_path: Path, lines: list[bytes], *, greet: bool = True) -> list[dict[str, Any]]:
    """Send `lines` on a fresh connection, half-close it, and return every reply (events left out)."""
    stream = await anyio.connect_unix(socket_path)
    reader = p.LineReader(stream, p.MAX_REPLY_LINE)
    messages: list[dict[str, Any]] = []
    async with stream:
        if greet:
            await stream.send(p.encode({"op": "hello", "id": "greeting", "version": 1}))
        for line in lines:
            await stream.send(line)
        await stream.send_eof()
        with anyio.fail_after(20):
            while (line := await reader.receive_line()) is not None:
                messages.append(json.loads(line))
    replies = [m for m in messages if "ok" in m and m.get("id") != "greeting"]
    for reply in replies:
        assert reply["ok"] or reply["error"]["code"] != p.INTERNAL, reply
    return replies


def state(daemon: Any) -> object:
    """The tracked set as the daemon holds it: keys with their interest and outputs state."""
    return sorted((key, item.interest, item.outputs_state) for key, item in daemon.service.items.items())


async def journal_state(daemon: Any) -> object:
    journal = daemon.service.journal
    return sorted(
        (item.key, item.interest, item.outputs_state) for item in await journal.call(journal.load_executions)
    )


async def assert_still_serving(settings: DaemonSettings, daemon: Any) -> None:
    replies = await exchange(
        settings.socket_path, [p.encode({"op": "status", "id": "check", "executions": True})]
    )
    assert len(replies) == 1 and replies[0]["ok"], replies
    names = {execution["name"] for execution in replies[0]["executions"]}
    assert BASELINE in names


# ---------------------------------------------------------------- messages

OPS = sorted(set(r._PARSERS) - {"shutdown"})  # a valid shutdown would (rightly) stop the daemon
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
exec_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).filter(
    lambda n: n != BASELINE
)
ids_values = st.one_of(
    wrong,
    st.lists(
        st.one_of(
            exec_names, wrong, st.fixed_dictionaries({"project": wrong, "domain": wrong, "name": wrong})
        ),
        max_size=4,
    ),
    st.lists(exec_names, min_size=1, max_size=3),
    st.lists(exec_names.map(lambda n: f"{PROJECT}:{DOMAIN}:{n}"), min_size=1, max_size=3),
    st.lists(
        st.sampled_from(["a:b", ":::", "p:d:n:x", "https://x/projects/p/domains/d/executions/", "..", "-x"]),
        min_size=1,
        max_size=2,
    ),
)


STUB = "<the stub's target>"  # replaced by the live target: the fuzz must never reach another host


def requests() -> st.SearchStrategy[dict[str, Any]]:
    """Request objects: known ops with fields of the right and the wrong types."""
    targets = st.one_of(
        st.just(STUB),
        wrong,
        st.dictionaries(
            st.sampled_from(["insecure", "project", "domain", "config", "env"]), wrong, max_size=2
        ).map(lambda extra: {STUB: True, **extra}),
    )
    return st.fixed_dictionaries(
        {"op": st.one_of(st.sampled_from(OPS), wrong)},
        optional={
            "id": st.one_of(st.integers(), st.text(max_size=300), wrong),
            "ids": ids_values,
            "target": targets,
            "timeout": st.one_of(st.floats(min_value=0, max_value=0.2), wrong),
            "wait_for": st.one_of(st.sampled_from(p.WAIT_FOR), wrong),
            "outputs": st.one_of(st.booleans(), wrong),
            "events": st.one_of(st.booleans(), wrong),
            "executions": st.one_of(st.booleans(), wrong),
            "subscriber": st.one_of(st.text(max_size=8), wrong),
            "entity": st.one_of(
                wrong,
                st.fixed_dictionaries(
                    {"kind": st.one_of(st.sampled_from(r.ENTITY_KINDS), wrong), "name": wrong}
                ),
            ),
            "inputs": wrong,
            "options": wrong,
            "cause": wrong,
            "request": st.one_of(wrong, st.integers(), st.text(max_size=5)),
            "version": wrong,
        },
    )


def with_target(message: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """`message` with the placeholder target replaced by the stub's (other fields of it kept)."""
    value = message.get("target")
    if value == STUB:
        return {**message, "target": target}
    if isinstance(value, dict) and STUB in value:
        return {**message, "target": {**target, **{k: v for k, v in value.items() if k != STUB}}}
    if "target" not in message and message.get("op") in ("launch",):
        return {**message, "target": target}  # the daemon's own environment may name a real host
    return message


lines = st.one_of(
    requests(),
    json_values.map(lambda v: json.dumps(v).encode() + b"\n"),
    st.binary(max_size=64).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    st.sampled_from(
        [b"[" * 100_000 + b"\n", b'{"op": "hello", "version": 1e999}\n', b"NaN\n", b'{"op":' * 50_000 + b"\n"]
    ),
)


@given(
    data=st.one_of(st.binary(), json_values.map(lambda v: json.dumps(v).encode()), requests().map(p.encode))
)
@example(data=b"[" * 100_000)  # deeper than json.loads can recurse: RecursionError escaped decode()
@example(data=b'{"op": "cancel", "request": [1]}')
def test_decode_and_parse_raise_only_protocol_errors(data: bytes) -> None:
    try:
        r.parse_request(p.decode(data.rstrip(b"\n")))
    except p.ProtocolError as exc:
        assert exc.code in (p.BAD_JSON, p.BAD_REQUEST, p.UNKNOWN_OP) and "\n" not in exc.message


@settings(max_examples=budget(150))
@given(line=lines)
@example(line={"op": "cancel", "request": [1]})  # unhashable: killed the connection without a reply
@example(line={"op": "cancel", "request": {"a": 1}})
@example(line=b"[" * 100_000 + b"\n")
@example(line={"op": "track", "ids": [{"project": "p", "domain": "d", "name": "n" * 5000}], "target": STUB})
@example(line={"op": "track", "ids": ["ok-name"], "target": {STUB: True, "env": {"HOME": 1}}})
async def test_each_line_gets_one_reply_and_rejected_ones_change_nothing(
    live, line: dict[str, Any] | bytes
) -> None:
    daemon, daemon_settings, target = live
    data = line if isinstance(line, bytes) else p.encode(with_target(line, target))
    before, journaled = state(daemon), await journal_state(daemon)
    replies = await exchange(daemon_settings.socket_path, [data])
    assert len(replies) == (1 if data.strip() else 0), (data[:200], replies)
    event("ok" if not replies or replies[0]["ok"] else replies[0]["error"]["code"])
    if replies and not replies[0]["ok"]:
        assert state(daemon) == before, (data[:200], replies)
        assert await journal_state(daemon) == journaled, (data[:200], replies)
    await assert_still_serving(daemon_settings, daemon)


# Requests that pass validation: real ops on random (well-formed) execution ids of the stub.
valid_requests = st.one_of(
    st.builds(
        lambda op, ids, outputs: {"op": op, "ids": ids, "target": STUB, "outputs": outputs},
        st.sampled_from(["track", "status", "untrack"]),
        st.lists(exec_names, min_size=1, max_size=3),
        st.booleans(),
    ),
    st.builds(
        lambda ids, timeout, wait_for: {
            "op": "wait",
            "ids": ids,
            "target": STUB,
            "timeout": timeout,
            "wait_for": wait_for,
        },
        st.lists(exec_names, min_size=1, max_size=2),
        st.floats(min_value=0, max_value=0.1),
        st.sampled_from(p.WAIT_FOR),
    ),
    st.builds(
        lambda ids: {"op": "terminate", "ids": ids, "target": STUB},
        st.lists(exec_names, min_size=1, max_size=2),
    ),
    st.builds(lambda ids: {"op": "watch", "ids": ids, "target": STUB}, st.lists(exec_names, max_size=2)),
    st.just({"op": "status", "executions": True}),
    st.builds(
        lambda rid: {"op": "cancel", "request": rid}, st.one_of(st.integers(0, 3), st.text(max_size=3))
    ),
    st.just({"op": "hello", "version": 1}),
)


@settings(max_examples=budget(100))
@given(
    batch=st.lists(st.one_of(lines, valid_requests), min_size=1, max_size=6),
    ids=st.lists(st.integers(0, 3), min_size=6, max_size=6),
)
async def test_a_connection_answers_every_line_once(live, batch: list[Any], ids: list[int]) -> None:
    """Several lines on one connection (ids may collide), then a half-close: one reply per request line."""
    daemon, daemon_settings, target = live
    data = [
        item if isinstance(item, bytes) else p.encode(with_target({"id": rid, **item}, target))
        for item, rid in zip(batch, ids, strict=False)
    ]
    replies = await exchange(daemon_settings.socket_path, data)
    assert len(replies) == sum(1 for line in data if line.strip()), (data, replies)
    event(f"accepted requests in a batch: {sum(reply['ok'] for reply in replies)}")
    await assert_still_serving(daemon_settings, daemon)


async def test_oversize_partial_and_ungreeted_input(live) -> None:
    daemon, daemon_settings, target = live
    before = state(daemon)
    oversize = b"x" * (p.MAX_REQUEST_LINE + 10) + b"\n"
    replies = await exchange(daemon_settings.socket_path, [oversize, p.encode({"op": "status", "id": 2})])
    assert [reply["ok"] for reply in replies] == [False, True] and replies[0]["error"]["code"] == p.TOO_LARGE
    # A line cut off by the half-close is dropped; the connection still closes cleanly.
    assert await exchange(daemon_settings.socket_path, [b'{"op": "status", "id": 3']) == []
    assert await exchange(daemon_settings.socket_path, [b"\xff" * 5000]) == []
    # An oversize line that never ends: one too_large, then a clean close.
    replies = await exchange(daemon_settings.socket_path, [b"y" * (3 * p.MAX_REQUEST_LINE)])
    assert [reply["error"]["code"] for reply in replies] == [p.TOO_LARGE]
    # Without the handshake: every request is refused and changes nothing.
    replies = await exchange(
        daemon_settings.socket_path,
        [
            p.encode({"op": "track", "id": 4, "ids": ["n1"], "target": target}),
            p.encode({"op": "shutdown", "id": 5}),
        ],
        greet=False,
    )
    assert [reply["error"]["code"] for reply in replies] == [p.HANDSHAKE_REQUIRED] * 2
    assert state(daemon) == before and not daemon.service.shutdown_requested.is_set()
    await assert_still_serving(daemon_settings, daemon)


async def test_a_client_that_vanishes_mid_request_leaves_the_daemon_serving(live) -> None:
    daemon, daemon_settings, target = live
    for cut in (1, 10, 30):
        stream = await anyio.connect_unix(daemon_settings.socket_path)
        line = p.encode({"op": "hello", "version": 1}) + p.encode(
            {"op": "wait", "id": 1, "ids": ["zz"], "target": target}
        )
        await stream.send(line[: len(line) - cut])
        await stream.aclose()  # no half-close: the socket just goes away
    await assert_still_serving(daemon_settings, daemon)
