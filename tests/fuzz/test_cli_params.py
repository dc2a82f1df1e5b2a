"""Fuzz the parsing of every input type: random text fails cleanly, and typed values round-trip.

Unit level: the click parameter type of each supported Python type (`asyncrun.cli._params`) and
`from_jsonable`/`to_jsonable` (`asyncrun.sdk._type_engine`). The real CLI is in test_cli_run.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from typing import Any, Optional, Union

import asyncclick as click
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from asyncrun._exceptions import InputError
from asyncrun.cli._params import param_type
from asyncrun.sdk import Directory, File
from asyncrun.sdk._literals import to_literal
from asyncrun.sdk._type_engine import JSONObject, from_jsonable, matches, to_jsonable

from .strategies import budget, json_values, user_text


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    DARK_BLUE = "dark blue"


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Event:
    name: str
    when: dt.datetime
    span: dt.timedelta
    points: list[Point]
    tags: dict[str, int]
    color: Optional[Color] = None
    day: Optional[dt.date] = None


Sensor = JSONObject.named("Sensor")

# Every supported kind of type, alone and nested.
TYPES: list[Any] = [
    int,
    float,
    str,
    bool,
    dt.datetime,
    dt.date,
    dt.timedelta,
    Color,
    list[int],
    list[str],
    dict[str, float],
    dict[str, list[dt.datetime]],
    list[Optional[int]],
    Point,
    Event,
    list[Point],
    Sensor,
    Optional[int],
    Optional[bool],
    Optional[dt.timedelta],
    Union[int, str],
    Union[float, int],
    Union[Color, dt.date, str],
    Union[list[int], Point],
    File,
    Directory,
    Optional[File],
]


def _convert(tp: Any, text: str) -> Any:
    return param_type(tp).convert(text, None, None)


@pytest.mark.parametrize("tp", TYPES, ids=repr)
@settings(max_examples=budget(60))
@given(text=user_text)
@example(text="[" * 5000)  # deeper than Python's recursion limit: json.loads raises RecursionError
@example(text='{"x": ' * 3000)
@example(text="1" * 5000)  # more digits than int() accepts
@example(text="\x00.json")
@example(text="0001-01-01T00:00:00+00:01")  # parsed, then an OverflowError when serialized
@example(text="9999-12-31T23:59:59-01:00")
@example(text='{"x": 9007199254740993}')  # silently rounded by a Struct
def test_random_text_never_crashes(tp: Any, text: str) -> None:
    """Random text either parses to a value of the type or fails with one BadParameter line; a parsed
    value then becomes a Flyte literal (for --remote) or fails with one InputError line."""
    try:
        value = _convert(tp, text)
    except click.BadParameter as exc:
        message = exc.format_message()
        assert message and "\n" not in message, message
        assert "Traceback" not in message
        return
    assert matches(value, tp), value
    try:
        bytes(to_literal(value, tp))
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("tp", TYPES, ids=repr)
@settings(max_examples=budget(60))
@given(data=json_values)
def test_any_json_decodes_or_fails_with_input_error(tp: Any, data: Any) -> None:
    """`from_jsonable` (behind --inputs-file, stdin and JSON flags) raises only InputError."""
    try:
        value = from_jsonable(data, tp)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert matches(value, tp), value


@pytest.mark.parametrize("tp", [Sensor, list[int], Point, dict[str, float]], ids=repr)
@pytest.mark.parametrize("depth", [10, 500, 800])
def test_deeply_nested_json_is_an_input_error(tp: Any, depth: int) -> None:
    """Regression: JSON nested ~500 deep that json.loads still reads made `from_jsonable` (and so
    --inputs-file and JSON flags) die with RecursionError."""
    data = json.loads('{"a": ' * depth + "1" + "}" * depth)
    try:
        value = from_jsonable(data, tp)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert tp is Sensor and depth < 100 and value == data


# ---------------------------------------------------------------- round trips

_offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
datetimes = st.datetimes(timezones=st.one_of(st.none(), _offsets))
finite = st.floats(allow_nan=False, allow_infinity=False)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _duration_text(value: dt.timedelta) -> str:
    """A duration the way a person writes one: units, a sign in front."""
    sign, size = ("-", -value) if value < dt.timedelta(0) else ("", value)
    return f"{sign}{size.days}d {size.seconds}s {size.microseconds}us"


def _int_like(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


INT64 = (-(2**63), 2**63 - 1)
int64s = st.integers(*INT64)


@given(value=st.integers(min_value=-(10**30), max_value=10**30))
def test_int_round_trip(value: int) -> None:
    """Flyte's int is int64: values inside round trip, values outside are a one-line usage error."""
    if not INT64[0] <= value <= INT64[1]:
        for tp in (int, Optional[int]):
            with pytest.raises(click.BadParameter, match="64-bit"):
                _convert(tp, str(value))
        assert _convert(Union[int, str], str(value)) == str(value)  # not an int: the str member takes it
        return
    assert _convert(int, str(value)) == value
    assert _convert(Optional[int], str(value)) == value
    assert _convert(Union[int, str], str(value)) == value


@given(value=st.floats(allow_nan=False))
def test_float_round_trip(value: float) -> None:
    assert _convert(float, repr(value)) == value
    assert _convert(Union[float, int], repr(value)) == value


@given(value=st.text())
def test_str_round_trip(value: str) -> None:
    assert _convert(str, value) == value
    if not _int_like(value):
        assert _convert(Union[int, str], value) == value


