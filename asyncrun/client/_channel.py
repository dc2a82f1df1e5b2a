"""The gRPC channel: connecting, TLS, and a slot per call (see `_retry` for retries)."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any, cast

import anyio
from grpclib.client import Channel, Handler, Stream
from grpclib.config import Configuration
from grpclib.encoding.base import StatusDetailsCodecBase
from grpclib.protocol import H2Protocol

from ._errors import ConnectionSetupError, unanswered_error, wrong_endpoint_error

if TYPE_CHECKING:
    from asyncio import BaseTransport
    from collections.abc import Callable
    from types import TracebackType

    from grpclib.const import Cardinality
    from grpclib.metadata import Deadline, _MetadataLike

    from .._exceptions import UnreachableError
    from ._config import ClientConfig

MAX_MESSAGE_BYTES = 20 << 20  # as flytekit

# Calls one channel runs at once. HTTP/2 servers built on h2 (the sandbox, grpclib, hypercorn)
# advertise 100 concurrent streams; grpc-go (FlyteAdmin) allows more. Calls beyond it wait for a
# slot here, in order and *before* their deadline starts: grpclib would park them waiting for a
# stream to close while their deadline runs, and under load report a busy channel as
# "Deadline exceeded".
MAX_CONCURRENT_CALLS = 100


class _NoStatusDetails(StatusDetailsCodecBase):
    """FlyteAdmin's messages say it all; skipping rich status details spares importing google.protobuf."""

    def encode(self, status: Any, message: str | None, details: Any) -> bytes:
        return b""

    def decode(self, status: Any, message: str | None, data: bytes) -> Any:
        return None


class _AnsweringProtocol(H2Protocol):
    """grpclib's protocol, watching the server's first bytes: an HTTP/2 server starts with a SETTINGS
    frame. Anything else, silence for `wait` seconds, or a close before it, fails the connection and
    every call on it with one asyncrun error (`setup_error`) instead of a call deadline or
    "Connection lost".

    Calls are sent without waiting for that first frame, as before: only a server that turns out
    not to answer (or not to speak HTTP/2) costs anything.
    """

    def __init__(self, handler: Handler, config: Configuration, h2_config: Any, client: ClientConfig) -> None:
        super().__init__(handler, config, h2_config)
        self.client_config = client
        self.answered = False
        self.setup_error: UnreachableError | None = None
        self._transport: BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: BaseTransport) -> None:
        self._transport = transport
        super().connection_made(transport)
        wait = self.client_config.connect_timeout
        self._timer = asyncio.get_running_loop().call_later(wait, self._fail, None)

    def data_received(self, data: bytes) -> None:
        if not self.answered:
            self.answered = True
            if self._timer is not None:
                self._timer.cancel()
            if not _is_http2_settings(data):
                self._fail(wrong_endpoint_error(self.client_config, first_bytes=data[:16]))
                return
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.answered and self.setup_error is None:
            self.setup_error = wrong_endpoint_error(self.client_config)  # closed without a word
        streams = list(self.processor.streams.values())
        super().connection_lost(exc)
        if self.setup_error is not None:
            for stream in streams:
                # Replace the "Connection lost" grpclib just cancelled the call with (cancelling
                # again would leave the task with a cancel request nobody takes back).
                if stream.wrapper is not None:
                    stream.wrapper._error = ConnectionSetupError(self.setup_error)

    def _fail(self, error: UnreachableError | None) -> None:
        self.setup_error = error or unanswered_error(self.client_config)
        if self._transport is not None:
            self._transport.close()


class ConnectingChannel(Channel):
    """A channel whose connection set-up (TCP, TLS, the server's first HTTP/2 frame) has its own
    deadline, and whose set-up failures are one-line errors naming the endpoint and the fix.

    Without it a server that accepts TCP and never answers costs a whole call deadline, and a
    plain-text/TLS mix-up or an HTTP/1 service surfaces as "Connection lost" or an SSL reason code.
    """

    def __init__(self, client_config: ClientConfig, **kwargs: Any) -> None:
        host, port = client_config.host_port
        super().__init__(host, port, **kwargs)
        self._client_config = client_config
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    def request(  # same parameters; a context manager that yields the Stream
        self,
        name: str,
        cardinality: Cardinality,
        request_type: type[Any],
        reply_type: type[Any],
        *,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        metadata: _MetadataLike | None = None,
    ) -> Stream[Any, Any]:
        """A call that first waits for one of the channel's `MAX_CONCURRENT_CALLS` slots, then
        starts its deadline (`timeout` counts from there) and opens the stream."""

        def open_stream() -> Stream[Any, Any]:
            return Channel.request(
                self,
                name,
                cardinality,
                request_type,
                reply_type,
                timeout=timeout,
                deadline=deadline,
                metadata=metadata,
            )

        return cast("Stream[Any, Any]", _SlotCall(self._slots, open_stream))

    # grpclib's private hooks (pyproject pins the tested 0.4.x): where the protocol is built and connected.
    def _protocol_factory(self) -> H2Protocol:
        return _AnsweringProtocol(Handler(), self._config, self._h2_config, self._client_config)

    async def _create_connection(self) -> H2Protocol:
        config = self._client_config
        try:
            with anyio.fail_after(config.connect_timeout):
                return await super()._create_connection()
        except TimeoutError:
            raise unanswered_error(config) from None
        except ssl.SSLError as exc:
            raise wrong_endpoint_error(config, tls_error=exc) from exc


class _SlotCall:
    """`async with channel.request(...) as stream`, holding a channel slot for the call's lifetime."""

    def __init__(self, slots: asyncio.Semaphore, open_stream: Callable[[], Stream[Any, Any]]) -> None:
        self._slots = slots
        self._open_stream = open_stream
        self._stream: Stream[Any, Any] | None = None

    async def __aenter__(self) -> Stream[Any, Any]:
        await self._slots.acquire()
        try:
            self._stream = self._open_stream()
            return await self._stream.__aenter__()
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            assert self._stream is not None
            await self._stream.__aexit__(exc_type, exc, tb)
        finally:
            self._slots.release()


def _is_http2_settings(data: bytes) -> bool:
    """An HTTP/2 frame header of type SETTINGS (0x4): every HTTP/2 server's first frame."""
    return len(data) >= 4 and data[3] == 0x4


def open_channel(config: ClientConfig) -> Channel:
    """A lazily connecting channel with keepalive pings (every 30 s, also when idle, as flytekit)."""
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
    return ConnectingChannel(
        config, ssl=ssl_context, config=grpc_config, status_details_codec=_NoStatusDetails()
    )
