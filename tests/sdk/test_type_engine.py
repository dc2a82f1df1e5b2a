"""The pure-Python type engine: supported types, names, JSON conversion, date-time and duration text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import random
import re
import subprocess
import sys
import types
import typing
from typing import Any, Optional, Union

import pytest

from asyncrun._exceptions import DefinitionError, InputError
from asyncrun.sdk._files import Directory, File
from asyncrun.sdk._type_engine import (
    JSONObject,
    UnsupportedTypeError,
    check_supported,
    from_jsonable,
    parse_datetime,
    parse_duration,
    to_jsonable,
    type_name,
)

UTC = dt.UTC


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    color: Color = Color.RED
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    note: str | None = None
    created: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=UTC)
    source: File | None = None


@dataclasses.dataclass
class WithOptional:
    a: int
    b: int | None


@dataclasses.dataclass
class Node:
    child: Node | None = None


@dataclasses.dataclass
class HasBytes:
    data: bytes


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


# ---------------------------------------------------------------------------------------------
# check_supported


SUPPORTED: list[Any] = [
    int,
    float,
    str,
    bool,
    dt.datetime,
    dt.date,
    dt.timedelta,
    Color,
    list[int],
    dict[str, float],
    Optional[int],
    int | None,
    Union[int, str],
    list[dict[str, list[Point]]],
    Shape,
    File,
    Directory,
    JSONObject,
    typing.Annotated[int, "meta"],
]


@pytest.mark.parametrize("tp", SUPPORTED, ids=str)
def test_supported_types_pass(tp: Any) -> None:
    check_supported(tp)


@pytest.mark.parametrize(
    ("tp", "needle"),
    [
        (Any, "typing.Any"),
        (tuple[int, str], "tuple[int, str]"),
        (set[int], "set[int]"),
        (bytes, "bytes"),
        (list, "list"),
        (dict, "dict"),
        (dict[int, str], "str keys"),
        (Level, "Level"),
        (list[bytes], "bytes"),
        (Optional[bytes], "bytes"),
        (HasBytes, "HasBytes.data"),
        (Node, "contains itself"),
    ],
    ids=str,
)
def test_unsupported_types_name_the_type(tp: Any, needle: str) -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        check_supported(tp)
    assert needle in str(info.value)
    assert isinstance(info.value, DefinitionError)


# ---------------------------------------------------------------------------------------------
# type_name


@pytest.mark.parametrize(
    ("tp", "name"),
    [
        (int, "int"),
        (dt.datetime, "datetime"),
        (dt.timedelta, "timedelta"),
        (list[int], "list[int]"),
        (dict[str, float], "dict[str, float]"),
        (Optional[int], "int | None"),
        (Union[int, str], "int | str"),
        (Point, "Point (JSON object)"),
        (list[Point], "list[Point]"),
        (Color, "Color (red|green)"),
        (Optional[Color], "Color | None"),
        (File, "File"),
        (Directory, "Directory"),
        (JSONObject, "JSON object"),
        (JSONObject.named("Cfg"), "Cfg (JSON object)"),
    ],
    ids=str,
)
def test_type_name(tp: Any, name: str) -> None:
    assert type_name(tp) == name


# ---------------------------------------------------------------------------------------------
# from_jsonable


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        (5, int, 5),
        (5.0, int, 5),  # protobuf Structs keep every number as a double
        (5, float, 5.0),
        ("x", str, "x"),
        (False, bool, False),
        ("2024-01-05T10:00:00Z", dt.datetime, dt.datetime(2024, 1, 5, 10, tzinfo=UTC)),
        (dt.datetime(2024, 1, 5, 10), dt.datetime, dt.datetime(2024, 1, 5, 10, tzinfo=UTC)),
        (dt.date(2024, 1, 5), dt.datetime, dt.datetime(2024, 1, 5, tzinfo=UTC)),  # YAML date
        ("2024-01-05", dt.date, dt.date(2024, 1, 5)),
        (dt.date(2024, 1, 5), dt.date, dt.date(2024, 1, 5)),
        (90, dt.timedelta, dt.timedelta(seconds=90)),
        (1.5, dt.timedelta, dt.timedelta(seconds=1.5)),
        ("1h30m", dt.timedelta, dt.timedelta(minutes=90)),
        ("red", Color, Color.RED),
        (Color.GREEN, Color, Color.GREEN),
        ([1, 2], list[int], [1, 2]),
        ({"a": 1.5}, dict[str, float], {"a": 1.5}),
        (None, Optional[int], None),
        (3, Optional[int], 3),
        ("s3://b/k", File, File("s3://b/k")),
        ({"path": "s3://b/k"}, File, File("s3://b/k")),  # flytekit's form inside dataclasses
        ("/tmp/d", Directory, Directory("/tmp/d")),
        ({"a": [1, {"b": None}]}, JSONObject, {"a": [1, {"b": None}]}),
        ({"d": dt.date(2024, 1, 5)}, JSONObject, {"d": "2024-01-05"}),
    ],
    ids=repr,
)
def test_from_jsonable_accepts(value: Any, tp: Any, expected: Any) -> None:
    result = from_jsonable(value, tp)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        ({"a": 1}, list[int], "expected a list of int, got a JSON object"),
        ([1, "a"], list[int], "[1]: expected an integer, got the string 'a'"),
        ("5", int, "expected an integer, got the string '5'"),
        (True, int, "expected an integer, got the boolean true"),
        (1.5, int, "expected an integer, got the number 1.5"),
        (True, float, "expected a number, got the boolean true"),
        (5, str, "expected a string, got the number 5"),
        ("yes", bool, "expected a boolean, got the string 'yes'"),
        (None, int, "expected an integer, got null"),
        ([1], dict[str, int], "expected a JSON object of int values, got a list"),
        ({"a": "x"}, dict[str, int], "['a']: expected an integer"),
        ("blue", Color, "expected one of 'red', 'green', got the string 'blue'"),
        ("RED", Color, "expected one of 'red', 'green'"),
        ("soon", dt.datetime, "invalid date-time 'soon'"),
        ("later", dt.timedelta, "invalid duration 'later'"),
        (True, dt.timedelta, "expected a duration, got the boolean true"),
        ([1], Point, "expected a JSON object (Point), got a list"),
        ({"x": 1, "z": 2}, Point, "unknown field 'z' for Point (x, y)"),
        ({"y": 2}, Point, "missing field 'x' for Point"),
        (
            {"name": "s", "points": [{"x": "a"}]},
            Shape,
            "points[0].x: expected an integer, got the string 'a'",
        ),
        ({"n": -1}, Positive, "invalid Positive: n must be positive"),
        (5, File, "expected a file path or URI, got the number 5"),
        ("", File, "expected a file path or URI"),
        (["a"], Union[int, dt.datetime], "expected a value of type int | datetime, got a list"),
        ({1: "a"}, JSONObject, "keys must be strings"),
    ],
    ids=repr,
)
def test_from_jsonable_rejects_with_one_line_message(value: Any, tp: Any, message: str) -> None:
    with pytest.raises(InputError) as info:
        from_jsonable(value, tp)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["2024-01-05T10:00:00+05:30", dt.datetime(2024, 1, 5, 10, tzinfo=dt.timezone(dt.timedelta(hours=5.5)))],
    ids=repr,
)
def test_a_datetime_input_is_the_utc_instant_as_a_remote_task_gets_it(value: Any) -> None:
    # Flyte stores date-times as UTC instants; local runs must give the task the same value.
    result = from_jsonable(value, dt.datetime)
    assert result == dt.datetime(2024, 1, 5, 4, 30, tzinfo=UTC)
    assert result.utcoffset() == dt.timedelta(0) and result.isoformat() == "2024-01-05T04:30:00+00:00"
    assert from_jsonable(value, dt.date) == dt.date(2024, 1, 5)  # a date keeps the day as written


@pytest.mark.parametrize(
    ("value", "tp"),
    [(2**63, int), (-(2**63) - 1, int), ([1, 2**64], list[int]), ({"x": 2**63}, dict[str, int])],
    ids=repr,
)
def test_an_int_beyond_int64_is_refused_as_a_remote_run_would(value: Any, tp: Any) -> None:
    with pytest.raises(InputError, match="does not fit in a 64-bit integer"):
        from_jsonable(value, tp)


def test_int64_bounds_are_accepted() -> None:
    assert from_jsonable([2**63 - 1, -(2**63)], list[int]) == [2**63 - 1, -(2**63)]


def test_dataclass_from_dict_uses_defaults_and_nests() -> None:
    shape = from_jsonable({"name": "tri", "points": [{"x": 1}, {"x": 2, "y": 0.5}]}, Shape)
    assert shape == Shape("tri", [Point(1), Point(2, 0.5)])
    assert shape.tags == {} and shape.color is Color.RED


def test_missing_optional_field_without_default_is_none() -> None:
    # mashumaro (flytekit's decoder) does the same
    assert from_jsonable({"a": 1}, WithOptional) == WithOptional(1, None)


def test_dataclass_instance_passes_through() -> None:
    p = Point(1, 2.0)
    assert from_jsonable(p, Point) is p


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        # JSON keeps its types, so a string stays a string even where an int is possible ...
        ("5", Union[int, str], "5"),
        (5, Union[int, str], 5),
        # ... but non-string members get the first chance at a string
        ("2024-01-05", Union[str, dt.date], dt.date(2024, 1, 5)),
        ("hello", Union[str, dt.date], "hello"),
        ("red", Union[str, Color], Color.RED),
        # a member of exactly the value's type wins over order
        (3, Union[float, int], 3),
        (True, Union[int, bool], True),
        ([1], Union[dict[str, int], list[int]], [1]),
        ({"x": 1}, Union[list[int], Point], Point(1)),
    ],
    ids=repr,
)
def test_union_choice(value: Any, tp: Any, expected: Any) -> None:
    result = from_jsonable(value, tp)
    assert result == expected and type(result) is type(expected)


# ---------------------------------------------------------------------------------------------
# to_jsonable and the round trip


def test_to_jsonable_forms() -> None:
    shape = Shape(
        "s",
        [Point(1, 2.5)],
        Color.GREEN,
        {"k": "v"},
        created=dt.datetime(2024, 1, 5, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        source=File("/data/x.csv", remote_source="s3://b/x.csv"),
    )
    assert to_jsonable(shape, Shape) == {
        "name": "s",
        "points": [{"x": 1, "y": 2.5}],
        "color": "green",
        "tags": {"k": "v"},
        "note": None,
        "created": "2024-01-05T10:30:00+02:00",
        "source": "/data/x.csv",
    }
    # the form flytekit uses for files inside dataclasses, pointing at the remote copy
    assert to_jsonable(shape, Shape, files_as_objects=True)["source"] == {"path": "s3://b/x.csv"}
    assert to_jsonable(dt.datetime(2024, 1, 5), dt.datetime) == "2024-01-05T00:00:00+00:00"
    assert to_jsonable(dt.date(2024, 1, 5), dt.date) == "2024-01-05"
    assert to_jsonable(dt.timedelta(minutes=1, milliseconds=500), dt.timedelta) == 60.5
    assert to_jsonable(2, float) == 2.0 and isinstance(to_jsonable(2, float), float)


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        ("5", int, "expected an integer, got the string '5'"),
        (True, int, "expected an integer"),
        ([1, "a"], list[int], "expected a list of int"),
        ("x", Optional[int], "expected a value of type int | None"),
        (Point(1), Shape, "expected a JSON object (Shape)"),
        ("/p", File, "expected a file path or URI"),
    ],
    ids=repr,
)
def test_to_jsonable_rejects_values_of_another_type(value: Any, tp: Any, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        to_jsonable(value, tp)


ROUND_TRIP: list[tuple[Any, Any]] = [
    (0, int),
    (-(2**62), int),
    (1.25, float),
    ("", str),
    ("ünïcode", str),
    (True, bool),
    (dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime),
    (dt.datetime(1999, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dt.datetime),
    (dt.date(1, 1, 1), dt.date),
    (dt.timedelta(days=-3, microseconds=7), dt.timedelta),
    (dt.timedelta(0), dt.timedelta),
    (Color.GREEN, Color),
    ([], list[int]),
    ([[1], [2, 3]], list[list[int]]),
    ({"a": [dt.date(2024, 1, 1)]}, dict[str, list[dt.date]]),
    (None, Optional[Point]),
    (Point(1, 2.0), Optional[Point]),
    (5, Union[int, str]),
    ("5", Union[int, str]),
    (Color.RED, Union[str, Color]),
    (File("s3://b/f"), File),
    (Directory("rel/dir"), Directory),
    ({"x": [1, 2.5, None, {"y": True}]}, JSONObject),
    (Shape("s", [Point(1), Point(2, 3.5)], Color.GREEN, {"a": "b"}, "n", source=File("/f")), Shape),
]


@pytest.mark.parametrize(("value", "tp"), ROUND_TRIP, ids=repr)
def test_round_trip_through_json_text(value: Any, tp: Any) -> None:
    text = json.dumps(to_jsonable(value, tp))
    back = from_jsonable(json.loads(text), tp)
    assert back == value
    assert type(back) is type(value)


def _random_value(tp: Any, rng: random.Random, depth: int = 0) -> Any:
    """A random value of `tp` (a small stand-in for hypothesis, which is not installed)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _random_value(rng.choice(args), rng, depth)
    if tp is type(None):
        return None
    size = rng.randint(0, 3 if depth < 2 else 0)
    if origin is list:
        return [_random_value(args[0], rng, depth + 1) for _ in range(size)]
    if origin is dict:
        return {f"k{i}": _random_value(args[1], rng, depth + 1) for i in range(size)}
    makers: dict[Any, Any] = {
        int: lambda: rng.randint(-(2**53), 2**53),
        float: lambda: rng.choice([0.0, -1.5, 1e300, rng.uniform(-1e6, 1e6)]),
        str: lambda: "".join(rng.choice("aZ09 -_é\"'\\\n") for _ in range(rng.randint(0, 8))),
        bool: lambda: rng.random() < 0.5,
        dt.timedelta: lambda: dt.timedelta(microseconds=rng.randint(-(10**15), 10**15)),
        dt.date: lambda: dt.date.fromordinal(rng.randint(1, 3_000_000)),
        dt.datetime: lambda: dt.datetime(
            rng.randint(1, 9999),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            rng.randint(0, 999999),
            tzinfo=dt.timezone(dt.timedelta(minutes=rng.randint(-12 * 60, 12 * 60))),
        ),
        Color: lambda: rng.choice(list(Color)),
        File: lambda: File(rng.choice(["s3://b/x", "/tmp/y", "rel/z"])),
    }
    if tp in makers:
        return makers[tp]()
    assert dataclasses.is_dataclass(tp)
    hints = typing.get_type_hints(tp)
    return tp(**{f.name: _random_value(hints[f.name], rng, depth + 1) for f in dataclasses.fields(tp)})


