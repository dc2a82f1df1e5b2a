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
