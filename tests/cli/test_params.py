"""Click parameter types for task inputs: parsing of every supported type, errors and metavars."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from pathlib import Path
from typing import Any, Optional, Union

import asyncclick as click
import pytest
from asyncclick.testing import CliRunner

from asyncrun.cli._params import is_flag_type, param_type
from asyncrun.sdk._files import Directory, File
from asyncrun.sdk._type_engine import JSONObject, UnsupportedTypeError

UTC = dt.UTC


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Run:
    name: str
    start: dt.date
    points: list[Point] = dataclasses.field(default_factory=list)


def convert(tp: Any, value: Any) -> Any:
    return param_type(tp).convert(value, None, None)


def failure(tp: Any, value: Any) -> str:
    with pytest.raises(click.BadParameter) as info:
        convert(tp, value)
    message = info.value.message
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# Simple types


def test_bool_is_a_flag_only_when_plain() -> None:
    assert is_flag_type(bool)
    assert not is_flag_type(Optional[bool])
    assert not is_flag_type(int)
    assert convert(Optional[bool], "yes") is True and convert(Optional[bool], "none") is None


@pytest.mark.parametrize(
    ("tp", "text", "expected"),
    [
        (int, "5", 5),
        (int, "-3", -3),
        (float, "2", 2.0),
        (float, "2.5", 2.5),
        (str, "anything at all", "anything at all"),
    ],
)
def test_native_types(tp: Any, text: str, expected: Any) -> None:
    value = convert(tp, text)
    assert value == expected and type(value) is type(expected)


def test_native_type_errors() -> None:
    assert "'notint' is not a valid integer" in failure(int, "notint")
    assert "'x' is not a valid float" in failure(float, "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-05", dt.datetime(2024, 1, 5, tzinfo=UTC)),
        ("2024-01-05T10:30:00", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("2024-01-05T10:30:00.5+02:00", dt.datetime(2024, 1, 5, 8, 30, 0, 500000, tzinfo=UTC)),
        ("2024-01-05T10:30:00Z", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("2024-01-01T00:00:00 + 1h30m", dt.datetime(2024, 1, 1, 1, 30, tzinfo=UTC)),
    ],
)
def test_datetime(text: str, expected: dt.datetime) -> None:
    value = convert(dt.datetime, text)
    assert value == expected and value.tzinfo is not None


def test_datetime_relative_and_defaults() -> None:
    before = dt.datetime.now(UTC)
    value = convert(dt.datetime, "now - 1d")
    assert before - dt.timedelta(days=1) <= value <= dt.datetime.now(UTC) - dt.timedelta(days=1)
    # a Python default arrives already typed; naive means UTC
    assert convert(dt.datetime, dt.datetime(2024, 1, 5)) == dt.datetime(2024, 1, 5, tzinfo=UTC)
    assert convert(dt.datetime, dt.datetime(2024, 1, 5)).tzinfo is UTC


def test_datetime_error_lists_accepted_forms() -> None:
    message = failure(dt.datetime, "yesterday-ish")
    assert "invalid date-time 'yesterday-ish'" in message and "ISO 8601" in message and "'now'" in message


def test_date() -> None:
    assert convert(dt.date, "2024-01-05") == dt.date(2024, 1, 5)
    assert convert(dt.date, "2024-01-05T23:30:00-05:00") == dt.date(2024, 1, 5)
    assert convert(dt.date, "2024-01-05 + 1d") == dt.date(2024, 1, 6)
    assert convert(dt.date, dt.date(2020, 2, 2)) == dt.date(2020, 2, 2)
    assert "invalid date-time '5 jan'" in failure(dt.date, "5 jan")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", dt.timedelta(seconds=90)),  # pyflyte crashes on this one
        ("P1D", dt.timedelta(days=1)),  # ... and on this one
        ("1:24", dt.timedelta(seconds=84)),
        ("10 days", dt.timedelta(days=10)),
        ("1h30m", dt.timedelta(minutes=90)),
        ("1.5 hours", dt.timedelta(minutes=90)),
        ("500ms", dt.timedelta(milliseconds=500)),
    ],
)
def test_duration(text: str, expected: dt.timedelta) -> None:
    assert convert(dt.timedelta, text) == expected


def test_duration_error() -> None:
    assert failure(dt.timedelta, "soon").startswith("invalid duration 'soon': use seconds (90, 1.5)")
    assert convert(dt.timedelta, dt.timedelta(seconds=3)) == dt.timedelta(seconds=3)


def test_enum_by_value_case_sensitive() -> None:
    assert convert(Color, "red") is Color.RED
    assert convert(Color, Color.GREEN) is Color.GREEN  # a default
    assert failure(Color, "blue") == "'blue' is not one of 'red', 'green'."
    assert "'RED' is not one of" in failure(Color, "RED")


# ---------------------------------------------------------------------------------------------
# JSON types


@pytest.mark.parametrize(
    ("tp", "text", "expected"),
    [
        (list[int], "[1, 2, 3]", [1, 2, 3]),
        (list[list[str]], '[["a"], []]', [["a"], []]),
        (dict[str, float], '{"a": 1, "b": 2.5}', {"a": 1.0, "b": 2.5}),
        (dict[str, list[Color]], '{"k": ["red"]}', {"k": [Color.RED]}),
        (Point, '{"x": 1}', Point(1)),
        (list[Point], '[{"x": 1, "y": 2}]', [Point(1, 2.0)]),
        (Run, '{"name": "r", "start": "2024-01-05"}', Run("r", dt.date(2024, 1, 5))),
        (JSONObject, '{"any": [1, {"x": null}]}', {"any": [1, {"x": None}]}),
        (list[dt.timedelta], '["1h", 30]', [dt.timedelta(hours=1), dt.timedelta(seconds=30)]),
    ],
    ids=str,
)
def test_json_text(tp: Any, text: str, expected: Any) -> None:
    assert convert(tp, text) == expected


@pytest.mark.parametrize(
    ("tp", "text", "message"),
    [
        (list[int], '{"a": 1}', "expected a list of int, got a JSON object"),
        (list[int], '[1, "2"]', "[1]: expected an integer, got the string '2'"),
        (dict[str, int], "[1]", "expected a JSON object of int values, got a list"),
        (Point, '{"x": 1, "z": 0}', "unknown field 'z' for Point (x, y)"),
        (Point, "{}", "missing field 'x' for Point"),
        (
            Run,
            '{"name": "r", "start": "2024-01-05", "points": [{"x": "a"}]}',
            "points[0].x: expected an integer",
        ),
        (list[int], "[1, 2", "'[1, 2' is neither JSON ("),
        (list[int], "missing.json", "'missing.json' is neither JSON ("),
    ],
    ids=str,
)
def test_json_errors(tp: Any, text: str, message: str) -> None:
    assert message in failure(tp, text)


def test_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"x": 3, "y": 1.5}))
    (tmp_path / "r.yaml").write_text(
        "name: r\nstart: 2024-01-05\npoints:\n  - x: 1\n"
    )  # an unquoted YAML date
    (tmp_path / "l.yml").write_text("- 1\n- 2\n")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    assert convert(Point, str(tmp_path / "p.json")) == Point(3, 1.5)
    assert convert(Run, str(tmp_path / "r.yaml")) == Run("r", dt.date(2024, 1, 5), [Point(1)])
    assert convert(list[int], str(tmp_path / "l.yml")) == [1, 2]
    message = failure(list[int], str(tmp_path / "bad.yaml"))
    assert message.startswith(f"cannot read '{tmp_path / 'bad.yaml'}':")
    assert "line 2, column 1: expected the node content" in message, message  # where, and what
    assert "expected a JSON object (Point), got a list" in failure(Point, str(tmp_path / "l.yml"))


def test_json_types_accept_python_defaults() -> None:
    assert convert(Point, Point(1)) == Point(1)
    assert convert(list[int], [1, 2]) == [1, 2]
    assert convert(Point, {"x": 2}) == Point(2)


# ---------------------------------------------------------------------------------------------
# Optional and unions


@pytest.mark.parametrize("word", ["none", "None", "NULL", " null "])
def test_optional_accepts_none_words(word: str) -> None:
    assert convert(Optional[int], word) is None
    assert convert(Optional[str], word) is None
    assert convert(Optional[list[int]], word) is None


def test_optional_parses_the_inner_type() -> None:
    assert convert(Optional[int], "5") == 5
    assert convert(Optional[Point], '{"x": 1}') == Point(1)
    assert convert(Optional[str], "nonesuch") == "nonesuch"
    assert "'abc' is not a valid integer" in failure(Optional[int], "abc")  # pyflyte fails late here


@pytest.mark.parametrize(
    ("tp", "text", "expected"),
    [
        (Union[int, str], "5", 5),
        (Union[int, str], "5.5", "5.5"),  # as pyflyte: non-string members first
        (Union[str, int], "5", 5),
        (Union[int, float], "5.5", 5.5),
        (Union[int, list[int]], "[1]", [1]),
        (Union[dt.datetime, str], "2024-01-05", dt.datetime(2024, 1, 5, tzinfo=UTC)),
        (Union[Color, str], "green", Color.GREEN),
        (Union[Color, str], "blue", "blue"),
        (Optional[Union[int, str]], "none", None),
        (Optional[Union[int, str]], "x", "x"),
    ],
    ids=str,
)
def test_union_tries_members_non_string_first(tp: Any, text: str, expected: Any) -> None:
    value = convert(tp, text)
    assert value == expected and type(value) is type(expected)


def test_union_error_and_defaults() -> None:
    assert failure(Union[int, dt.timedelta], "abc") == "'abc' is not a valid int | timedelta"
    assert convert(Union[int, str], 5) == 5  # a Python default
    assert convert(Union[int, str], "x") == "x"


# ---------------------------------------------------------------------------------------------
# Files and directories


def test_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n")
    assert convert(File, str(path)) == File(str(path))
    assert convert(File, "s3://bucket/data.csv") == File("s3://bucket/data.csv")
    assert convert(File, File("/not/checked/default")) == File("/not/checked/default")
    assert failure(File, str(tmp_path / "nope.csv")) == f"file '{tmp_path / 'nope.csv'}' does not exist"
    assert failure(File, str(tmp_path)) == f"'{tmp_path}' is a directory, not a file"


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    assert convert(Directory, str(tmp_path)) == Directory(str(tmp_path))
    assert convert(Directory, "gs://bucket/prefix/") == Directory("gs://bucket/prefix/")
    assert failure(Directory, str(tmp_path / "f")) == f"'{tmp_path / 'f'}' is a file, not a directory"
    assert failure(Directory, str(tmp_path / "x")) == f"directory '{tmp_path / 'x'}' does not exist"
    assert convert(Optional[Directory], "none") is None


def test_unsupported_type_is_refused() -> None:
    with pytest.raises(UnsupportedTypeError, match="bytes"):
        param_type(list[bytes])


# ---------------------------------------------------------------------------------------------
# Through click: metavars, one-line usage errors and exit code 2

METAVARS: list[tuple[Any, str]] = [
    (int, "INTEGER"),
    (float, "FLOAT"),
    (str, "TEXT"),
    (dt.datetime, "DATETIME"),
    (dt.date, "DATE"),
    (dt.timedelta, "DURATION"),
    (Color, "[red|green]"),
    (list[int], "JSON list[int]"),
    (dict[str, float], "JSON dict[str, float]"),
    (Point, "JSON Point"),
    (JSONObject, "JSON object"),
    (JSONObject.named("Config"), "JSON Config"),
    (File, "FILE"),
    (Directory, "DIRECTORY"),
    (Optional[int], "INTEGER | none"),
    (Union[str, int], "INTEGER | TEXT"),
    (Optional[Color], "red|green | none"),
]


@pytest.mark.parametrize(("tp", "metavar"), METAVARS, ids=str)
def test_metavar(tp: Any, metavar: str) -> None:
    option = click.Option(["--x"], type=param_type(tp))
    ctx = click.Context(click.Command("cmd", params=[option]))
    assert option.make_metavar(ctx) == metavar


@pytest.mark.anyio
async def test_bad_value_is_a_one_line_usage_error_with_exit_code_2() -> None:
    seen: dict[str, Any] = {}

    @click.command()
    @click.option("--points", type=param_type(list[Point]))
    @click.option("--when", type=param_type(Optional[dt.datetime]))
    def cmd(points: Any, when: Any) -> None:
        seen.update(points=points, when=when)

    ok = await CliRunner().invoke(cmd, ["--points", '[{"x": 1}]', "--when", "null"])
    assert ok.exit_code == 0, ok.output
    assert seen == {"points": [Point(1)], "when": None}

    bad = await CliRunner().invoke(cmd, ["--points", '{"x": 1}'])
    assert bad.exit_code == 2
    assert "Invalid value for '--points': expected a list of Point, got a JSON object" in bad.output
    assert "Traceback" not in bad.output