@pytest.mark.parametrize(
    "tp",
    [
        int,
        float,
        str,
        dt.datetime,
        dt.date,
        dt.timedelta,
        list[Optional[int]],
        dict[str, list[Color]],
        # Members whose JSON forms cannot collide: a date string is never an int or (here) a str.
        Union[int, str, dt.date],
        Optional[Shape],
        list[Shape],
    ],
    ids=str,
)
def test_round_trip_random_values(tp: Any) -> None:
    rng = random.Random(f"round-trip {tp}")  # fixed seed per type: failures are reproducible
    for _ in range(200):
        value = _random_value(tp, rng)
        back = from_jsonable(json.loads(json.dumps(to_jsonable(value, tp))), tp)
        assert back == value, (value, back)


# ---------------------------------------------------------------------------------------------
# Date-times and durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-05", dt.datetime(2024, 1, 5, tzinfo=UTC)),
        ("2024-01-05T10:30:00", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("2024-01-05 10:30:00", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("2024-01-05T10:30:00Z", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("2024-01-05T10:30:00.25+02:00", dt.datetime(2024, 1, 5, 8, 30, 0, 250000, tzinfo=UTC)),
        ("  2024-01-05T10:30:00-05:00 ", dt.datetime(2024, 1, 5, 15, 30, tzinfo=UTC)),
        ("2024-01-01T00:00:00 + 1h30m", dt.datetime(2024, 1, 1, 1, 30, tzinfo=UTC)),
        ("2024-01-01 - 1 day", dt.datetime(2023, 12, 31, tzinfo=UTC)),
        ("2024-01-01T00:00:00+02:00 - PT1H", dt.datetime(2023, 12, 31, 21, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: dt.datetime) -> None:
    value = parse_datetime(text)
    assert value == expected
    assert value.tzinfo is not None


def test_parse_datetime_keeps_the_given_offset() -> None:
    value = parse_datetime("2024-01-05T23:30:00-05:00")
    assert value.utcoffset() == dt.timedelta(hours=-5)
    assert value.date() == dt.date(2024, 1, 5)  # what a date input of this text gives


def test_parse_datetime_relative_words() -> None:
    before = dt.datetime.now(UTC)
    now = parse_datetime("NOW")
    yesterday = parse_datetime("now - 1d")
    after = dt.datetime.now(UTC)
    assert before <= now <= after
    assert before - dt.timedelta(days=1) <= yesterday <= after - dt.timedelta(days=1)
    today = parse_datetime("today")
    assert today.time() == dt.time(0) and today.tzinfo is UTC
    assert today.date() in {before.date(), after.date()}
    assert parse_datetime("today + 12h") == today + dt.timedelta(hours=12)


@pytest.mark.parametrize("text", ["", "soon", "2024-13-01", "01/05/2024", "now -", "now - soon", "now + 1y"])
def test_parse_datetime_rejects_and_lists_accepted_forms(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_datetime(text)
    message = str(info.value)
    assert f"invalid date-time {text!r}" in message
    assert ("ISO 8601" in message and "'now'" in message) or "invalid duration" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", dt.timedelta(seconds=90)),
        ("1.5", dt.timedelta(seconds=1.5)),
        (".5", dt.timedelta(milliseconds=500)),
        ("1h30m", dt.timedelta(hours=1, minutes=30)),
        ("1h 30m 15s", dt.timedelta(hours=1, minutes=30, seconds=15)),
        ("2d", dt.timedelta(days=2)),
        ("10 days", dt.timedelta(days=10)),
        ("1 day, 2 hours", dt.timedelta(days=1, hours=2)),
        ("1.5 hours", dt.timedelta(minutes=90)),
        ("2 HOURS", dt.timedelta(hours=2)),
        ("30s", dt.timedelta(seconds=30)),
        ("500ms", dt.timedelta(milliseconds=500)),
        ("3us", dt.timedelta(microseconds=3)),
        ("1w", dt.timedelta(weeks=1)),
        ("1:30", dt.timedelta(seconds=90)),
        ("1:24", dt.timedelta(seconds=84)),
        (":22", dt.timedelta(seconds=22)),
        ("90:00", dt.timedelta(minutes=90)),
        ("1:02:03", dt.timedelta(hours=1, minutes=2, seconds=3)),
        ("1:02:03.5", dt.timedelta(hours=1, minutes=2, seconds=3.5)),
        ("P1D", dt.timedelta(days=1)),
        ("PT1H30M", dt.timedelta(hours=1, minutes=30)),
        ("P1DT2H", dt.timedelta(days=1, hours=2)),
        ("PT0.5S", dt.timedelta(milliseconds=500)),
        ("P2W", dt.timedelta(weeks=2)),
        ("pt10m", dt.timedelta(minutes=10)),
        ("-90", dt.timedelta(seconds=-90)),
        ("- 1h", dt.timedelta(hours=-1)),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "-", "abc", "1x", "1h30", "P", "PT", "P1DT", "P1Y", "1:60", "1:60:00", "1..5"]
)
def test_parse_duration_rejects_and_lists_accepted_forms(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_duration(text)
    message = str(info.value)
    assert message.startswith(f"invalid duration {text!r}: use seconds (90, 1.5)")
    assert "1h30m" in message and "1:30" in message and "P1D" in message


# ---------------------------------------------------------------------------------------------
# Files and import cost


def test_file_and_directory_values(tmp_path: Any) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hi")
    f = File(path, remote_source="s3://b/a.txt")
    assert f.path == str(path) and f.__fspath__() == str(path) and f.uri == "s3://b/a.txt"
    with f.open() as handle:
        assert handle.read() == "hi"
    assert f == File(str(path)) and f != Directory(str(path)) and len({f, File(str(path))}) == 1
    assert repr(f) == f"File({str(path)!r}, remote_source='s3://b/a.txt')"
    remote = File("s3://b/x")
    assert remote.is_remote and not f.is_remote
    with pytest.raises(ValueError, match="remote URI"):
        remote.open()


def test_pure_modules_do_not_import_protobuf_or_network_code() -> None:
    code = (
        "import sys, asyncrun.sdk._type_engine, asyncrun.sdk._files, asyncrun.cli._params; "
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = sorted(m for m in out.split() if m.split(".")[0] in {"betterproto2", "grpclib", "httpx", "yaml"})
    heavy += sorted(m for m in out.split() if m.startswith("asyncrun._proto"))
    assert heavy == []
