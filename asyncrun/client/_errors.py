"""gRPC failures become asyncrun errors here, once, at the boundary (like httpx's map_httpcore_exceptions)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from .._exceptions import (
    AlreadyExistsError,
    AsyncrunError,
    AuthenticationError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RemoteError,
    ResourceExhaustedError,
    ServerError,
    UnreachableError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

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


@contextmanager
def map_grpc_errors(endpoint: str = "") -> Iterator[None]:
    """Translate grpclib and connection failures raised inside the block into `RemoteError`s."""
    try:
        yield
    except GRPCError as exc:
        raise error_for(exc, endpoint) from exc
    except (ConnectionError, StreamTerminatedError, ProtocolError) as exc:
        raise UnreachableError(
            f"cannot reach the control plane at {endpoint}: {exc or type(exc).__name__}"
        ) from exc
    except OSError as exc:  # DNS failures, no route to host, refused TLS…
        raise UnreachableError(
            f"cannot reach the control plane at {endpoint}: {exc.strerror or exc}"
        ) from exc


@contextmanager
def first_error_of_group() -> Iterator[None]:
    """A task group that failed only with asyncrun errors raises the first of them, not a group,
    so the CLI can print its one line (and exit with its code). Anything else stays a group."""
    try:
        yield
    except BaseExceptionGroup as group:
        matched, rest = group.split(AsyncrunError)
        if matched is None or rest is not None:
            raise
        leaf: BaseException = matched
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None
