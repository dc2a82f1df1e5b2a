"""A gRPC proxy in front of a real sandbox: records every request and can fail calls on purpose.

Faults are injected at the transport, between a real client and a real server: an UNAVAILABLE
either before the call reaches the sandbox, or after it ran there with the answer lost, which is
the case that tempts clients into starting a run twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grpclib.client import Channel
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server

from asyncrun._proto.flyteidl.service import AdminServiceBase, DataProxyServiceBase


@dataclass
class Recorded:
    path: str
    request: bytes


@dataclass
class FaultPlan:
    """Fail this share of calls with UNAVAILABLE; `lost_reply_share` of those after the call ran
    (answered with `lost_reply_status`). `only`: fail only the calls whose path ends with it."""

    fail_share: float = 0.0
    lost_reply_share: float = 0.5
    lost_reply_status: Status = Status.UNAVAILABLE
    only: str = ""
    seed: int = 7
    # Changes a reply on its way back (path, reply) -> reply: answers as another FlyteAdmin would.
    rewrite: Callable[[str, Any], Any] | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class _Forwarding:
    def __init__(self, base: type, upstream: Channel, plan: FaultPlan, log: list[Recorded]) -> None:
        self._mapping = {
            path: handler._replace(func=self._forwarder(path, handler))
            for path, handler in base.__mapping__(base()).items()  # type: ignore[arg-type]
        }
        self.upstream = upstream
        self.plan = plan
        self.log = log

    def __mapping__(self) -> dict[str, Handler]:
        return self._mapping

    def _forwarder(self, path: str, handler: Handler) -> Any:
        async def forward(stream: Any) -> None:
            request = await stream.recv_message()
            self.log.append(Recorded(path, bytes(request)))
            fail = self.plan.rng.random() < self.plan.fail_share and path.endswith(self.plan.only)
            lose_reply = fail and self.plan.rng.random() < self.plan.lost_reply_share
            if fail and not lose_reply:
                raise GRPCError(Status.UNAVAILABLE, "injected: unavailable before the call")
            async with self.upstream.request(
                path, handler.cardinality, handler.request_type, handler.reply_type
            ) as up:
                await up.send_message(request, end=True)
                reply = await up.recv_message()
            if lose_reply:
                raise GRPCError(self.plan.lost_reply_status, "injected: reply lost after the call ran")
            if self.plan.rewrite is not None:
                reply = self.plan.rewrite(path, reply)
            await stream.send_message(reply)

        return forward


@dataclass
class Proxy:
    endpoint: str
    log: list[Recorded]
    plan: FaultPlan


async def start_proxy(
    upstream_host: str, upstream_port: int, plan: FaultPlan | None = None
) -> tuple[Proxy, Server, Channel]:
    plan = plan or FaultPlan()
    log: list[Recorded] = []
    upstream = Channel(upstream_host, upstream_port)
    services = [
        _Forwarding(AdminServiceBase, upstream, plan, log),
        _Forwarding(DataProxyServiceBase, upstream, plan, log),
    ]
    server = Server(services)
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return Proxy(f"127.0.0.1:{port}", log, plan), server, upstream
