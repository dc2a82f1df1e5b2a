"""The daemon's wire protocol: newline-delimited JSON over a Unix socket (docs/daemon-protocol.md).

One JSON object per line each way. A client opens with `{"op": "hello", "version": 1}`; every request
carries an optional `id` that its reply and its events repeat, so requests can overlap on one
connection. Replies have `"ok"`, events have `"event"`. This module holds what both sides share:
framing, limits, error codes and targets (the daemon validates requests in `_requests`). Stdlib
only: the CLI imports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import AsyncrunError
from .._exceptions import DaemonError as DaemonError
from .._exceptions import DaemonRequestError as DaemonRequestError
from .._exceptions import DaemonUnavailableError as DaemonUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from anyio.abc import ByteReceiveStream

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_REQUEST_LINE = 8 << 20  # what the daemon accepts from a client, in bytes (100,000 long ids fit)
MAX_REPLY_LINE = 256 << 20  # what a client accepts from the daemon (a status of every tracked run)
MAX_IDS = 100_000  # executions named in one request
MAX_TEXT = 4096  # any single string field

JSON = dict[str, Any]

TERMINAL_PHASES = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
NOT_STARTED_PHASES = frozenset({"UNDEFINED", "QUEUED"})
WAIT_FOR = ("terminal", "running")

# Error codes of replies with "ok": false.
BAD_JSON = "bad_json"
TOO_LARGE = "too_large"
BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
HANDSHAKE_REQUIRED = "handshake_required"
UNSUPPORTED_VERSION = "unsupported_version"
FORBIDDEN = "forbidden"
OVERLOADED = "overloaded"
CANCELLED = "cancelled"
SHUTTING_DOWN = "shutting_down"
INTERNAL = "internal"

# Environment variables a CLI forwards so the daemon resolves the same Flyte config it would.
FORWARDED_ENV = (
    "FLYTECTL_CONFIG",
    "FLYTE_PLATFORM_URL",
    "FLYTE_PLATFORM_INSECURE",
    "FLYTE_DEFAULT_PROJECT",
    "FLYTE_DEFAULT_DOMAIN",
    "FLYTE_LOCAL_PROJECT",
    "FLYTE_LOCAL_DOMAIN",
    "HOME",
    "ASYNCRUN_SANDBOX_PORT",
    "ASYNCRUN_SANDBOX_HTTP_PORT",
    "ASYNCRUN_CONNECT_TIMEOUT",
)


class ProtocolError(Exception):
    """A message that breaks the protocol; answered with an error reply, never fatal."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


