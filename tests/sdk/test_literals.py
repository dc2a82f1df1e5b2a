"""Python values and types ⇄ Flyte literals, and compatibility with flytekit 1.16's encodings.

The compatibility tests build what flytekit 1.16.31 produces with the *official* flyteidl protobuf
classes (facts read from `flytekit/core/type_engine.py`, `flytekit/types/file/file.py` and
`flytekit/types/directory/types.py`), then compare with ours across the wire in both directions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import struct
from typing import Any, Optional, Union

import pytest

from asyncrun._exceptions import InputError
from asyncrun._proto.flyteidl import core
from asyncrun._proto.google import protobuf as pb
from asyncrun.sdk._files import Directory, File
from asyncrun.sdk._literals import (
    json_schema,
    literal_map,
    literal_to_jsonable,
    literal_type,
    msgpack_loads,
    python_type,
    python_values,
    to_literal,
    to_python,
    union_tag,
)
from asyncrun.sdk._type_engine import JSONObject, UnsupportedTypeError, type_name

UTC = dt.UTC
ST = core.SimpleType


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.5


@dataclasses.dataclass
class Job:
    name: str
    at: dt.datetime
    every: dt.timedelta
    color: Color
    points: list[Point]
    inputs: dict[str, File]
    out: Directory | None = None
    day: dt.date = dt.date(2024, 1, 5)


JOB = Job(
    "j",
    dt.datetime(2024, 1, 5, 10, 30, 0, 250000, tzinfo=UTC),
    dt.timedelta(minutes=90),
    Color.GREEN,
    [Point(1), Point(-2, 3.25)],
    {"a": File("s3://b/a.csv")},
    Directory("s3://b/out"),
)


def wire(message: Any) -> Any:
    """The message as the other side of a gRPC call sees it."""
    return type(message).parse(bytes(message))


# ---------------------------------------------------------------------------------------------
# Round trip


ROUND_TRIP: list[tuple[Any, Any]] = [
    (0, int),
    (2**63 - 1, int),
    (-(2**63), int),
    (2.5, float),
    (3.0, float),
    ("", str),
    ("ünï", str),
    (False, bool),
    (dt.datetime(2024, 1, 5, 10, 30, 0, 123456, tzinfo=UTC), dt.datetime),
    (dt.datetime(1950, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))), dt.datetime),
    (dt.date(2024, 2, 29), dt.date),
    (dt.timedelta(days=-1, microseconds=3), dt.timedelta),
    (Color.GREEN, Color),
    ([], list[int]),
    ([[1, 2], [3]], list[list[int]]),
    ({"a": 1.5, "b": -0.0}, dict[str, float]),
    ({"k": [Color.RED]}, dict[str, list[Color]]),
    (None, Optional[int]),
    (7, Optional[int]),
    ("7", Union[int, str]),
    (7, Union[int, str]),
    ([1], Union[list[str], list[int]]),
    (["1"], Union[list[str], list[int]]),
    (dt.date(2024, 1, 1), Union[dt.datetime, dt.date]),
    (dt.datetime(2024, 1, 1, tzinfo=UTC), Union[dt.date, dt.datetime]),
    (File("s3://b/f.txt"), File),
    (Directory("/local/dir"), Directory),
    (File("s3://b/f.txt"), Optional[File]),
    (Point(1), Point),
    (Point(-3, 2.0), Optional[Point]),
    ([Point(1), Point(2)], list[Point]),
    (JOB, Job),
    ({"free": [1, "x", None, {"y": True}]}, JSONObject),
]


@pytest.mark.parametrize(("value", "tp"), ROUND_TRIP, ids=repr)
def test_round_trip_python_literal_python(value: Any, tp: Any) -> None:
    back = to_python(wire(to_literal(value, tp)), tp)
    assert back == value
    assert type(back) is type(value)


def test_a_file_travels_by_its_remote_source() -> None:
    lit = to_literal(File("/tmp/local.csv", remote_source="s3://b/local.csv"), File)
    assert lit.scalar.blob.uri == "s3://b/local.csv"


def test_literal_types_survive_the_wire() -> None:
    for _, tp in ROUND_TRIP:
        lt = literal_type(tp)
        assert wire(lt) == lt


# ---------------------------------------------------------------------------------------------
# Literal type shapes


def _tagged(lt: core.LiteralType, tag: str) -> core.LiteralType:
    lt.structure = core.TypeStructure(tag=tag)
    return lt


SINGLE = core.BlobType(format="", dimensionality=core.BlobTypeBlobDimensionality.SINGLE)
MULTIPART = core.BlobType(format="", dimensionality=core.BlobTypeBlobDimensionality.MULTIPART)


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (int, core.LiteralType(simple=ST.INTEGER)),
        (float, core.LiteralType(simple=ST.FLOAT)),
        (str, core.LiteralType(simple=ST.STRING)),
        (bool, core.LiteralType(simple=ST.BOOLEAN)),
        (dt.datetime, core.LiteralType(simple=ST.DATETIME)),
        (dt.date, core.LiteralType(simple=ST.DATETIME)),
        (dt.timedelta, core.LiteralType(simple=ST.DURATION)),
        (Color, core.LiteralType(enum_type=core.EnumType(values=["red", "green"]))),
        (list[int], core.LiteralType(collection_type=core.LiteralType(simple=ST.INTEGER))),
        (dict[str, float], core.LiteralType(map_value_type=core.LiteralType(simple=ST.FLOAT))),
        (File, core.LiteralType(blob=SINGLE)),
        (Directory, core.LiteralType(blob=MULTIPART)),
        (JSONObject, core.LiteralType(simple=ST.STRUCT)),
        (
            Optional[int],
            core.LiteralType(
                union_type=core.UnionType(
                    variants=[
                        _tagged(core.LiteralType(simple=ST.INTEGER), "int"),
                        _tagged(core.LiteralType(simple=ST.NONE), "none"),
                    ]
                )
            ),
        ),
    ],
    ids=str,
)
def test_literal_type_shape(tp: Any, expected: core.LiteralType) -> None:
    assert literal_type(tp) == expected


def test_dataclass_literal_type_is_struct_with_schema_and_field_types() -> None:
    lt = literal_type(Point)
    assert lt.simple == ST.STRUCT
    assert lt.structure == core.TypeStructure(
        tag="",
        dataclass_type={"x": core.LiteralType(simple=ST.INTEGER), "y": core.LiteralType(simple=ST.FLOAT)},
    )
    assert lt.metadata is not None
    assert lt.metadata.to_dict() == {
        "type": "object",
        "title": "Point",
        "properties": {"x": {"type": "integer"}, "y": {"type": "number", "default": 0.5}},
        "additionalProperties": False,
        "required": ["x"],
    }


def test_json_schema_of_nested_types() -> None:
    schema = json_schema(Job)
    props = schema["properties"]
    assert props["at"] == {"type": "string", "format": "date-time"}
    assert props["every"] == {"type": "number", "format": "time-delta"}
    assert props["color"] == {"enum": ["red", "green"]}
    assert props["points"]["items"]["title"] == "Point"
    assert props["out"] == {"anyOf": [json_schema(Directory), {"type": "null"}], "default": None}
    assert props["day"]["default"] == "2024-01-05"
    assert schema["required"] == ["name", "at", "every", "color", "points", "inputs"]


def test_unsupported_types_are_refused() -> None:
    with pytest.raises(UnsupportedTypeError, match="bytes"):
        literal_type(list[bytes])
    with pytest.raises(UnsupportedTypeError, match="tuple"):
        to_literal((1,), tuple[int])


# ---------------------------------------------------------------------------------------------
# Compatibility with flytekit 1.16.31, checked with the official flyteidl classes

try:
    from flyteidl.core import literals_pb2, types_pb2
    from google.protobuf import json_format, struct_pb2
except ImportError:  # flyteidl is a test extra; only the compatibility tests need it
    literals_pb2 = types_pb2 = json_format = struct_pb2 = None

needs_flyteidl = pytest.mark.skipif(literals_pb2 is None, reason="needs the official flyteidl package")


def fk_type(**kwargs: Any) -> Any:
    return types_pb2.LiteralType(**kwargs)


def fk_tag(lt: Any, tag: str) -> Any:
    lt.structure.CopyFrom(types_pb2.TypeStructure(tag=tag))
    return lt


def fk_scalar(**kwargs: Any) -> Any:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(**kwargs))


def fk_primitive(**kwargs: Any) -> Any:
    return fk_scalar(primitive=literals_pb2.Primitive(**kwargs))


def ours(fk_message: Any, cls: Any) -> Any:
    return cls.parse(fk_message.SerializeToString())


def theirs(message: Any, fk_cls: Any) -> Any:
    return fk_cls.FromString(bytes(message))


# UnionTransformer.get_literal_type tags each variant with its TypeTransformer's name.
FLYTEKIT_TAGS: list[tuple[Any, str, Any]] = [
    (int, "int", lambda: fk_type(simple=types_pb2.INTEGER)),
    (float, "float", lambda: fk_type(simple=types_pb2.FLOAT)),
    (str, "str", lambda: fk_type(simple=types_pb2.STRING)),
    (bool, "bool", lambda: fk_type(simple=types_pb2.BOOLEAN)),
    (dt.datetime, "datetime", lambda: fk_type(simple=types_pb2.DATETIME)),
    (dt.date, "date", lambda: fk_type(simple=types_pb2.DATETIME)),
    (dt.timedelta, "timedelta", lambda: fk_type(simple=types_pb2.DURATION)),
    (Color, "DefaultEnumTransformer", lambda: fk_type(enum_type=types_pb2.EnumType(values=["red", "green"]))),
    (list[int], "Typed List", lambda: fk_type(collection_type=fk_type(simple=types_pb2.INTEGER))),
    (dict[str, int], "Typed Dict", lambda: fk_type(map_value_type=fk_type(simple=types_pb2.INTEGER))),
    (File, "FlyteFilePath", lambda: fk_type(blob=types_pb2.BlobType(format="", dimensionality=0))),
    (Directory, "FlyteDirectory", lambda: fk_type(blob=types_pb2.BlobType(format="", dimensionality=1))),
]


@needs_flyteidl
@pytest.mark.parametrize(("tp", "tag", "make"), FLYTEKIT_TAGS, ids=[t for _, t, _ in FLYTEKIT_TAGS])
def test_union_variant_is_tagged_like_flytekit(tp: Any, tag: str, make: Any) -> None:
    none = fk_tag(fk_type(simple=types_pb2.NONE), "none")
    expected = fk_type(union_type=types_pb2.UnionType(variants=[fk_tag(make(), tag), none]))
    assert literal_type(Optional[tp]) == ours(expected, core.LiteralType)
    assert theirs(literal_type(Optional[tp]), types_pb2.LiteralType) == expected
    assert union_tag(tp) == tag


def test_dataclass_union_variant_loses_its_dataclass_type_like_flytekit() -> None:
    # `_add_tag_to_type` replaces the whole structure, so `dataclass_type` is gone in the variant.
    variant = literal_type(Optional[Point]).union_type.variants[0]
    assert variant.structure == core.TypeStructure(tag="Object-Dataclass-Transformer")
    assert variant.simple == ST.STRUCT and variant.metadata is not None


def _ts(value: dt.datetime) -> Any:
    timestamp = literals_pb2.Primitive().datetime
    timestamp.FromDatetime(value)
    return timestamp


FLYTEKIT_LITERALS: list[tuple[Any, Any, Any]] = [
    (5, int, lambda: fk_primitive(integer=5)),
    (2.5, float, lambda: fk_primitive(float_value=2.5)),
    ("s", str, lambda: fk_primitive(string_value="s")),
    (True, bool, lambda: fk_primitive(boolean=True)),
    (
        dt.datetime(2024, 1, 5, 12, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime,
        lambda: fk_primitive(datetime=_ts(dt.datetime(2024, 1, 5, 10, 0, 0, 500000))),
    ),
    # DateTransformer: datetime.combine(date, time.min), i.e. midnight, stored as UTC
    (dt.date(2024, 1, 5), dt.date, lambda: fk_primitive(datetime=_ts(dt.datetime(2024, 1, 5)))),
    (
        dt.timedelta(seconds=90.5),
        dt.timedelta,
        lambda: fk_primitive(duration={"seconds": 90, "nanos": 500_000_000}),
    ),
    (
        dt.timedelta(seconds=-1.5),
        dt.timedelta,
        lambda: fk_primitive(duration={"seconds": -1, "nanos": -500_000_000}),
    ),
    (Color.RED, Color, lambda: fk_primitive(string_value="red")),
    (
        [1, 2],
        list[int],
        lambda: literals_pb2.Literal(
            collection=literals_pb2.LiteralCollection(
                literals=[fk_primitive(integer=1), fk_primitive(integer=2)]
            )
        ),
    ),
    (
        {"a": 1.0},
        dict[str, float],
        lambda: literals_pb2.Literal(
            map=literals_pb2.LiteralMap(literals={"a": fk_primitive(float_value=1.0)})
        ),
    ),
    (
        5,
        Optional[int],
        lambda: fk_scalar(
            union=literals_pb2.Union(
                value=fk_primitive(integer=5), type=fk_tag(fk_type(simple=types_pb2.INTEGER), "int")
            )
        ),
    ),
    (
        None,
        Optional[int],
        lambda: fk_scalar(
            union=literals_pb2.Union(
                value=fk_scalar(none_type=literals_pb2.Void()),
                type=fk_tag(fk_type(simple=types_pb2.NONE), "none"),
            )
        ),
    ),
    (
        File("s3://b/f.csv"),
        File,
        lambda: fk_scalar(
            blob=literals_pb2.Blob(
                metadata=literals_pb2.BlobMetadata(type=types_pb2.BlobType(format="", dimensionality=0)),
                uri="s3://b/f.csv",
            )
        ),
    ),
    (
        Directory("s3://b/d"),
        Directory,
        lambda: fk_scalar(
            blob=literals_pb2.Blob(
                metadata=literals_pb2.BlobMetadata(type=types_pb2.BlobType(format="", dimensionality=1)),
                uri="s3://b/d",
            )
        ),
    ),
    # flytekit's JSON (FLYTE_USE_OLD_DC_FORMAT) form of a dataclass: `json_format.Parse(to_json())`
    (
        Point(1, 2.5),
        Point,
        lambda: fk_scalar(generic=json_format.Parse('{"x": 1, "y": 2.5}', struct_pb2.Struct())),
    ),
]


@needs_flyteidl
@pytest.mark.parametrize(
    ("value", "tp", "make"), FLYTEKIT_LITERALS, ids=[repr(value)[:40] for value, _, _ in FLYTEKIT_LITERALS]
)
def test_literal_matches_flytekit_both_ways(value: Any, tp: Any, make: Any) -> None:
    expected = make()
    assert theirs(to_literal(value, tp), literals_pb2.Literal) == expected
    assert to_python(ours(expected, core.Literal), tp) == value


def msgpack_dumps(value: Any) -> bytes:
    """A minimal msgpack encoder for fixtures (msgpack-python is not installed)."""
    if value is None:
        return b"\xc0"
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        return bytes([value]) if 0 <= value < 128 else b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return (
            b"\xd9" + bytes([len(raw)]) + raw
            if len(raw) < 256
            else b"\xda" + struct.pack(">H", len(raw)) + raw
        )
    if isinstance(value, list):
        return b"\xdc" + struct.pack(">H", len(value)) + b"".join(msgpack_dumps(v) for v in value)
    assert isinstance(value, dict)
    return (
        b"\xde"
        + struct.pack(">H", len(value))
        + b"".join(msgpack_dumps(k) + msgpack_dumps(v) for k, v in value.items())
    )


@needs_flyteidl
def test_reads_flytekit_msgpack_dataclass() -> None:
    # What flytekit ≥1.14 sends by default: mashumaro's msgpack of the dataclass, files as {"path"}.
    payload = {
        "name": "j",
        "at": "2024-01-05T10:30:00.250000+00:00",
        "every": 5400.0,
        "color": "green",
        "points": [{"x": 1, "y": 0.5}, {"x": -2, "y": 3.25}],
        "inputs": {"a": {"path": "s3://b/a.csv"}},
        "out": {"path": "s3://b/out"},
        "day": "2024-01-05",
    }
    lit = fk_scalar(binary=literals_pb2.Binary(value=msgpack_dumps(payload), tag="msgpack"))
    assert to_python(ours(lit, core.Literal), Job) == JOB
    assert literal_to_jsonable(ours(lit, core.Literal)) == payload


def test_reads_flytekit_msgpack_dict_and_rejects_other_binary_tags() -> None:
    lit = core.Literal(
        scalar=core.Scalar(binary=core.Binary(value=msgpack_dumps({"a": [1, 2]}), tag="msgpack"))
    )
    assert to_python(wire(lit), dict[str, list[int]]) == {"a": [1, 2]}
    other = core.Literal(scalar=core.Scalar(binary=core.Binary(value=b"\x00", tag="pickle")))
    with pytest.raises(InputError, match="unsupported binary literal format 'pickle'"):
        to_python(other, Point)


@needs_flyteidl
def test_reads_struct_numbers_as_ints_where_ints_are_declared() -> None:
    # After the wire every Struct number is a double; flytekit's `_fix_dataclass_int` undoes that.
    lit = fk_scalar(generic=json_format.Parse('{"x": 3.0}', struct_pb2.Struct()))
    point = to_python(ours(lit, core.Literal), Point)
    assert point == Point(3) and type(point.x) is int


@needs_flyteidl
def test_reads_console_float_for_int_like_flytekit() -> None:
    assert to_python(ours(fk_primitive(float_value=4.0), core.Literal), int) == 4
    with pytest.raises(InputError, match="expected an integer"):
        to_python(ours(fk_primitive(float_value=4.5), core.Literal), int)


@needs_flyteidl
def test_union_read_follows_the_stored_tag() -> None:
    # A str "5" sent by flytekit for `int | str` stays a string: the tag says which member it is.
    fk = fk_scalar(
        union=literals_pb2.Union(
            value=fk_primitive(string_value="5"), type=fk_tag(fk_type(simple=types_pb2.STRING), "str")
        )
    )
    assert to_python(ours(fk, core.Literal), Union[int, str]) == "5"
    # Same tag for two members: the stored type decides.
    lst = fk_type(collection_type=fk_type(simple=types_pb2.STRING))
    fk_list = fk_scalar(
        union=literals_pb2.Union(
            value=literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=[])),
            type=fk_tag(lst, "Typed List"),
        )
    )
    assert to_python(ours(fk_list, core.Literal), Union[list[int], list[str]]) == []
    assert type(to_python(ours(fk_list, core.Literal), Optional[list[str]])) is list


def test_plain_literal_for_union_and_union_literal_for_plain_type_are_read() -> None:
    assert (
        to_python(core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=2))), Optional[int]) == 2
    )
    assert to_python(core.Literal(scalar=core.Scalar(none_type=core.Void())), Optional[int]) is None
    assert to_python(to_literal(3, Optional[int]), int) == 3


def test_file_with_a_format_is_still_a_file() -> None:
    # FlyteFile[csv] has format "csv"; flytekit checks only the dimensionality.
    blob = core.Blob(metadata=core.BlobMetadata(type=core.BlobType(format="csv")), uri="s3://b/x.csv")
    assert to_python(core.Literal(scalar=core.Scalar(blob=blob)), File) == File("s3://b/x.csv")
    with pytest.raises(InputError, match="expected a directory path or URI, got the blob 's3://b/x.csv'"):
        to_python(core.Literal(scalar=core.Scalar(blob=blob)), Directory)


@pytest.mark.parametrize(
    ("literal", "tp", "message"),
    [
        (
            core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value="5"))),
            int,
            "expected an integer, got the primitive '5'",
        ),
        (core.Literal(collection=core.LiteralCollection()), dict[str, int], "got a collection literal"),
        (core.Literal(), str, "got an empty literal"),
        (
            core.Literal(
                collection=core.LiteralCollection(
                    literals=[core.Literal(scalar=core.Scalar(none_type=core.Void()))]
                )
            ),
            list[int],
            "[0]: expected an integer, got none",
        ),
        (
            core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value="blue"))),
            Color,
            "expected one of 'red', 'green'",
        ),
        (
            core.Literal(offloaded_metadata=core.LiteralOffloadedMetadata(uri="s3://o")),
            int,
            "offloaded to s3://o",
        ),
        (
            core.Literal(scalar=core.Scalar(generic=pb.Struct.from_dict({"x": 1, "z": 2}))),
            Point,
            "unknown field 'z' for Point",
        ),
    ],
    ids=repr,
)
def test_to_python_errors(literal: core.Literal, tp: Any, message: str) -> None:
    with pytest.raises(InputError) as info:
        to_python(literal, tp)
    assert message in str(info.value)


def test_to_literal_errors() -> None:
    with pytest.raises(InputError, match=r"\[1\]: expected an integer, got the string 'x'"):
        to_literal([1, "x"], list[int])
    with pytest.raises(InputError, match="does not fit in a 64-bit integer"):
        to_literal(2**63, int)
    with pytest.raises(InputError, match="expected a value of type int | None"):
        to_literal("x", Optional[int])
    assert to_literal("red", Color) == to_literal(Color.RED, Color)  # flytekit accepts the value too


# ---------------------------------------------------------------------------------------------
# Maps of named values


def test_literal_map_and_back() -> None:
    types = {"a": int, "b": Optional[str], "c": list[Point]}
    values = {"a": 1, "b": None, "c": [Point(2)]}
    lm = wire(literal_map(values, types))
    assert set(lm.literals) == {"a", "b", "c"}
    assert python_values(lm, types) == values


def test_literal_map_errors_name_the_input() -> None:
    with pytest.raises(InputError, match="input 'a': expected an integer, got the string 'x'"):
        literal_map({"a": "x"}, {"a": int})
    with pytest.raises(InputError, match="unexpected input 'z' \\(known: a\\)"):
        literal_map({"z": 1}, {"a": int})
    with pytest.raises(InputError, match="'a': expected an integer"):
        python_values(core.LiteralMap(literals={"a": to_literal("x", str)}), {"a": int})


# ---------------------------------------------------------------------------------------------
# Python types for remote entities


def test_python_type_for_each_literal_type() -> None:
    assert python_type(literal_type(int)) is int
    assert python_type(literal_type(dt.date)) is dt.datetime  # a DATETIME cannot tell
    assert python_type(literal_type(dt.timedelta)) is dt.timedelta
    assert python_type(literal_type(list[dict[str, float]])) == list[dict[str, float]]
    assert python_type(literal_type(Optional[int])) == Optional[int]
    assert python_type(literal_type(Union[int, str, File])) == Union[int, str, File]
    assert python_type(literal_type(Directory)) is Directory


def test_python_type_for_an_enum_is_a_generated_enum_with_the_same_values() -> None:
    generated = python_type(literal_type(Color))
    assert issubclass(generated, enum.Enum)
    assert [m.value for m in generated] == ["red", "green"]
    assert python_type(literal_type(Color)) is generated  # stable across calls
    odd = python_type(core.LiteralType(enum_type=core.EnumType(values=["a b", "_x", "ok"])))
    assert [m.value for m in odd] == ["a b", "_x", "ok"]
    assert to_python(wire(to_literal(odd("ok"), odd)), odd) is odd("ok")


def test_python_type_for_a_struct_is_a_json_object_named_by_its_schema() -> None:
    pt = python_type(literal_type(Point))
    assert issubclass(pt, JSONObject) and type_name(pt) == "Point (JSON object)"
    assert pt.json_schema is not None and pt.json_schema["required"] == ["x"]
    assert python_type(literal_type(Point)) is pt
    assert python_type(core.LiteralType(simple=ST.STRUCT)) is JSONObject
    # values of it are plain JSON objects, sent as Structs (flytekit decodes them into its dataclass)
    lit = to_literal({"x": 1}, pt)
    assert lit.scalar.generic.to_dict() == {"x": 1}
    assert to_python(wire(to_literal(Point(4), Point)), pt) == {"x": 4.0, "y": 0.5}


@pytest.mark.parametrize(
    "lt",
    [
        core.LiteralType(simple=ST.BINARY),
        core.LiteralType(simple=ST.ERROR),
        core.LiteralType(schema=core.SchemaType()),
        core.LiteralType(),
    ],
    ids=repr,
)
def test_python_type_refuses_what_has_no_python_equivalent(lt: core.LiteralType) -> None:
    with pytest.raises(UnsupportedTypeError, match="no supported Python equivalent"):
        python_type(lt)


# ---------------------------------------------------------------------------------------------
# JSON view of any literal


def test_literal_to_jsonable() -> None:
    values: dict[str, Any] = {
        "i": 1,
        "f": 1.5,
        "s": "x",
        "b": True,
        "dt": dt.datetime(2024, 1, 5, tzinfo=UTC),
        "td": dt.timedelta(seconds=90),
        "e": Color.RED,
        "o": None,
        "u": 3,
        "l": [1],
        "m": {"k": "v"},
        "file": File("s3://b/f"),
        "p": Point(1),
    }
    types: dict[str, Any] = {
        "i": int,
        "f": float,
        "s": str,
        "b": bool,
        "dt": dt.datetime,
        "td": dt.timedelta,
        "e": Color,
        "o": Optional[int],
        "u": Union[str, int],
        "l": list[int],
        "m": dict[str, str],
        "file": File,
        "p": Point,
    }
    lm = wire(literal_map(values, types))
    seen = {name: literal_to_jsonable(lit) for name, lit in lm.literals.items()}
    assert seen == {
        "i": 1,
        "f": 1.5,
        "s": "x",
        "b": True,
        "dt": "2024-01-05T00:00:00+00:00",
        "td": 90.0,
        "e": "red",
        "o": None,
        "u": 3,
        "l": [1],
        "m": {"k": "v"},
        "file": "s3://b/f",
        "p": {"x": 1.0, "y": 0.5},
    }
    json.dumps(seen)  # printable as JSON
    error = core.Literal(scalar=core.Scalar(error=core.Error(failed_node_id="n0", message="boom")))
    assert literal_to_jsonable(error) == {"error": "boom", "failed_node_id": "n0"}
    assert literal_to_jsonable(core.Literal()) is None


# ---------------------------------------------------------------------------------------------
# The msgpack reader, against byte strings from the msgpack specification


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00", 0),
        (b"\x7f", 127),
        (b"\xff", -1),
        (b"\xe0", -32),
        (b"\xcc\xff", 255),
        (b"\xcd\x01\x00", 256),
        (b"\xce\x00\x01\x00\x00", 65536),
        (b"\xcf" + (2**64 - 1).to_bytes(8, "big"), 2**64 - 1),
        (b"\xd0\x80", -128),
        (b"\xd1\xff\x7f", -129),
        (b"\xd2\xff\xff\x7f\xff", -32769),
        (b"\xd3" + (-(2**63)).to_bytes(8, "big", signed=True), -(2**63)),
        (b"\xca\x3f\xc0\x00\x00", 1.5),
        (b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 1.5),
        (b"\xc0", None),
        (b"\xc2", False),
        (b"\xc3", True),
        (b"\xa3abc", "abc"),
        (b"\xa0", ""),
        (b"\xd9\x03abc", "abc"),
        (b"\xda\x00\x02\xc3\xa9", "é"),
        (b"\xdb\x00\x00\x00\x01z", "z"),
        (b"\xc4\x02\x01\x02", b"\x01\x02"),
        (b"\xc5\x00\x01\xff", b"\xff"),
        (b"\x92\x01\xa1a", [1, "a"]),
        (b"\x90", []),
        (b"\xdc\x00\x01\xc0", [None]),
        (b"\xdd\x00\x00\x00\x01\x05", [5]),
        (b"\x81\xa1a\xc3", {"a": True}),
        (b"\x80", {}),
        (b"\xde\x00\x01\xa1a\x91\x81\xa1b\xc2", {"a": [{"b": False}]}),
        (b"\xdf\x00\x00\x00\x01\x01\x02", {1: 2}),
    ],
    ids=repr,
)
def test_msgpack_reader(data: bytes, expected: Any) -> None:
    value = msgpack_loads(data)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "invalid msgpack data"),
        (b"\xa3ab", "invalid msgpack data"),
        (b"\xcd\x01", "invalid msgpack data"),
        (b"\x92\x01", "invalid msgpack data"),
        (b"\x01\x02", "invalid msgpack data"),  # data after the object
        (b"\xd4\x01\x00", "extension type 1 is not supported"),
        (b"\xc1", "invalid msgpack data"),
        (b"\x81\x90\x01", "invalid msgpack data"),  # a list as a map key
    ],
    ids=repr,
)
def test_msgpack_reader_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        msgpack_loads(data)


def test_test_encoder_agrees_with_the_reader() -> None:
    value = {"a": [1, -5, 2.5, None, True, "é" * 300], "b": {}}
    assert msgpack_loads(msgpack_dumps(value)) == value
