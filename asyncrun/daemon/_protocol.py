"""The daemon's wire protocol: newline-delimited JSON over a Unix socket (docs/daemon-protocol.md).

One JSON object per line each way. A client opens with `{"op": "hello", "version": 1}`; every request
carries an optional `id` that its reply and its events repeat, so requests can overlap on one
connection. Replies have `"ok"`, events have `"event"`. This module validates requests into small
frozen dataclasses and never trusts a field it did not check. Stdlib only: the CLI imports it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .._exceptions import AsyncrunError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anyio.abc import ByteReceiveStream

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_REQUEST_LINE = 1 << 20  # what the daemon accepts from a client, in bytes
MAX_REPLY_LINE = 64 << 20  # what a client accepts from the daemon (a status of every tracked run)
MAX_IDS = 20_000  # executions named in one request
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
    "HOME",
)


class ProtocolError(Exception):
    """A message that breaks the protocol; answered with an error reply, never fatal."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


class DaemonError(AsyncrunError):
    """Something went wrong talking to the asyncrun daemon."""


class DaemonUnavailableError(DaemonError):
    """The daemon could not be reached or started."""

    exit_code = 6


class DaemonRequestError(DaemonError):
    """The daemon answered a request with an error; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str, *, exit_code: int = 1, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.details = details or {}


# ---------------------------------------------------------------- framing


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as one line (compact JSON, UTF-8, newline-terminated)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> JSON:
    """One line as a JSON object; anything else raises `ProtocolError`."""
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_JSON, f"a message must be a JSON object, not {type(value).__name__}")
    return value


def reply(request_id: Any, **fields: Any) -> JSON:
    return {"ok": True, "id": request_id, **fields}


def error_reply(request_id: Any, code: str, message: str, **details: Any) -> JSON:
    return {"ok": False, "id": request_id, "error": {"code": code, "message": message, **details}}


def event(request_id: Any, kind: str, **fields: Any) -> JSON:
    return {"event": kind, "id": request_id, **fields}


def error_code_of(exc: AsyncrunError) -> str:
    """`UnreachableError` → "unreachable", `EntityNotFoundError` → "entity_not_found"."""
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


# ---------------------------------------------------------------- requests


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

    @classmethod
    def from_environment(
        cls,
        config: str | os.PathLike[str] | None = None,
        *,
        endpoint: str | None = None,
        insecure: bool | None = None,
        project: str | None = None,
        domain: str | None = None,
    ) -> Target:
        """This process's view: its config path (made absolute) and its Flyte variables."""
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        if "FLYTECTL_CONFIG" in env:
            env["FLYTECTL_CONFIG"] = os.path.abspath(os.path.expanduser(env["FLYTECTL_CONFIG"]))
        path = os.path.abspath(os.path.expanduser(os.fspath(config))) if config else None
        return cls(path, endpoint, insecure, project, domain, env)

    def to_json(self) -> JSON:
        out: JSON = {k: v for k, v in vars(self).items() if v is not None and k != "env"}
        if self.env:
            out["env"] = dict(self.env)
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
        return cls(
            config=_opt_str(value, "config"),
            endpoint=_opt_str(value, "endpoint"),
            insecure=_opt_bool(value, "insecure"),
            project=_opt_str(value, "project"),
            domain=_opt_str(value, "domain"),
            env={k: v for k, v in env.items() if k in FORWARDED_ENV},
        )

    def cache_key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


@dataclass(frozen=True)
class Request:
    """A validated request; `request_id` is echoed in the reply and in events."""

    op: ClassVar[str] = ""
    request_id: Any


@dataclass(frozen=True)
class Hello(Request):
    op: ClassVar[str] = "hello"
    version: int
    client: str = ""


@dataclass(frozen=True)
class Track(Request):
    op: ClassVar[str] = "track"
    ids: tuple[str, ...]
    target: Target
    outputs: bool = False


@dataclass(frozen=True)
class Untrack(Request):
    op: ClassVar[str] = "untrack"
    ids: tuple[str, ...]
    target: Target


@dataclass(frozen=True)
class Wait(Request):
    op: ClassVar[str] = "wait"
    ids: tuple[str, ...]
    target: Target
    wait_for: str = "terminal"
    timeout: float | None = None
    outputs: bool = False
    events: bool = True
    subscriber: str | None = None


@dataclass(frozen=True)
class Status(Request):
    op: ClassVar[str] = "status"
    ids: tuple[str, ...]
    target: Target
    executions: bool = True
    outputs: bool = False


@dataclass(frozen=True)
class Watch(Request):
    op: ClassVar[str] = "watch"
    ids: tuple[str, ...]
    target: Target


@dataclass(frozen=True)
class Launch(Request):
    op: ClassVar[str] = "launch"
    target: Target
    kind: str
    entity: str
    version: str | None = None
    inputs: JSON = field(default_factory=dict)
    name: str | None = None
    idempotency_key: str | None = None
    options: JSON = field(default_factory=dict)
    outputs: bool = False


@dataclass(frozen=True)
class Terminate(Request):
    op: ClassVar[str] = "terminate"
    ids: tuple[str, ...]
    target: Target
    cause: str = "terminated by asyncrun"


@dataclass(frozen=True)
class Cancel(Request):
    op: ClassVar[str] = "cancel"
    request: Any


@dataclass(frozen=True)
class Shutdown(Request):
    op: ClassVar[str] = "shutdown"


ENTITY_KINDS = ("launch_plan", "workflow", "task")


