"""Requests the daemon accepts, validated into small frozen dataclasses (docs/daemon-protocol.md).

Only the daemon imports this module: a CLI writes requests as plain JSON objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ._protocol import (
    BAD_REQUEST,
    MAX_IDS,
    MAX_TEXT,
    UNKNOWN_OP,
    WAIT_FOR,
    ProtocolError,
    Target,
    opt_bool,
    opt_str,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._protocol import JSON


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


def _str(message: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = opt_str(message, key)
    if value is None:
        if default is None:
            raise ProtocolError(BAD_REQUEST, f"{key} is required")
        return default
    return value


def _bool(message: Mapping[str, Any], key: str, default: bool) -> bool:
    value = opt_bool(message, key)
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
            isinstance(item.get(k), str) and 0 < len(item[k]) <= MAX_TEXT and ":" not in item[k]
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
        opt_str(m, "subscriber"),
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
        opt_str(entity, "version"),
        inputs,
        opt_str(m, "name"),
        opt_str(m, "idempotency_key"),
        options,
        _bool(m, "outputs", False),
    )


def _parse_cancel(rid: Any, m: JSON) -> Cancel:
    target = m.get("request")
    # The id of a request in flight: an integer or a string, as `id` is (and hashable).
    if target is not None and not (isinstance(target, int | str) and not isinstance(target, bool)):
        raise ProtocolError(BAD_REQUEST, "request must be the id (an integer or a string) of a request")
    return Cancel(rid, target)


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
    "cancel": _parse_cancel,
    "shutdown": lambda rid, m: Shutdown(rid),
}