# ---------------------------------------------------------------- framing


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as one line (compact JSON, UTF-8, newline-terminated).

    A `Lazy` value is written a slice at a time: a reply naming 100,000 runs never holds 100,000
    state dicts at once (about 1 KB each), only its own text.
    """
    if not any(isinstance(value, Lazy) for value in message.values()):
        return _dumps(message).encode() + b"\n"
    parts = [b"{"]
    for index, (key, value) in enumerate(message.items()):
        parts.append(f"{',' if index else ''}{_dumps(key)}:".encode())
        if not isinstance(value, Lazy):
            parts.append(_dumps(value).encode())
            continue
        parts.append(b"[")
        for first in range(0, len(value.items), Lazy.SLICE):
            part = _dumps([value.convert(item) for item in value.items[first : first + Lazy.SLICE]])
            parts.append(("," if first else "").encode() + part[1:-1].encode())
        parts.append(b"]")
    parts.append(b"}\n")
    return b"".join(parts)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Lazy:
    """A JSON list whose items are made by `convert` only as `encode` writes them."""

    SLICE = 1000

    def __init__(self, items: Sequence[Any], convert: Callable[[Any], Any]) -> None:
        self.items = items
        self.convert = convert


def decode(line: bytes) -> JSON:
    """One line as a JSON object; anything else raises `ProtocolError`."""
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(BAD_JSON, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(BAD_JSON, "not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_JSON, f"a message must be a JSON object, not {type(value).__name__}")
    return value


def raise_for_error(message: JSON) -> JSON:
    """Return a reply; an error reply (`"ok": false`) raises `DaemonRequestError` instead."""
    if message.get("ok") is False:
        error = message.get("error") or {}
        raise DaemonRequestError(
            str(error.get("code", "error")),
            str(error.get("message", "the daemon refused the request")),
            exit_code=int(error.get("exit_code", 1)),
            details=error,
        )
    return message


def reply(request_id: Any, **fields: Any) -> JSON:
    return {"ok": True, "id": request_id, **fields}


def error_reply(request_id: Any, code: str, message: str, **details: Any) -> JSON:
    return {"ok": False, "id": request_id, "error": {"code": code, "message": message, **details}}


def event(request_id: Any, kind: str, **fields: Any) -> JSON:
    return {"event": kind, "id": request_id, **fields}


def error_code_of(exc: AsyncrunError) -> str:
    """`UnreachableError` → "unreachable", `EntityNotFoundError` → "entity_not_found"."""
    import re

    name = type(exc).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class LineTooLongError(Exception):
    """A line passed the limit; the rest of it is skipped."""


class LineReader:
    """Newline-delimited messages from a byte stream, with a hard cap on line length.

    A line over the cap raises `LineTooLongError` once; its remainder is then discarded up to the
    next newline, so the connection stays usable and memory stays bounded.
    """

    def __init__(self, stream: ByteReceiveStream, max_line: int) -> None:
        self._stream = stream
        self._max = max_line
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no newline
        self._discarding = False

    async def receive_line(self) -> bytes | None:
        """The next line without its newline; None at end of stream."""
        import anyio

        while True:
            index = self._buffer.find(b"\n", self._scanned)
            if index >= 0:
                line = bytes(self._buffer[:index])
                del self._buffer[: index + 1]
                self._scanned = 0
                if self._discarding:
                    self._discarding = False
                    continue
                if len(line) > self._max:
                    raise LineTooLongError
                return line
            self._scanned = len(self._buffer)
            if self._discarding:
                self._buffer.clear()
                self._scanned = 0
            elif len(self._buffer) > self._max:
                self._buffer.clear()
                self._scanned = 0
                self._discarding = True
                raise LineTooLongError
            try:
                chunk = await self._stream.receive(1 << 16)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
            self._buffer += chunk


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """Which control plane a request is about: what the CLI would have resolved itself.

    The daemon resolves it exactly like `Client.from_config(config, endpoint=..., ...)`, reading
    the forwarded environment (`FLYTECTL_CONFIG`, `FLYTE_PLATFORM_URL`, `HOME`, …) instead of its own.
    """

    config: str | None = None
    endpoint: str | None = None
    insecure: bool | None = None
    project: str | None = None
    domain: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # The variable `admin.clientSecretEnvVar` names, when the CLI has it: the daemon renews
    # ClientSecret tokens with it. Kept in the daemon's memory only (never journaled or logged).
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environment(
        cls,
        config: str | os.PathLike[str] | None = None,
        *,
        endpoint: str | None = None,
        insecure: bool | None = None,
        project: str | None = None,
        domain: str | None = None,
        secret_env_var: str | None = None,
    ) -> Target:
        """This process's view: its config path (made absolute), its Flyte variables and, when
        `secret_env_var` is given and set, that variable."""
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        if "FLYTECTL_CONFIG" in env:
            env["FLYTECTL_CONFIG"] = os.path.abspath(os.path.expanduser(env["FLYTECTL_CONFIG"]))
        path = os.path.abspath(os.path.expanduser(os.fspath(config))) if config else None
        secret = os.environ.get(secret_env_var) if secret_env_var else None
        secret_env = {secret_env_var: secret} if secret_env_var and secret else {}
        return cls(path, endpoint, insecure, project, domain, env, secret_env)

    def to_json(self) -> JSON:
        out: JSON = {k: v for k, v in vars(self).items() if v is not None and k not in ("env", "secret_env")}
        if self.env:
            out["env"] = dict(self.env)
        if self.secret_env:
            out["secret_env"] = dict(self.secret_env)
        return out

    @classmethod
    def from_json(cls, value: Any) -> Target:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ProtocolError(BAD_REQUEST, "target must be an object")
        env = value.get("env", {})
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_TEXT for k, v in env.items()
        ):
            raise ProtocolError(BAD_REQUEST, "target.env must map names to strings")
        secret_env = value.get("secret_env", {})
        if (
            not isinstance(secret_env, dict)
            or len(secret_env) > 1
            or not all(
                isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_TEXT
                for k, v in secret_env.items()
            )
        ):
            raise ProtocolError(BAD_REQUEST, "target.secret_env must map one name to a string")
        return cls(
            config=opt_str(value, "config"),
            endpoint=opt_str(value, "endpoint"),
            insecure=opt_bool(value, "insecure"),
            project=opt_str(value, "project"),
            domain=opt_str(value, "domain"),
            env={k: v for k, v in env.items() if k in FORWARDED_ENV},
            secret_env=dict(secret_env),
        )

    def cache_key(self) -> str:
        # Without the secret: it does not change how the target resolves, and keys may be logged.
        out = self.to_json()
        out.pop("secret_env", None)
        return json.dumps(out, sort_keys=True)


def opt_str(message: Mapping[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ProtocolError(BAD_REQUEST, f"{key} must be a string of at most {MAX_TEXT} characters")
    return value


def opt_bool(message: Mapping[str, Any], key: str) -> bool | None:
    value = message.get(key)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError(BAD_REQUEST, f"{key} must be true or false")
    return value


def is_settled(state: Mapping[str, Any], wait_for: str = "terminal", outputs: bool = False) -> bool:
    """Whether a wait for `state` is over: terminal (with outputs if asked), not found, or running."""
    if not state.get("found", True):
        return True
    phase = state.get("phase")
    if phase in TERMINAL_PHASES:
        return not outputs or phase != "SUCCEEDED" or state.get("outputs_state") in ("done", "failed")
    return wait_for == "running" and phase is not None and phase not in NOT_STARTED_PHASES
