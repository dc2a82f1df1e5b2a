"""The Python types a task can take and return, and their JSON form.

Pure Python on purpose: the CLI and local runs use this module, so it must not import the generated
protobuf code (`_literals.py` does the Flyte literal side).

Supported: int, float, str, bool, datetime (naive means UTC), date, timedelta, Enum subclasses with
string values, list[T], dict[str, T], unions (`T | None`, `A | B`), dataclasses of those, `File`,
`Directory`, and `JSONObject` (a JSON object of unknown shape, for remote entities).

Values follow Flyte's rules when they are parsed, so local and remote runs see the same value: an int
must fit in int64, and a datetime becomes the same instant in UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import re
import types
import typing
from typing import Any, ClassVar

from .._exceptions import InputError
from .._exceptions import UnsupportedTypeError as UnsupportedTypeError
from ._files import Directory, File, check_local_kind

__all__ = (
    "JSONObject",
    "UnsupportedTypeError",
    "check_supported",
    "dataclass_fields",
    "expected",
    "from_jsonable",
    "matches",
    "member_for",
    "mismatch",
    "parse_datetime",
    "parse_duration",
    "strip_annotated",
    "to_jsonable",
    "type_name",
    "union_members",
)

UTC = dt.UTC
NoneType = type(None)
_SCALARS: tuple[type, ...] = (int, float, str, bool, dt.datetime, dt.date, dt.timedelta)
_EXPECTED: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "a boolean",
    dt.datetime: "a date-time",
    dt.date: "a date",
    dt.timedelta: "a duration",
    NoneType: "null",
}
_SUPPORTED = (
    "int, float, str, bool, datetime, date, timedelta, an Enum with string values, list[T], "
    "dict[str, T], T | None, a union, a dataclass, File or Directory"
)


class JSONObject(dict[str, Any]):
    """The type of a JSON object whose Python class is not known here.

    `_literals.python_type` returns it (or a subclass named after the JSON schema's title) for a
    STRUCT input of a remote entity. Values of this type are plain `dict`s; the class only marks
    the type and carries the schema for help texts.
    """

    title: ClassVar[str] = ""
    json_schema: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def named(cls, title: str, json_schema: dict[str, Any] | None = None) -> type[JSONObject]:
        """A subclass that remembers the schema title (shown as `Title (JSON object)`)."""
        return type(title or cls.__name__, (cls,), {"title": title, "json_schema": json_schema})


# ---------------------------------------------------------------------------------------------
# Looking at types


def strip_annotated(tp: Any) -> Any:
    """`Annotated[T, …]` → `T`; anything else unchanged."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def union_members(tp: Any) -> tuple[Any, ...] | None:
    """The members of `typing.Union[...]` / `A | B`, or None when `tp` is not a union."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _is_sub(tp: Any, base: type | tuple[type, ...]) -> bool:
    return isinstance(tp, type) and issubclass(tp, base)


def _is_dataclass(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


@functools.cache
def dataclass_fields(tp: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """The `__init__` fields of dataclass `tp` with their resolved types."""
    hints = typing.get_type_hints(tp)
    return tuple((f, hints[f.name]) for f in dataclasses.fields(tp) if f.init)


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def check_supported(tp: Any) -> None:
    """Raise `UnsupportedTypeError` (naming the type) unless `tp` is supported, at any depth."""
    _check(tp, ())


def _check(tp: Any, outer: tuple[type, ...]) -> None:
    tp = strip_annotated(tp)
    if tp in _SCALARS or tp is NoneType:
        return
    if tp is Any:
        raise UnsupportedTypeError("typing.Any is not supported: use a concrete type, e.g. dict[str, int]")
    members = union_members(tp)
    if members is not None:
        for member in members:
            _check(member, outer)
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and len(args) == 1:
        _check(args[0], outer)
        return
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise UnsupportedTypeError(f"{_repr(tp)} is not supported: Flyte maps need str keys")
        _check(args[1], outer)
        return
    if tp in (list, dict) or origin in (list, dict):
        raise UnsupportedTypeError(f"{_repr(tp)} is not supported: name the item type, e.g. list[int]")
    if _is_sub(tp, (File, Directory, JSONObject)):
        return
    if _is_sub(tp, enum.Enum):
        if not list(tp) or not all(isinstance(m.value, str) for m in tp):
            raise UnsupportedTypeError(f"enum {tp.__qualname__} is not supported: only string values are")
        return
    if _is_dataclass(tp):
        if tp in outer:
            raise UnsupportedTypeError(f"dataclass {tp.__qualname__} contains itself (not supported)")
        try:
            fields = dataclass_fields(tp)
        except Exception as exc:  # unresolvable forward references and the like
            raise UnsupportedTypeError(f"dataclass {tp.__qualname__}: cannot resolve types: {exc}") from None
        for f, field_type in fields:
            try:
                _check(field_type, (*outer, tp))
            except UnsupportedTypeError as exc:
                raise UnsupportedTypeError(f"field {tp.__qualname__}.{f.name}: {exc}") from None
        return
    raise UnsupportedTypeError(f"type {_repr(tp)} is not supported; use {_SUPPORTED}")


def _repr(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def type_name(tp: Any) -> str:
    """A short readable name: `int`, `list[int]`, `int | None`, `Point (JSON object)`, `Color (red|green)`."""
    return _name(tp, top=True)


def _name(tp: Any, top: bool) -> str:
    tp = strip_annotated(tp)
    if tp is NoneType:
        return "None"
    if tp in _SCALARS:
        return str(tp.__name__)
    members = union_members(tp)
    if members is not None:
        return " | ".join(_name(m, False) for m in members)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return f"list[{_name(args[0], False)}]"
    if origin is dict:
        return f"dict[str, {_name(args[1], False)}]"
    if _is_sub(tp, File):
        return "File"
    if _is_sub(tp, Directory):
        return "Directory"
    if _is_sub(tp, JSONObject):
        title = tp.title or "JSON object"
        return f"{title} (JSON object)" if top and tp.title else title
    if _is_sub(tp, enum.Enum):
        return f"{tp.__name__} ({'|'.join(m.value for m in tp)})" if top else str(tp.__name__)
    if _is_dataclass(tp):
        return f"{tp.__name__} (JSON object)" if top else str(tp.__name__)
    return _repr(tp)


def expected(tp: Any) -> str:
    """What a value of `tp` looks like, for "expected …, got …" messages."""
    tp = strip_annotated(tp)
    if tp in _EXPECTED:
        return _EXPECTED[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if union_members(tp) is not None:
        return f"a value of type {_name(tp, False)}"
    if origin is list:
        return f"a list of {_name(args[0], False)}"
    if origin is dict:
        return f"a JSON object of {_name(args[1], False)} values"
    if _is_sub(tp, File):
        return "a file path or URI"
    if _is_sub(tp, Directory):
        return "a directory path or URI"
    if _is_sub(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if _is_dataclass(tp) or _is_sub(tp, JSONObject):
        return f"a JSON object ({_name(tp, False)})"
    return _repr(tp)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a JSON object"
    return f"a {type(value).__name__}"


def mismatch(value: Any, tp: Any, path: str = "") -> InputError:
    """The `InputError` for a value that does not fit `tp`; `path` says where (`points[1].x`)."""
    return InputError(f"{_at(path)}expected {expected(tp)}, got {_describe(value)}")


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


# ---------------------------------------------------------------------------------------------
# Values


def matches(value: Any, tp: Any) -> bool:
    """Whether the Python value `value` is already a value of `tp` (no conversion)."""
    tp = strip_annotated(tp)
    members = union_members(tp)
    if members is not None:
        return any(matches(value, m) for m in members)
    if tp is NoneType:
        return value is None
    if tp in (int, float):
        allowed = (int,) if tp is int else (int, float)
        return isinstance(value, allowed) and not isinstance(value, bool)
    if tp is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return isinstance(value, list) and all(matches(v, args[0]) for v in value)
    if origin is dict:
        return (
            isinstance(value, dict)
            and all(isinstance(k, str) for k in value)
            and all(matches(v, args[1]) for v in value.values())
        )
    if _is_sub(tp, JSONObject):
        return isinstance(value, dict)
    return isinstance(tp, type) and isinstance(value, tp)


def member_for(value: Any, members: tuple[Any, ...]) -> Any | None:
    """The union member a Python value belongs to, or None.

    A member of exactly the value's class wins (so `float | int` keeps 3 an int and `str | Color`
    keeps `Color.RED` an enum); otherwise the first member that accepts the value.
    """
    for member in members:
        if type(value) is strip_annotated(member):
            return member
    return next((m for m in members if matches(value, m)), None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_int64(value: int, path: str = "") -> int:
    """`value` if it fits Flyte's 64-bit integers, so a local run accepts what a remote one does.

    Raises:
        InputError: it does not fit.
    """
    if not INT64_MIN <= value <= INT64_MAX:
        raise InputError(f"{_at(path)}{value} does not fit in a 64-bit integer (Flyte's int is int64)")
    return value


def as_utc(value: dt.datetime) -> dt.datetime:
    """The same instant in UTC (naive means UTC): Flyte stores date-times as UTC instants, so a task
    sees `10:00+05:30` as `04:30+00:00` on a remote run; local runs are given the same value."""
    return _aware(value).astimezone(UTC)


def from_jsonable(value: Any, tp: Any) -> Any:
    """Turn JSON/YAML-loaded data (or an already typed value) into a value of `tp`, strictly.

    Raises:
        InputError: the data has the wrong shape, e.g. "expected a list of int, got a JSON object".
    """
    try:
        return _decode(value, tp, "")
    except RecursionError:
        raise InputError(f"expected {expected(tp)}, got data nested too deeply to read") from None


def _decode(value: Any, tp: Any, path: str) -> Any:
    tp = strip_annotated(tp)
    members = union_members(tp)
    if members is not None:
        return _decode_union(value, tp, members, path)
    if tp is NoneType:
        if value is None:
            return None
        raise mismatch(value, tp, path)
    if tp in (bool, str):
        if isinstance(value, tp):
            return value
        raise mismatch(value, tp, path)
    if tp in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
        if tp is float:
            return float(value)
        # Integral floats are accepted because protobuf Structs (and JavaScript) store every number
        # as a double: `{"x": 1}` comes back from FlyteAdmin as `{"x": 1.0}`.
        if isinstance(value, int) or value.is_integer():
            return check_int64(int(value), path)
        raise mismatch(value, tp, path)
    if tp in (dt.datetime, dt.date, dt.timedelta):
        return _decode_time(value, tp, path)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and isinstance(value, list):
        return [_decode(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return {_key(k, path): _decode(v, args[1], f"{path}[{k!r}]") for k, v in value.items()}
    if _is_sub(tp, JSONObject) and isinstance(value, dict):
        return _plain_json(value, path)
    if _is_sub(tp, (File, Directory)):
        return _decode_path(value, tp, path)
    if _is_sub(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and any(m.value == value for m in tp):
            return tp(value)
    if _is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return _decode_dataclass(value, tp, path)
    raise mismatch(value, tp, path)


def _decode_union(value: Any, tp: Any, members: tuple[Any, ...], path: str) -> Any:
    if value is None:
        if NoneType in members:
            return None
        raise mismatch(value, tp, path)
    others = [m for m in members if m is not NoneType]
    exact = member_for(value, tuple(others))
    if exact is not None and exact is not str and type(value) is strip_annotated(exact):
        return value  # already typed (3 for `float | int`, True for `int | bool`, Color.RED, ...)
    # Non-string members first: any JSON string would otherwise satisfy `str` before a date-time or
    # an enum had a chance to claim it.
    ordered = [m for m in others if m is not str] + [m for m in others if m is str]
    for member in ordered:
        try:
            return _decode(value, member, path)
        except InputError:
            continue
    raise mismatch(value, tp, path)


def _decode_time(value: Any, tp: Any, path: str) -> Any:
    try:
        if tp is dt.timedelta:
            if isinstance(value, dt.timedelta):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return dt.timedelta(seconds=value)
            if isinstance(value, str):
                return parse_duration(value)
        elif isinstance(value, str):
            parsed = parse_datetime(value)
            return as_utc(parsed) if tp is dt.datetime else parsed.date()
        elif isinstance(value, dt.datetime):  # YAML gives datetime objects for unquoted timestamps
            return as_utc(value) if tp is dt.datetime else value.date()
        elif isinstance(value, dt.date):  # ... and date objects for unquoted dates
            return value if tp is dt.date else dt.datetime.combine(value, dt.time.min, tzinfo=UTC)
    except InputError as exc:
        raise InputError(f"{_at(path)}{exc}") from None
    except OverflowError:
        raise InputError(f"{_at(path)}{value!r} is out of range for {type_name(tp)}") from None
    raise mismatch(value, tp, path)


def _key(key: Any, path: str) -> str:
    if not isinstance(key, str):
        raise InputError(f"{_at(path)}keys must be strings, got {_describe(key)}")
    return key


def _plain_json(value: Any, path: str) -> Any:
    """A copy of `value` made only of JSON types (YAML dates become ISO strings)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {_key(k, path): _plain_json(v, f"{path}[{k!r}]") for k, v in value.items()}
    raise InputError(f"{_at(path)}expected JSON data, got {_describe(value)}")


