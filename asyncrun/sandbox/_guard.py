"""One wrapper around every sandbox RPC: optional delay, and no fault ever answered as UNKNOWN.

grpclib answers an uncaught handler exception with UNKNOWN, which sends flytekit into an OAuth
flow; every fault is mapped to INTERNAL with a message instead. A request body that does not decode
as the method's message is the client's fault: INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import TYPE_CHECKING, Any

from grpclib import GRPCError
from grpclib.const import Handler, Status
from grpclib.exceptions import ProtocolError, StreamTerminatedError

from asyncrun._betterproto import betterproto2

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("asyncrun.sandbox")

# Line breaks and other control characters: a status message quoting a client's identifier stays one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(message: str) -> str:
    """`message` with control characters escaped (`\\n`), so it prints as one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)


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
                await func(_DecodingStream(stream, path))
            except GRPCError as exc:
                if exc.message and _CONTROL.search(exc.message):
                    raise GRPCError(exc.status, one_line(exc.message), exc.details) from None
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("%s failed", path)
                raise GRPCError(
                    Status.INTERNAL, one_line(f"{path.rsplit('/', 1)[-1]}: {type(exc).__name__}: {exc}")
                ) from exc

        return guarded


class _DecodingStream:
    """A server stream whose `recv_message` answers an undecodable body with INVALID_ARGUMENT.

    betterproto2 raises ValueError, UnicodeDecodeError, EOFError, … for malformed bytes; without this
    they would reach the guard as handler faults (INTERNAL). Transport errors pass through unchanged.
    """

    def __init__(self, stream: Any, path: str) -> None:
        self._stream = stream
        self._path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def recv_message(self) -> Any:
        method = self._path.rsplit("/", 1)[-1]
        try:
            message = await self._stream.recv_message()
            misfit = None if message is None else misfit_field(message)
        except (GRPCError, asyncio.CancelledError, StreamTerminatedError, ProtocolError):
            raise
        except Exception as exc:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"{method}: the request does not decode: {type(exc).__name__}: {exc}"
            ) from None
        if misfit is not None:
            raise GRPCError(Status.INVALID_ARGUMENT, f"{method}: field {misfit} has the wrong wire type")
        return message


def misfit_field(message: betterproto2.Message, path: str = "") -> str | None:
    """The dotted name of the first field whose decoded value has the wrong Python type, or None.

    betterproto2 does not check wire types: a scalar field sent length-delimited decodes as a list, a
    message field sent as a varint as an int, a scalar sent as a group as None. Handlers would then
    fail on them as server faults.
    """
    classes = type(message)._betterproto.cls_by_field  # type: ignore[arg-type]
    for f in dataclasses.fields(message):  # type: ignore[arg-type]
        meta = betterproto2.FieldMetadata.get(f)
        value = getattr(message, f.name)
        where = path + f.name
        if meta.proto_type == "map":
            if not isinstance(value, dict):
                return where
            key_type = str if meta.map_meta and meta.map_meta[0].proto_type == "string" else int
            items = [(k, key_type) for k in value] + [(v, classes[f"{f.name}.value"]) for v in value.values()]
        elif meta.repeated:
            if not isinstance(value, list):
                return where
            items = [(v, classes[f.name]) for v in value]
        elif value is None:
            # Unset messages, optional and oneof fields are None; a plain scalar never is (a group
            # wire type, which proto3 does not have, leaves it None).
            if meta.proto_type == "message" or meta.optional or meta.group:
                continue
            return where
        else:
            items = [(value, classes[f.name])]
        for item, expected in items:
            if not _fits(item, expected):
                return where
            inner = misfit_field(item, where + ".") if isinstance(item, betterproto2.Message) else None
            if inner is not None:
                return inner
    return None


def _fits(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, float)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
