"""One wrapper around every sandbox RPC: optional delay, and no fault ever answered as UNKNOWN.

grpclib answers an uncaught handler exception with UNKNOWN, which sends flytekit into an OAuth
flow; every fault is mapped to INTERNAL with a message instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from grpclib import GRPCError
from grpclib.const import Handler, Status

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("asyncrun.sandbox")


class GuardedService:
    """Mix in before a generated `…Base` class: `class AdminService(GuardedService, AdminServiceBase)`.

    `rpc_delay` (seconds) is added to every call, to emulate a remote control plane in benchmarks;
    `authorize`, when set, vets every call's metadata before the handler runs.
    """

    rpc_delay: float = 0.0
    # `sandbox --auth`: checks the call's metadata, raising UNAUTHENTICATED (see `_auth.AuthServer.check`).
    authorize: Callable[[Any], None] | None = None

    def __mapping__(self) -> dict[str, Handler]:
        mapping: dict[str, Handler] = super().__mapping__()  # type: ignore[misc]
        return {
            path: handler._replace(func=self._guard(path, handler.func)) for path, handler in mapping.items()
        }

    def _guard(self, path: str, func: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def guarded(stream: Any) -> None:
            if self.rpc_delay:
                await asyncio.sleep(self.rpc_delay)
            if self.authorize is not None:
                self.authorize(stream.metadata)
            try:
                await func(stream)
            except (GRPCError, asyncio.CancelledError):
                raise
            except Exception as exc:
                log.exception("%s failed", path)
                raise GRPCError(
                    Status.INTERNAL, f"{path.rsplit('/', 1)[-1]}: {type(exc).__name__}: {exc}"
                ) from exc

        return guarded