@given(value=datetimes)
def test_datetime_round_trip(value: dt.datetime) -> None:
    parsed = _convert(dt.datetime, value.isoformat())
    # The same instant, in UTC (Flyte's rule, locally and remotely alike).
    assert parsed == _aware(value) and parsed.utcoffset() == dt.timedelta(0)
    assert _convert(dt.datetime, value.isoformat(sep=" ")) == _aware(value)


@given(value=datetimes, delta=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3650)))
def test_datetime_arithmetic_round_trip(value: dt.datetime, delta: dt.timedelta) -> None:
    base = _aware(value)
    for op, expected in (("+", base.__add__), ("-", base.__sub__)):
        try:
            want = expected(delta)
        except OverflowError:
            with pytest.raises(click.BadParameter, match="out of range"):
                _convert(dt.datetime, f"{value.isoformat()} {op} {_duration_text(delta)}")
            continue
        assert _convert(dt.datetime, f"{value.isoformat()} {op} {_duration_text(delta)}") == want


@given(value=st.dates())
def test_date_round_trip(value: dt.date) -> None:
    assert _convert(dt.date, value.isoformat()) == value
    assert _convert(Union[Color, dt.date, str], value.isoformat()) == value


@given(value=st.timedeltas())
@example(value=dt.timedelta.max)
@example(value=dt.timedelta.min + dt.timedelta(microseconds=1))
def test_timedelta_round_trip(value: dt.timedelta) -> None:
    assert _convert(dt.timedelta, _duration_text(value)) == value
    assert _convert(Optional[dt.timedelta], _duration_text(value)) == value


@given(value=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=10_000)))
def test_timedelta_clock_and_iso_forms(value: dt.timedelta) -> None:
    hours, rest = divmod(value.days * 86_400 + value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}.{value.microseconds:06d}"
    assert _convert(dt.timedelta, clock) == value
    whole = value - dt.timedelta(microseconds=value.microseconds)
    assert _convert(dt.timedelta, f"P{whole.days}DT{whole.seconds}S") == whole


@given(value=st.sampled_from(Color))
def test_enum_round_trip(value: Color) -> None:
    assert _convert(Color, value.value) is value
    assert _convert(Union[Color, dt.date, str], value.value) is value


points = st.builds(Point, x=int64s, y=finite)
# Durations travel in JSON as float seconds, exact to the microsecond below 2**33 s (~270 years).
json_spans = st.timedeltas(min_value=dt.timedelta(days=-90_000), max_value=dt.timedelta(days=90_000))
events = st.builds(
    Event,
    name=st.text(),
    when=datetimes.map(_aware),
    span=json_spans,
    points=st.lists(points, max_size=3),
    tags=st.dictionaries(st.text(), int64s, max_size=3),
    color=st.none() | st.sampled_from(Color),
    day=st.none() | st.dates(),
)
_STRUCTURED: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (list[int], st.lists(int64s)),
    (list[str], st.lists(st.text())),
    (dict[str, float], st.dictionaries(st.text(), st.floats(allow_nan=False))),
    (dict[str, list[dt.datetime]], st.dictionaries(st.text(), st.lists(datetimes.map(_aware), max_size=3))),
    (list[Optional[int]], st.lists(st.none() | int64s)),
    (Point, points),
    (Event, events),
    (list[Point], st.lists(points, max_size=4)),
    (Union[list[int], Point], st.lists(int64s) | points),
    (Sensor, st.dictionaries(st.text(), json_values, max_size=4)),
]


@pytest.mark.parametrize(("tp", "values"), _STRUCTURED, ids=[repr(tp) for tp, _ in _STRUCTURED])
@given(data=st.data())
def test_json_types_round_trip(tp: Any, values: st.SearchStrategy[Any], data: st.DataObject) -> None:
    """A value rendered as the JSON a user would pass parses back to the same value."""
    value = data.draw(values)
    text = json.dumps(to_jsonable(value, tp))
    assert _convert(tp, text) == value
    assert from_jsonable(json.loads(text), tp) == value


@pytest.mark.parametrize("tp", [File, Directory, Optional[File]], ids=repr)
@given(
    scheme=st.sampled_from(["s3", "gs", "https", "file", "abfs"]),
    rest=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1),
)
def test_uri_round_trip(tp: Any, scheme: str, rest: str) -> None:
    uri = f"{scheme}://{rest}"
    kind = Directory if tp is Directory else File
    assume(uri.strip().lower() not in ("none", "null"))
    assert _convert(tp, uri) == kind(uri)


def test_local_paths_round_trip(tmp_path) -> None:
    (tmp_path / "data.csv").write_text("x\n")
    assert _convert(File, str(tmp_path / "data.csv")) == File(str(tmp_path / "data.csv"))
    assert _convert(Directory, str(tmp_path)) == Directory(str(tmp_path))
    with pytest.raises(click.BadParameter, match="is a directory"):
        _convert(File, str(tmp_path))


@given(value=st.none() | st.booleans())
def test_optional_bool_round_trip(value: bool | None) -> None:
    assert _convert(Optional[bool], "none" if value is None else str(value).lower()) is value


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_union_keeps_float_or_int(value: float) -> None:
    parsed = _convert(Union[float, int], repr(value))
    assert parsed == value and not (isinstance(parsed, float) and math.isnan(parsed))
