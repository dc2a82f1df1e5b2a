"""Click parameter types for task inputs: one per supported Python type.

Every type returns final Python values of the input's type (for a local run they go straight to
the function). Bad values fail through `ParamType.fail`, so click prints one usage line and exits
with status 2. Imports stay light: yaml is loaded only when a YAML file is given.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
from typing import Any

import asyncclick as click

from .._exceptions import InputError
from ..sdk import _type_engine as te
from ..sdk._files import Directory, File, check_local_kind, is_uri

__all__ = ("describe_yaml_error", "is_flag_type", "param_type")

_NONE_WORDS = ("none", "null")
_DATA_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def is_flag_type(tp: Any) -> bool:
    """Whether an input of type `tp` is a `--x/--no-x` flag rather than an option with a value."""
    return te.strip_annotated(tp) is bool


def param_type(tp: Any) -> click.ParamType[Any]:
    """The click parameter type that parses an input of Python type `tp`.

    `bool` gets click's BOOL (true/false/yes/no/1/0) for where a flag cannot be used, e.g. inside
    `bool | None`; a plain `bool` input should be a flag (see `is_flag_type`).

    Raises:
        UnsupportedTypeError: `tp` is not supported.
    """
    te.check_supported(tp)
    return _param_type(te.strip_annotated(tp))


def _param_type(tp: Any) -> click.ParamType[Any]:
    members = te.union_members(tp)
    if members is not None:
        others = tuple(m for m in members if m is not type(None))
        inner = _param_type(te.strip_annotated(others[0])) if len(others) == 1 else UnionParamType(tp, others)
        return OptionalParamType(inner) if len(others) < len(members) else inner
    simple: dict[Any, click.ParamType[Any]] = {
        int: Int64ParamType(),
        float: click.FLOAT,
        str: click.STRING,
        bool: click.BOOL,
        dt.datetime: DateTimeParamType(),
        dt.date: DateParamType(),
        dt.timedelta: DurationParamType(),
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return EnumParamType(tp)
    if isinstance(tp, type) and issubclass(tp, File):
        return FileParamType()
    if isinstance(tp, type) and issubclass(tp, Directory):
        return DirectoryParamType()
    return JsonParamType(tp)


class _NamedParamType(click.ParamType[Any]):
    """Shows `name` as it is as the metavar (click would upper-case it)."""

    name = "VALUE"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return self.name


class Int64ParamType(click.types.IntParamType):
    """An integer that fits Flyte's int64, the same rule for local and remote runs."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        try:
            return te.check_int64(number)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class DateTimeParamType(_NamedParamType):
    """ISO 8601 date-times (offsets, `Z`, fractions), `now`, `today`, `now - 1d`; naive means UTC.

    The value is the instant in UTC, as a remote task receives it (Flyte stores UTC instants)."""

    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return te.as_utc(value)
        try:
            return te.from_jsonable(value, dt.datetime)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class DateParamType(_NamedParamType):
    """A date, in any form `DateTimeParamType` accepts (the time of day is dropped)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return te.from_jsonable(value, dt.date)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class DurationParamType(_NamedParamType):
    """Seconds, `1h30m`, `10 days`, `1:30`, `P1DT2H`, …"""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return te.from_jsonable(value, dt.timedelta)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class EnumParamType(click.Choice[str]):
    """One of an Enum's string values (case-sensitive); returns the member."""

    def __init__(self, enum_type: type[enum.Enum]) -> None:
        super().__init__([m.value for m in enum_type], case_sensitive=True)
        self.enum_type = enum_type
        self.name = enum_type.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.enum_type):
            return value
        return self.enum_type(super().convert(value, param, ctx))


class FileParamType(_NamedParamType):
    """A local file that exists, or a URI (`s3://…`) passed on as it is."""

    name = "FILE"
    _kind: type[File] | type[Directory] = File

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self._kind):
            return value
        path = os.fspath(value) if isinstance(value, str | os.PathLike) else None
        if not path:
            self.fail(f"expected a {self.name.lower()} path or URI, got {value!r}", param, ctx)
        if is_uri(path):
            return self._kind(path)
        if not os.path.exists(path):
            self.fail(f"{self.name.lower()} {path!r} does not exist", param, ctx)
        value = self._kind(path)
        if not os.path.isdir(path) and not os.path.isfile(path):
            try:
                check_local_kind(value)  # a FIFO or socket would block whoever reads or uploads it
            except InputError as exc:
                self.fail(str(exc), param, ctx)
        if os.path.isdir(path) != (self._kind is Directory):
            actual = "directory" if os.path.isdir(path) else "file"
            self.fail(f"{path!r} is a {actual}, not a {self.name.lower()}", param, ctx)
        return value


