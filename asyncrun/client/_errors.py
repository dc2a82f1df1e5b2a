"""gRPC failures become asyncrun errors here, once, at the boundary (like httpx's map_httpcore_exceptions)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from .._exceptions import (
    AlreadyExistsError,
    AuthenticationError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RemoteError,
    ResourceExhaustedError,
    ServerError,
    SilentEndpointError,
    UnreachableError,
    WrongEndpointError,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator

    from ._config import ClientConfig

STATUS_ERRORS: dict[Status, type[RemoteError]] = {
    Status.CANCELLED: ServerError,
    Status.UNKNOWN: ServerError,
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.DEADLINE_EXCEEDED: DeadlineExceededError,
    Status.NOT_FOUND: NotFoundError,
    Status.ALREADY_EXISTS: AlreadyExistsError,
    Status.PERMISSION_DENIED: PermissionDeniedError,
    Status.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    Status.FAILED_PRECONDITION: FailedPreconditionError,
    Status.ABORTED: ServerError,
    Status.OUT_OF_RANGE: InvalidArgumentError,
    Status.UNIMPLEMENTED: ServerError,
    Status.INTERNAL: ServerError,
    Status.UNAVAILABLE: UnreachableError,
    Status.DATA_LOSS: ServerError,
    Status.UNAUTHENTICATED: AuthenticationError,
}


def error_for(exc: GRPCError, endpoint: str = "") -> RemoteError:
    """The asyncrun error for one gRPC status, with a message that names it."""
    cls = STATUS_ERRORS.get(exc.status, ServerError)
    detail = exc.message or exc.status.name.lower().replace("_", " ")
    if cls is UnreachableError:
        return UnreachableError(f"the control plane at {endpoint} is unavailable: {detail}")
    if cls is ServerError and exc.status is Status.UNIMPLEMENTED:
        return ServerError(f"the control plane at {endpoint} does not implement this call: {detail}")
    return cls(detail)


class ConnectionSetupError(StreamTerminatedError):
    """How the channel ends the calls of a connection that failed to set up; carries the error to
    raise (see `_channel.ConnectingChannel`)."""

    def __init__(self, error: UnreachableError) -> None:
        super().__init__(str(error))
        self.error = error


@contextmanager
def map_grpc_errors(endpoint: str = "") -> Iterator[None]:
    """Translate grpclib and connection failures raised inside the block into `RemoteError`s."""
    try:
        yield
    except GRPCError as exc:
        raise error_for(exc, endpoint) from exc
    except ConnectionSetupError as exc:
        raise exc.error from None
    except TimeoutError as exc:
        if exc.errno is None:  # a call's deadline (grpclib raises a bare asyncio.TimeoutError, an OSError)
            raise DeadlineExceededError(
                f"the control plane at {endpoint} did not answer within the call deadline"
            ) from exc
        raise UnreachableError(  # the OS's connect timeout (ETIMEDOUT)
            f"cannot reach the control plane at {endpoint}: {exc.strerror or exc}"
        ) from exc
    except (ConnectionError, StreamTerminatedError, ProtocolError) as exc:
        raise UnreachableError(
            f"cannot reach the control plane at {endpoint}: {exc or type(exc).__name__}"
        ) from exc
    except OSError as exc:  # DNS failures, no route to host, refused TLS…
        raise UnreachableError(
            f"cannot reach the control plane at {endpoint}: {exc.strerror or exc}"
        ) from exc


# TLS reasons OpenSSL gives when the other side does not speak TLS at all (versions differ).
_NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}


def _sandbox_hint(config: ClientConfig) -> str:
    if not config.is_default_sandbox:
        return ""
    return (
        " (with no Flyte config this is the sandbox's port, held by another program: choose other ports "
        "with ASYNCRUN_SANDBOX_PORT and ASYNCRUN_SANDBOX_HTTP_PORT)"
    )


def unanswered_error(config: ClientConfig) -> SilentEndpointError:
    """A server that accepted the connection but sent nothing within `connect_timeout`."""
    return SilentEndpointError(
        f"the control plane at {config.endpoint} accepted a connection but did not answer within "
        f"{config.connect_timeout:g} s: check that it is FlyteAdmin's gRPC endpoint"
        f"{_sandbox_hint(config)} (the deadline is admin.connectTimeout or ASYNCRUN_CONNECT_TIMEOUT)"
    )


def wrong_endpoint_error(
    config: ClientConfig, *, tls_error: ssl.SSLError | None = None, first_bytes: bytes = b""
) -> UnreachableError:
    """What answered at the endpoint instead of a gRPC server set up as configured, and the fix."""
    where = f"the control plane at {config.endpoint}"
    if tls_error is not None:
        reason = tls_error.reason or ""
        if reason in _NOT_TLS_REASONS:
            return WrongEndpointError(
                f"{where} does not speak TLS: set admin.insecure: true in the config "
                "(or FLYTE_PLATFORM_INSECURE=true with FLYTE_PLATFORM_URL)"
            )
        if reason == "CERTIFICATE_VERIFY_FAILED":
            detail = getattr(tls_error, "verify_message", "") or "certificate verify failed"
            return WrongEndpointError(
                f"{where} presented a TLS certificate that is not trusted ({detail}): "
                "set admin.caCertFilePath to the CA bundle that signed it"
            )
        return UnreachableError(f"{where} failed the TLS handshake: {reason or tls_error}")
    if not first_bytes:
        return UnreachableError(
            f"{where} closed the connection without answering: check that it is FlyteAdmin's gRPC "
            f"endpoint{_sandbox_hint(config)}"
            + ("" if not config.insecure else ", and whether it expects TLS (admin.insecure: false)")
        )
    if first_bytes[:1] == b"\x15" and first_bytes[1:2] == b"\x03":
        return WrongEndpointError(
            f"{where} expects TLS: set admin.insecure: false in the config (or unset FLYTE_PLATFORM_INSECURE)"
        )
    if first_bytes.startswith(b"HTTP/") or first_bytes.lstrip().startswith(b"<"):  # a status line, or HTML
        return WrongEndpointError(
            f"{where} answers HTTP/1, not gRPC: point the endpoint at FlyteAdmin's gRPC port, "
            f"not a web or console port{_sandbox_hint(config)}"
        )
    return WrongEndpointError(
        f"{where} does not answer as a gRPC (HTTP/2) server: check the endpoint's host and port"
        f"{_sandbox_hint(config)}"
    )
