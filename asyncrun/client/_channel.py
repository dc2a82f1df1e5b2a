"""The gRPC channel and the one place calls are retried."""

from __future__ import annotations

import random
import ssl
import time
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.encoding.base import StatusDetailsCodecBase

from .._exceptions import DeadlineExceededError, ResourceExhaustedError, UnreachableError
from ._errors import map_grpc_errors

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._config import ClientConfig

T = TypeVar("T")

MAX_MESSAGE_BYTES = 20 << 20  # as flytekit


class _NoStatusDetails(StatusDetailsCodecBase):
    """FlyteAdmin's messages say it all; skipping rich status details spares importing google.protobuf."""

    def encode(self, status: Any, message: str | None, details: Any) -> bytes:
        return b""

    def decode(self, status: Any, message: str | None, data: bytes) -> Any:
        return None


def open_channel(config: ClientConfig) -> Channel:
    """A lazily connecting channel with keepalive pings (every 30 s, also when idle, as flytekit)."""
    host, port = config.host_port
    ssl_context: ssl.SSLContext | None = None
    if not config.insecure:
        ssl_context = ssl.create_default_context(cafile=config.ca_cert_path)
        ssl_context.set_alpn_protocols(["h2"])
    grpc_config = Configuration(
        _keepalive_time=30.0,
        _keepalive_timeout=20.0,
        _keepalive_permit_without_calls=True,
        _http2_max_pings_without_data=0,
    )
    return Channel(host, port, ssl=ssl_context, config=grpc_config, status_details_codec=_NoStatusDetails())


class RetryPolicy:
    """Exponential backoff with full jitter, only for failures that are safe to retry.

    UNAVAILABLE and RESOURCE_EXHAUSTED are retried for every call: creates are idempotent here
    (identical registrations succeed, execution names are chosen before the first attempt).
    DEADLINE_EXCEEDED is retried for reads only. A control plane that keeps failing to answer is
    given up on after `unreachable_timeout` seconds.
    """

    def __init__(
        self, *, unreachable_timeout: float, max_attempts: int = 10, base: float = 0.05, cap: float = 2.0
    ):
        self.unreachable_timeout = unreachable_timeout
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))

    async def call(self, endpoint: str, fn: Callable[[], Awaitable[T]], *, read: bool) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                with map_grpc_errors(endpoint):
                    return await fn()
            except (UnreachableError, ResourceExhaustedError, DeadlineExceededError) as exc:
                if isinstance(exc, DeadlineExceededError) and not read:
                    raise
                attempt += 1
                elapsed = time.monotonic() - started
                pause = self.delay(attempt)
                if attempt >= self.max_attempts or elapsed + pause > self.unreachable_timeout:
                    raise
                await anyio.sleep(pause)
