"""Binding resolution in the sandbox (`sandbox._bindings`)."""

from __future__ import annotations

import msgpack
import pytest

from asyncrun._proto.flyteidl import core
from asyncrun.sandbox._bindings import BindingError, resolve_binding


def promise_into(binary: bytes, key: str) -> tuple[core.BindingData, dict[str, dict[str, core.Literal]]]:
    value = core.Literal(scalar=core.Scalar(binary=core.Binary(value=binary, tag="msgpack")))
    data = core.BindingData(
        promise=core.OutputReference(
            node_id="n0", var="o0", attr_path=[core.PromiseAttribute(string_value=key)]
        )
    )
    return data, {"n0": {"o0": value}}


def test_an_attribute_of_a_msgpack_value_is_followed() -> None:
    data, outputs = promise_into(msgpack.packb({"a": 3}), "a")
    literal = resolve_binding(data, outputs, "node n1 input x")
    assert literal.scalar is not None and literal.scalar.primitive == core.Primitive(integer=3)


@pytest.mark.parametrize("blob", [b"\xc1", b"\x81\xa1", msgpack.packb({"a": 1}) + b"\x01"])
def test_a_corrupt_msgpack_value_is_a_binding_error(blob: bytes) -> None:
    data, outputs = promise_into(blob, "a")
    with pytest.raises(BindingError, match="node n1 input x: the msgpack value cannot be read"):
        resolve_binding(data, outputs, "node n1 input x")


def test_a_list_inside_a_msgpack_value_is_a_collection() -> None:
    """`map_task(t)(x=model.items)` over a pydantic model or dataclass input (flytekit's remote suite,
    pydantic_wf): the array node needs a collection, as FlytePropeller makes it, not a msgpack list."""
    data, outputs = promise_into(
        msgpack.packb({"my_floats": [1.0, 2.5], "nested": [[1], {"k": "v"}]}), "my_floats"
    )
    literal = resolve_binding(data, outputs, "node n1 input x")
    assert literal.collection is not None
    assert [item.scalar.primitive for item in literal.collection.literals] == [
        core.Primitive(float_value=1.0),
        core.Primitive(float_value=2.5),
    ]
    data, outputs = promise_into(msgpack.packb({"nested": [[1], {"k": "v"}]}), "nested")
    nested = resolve_binding(data, outputs, "node n1 input x").collection.literals
    assert nested[0].collection.literals[0].scalar.primitive == core.Primitive(integer=1)
    assert msgpack.unpackb(nested[1].scalar.binary.value) == {"k": "v"}