def _decode_path(value: Any, tp: type[File | Directory], path: str) -> File | Directory:
    # flytekit serializes files inside dataclasses as {"path": uri}; accept that form too.
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        value = value["path"]
    if isinstance(value, str) and value:
        value = tp(value)
    if not isinstance(value, tp):
        raise mismatch(value, tp, path)
    check_local_kind(value, _at(path).rstrip(": "))
    return value


def _decode_dataclass(value: dict[Any, Any], tp: type, path: str) -> Any:
    fields = dataclass_fields(tp)
    names = [f.name for f, _ in fields]
    for key in value:
        if key not in names:
            raise InputError(f"{_at(path)}unknown field {key!r} for {tp.__name__} ({', '.join(names)})")
    kwargs: dict[str, Any] = {}
    for f, field_type in fields:
        if f.name in value:
            kwargs[f.name] = _decode(value[f.name], field_type, _join(path, f.name))
        elif not _has_default(f):
            # Like mashumaro (flytekit's decoder), a missing Optional field without default is None.
            if NoneType not in (union_members(strip_annotated(field_type)) or ()):
                raise InputError(f"{_at(path)}missing field {f.name!r} for {tp.__name__}")
            kwargs[f.name] = None
    try:
        return tp(**kwargs)
    except Exception as exc:  # __post_init__ validation in user code
        raise InputError(f"{_at(path)}invalid {tp.__name__}: {exc}") from None