def parse_request(message: JSON) -> Request:
    """Validate one decoded message into its request type, or raise `ProtocolError`."""
    rid = message.get("id")
    if rid is not None and not (isinstance(rid, int | str) and not isinstance(rid, bool)):
        raise ProtocolError(BAD_REQUEST, "id must be an integer or a string")
    if isinstance(rid, str) and len(rid) > 200:
        raise ProtocolError(BAD_REQUEST, "id is too long")
    op = message.get("op")
    if not isinstance(op, str):
        raise ProtocolError(BAD_REQUEST, "every request needs an 'op' string", rid)
    try:
        request: Request = _PARSERS[op](rid, message)
        return request
    except KeyError:
        known = ", ".join(sorted(_PARSERS))
        raise ProtocolError(UNKNOWN_OP, f"unknown op {op[:50]!r} (known: {known})", rid) from None
    except ProtocolError as exc:
        exc.request_id = rid
        raise


def _opt_str(message: Mapping[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ProtocolError(BAD_REQUEST, f"{key} must be a string of at most {MAX_TEXT} characters")
    return value


def _str(message: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = _opt_str(message, key)
    if value is None:
        if default is None:
            raise ProtocolError(BAD_REQUEST, f"{key} is required")
        return default
    return value


def _opt_bool(message: Mapping[str, Any], key: str) -> bool | None:
    value = message.get(key)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError(BAD_REQUEST, f"{key} must be true or false")
    return value


def _bool(message: Mapping[str, Any], key: str, default: bool) -> bool:
    value = _opt_bool(message, key)
    return default if value is None else value


def _ids(message: Mapping[str, Any], *, required: bool) -> tuple[str, ...]:
    value = message.get("ids")
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        raise ProtocolError(BAD_REQUEST, "ids must be a non-empty list" if required else "ids must be a list")
    if len(value) > MAX_IDS:
        raise ProtocolError(BAD_REQUEST, f"at most {MAX_IDS} ids per request; split the request")
    out: list[str] = []
    for item in value:
        if isinstance(item, str) and 0 < len(item) <= MAX_TEXT:
            out.append(item)
        elif isinstance(item, dict) and all(
            isinstance(item.get(k), str) and item[k] and ":" not in item[k]
            for k in ("project", "domain", "name")
        ):
            out.append(f"{item['project']}:{item['domain']}:{item['name']}")
        else:
            raise ProtocolError(
                BAD_REQUEST,
                "each id is a string (NAME, PROJECT:DOMAIN:NAME or a URL) or {project, domain, name}",
            )
    return tuple(out)


def _target(message: Mapping[str, Any]) -> Target:
    return Target.from_json(message.get("target"))


def _parse_hello(rid: Any, m: JSON) -> Hello:
    version = m.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError(BAD_REQUEST, "hello needs an integer version")
    return Hello(rid, version, _str(m, "client", ""))


def _parse_wait(rid: Any, m: JSON) -> Wait:
    wait_for = _str(m, "wait_for", "terminal")
    if wait_for not in WAIT_FOR:
        raise ProtocolError(BAD_REQUEST, f"wait_for must be one of {', '.join(WAIT_FOR)}")
    timeout = m.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 <= timeout < 1e9
    ):
        raise ProtocolError(BAD_REQUEST, "timeout must be a non-negative number of seconds or null")
    return Wait(
        rid,
        _ids(m, required=True),
        _target(m),
        wait_for,
        None if timeout is None else float(timeout),
        _bool(m, "outputs", False),
        _bool(m, "events", True),
        _opt_str(m, "subscriber"),
    )


def _parse_launch(rid: Any, m: JSON) -> Launch:
    entity = m.get("entity")
    if not isinstance(entity, dict):
        raise ProtocolError(BAD_REQUEST, "launch needs entity: {kind, name, version?}")
    kind = _str(entity, "kind", "launch_plan")
    if kind not in ENTITY_KINDS:
        raise ProtocolError(BAD_REQUEST, f"entity.kind must be one of {', '.join(ENTITY_KINDS)}")
    inputs = m.get("inputs", {})
    options = m.get("options", {})
    if not isinstance(inputs, dict) or not isinstance(options, dict):
        raise ProtocolError(BAD_REQUEST, "inputs and options must be objects")
    return Launch(
        rid,
        _target(m),
        kind,
        _str(entity, "name"),
        _opt_str(entity, "version"),
        inputs,
        _opt_str(m, "name"),
        _opt_str(m, "idempotency_key"),
        options,
        _bool(m, "outputs", False),
    )


_PARSERS: dict[str, Any] = {
    "hello": _parse_hello,
    "track": lambda rid, m: Track(rid, _ids(m, required=True), _target(m), _bool(m, "outputs", False)),
    "untrack": lambda rid, m: Untrack(rid, _ids(m, required=True), _target(m)),
    "wait": _parse_wait,
    "status": lambda rid, m: Status(
        rid, _ids(m, required=False), _target(m), _bool(m, "executions", True), _bool(m, "outputs", False)
    ),
    "watch": lambda rid, m: Watch(rid, _ids(m, required=False), _target(m)),
    "launch": _parse_launch,
    "terminate": lambda rid, m: Terminate(
        rid, _ids(m, required=True), _target(m), _str(m, "cause", "terminated by asyncrun")
    ),
    "cancel": lambda rid, m: Cancel(rid, m.get("request")),
    "shutdown": lambda rid, m: Shutdown(rid),
}


def is_settled(state: Mapping[str, Any], wait_for: str = "terminal", outputs: bool = False) -> bool:
    """Whether a wait for `state` is over: terminal (with outputs if asked), not found, or running."""
    if not state.get("found", True):
        return True
    phase = state.get("phase")
    if phase in TERMINAL_PHASES:
        return not outputs or phase != "SUCCEEDED" or state.get("outputs_state") in ("done", "failed")
    return wait_for == "running" and phase is not None and phase not in NOT_STARTED_PHASES