class DirectoryParamType(FileParamType):
    """A local directory that exists, or a URI (`s3://…`) passed on as it is."""

    name = "DIRECTORY"
    _kind = Directory


class JsonParamType(_NamedParamType):
    """Lists, dicts and dataclasses: JSON text, or the path of a .json/.yaml/.yml file."""

    def __init__(self, tp: Any) -> None:
        self.tp = tp
        shown = te.type_name(tp).removesuffix(" (JSON object)")
        self.name = shown if shown.startswith("JSON") else f"JSON {shown}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = self._load(value, param, ctx)
        try:
            return te.from_jsonable(value, self.tp)
        except InputError as exc:
            self.fail(str(exc), param, ctx)

    def _load(self, text: str, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if text.lower().endswith(_DATA_FILE_SUFFIXES) and os.path.isfile(text):
            try:
                return _read_data_file(text)
            except UnicodeDecodeError as exc:
                self.fail(
                    f"cannot read {text!r}: not UTF-8 text: {exc.reason} at byte {exc.start}", param, ctx
                )
            except ValueError as exc:  # JSON syntax: the message says line and column
                self.fail(f"cannot read {text!r}: not valid JSON: {exc}", param, ctx)
            except OSError as exc:
                self.fail(f"cannot read {text!r}: {exc.strerror or exc}", param, ctx)
            except Exception as exc:  # YAML syntax, or one of PyYAML's constructors
                self.fail(f"cannot read {text!r}: not valid YAML: {describe_yaml_error(exc)}", param, ctx)
        try:
            return json.loads(text)
        except ValueError as exc:
            self.fail(f"{text!r} is neither JSON ({exc}) nor the path of a .json/.yaml/.yml file", param, ctx)
        except RecursionError:
            self.fail(f"{_shorten(text)} is nested too deeply to read", param, ctx)


class OptionalParamType(_NamedParamType):
    """`T | None`: `none` or `null` (any case) gives None, anything else is parsed as T."""

    def __init__(self, inner: click.ParamType[Any]) -> None:
        self.inner = inner
        self.name = f"{_metavar(inner)} | none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
            return None
        return self.inner.convert(value, param, ctx)


class UnionParamType(_NamedParamType):
    """`A | B | …`: each member's parser in turn, non-string members first."""

    def __init__(self, tp: Any, members: tuple[Any, ...]) -> None:
        self.tp = tp
        ordered = [m for m in members if m is not str] + [m for m in members if m is str]
        self.members = [_param_type(te.strip_annotated(m)) for m in ordered]
        self.name = " | ".join(_metavar(m) for m in self.members)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # a Python default
            try:
                return te.from_jsonable(value, self.tp)
            except InputError as exc:
                self.fail(str(exc), param, ctx)
        for member in self.members:
            try:
                return member.convert(value, param, ctx)
            except click.BadParameter:
                continue
        self.fail(f"{value!r} is not a valid {te.type_name(self.tp)}", param, ctx)


def describe_yaml_error(exc: Exception) -> str:
    """One line for a YAML (or JSON, read as YAML) syntax error: where it is, and what is wrong there.

    PyYAML's own text spreads over several lines (context, problem, an excerpt of the input with a
    caret) and its first line alone, e.g. "while parsing a flow node", does not say where or what.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
    text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        where = ""
        if context_mark is not None and (context_mark.line, context_mark.column) != (mark.line, mark.column):
            where = f" at line {context_mark.line + 1}, column {context_mark.column + 1}"
        text += f" ({context}{where})"
    return text


def _read_data_file(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        if path.lower().endswith(".json"):
            return json.load(f)
        import yaml  # only when a YAML file is given, to keep CLI start-up light

        return yaml.safe_load(f)


def _shorten(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _metavar(pt: click.ParamType[Any]) -> str:
    if isinstance(pt, click.Choice):
        return "|".join(str(c) for c in pt.choices)
    return pt.name if isinstance(pt, _NamedParamType) else pt.name.upper()