def to_jsonable(value: Any, tp: Any, *, files_as_objects: bool = False) -> Any:
    """The JSON form of a value of `tp` (for `--output json`, caches and STRUCT literals).

    Date-times and dates become ISO 8601 strings, durations seconds (float), enums their value,
    dataclasses objects, files and directories their path. `from_jsonable` reverses it.

    Args:
        value: A value of type `tp`.
        tp: Its type.
        files_as_objects: Write files and directories as `{"path": uri}`, the form flytekit uses
            inside dataclasses, with the remote source as the path when known.

    Raises:
        InputError: `value` is not a value of `tp`.
    """
    return _encode(value, tp, "", files_as_objects)


def _encode(value: Any, tp: Any, path: str, objects: bool) -> Any:
    tp = strip_annotated(tp)
    members = union_members(tp)
    if members is not None:
        member = member_for(value, members)
        if member is None:
            raise mismatch(value, tp, path)
        return _encode(value, member, path, objects)
    if not matches(value, tp):
        raise mismatch(value, tp, path)
    if tp is float:
        return float(value)
    if isinstance(value, dt.datetime):
        return _aware(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, File | Directory):
        return {"path": value.uri} if objects else value.path
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return [_encode(v, args[0], f"{path}[{i}]", objects) for i, v in enumerate(value)]
    if origin is dict:
        return {k: _encode(v, args[1], f"{path}[{k!r}]", objects) for k, v in value.items()}
    if _is_sub(tp, JSONObject):
        return _plain_json(value, path)
    if _is_dataclass(tp):
        return {
            f.name: _encode(getattr(value, f.name), field_type, _join(path, f.name), objects)
            for f, field_type in dataclass_fields(tp)
        }
    return value


