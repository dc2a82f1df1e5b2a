"""Every error asyncrun raises on purpose derives from `AsyncrunError`.

```
AsyncrunError
├── UsageError                 bad input from the user: a flag, a value, an inputs file   (exit 2)
│   ├── EntityNotFoundError    no task, workflow or launch plan of that name
│   └── InputError             an input value that does not fit its type
├── DefinitionError            a mistake in user code found while defining entities      (exit 2)
│   └── UnsupportedTypeError   a type annotation asyncrun cannot carry between tasks
├── ConfigError                an unreadable or inconsistent configuration              (exit 2)
├── ExecutionError             a run that ended without success                          (exit 1)
│   ├── TaskFailedError        user code raised (locally or in a task process)
│   ├── ExecutionAbortedError  the run was terminated                                    (exit 3)
│   └── ExecutionTimedOutError the run passed its timeout                                (exit 4)
├── WaitTimeoutError           we stopped waiting; the run goes on                        (exit 5)
├── SandboxStartError          the background sandbox did not come up                    (exit 1)
├── DaemonPathError            a daemon folder is not private to this user               (exit 2)
├── DaemonAlreadyRunningError  another daemon holds this socket's or journal's lock      (exit 1)
├── DaemonError                talking to the asyncrun daemon went wrong                  (exit 1)
│   ├── DaemonUnavailableError the daemon could not be reached or started                (exit 6)
│   │   └── DaemonDisconnectedError  the connection broke while a request was in flight
│   └── DaemonRequestError     the daemon answered with an error (its `code`, `exit_code`)
├── StorageError               a blob URI (s3://, gs://, path) cannot be read or written (exit 1)
│   ├── BlobNotFoundError      nothing is stored at that URI
│   └── StorageExtraError      no driver for the URI's scheme: install asyncrun[s3]/[gcs]   (exit 2)
└── RemoteError                the control plane answered with an error status          (exit 1)
    ├── NotFoundError
    ├── AlreadyExistsError
    ├── InvalidArgumentError
    ├── FailedPreconditionError
    ├── AuthenticationError    credentials missing or refused (UNAUTHENTICATED)          (exit 7)
    │   ├── InvalidCredentialsError   the issuer refused the client id/secret or the sign-in (exit 8)
    │   ├── TokenExpiredError         the token expired and could not be renewed           (exit 9)
    │   ├── MissingScopeError         the token lacks a scope the control plane requires   (exit 10)
    │   └── IssuerUnreachableError    the OAuth2 issuer (token endpoint) does not answer   (exit 11)
    ├── PermissionDeniedError
    ├── ResourceExhaustedError
    ├── DeadlineExceededError
    ├── ServerError            INTERNAL, UNIMPLEMENTED, DATA_LOSS and other server faults
    ├── UploadError            the blob store refused or failed an upload
    └── UnreachableError       UNAVAILABLE or no connection at all                        (exit 6)
        ├── SilentEndpointError it accepted the connection but said nothing within connect_timeout
        └── WrongEndpointError something answers there, but not a gRPC control plane set up as
                               configured (plain text vs TLS, an HTTP/1 service); not retried
```

`exit_code` on each class is the process exit status the CLI uses for it.

Every exception class asyncrun defines is here (tests/test_exceptions.py walks the package); the only
others are internal signals that never leave their module (listed in that test, with the reason).

Raised by *user* code, not by asyncrun, and so outside the tree (public as `asyncrun.RecoverableError`):
`RecoverableError`. A task that raises it (or flytekit's `FlyteRecoverableException`) is retried up to
its `retries`, locally and remotely; any other exception fails the task at once, as in Flyte.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "AlreadyExistsError",
    "AsyncrunError",
    "AuthenticationError",
    "BlobNotFoundError",
    "ConfigError",
    "DaemonAlreadyRunningError",
    "DaemonDisconnectedError",
    "DaemonError",
    "DaemonPathError",
    "DaemonRequestError",
    "DaemonUnavailableError",
    "DeadlineExceededError",
    "DefinitionError",
    "EntityNotFoundError",
    "ExecutionAbortedError",
    "ExecutionError",
    "ExecutionTimedOutError",
    "FailedPreconditionError",
    "InputError",
    "InvalidArgumentError",
    "InvalidCredentialsError",
    "IssuerUnreachableError",
    "MissingScopeError",
    "NotFoundError",
    "PermissionDeniedError",
    "RemoteError",
    "ResourceExhaustedError",
    "SandboxStartError",
    "ServerError",
    "StorageError",
    "StorageExtraError",
    "TaskFailedError",
    "TokenExpiredError",
    "UnreachableError",
    "UnsupportedTypeError",
    "UploadError",
    "UsageError",
    "WaitTimeoutError",
    "SilentEndpointError",
    "WrongEndpointError",
)


class AsyncrunError(Exception):
    """Base of every error asyncrun raises on purpose.

    `reported` is set when the command has already shown what went wrong (a wait's summary): the
    CLI then only exits with `exit_code`.
    """

    exit_code = 1
    reported = False


class UsageError(AsyncrunError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class EntityNotFoundError(UsageError):
    """No task, workflow or launch plan of that name."""


class InputError(UsageError):
    """An input value does not fit the type it is declared with."""


class DefinitionError(AsyncrunError):
    """A mistake in user code, found while a task, workflow or launch plan is defined."""

    exit_code = 2


class UnsupportedTypeError(DefinitionError):
    """A type annotation asyncrun cannot carry between tasks."""


class ConfigError(AsyncrunError):
    """The configuration cannot be read or does not make sense."""

    exit_code = 2


class ExecutionError(AsyncrunError):
    """A run ended without success."""


class TaskFailedError(ExecutionError):
    """User code raised while a task ran.

    `task` names the task, `cause_type` is the exception's type name and `message` its text.
    """

    def __init__(self, task: str, cause_type: str, message: str, *, traceback: str = "") -> None:
        # An exception with no text (MemoryError()) is named by its type alone.
        reason = f"{cause_type}: {message}" if message.strip() else cause_type
        super().__init__(f"task {task} failed: {reason}")
        self.task = task
        self.cause_type = cause_type
        self.message = message
        self.traceback = traceback


class ExecutionAbortedError(ExecutionError):
    """The run was terminated before it finished."""

    exit_code = 3


class ExecutionTimedOutError(ExecutionError):
    """The run, or one of its tasks, passed its timeout."""

    exit_code = 4


class WaitTimeoutError(AsyncrunError):
    """We stopped waiting for a run; the run itself goes on."""

    exit_code = 5


class SandboxStartError(AsyncrunError):
    """The background sandbox did not come up."""


class DaemonPathError(AsyncrunError):
    """A daemon folder exists but is not private to this user (or cannot be made)."""

    exit_code = 2


class DaemonAlreadyRunningError(AsyncrunError):
    """Another daemon holds the lock of this socket or journal."""


class DaemonError(AsyncrunError):
    """Something went wrong talking to the asyncrun daemon."""


class DaemonUnavailableError(DaemonError):
    """The daemon could not be reached or started."""

    exit_code = 6


class DaemonDisconnectedError(DaemonUnavailableError):
    """The connection to the daemon broke while a request was in flight."""


class DaemonRequestError(DaemonError):
    """The daemon answered a request with an error; `code` is the protocol's error code."""

    def __init__(
        self, code: str, message: str, *, exit_code: int = 1, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.details = details or {}


class StorageError(AsyncrunError):
    """A blob URI (`s3://…`, `gs://…`, a path) could not be read or written."""


class BlobNotFoundError(StorageError):
    """Nothing is stored at the URI."""


class StorageExtraError(StorageError):
    """The URI's scheme needs a driver that is not installed (`asyncrun[s3]`, `asyncrun[gcs]`)."""

    exit_code = 2


class RemoteError(AsyncrunError):
    """The control plane answered a call with an error status."""


class NotFoundError(RemoteError):
    """The entity or execution does not exist on the control plane."""


class AlreadyExistsError(RemoteError):
    """The entity or execution exists already."""


class InvalidArgumentError(RemoteError):
    """The control plane rejected the request as invalid."""


class FailedPreconditionError(RemoteError):
    """The request conflicts with the current state (e.g. terminating a finished run)."""


class AuthenticationError(RemoteError):
    """The control plane needs credentials that were missing, wrong or expired."""

    exit_code = 7


class InvalidCredentialsError(AuthenticationError):
    """The OAuth2 issuer refused the client id and secret, the grant, or the user's sign-in."""

    exit_code = 8


class TokenExpiredError(AuthenticationError):
    """The access token expired and could not be renewed without the user."""

    exit_code = 9


class MissingScopeError(AuthenticationError):
    """The token is valid but lacks a scope the control plane requires (flyteadmin: `all`)."""

    exit_code = 10


class IssuerUnreachableError(AuthenticationError):
    """The OAuth2 issuer (its token or device endpoint) cannot be reached."""

    exit_code = 11


class PermissionDeniedError(RemoteError):
    """The credentials are valid but not allowed to do this."""


class ResourceExhaustedError(RemoteError):
    """The control plane is rate-limiting us."""


class DeadlineExceededError(RemoteError):
    """The call did not finish within its deadline."""


class ServerError(RemoteError):
    """The control plane failed to handle the request."""


class UploadError(RemoteError):
    """The blob store refused or failed an upload (code package or file input)."""


class UnreachableError(RemoteError):
    """The control plane cannot be reached."""

    exit_code = 6


class RecoverableError(Exception):
    """Raise it in a task to ask for a retry: the task runs again, up to its `retries`.

    Flyte's rule, the same locally and remotely: only this exception (and flytekit's
    `FlyteRecoverableException`) is retried; any other exception fails the task on its first attempt.
    A remote attempt that raises it ends with an error of kind RECOVERABLE.

    Example:
        ```python
        @task(retries=3)
        def fetch(url: str) -> str:
            try:
                return download(url)
            except ConnectionError as exc:
                raise RecoverableError(f"{url} did not answer") from exc
        ```
    """


def is_recoverable(exc: BaseException) -> bool:
    """Whether a task that raised `exc` may be retried: a `RecoverableError`, or flytekit's
    `FlyteRecoverableException` (recognised by name, so flytekit is never imported for it)."""
    if isinstance(exc, RecoverableError):
        return True
    return any(
        cls.__name__ == "FlyteRecoverableException" and cls.__module__.startswith("flytekit")
        for cls in type(exc).__mro__
    )


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, or just `Type` when the message is empty (`MemoryError()`, `KeyError` of '')."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# FlytePropeller's code for an attempt that outlived its timeout; after the last retry it may be
# wrapped as "RetriesExhausted|TimeoutExpired".
TIMEOUT_ERROR_CODE = "TimeoutExpired"


def run_error_class(phase: str, error_code: str | None = None) -> type[ExecutionError] | None:
    """The error (and so the exit code) for a remote run that ended in `phase`; None for SUCCEEDED
    or a phase that is not final.

    A run FAILED because a task passed its timeout counts as timed out (exit 4), as a local run does:
    Flyte reports a task timeout as a FAILED execution with the error code `TimeoutExpired`.
    """
    if phase == "ABORTED":
        return ExecutionAbortedError
    if phase == "TIMED_OUT":
        return ExecutionTimedOutError
    if phase == "FAILED":
        if error_code and error_code.rsplit("|", 1)[-1] == TIMEOUT_ERROR_CODE:
            return ExecutionTimedOutError
        return ExecutionError
    return None


class SilentEndpointError(UnreachableError):
    """The control plane accepted the connection but did not answer within `connect_timeout`: it
    exists, and may only be slow (a busy machine), so callers that decide "wrong endpoint" must not
    take this as proof."""


class WrongEndpointError(UnreachableError):
    """Something answers at the endpoint, but not a gRPC control plane as configured (TLS to a
    plain-text server, plain text to a TLS one, an HTTP/1 service): retrying cannot help."""


def error_for_exit_code(exit_code: int, message: str, *, reported: bool = False) -> AsyncrunError:
    """The error of the tree that stands for `exit_code` (what a daemon reply or a wait summary
    carries), so commands end through the one error path instead of calling `sys.exit`."""
    # The codes come from the classes themselves, so this cannot disagree with the tree.
    by_code: dict[int, type[AsyncrunError]] = {
        cls.exit_code: cls
        for cls in (
            ExecutionError,
            UsageError,
            ExecutionAbortedError,
            ExecutionTimedOutError,
            WaitTimeoutError,
            UnreachableError,
            AuthenticationError,
            InvalidCredentialsError,
            TokenExpiredError,
            MissingScopeError,
            IssuerUnreachableError,
        )
    }
    cls = by_code.get(exit_code, AsyncrunError)
    error = cls(message)
    if cls is AsyncrunError:
        error.exit_code = exit_code
    error.reported = reported
    return error


@contextmanager
def one_error() -> Iterator[None]:
    """Re-raise a task group's `ExceptionGroup` as its first error when every error in it is an
    `AsyncrunError`, so callers (and the CLI's exit codes) see `UnreachableError`, not a group.
    Anything else (a bug, a cancellation) propagates as the group it is."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if leaves and all(isinstance(leaf, AsyncrunError) for leaf in leaves):
            raise leaves[0] from group
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
