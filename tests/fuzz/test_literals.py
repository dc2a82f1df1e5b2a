"""Fuzz the Flyte literal side of the type engine (`asyncrun.sdk._literals`).

Typed values survive value → literal → wire bytes → literal → value; and any literal at all (what a
control plane or another SDK may send) read as any supported type gives a value or an InputError.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrun._exceptions import InputError
from asyncrun._proto.flyteidl import core
from asyncrun._proto.google import protobuf as pb
from asyncrun.sdk._literals import literal_to_jsonable, to_literal, to_python
from asyncrun.sdk._type_engine import matches

from .strategies import budget, json_values
from .test_cli_params import _STRUCTURED, TYPES, Color, _aware, datetimes

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Structs carry numbers as doubles: integers inside dataclasses and JSON objects are exact up to 2**53.
_SCALARS: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, INT64),
    (float, st.floats(allow_nan=False)),
    (str, st.text()),
    (bool, st.booleans()),
    (dt.datetime, datetimes.map(_aware)),
    (dt.date, st.dates()),
    (dt.timedelta, st.timedeltas(min_value=dt.timedelta(days=-(10**8)), max_value=dt.timedelta(days=10**8))),
    (Color, st.sampled_from(Color)),
    (list[int], st.lists(INT64, max_size=4)),
    (dict[str, float], st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False), max_size=3)),
]


def _wire(literal: core.Literal) -> core.Literal:
    return core.Literal.parse(bytes(literal))


@pytest.mark.parametrize(
    ("tp", "values"), _SCALARS + _STRUCTURED, ids=[repr(tp) for tp, _ in _SCALARS + _STRUCTURED]
)
@settings(max_examples=budget(40))
@given(data=st.data())
def test_values_survive_the_wire(tp: Any, values: st.SearchStrategy[Any], data: st.DataObject) -> None:
    value = data.draw(values)
    try:
        literal = to_literal(value, tp)
    except InputError as exc:
        # Only what Flyte cannot carry exactly is refused, and the message says so.
        reasons = ("not exact in a Flyte Struct", "does not fit in a 64-bit integer", "is out of range")
        assert any(reason in str(exc) for reason in reasons), exc
        return
    assert to_python(_wire(literal), tp) == value


def _fits_a_timestamp(value: dt.datetime) -> bool:
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        return False
    return True


def _packed(value: Any) -> bytes:
    try:
        return bytes(msgpack.packb(value))
    except OverflowError:  # an integer msgpack cannot hold
        return b"\xc0"


primitives = st.one_of(
    INT64.map(lambda v: core.Primitive(integer=v)),
    st.floats().map(lambda v: core.Primitive(float_value=v)),
    st.text().map(lambda v: core.Primitive(string_value=v)),
    st.booleans().map(lambda v: core.Primitive(boolean=v)),
    datetimes.map(_aware).filter(_fits_a_timestamp).map(lambda v: core.Primitive(datetime=v)),
    st.timedeltas().map(lambda v: core.Primitive(duration=v)),
)
scalars = st.one_of(
    primitives.map(lambda p: core.Scalar(primitive=p)),
    st.just(core.Scalar(none_type=core.Void())),
    st.text(max_size=10).map(lambda uri: core.Scalar(blob=core.Blob(uri=uri))),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3).map(
        lambda d: core.Scalar(generic=pb.Struct.from_dict(d))
    ),
    st.one_of(st.binary(max_size=20), json_values.map(_packed)).map(
        lambda b: core.Scalar(binary=core.Binary(value=b, tag="msgpack"))
    ),
    st.just(core.Scalar(error=core.Error(failed_node_id="n", message="boom"))),
)
literals = st.recursive(
    st.one_of(scalars.map(lambda s: core.Literal(scalar=s)), st.just(core.Literal())),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(
            lambda v: core.Literal(collection=core.LiteralCollection(literals=v))
        ),
        st.dictionaries(st.text(max_size=4), children, max_size=3).map(
            lambda v: core.Literal(map=core.LiteralMap(literals=v))
        ),
        children.map(lambda v: core.Literal(scalar=core.Scalar(union=core.Union(value=v)))),
    ),
    max_leaves=8,
)


@pytest.mark.parametrize("tp", TYPES, ids=repr)
@settings(max_examples=budget(40))
@given(literal=literals)
def test_any_literal_reads_as_a_value_or_an_input_error(tp: Any, literal: core.Literal) -> None:
    try:
        value = to_python(_wire(literal), tp)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert matches(value, tp), value


@settings(max_examples=budget(200))
@given(literal=literals)
def test_any_literal_has_a_json_view(literal: core.Literal) -> None:
    import json

    json.dumps(literal_to_jsonable(_wire(literal)))


@pytest.mark.parametrize("x", [2**53 + 1, -(2**53) - 1, 2**63 - 1])
def test_integers_a_struct_would_round_are_refused(x: int) -> None:
    """Regression: Point(x=2**53 + 1) in a dataclass came back as 2**53, silently."""
    from .test_cli_params import Point

    with pytest.raises(InputError, match=r"x: .* is not exact in a Flyte Struct"):
        to_literal(Point(x=x), Point)
    assert to_python(_wire(to_literal(Point(x=2**53), Point)), Point) == Point(x=2**53)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(minutes=1))),
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=1))),
    ],
    ids=["before-year-1-utc", "after-9999-utc"],
)
def test_date_times_outside_a_timestamp_are_refused(value: dt.datetime) -> None:
    """Regression: `--when 0001-01-01T00:00:00+00:01` parsed, then failed with an OverflowError
    traceback when the literal was serialized for a remote run."""
    with pytest.raises(InputError, match="is out of range"):
        to_literal(value, dt.datetime)
    edge = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert to_python(_wire(to_literal(edge, dt.datetime)), dt.datetime) == edge