# ---------------------------------------------------------------------------------------------
# Date-times and durations as text

_DATETIME_FORMS = (
    "ISO 8601 (2024-01-05, 2024-01-05T10:30:00, 2024-01-05T10:30:00.5+02:00, 2024-01-05T08:30:00Z), "
    "'now', 'today', or one of those ± a duration, e.g. 'now - 1d' or '2024-01-01T00:00:00 + 1h30m'"
)
_DURATION_FORMS = (
    "seconds (90, 1.5), units (1h30m, 2d, 10 days, 1.5 hours, 30s, 500ms), a clock (1:30 = mm:ss, "
    "1:02:03 = h:mm:ss) or ISO 8601 (P1D, PT1H30M, P1DT2H)"
)
# Spaces around the operator are required so that ISO offsets (`…T10:00:00+02:00`) and dates
# (`2024-01-05`) are never read as arithmetic.
_OFFSET_EXPR = re.compile(r"^(?P<base>.+?)\s+(?P<op>[+-])\s+(?P<delta>\S.*)$")
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_SECONDS = re.compile(_NUM)
_CLOCK = re.compile(r"(?:(?P<h>\d+):)?(?P<m>\d*):(?P<s>\d+(?:\.\d+)?)")
_ISO_DURATION = re.compile(
    rf"P(?:(?P<weeks>{_NUM})W)?(?:(?P<days>{_NUM})D)?"
    rf"(?:T(?:(?P<hours>{_NUM})H)?(?:(?P<minutes>{_NUM})M)?(?:(?P<seconds>{_NUM})S)?)?",
    re.IGNORECASE,
)
_UNIT_TERM = re.compile(rf"\s*({_NUM})\s*([a-zµ]+)\s*,?", re.IGNORECASE)
_UNITS = {
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), "milliseconds"),
    **dict.fromkeys(("us", "µs", "usec", "usecs", "microsecond", "microseconds"), "microseconds"),
}


