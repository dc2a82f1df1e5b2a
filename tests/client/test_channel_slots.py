"""A channel runs at most `MAX_CONCURRENT_CALLS` calls; the others wait for a slot before their
deadline starts, so a busy channel is not reported as "Deadline exceeded"; a grpclib call
deadline is a DeadlineExceededError, never "cannot reach the control plane"."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import anyio
import pytest
from grpclib.const import Cardinality, Handler
from grpclib.encoding.base import CodecBase
from grpclib.metadata import Deadline
from grpclib.server import Server, Stream
from grpclib.utils import DeadlineWrapper

from asyncrun._exceptions import DeadlineExceededError, UnreachableError
from asyncrun.client._channel import MAX_CONCURRENT_CALLS, ConnectingChannel
from asyncrun.client._config import ClientConfig
from asyncrun.client._errors import map_grpc_errors

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


class _RawCodec(CodecBase):
    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


class _Held:
    """A server whose calls `hold` stay open until `release` is set; `quick` answers at once."""

    def __init__(self, held: int) -> None:
        self.expected = held
        self.arrived = 0
        self.all_arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def hold(self, stream: Stream[bytes, bytes]) -> None:
        await stream.recv_message()
        self.arrived += 1
        if self.arrived == self.expected:
            self.all_arrived.set()
        await self.release.wait()
        await stream.send_message(b"held")

    async def quick(self, stream: Stream[bytes, bytes]) -> None:
        await stream.recv_message()
        await stream.send_message(b"quick")

    def __mapping__(self) -> dict[str, Handler]:
        return {
            "/t.T/Hold": Handler(self.hold, Cardinality.UNARY_UNARY, bytes, bytes),
            "/t.T/Quick": Handler(self.quick, Cardinality.UNARY_UNARY, bytes, bytes),
        }


async def _call(channel: ConnectingChannel, route: str, call_timeout: float) -> bytes:
    with map_grpc_errors("test"):
        async with channel.request(
            route, Cardinality.UNARY_UNARY, bytes, bytes, timeout=call_timeout
        ) as stream:
            await stream.send_message(b"x", end=True)
            reply: bytes = await stream.recv_message()
            return reply


async def test_a_call_beyond_the_servers_stream_limit_waits_for_a_slot_before_its_deadline() -> None:
    # The server (h2's default, like the sandbox) allows 100 concurrent streams; all are busy.
    service = _Held(MAX_CONCURRENT_CALLS)
    server = Server([service], codec=_RawCodec())
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    channel = ConnectingChannel(ClientConfig(endpoint=f"127.0.0.1:{port}", insecure=True), codec=_RawCodec())
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(MAX_CONCURRENT_CALLS):
                tg.start_soon(_call, channel, "/t.T/Hold", 60.0)
            await service.all_arrived.wait()
            late: list[bytes | BaseException] = []

            async def late_call() -> None:
                try:
                    late.append(await _call(channel, "/t.T/Quick", 0.5))
                except (DeadlineExceededError, UnreachableError) as exc:
                    late.append(exc)

            tg.start_soon(late_call)
            # Keep every slot busy past the late call's deadline as counted from its request
            # (the old channel expired it while it waited for a stream), then free them.
            await anyio.sleep(1.5)
            service.release.set()
        assert late == [b"quick"]
    finally:
        channel.close()
        server.close()
        await server.wait_closed()


async def test_a_grpclib_call_deadline_is_deadline_exceeded_not_unreachable() -> None:
    with (
        pytest.raises(DeadlineExceededError, match="did not answer within the call deadline"),
        map_grpc_errors("h:1"),
    ):
        wrapper = DeadlineWrapper()  # what grpclib wraps every call with a deadline in
        with wrapper.start(Deadline.from_timeout(0.01)), wrapper:
            await asyncio.sleep(30)


def test_an_os_connect_timeout_is_still_unreachable() -> None:
    with (
        pytest.raises(UnreachableError, match="cannot reach the control plane at h:1"),
        map_grpc_errors("h:1"),
    ):
        raise TimeoutError(errno.ETIMEDOUT, "Connection timed out")