def parse_datetime(text: str) -> dt.datetime:
    """Parse a date-time given as text; the result is always timezone-aware (naive means UTC).

    Accepts ISO 8601 with or without offset, `Z` and fractions; a bare date (midnight); `now`;
    `today` (midnight UTC); and `<one of those> + <duration>` / `- <duration>`.

    Raises:
        InputError: the text is none of these; the message lists the accepted forms.
    """
    stripped = text.strip()
    m = _OFFSET_EXPR.match(stripped)
    if m is None:
        return _datetime_base(stripped, text)
    base = _datetime_base(m["base"], text)
    try:
        delta = parse_duration(m["delta"])
        return base + delta if m["op"] == "+" else base - delta
    except InputError as exc:
        raise InputError(f"invalid date-time {text!r}: {exc}") from None
    except OverflowError:
        raise InputError(f"invalid date-time {text!r}: out of range") from None


def _datetime_base(text: str, original: str) -> dt.datetime:
    word = text.lower()
    if word == "now":
        return dt.datetime.now(UTC)
    if word == "today":
        return dt.datetime.combine(dt.datetime.now(UTC).date(), dt.time.min, tzinfo=UTC)
    try:
        return _aware(dt.datetime.fromisoformat(text))
    except ValueError:
        raise InputError(f"invalid date-time {original!r}: use {_DATETIME_FORMS}") from None


def parse_duration(text: str) -> dt.timedelta:
    """Parse a duration given as text (see the accepted forms in the error message).

    Plain seconds (`90`, `1.5`), units (`1h30m`, `2d`, `10 days`, `1.5 hours`, `500ms`), clock
    form (`1:30` is mm:ss, `1:02:03` is h:mm:ss) and ISO 8601 (`P1D`, `PT1H30M`); a leading `-`
    negates.

    Raises:
        InputError: the text is none of these; the message lists the accepted forms.
    """
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body[1:].strip() if body[:1] in ("-", "+") else body
    try:
        delta = _duration(body)
    except OverflowError:
        raise InputError(f"invalid duration {text!r}: out of range") from None
    if delta is None:
        raise InputError(f"invalid duration {text!r}: use {_DURATION_FORMS}")
    return delta * sign


def _duration(text: str) -> dt.timedelta | None:
    if not text:
        return None
    if _PLAIN_SECONDS.fullmatch(text):
        return dt.timedelta(seconds=float(text))
    if m := _CLOCK.fullmatch(text):
        hours, minutes, seconds = int(m["h"] or 0), int(m["m"] or 0), float(m["s"])
        if seconds >= 60 or (m["h"] is not None and minutes >= 60):
            return None
        return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if (m := _ISO_DURATION.fullmatch(text)) and any(m.groups()) and not text.upper().endswith("T"):
        return dt.timedelta(**{unit: float(n) for unit, n in m.groupdict().items() if n is not None})
    total, pos = dt.timedelta(), 0
    while pos < len(text):
        term = _UNIT_TERM.match(text, pos)
        if term is None or term[2].lower() not in _UNITS:
            return None
        total += dt.timedelta(**{_UNITS[term[2].lower()]: float(term[1])})
        pos = term.end()
    return total
