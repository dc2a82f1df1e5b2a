"""Turn a node's bindings into literals, given the outputs of the nodes that ran before it.

`promise.node_id` "" or `start-node` reads the workflow's inputs; scalar, collection and map bindings are
literal values; `attr_path` reaches into a map, a list or a Struct (dataclass attribute access).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from asyncrun import engine
from asyncrun._proto.flyteidl import core
from asyncrun._proto.google import protobuf
from asyncrun.sandbox._compiler import START_NODE

__all__ = ["BindingError", "LiteralValues", "resolve_binding", "resolve_bindings"]

NodeOutputs = Mapping[str, Mapping[str, core.Literal]]


class BindingError(engine.BindingError):
    """A binding reads an output that does not exist or an attribute path that does not resolve."""


def _struct_value_literal(value: protobuf.Value, where: str) -> core.Literal:
    if value.string_value is not None:
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value=value.string_value)))
    if value.bool_value is not None:
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=value.bool_value)))
    if value.number_value is not None:
        number = value.number_value
        primitive = (
            core.Primitive(integer=int(number)) if number.is_integer() else core.Primitive(float_value=number)
        )
        return core.Literal(scalar=core.Scalar(primitive=primitive))
    if value.struct_value is not None:
        return core.Literal(scalar=core.Scalar(generic=value.struct_value))
    if value.null_value is not None:
        return core.Literal(scalar=core.Scalar(none_type=core.Void()))
    if value.list_value is not None:
        return core.Literal(
            collection=core.LiteralCollection(
                literals=[_struct_value_literal(item, where) for item in value.list_value.values]
            )
        )
    raise BindingError(f"{where}: empty struct value")


def _msgpack_literal(value: Any) -> core.Literal:
    """A value read out of a msgpack binary, as FlytePropeller converts it: primitives as Primitives, lists
    as collections of such literals (a map task can iterate `dc.items`), the rest as msgpack again."""
    if isinstance(value, bool):
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=value)))
    if isinstance(value, int):
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=value)))
    if isinstance(value, float):
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=value)))
    if isinstance(value, str):
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value=value)))
    if value is None:
        return core.Literal(scalar=core.Scalar(none_type=core.Void()))
    if isinstance(value, list):
        return core.Literal(
            collection=core.LiteralCollection(literals=[_msgpack_literal(item) for item in value])
        )
    import msgpack

    return core.Literal(scalar=core.Scalar(binary=core.Binary(value=msgpack.packb(value), tag="msgpack")))


def _follow_msgpack(binary: core.Binary, path: list[core.PromiseAttribute], where: str) -> core.Literal:
    """Attribute access into a msgpack-encoded dataclass or dict (flytekit's default encoding)."""
    import msgpack

    try:
        current: Any = msgpack.unpackb(binary.value, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # corrupt, truncated, unhashable key
        raise BindingError(
            f"{where}: the msgpack value cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    for attribute in path:
        key: str | int | None = (
            attribute.string_value if attribute.string_value is not None else attribute.int_value
        )
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            raise BindingError(f"{where}: attribute {key!r} does not exist") from None
    return _msgpack_literal(current)


def _follow(literal: core.Literal, path: Iterable[core.PromiseAttribute], where: str) -> core.Literal:
    path = list(path)
    binary = literal.scalar.binary if literal.scalar is not None else None
    if path and binary is not None and binary.tag == "msgpack":
        return _follow_msgpack(binary, path, where)
    current: core.Literal | protobuf.Value = literal
    for attribute in path:
        key: str | int | None = (
            attribute.string_value if attribute.string_value is not None else attribute.int_value
        )
        if (
            isinstance(current, core.Literal)
            and current.scalar is not None
            and current.scalar.generic is not None
        ):
            current = protobuf.Value(struct_value=current.scalar.generic)
        try:
            if isinstance(current, protobuf.Value):
                if isinstance(key, str) and current.struct_value is not None:
                    current = current.struct_value.fields[key]
                elif isinstance(key, int) and current.list_value is not None:
                    current = current.list_value.values[key]
                else:
                    raise BindingError(f"{where}: cannot read attribute {key!r} of a struct value")
            elif isinstance(key, str) and current.map is not None:
                current = current.map.literals[key]
            elif isinstance(key, int) and current.collection is not None:
                current = current.collection.literals[key]
            else:
                raise BindingError(
                    f"{where}: cannot read attribute {key!r}; the sandbox resolves attribute "
                    "paths into maps, lists, Struct values and msgpack binaries only"
                )
        except (KeyError, IndexError):
            raise BindingError(f"{where}: attribute {key!r} does not exist") from None
    if isinstance(current, protobuf.Value):
        return _struct_value_literal(current, where)
    return current


def resolve_binding(data: core.BindingData | None, outputs: NodeOutputs, where: str) -> core.Literal:
    """The literal a binding stands for.

    Args:
        data: the binding.
        outputs: outputs by node id; `start-node` holds the workflow's inputs.
        where: names the binding in error messages.

    Raises:
        BindingError: the binding is empty or reads something that does not exist.
    """
    if data is None:
        raise BindingError(f"{where}: empty binding")
    literal: core.Literal
    if data.promise is not None:
        node_id = data.promise.node_id or START_NODE
        values = outputs.get(node_id)
        if values is None or data.promise.var not in values:
            source = "the workflow inputs" if node_id == START_NODE else f"the outputs of node {node_id!r}"
            raise BindingError(f"{where}: {data.promise.var!r} is missing from {source}")
        literal = _follow(values[data.promise.var], data.promise.attr_path, where)
    elif data.scalar is not None:
        literal = core.Literal(scalar=data.scalar)
    elif data.collection is not None:
        literal = core.Literal(
            collection=core.LiteralCollection(
                literals=[resolve_binding(item, outputs, where) for item in data.collection.bindings]
            )
        )
    elif data.map is not None:
        literal = core.Literal(
            map=core.LiteralMap(
                literals={
                    key: resolve_binding(item, outputs, where) for key, item in data.map.bindings.items()
                }
            )
        )
    elif data.offloaded_metadata is not None:
        literal = core.Literal(offloaded_metadata=data.offloaded_metadata)
    else:
        raise BindingError(f"{where}: empty binding")
    target = data.union.target_type if data.union is not None else None
    already_union = literal.scalar is not None and literal.scalar.union is not None
    if target is not None and not already_union:
        # Propeller wraps a value bound to a union-typed input in Scalar.union (flytekit expects it).
        literal = core.Literal(scalar=core.Scalar(union=core.Union(value=literal, type=target)))
    return literal


def resolve_bindings(
    bindings: Iterable[core.Binding], outputs: NodeOutputs, where: str
) -> dict[str, core.Literal]:
    """Resolve a list of bindings into a name → literal map (see `resolve_binding`)."""
    return {
        binding.var: resolve_binding(binding.binding, outputs, f"{where} {binding.var!r}")
        for binding in bindings
    }


NULL = core.Literal(scalar=core.Scalar(none_type=core.Void()))


def _unwrap(literal: core.Literal) -> core.Literal:
    """The value inside union wrappers (Optional inputs arrive as Scalar.union)."""
    while literal.scalar is not None and literal.scalar.union is not None and literal.scalar.union.value:
        literal = literal.scalar.union.value
    return literal


def primitive_value(primitive: core.Primitive) -> tuple[str, Any]:
    """(type tag, Python value) of a Primitive; datetimes and durations as given."""
    for tag, name in (
        ("integer", "integer"),
        ("float", "float_value"),
        ("string", "string_value"),
        ("boolean", "boolean"),
        ("datetime", "datetime"),
        ("duration", "duration"),
    ):
        value = getattr(primitive, name)
        if value is not None:
            return tag, value
    raise engine.UnsupportedValue("an empty primitive")


class LiteralValues:
    """The engine's values in the sandbox: `core.Literal`s, bindings are `core.Binding` lists."""

    def resolve(self, bindings: Any, results: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, Any]:
        return resolve_bindings(bindings or [], results, where)

    def primitive(self, value: Any) -> tuple[str, Any]:
        literal = _unwrap(value)
        if literal.scalar is None or literal.scalar.primitive is None:
            raise engine.UnsupportedValue("the value is not a primitive")
        return primitive_value(literal.scalar.primitive)

    def items(self, value: Any) -> list[Any] | None:
        literal = _unwrap(value)
        return list(literal.collection.literals) if literal.collection is not None else None

    def collection(self, items: list[Any]) -> Any:
        return core.Literal(
            collection=core.LiteralCollection(literals=[NULL if item is None else item for item in items])
        )

    def error_value(self, message: str, node_id: str) -> Any:
        error = core.Literal(scalar=core.Scalar(error=core.Error(failed_node_id=node_id, message=message)))
        error_type = core.LiteralType(
            simple=core.SimpleType.ERROR, structure=core.TypeStructure(tag="FlyteError")
        )
        return core.Literal(scalar=core.Scalar(union=core.Union(value=error, type=error_type)))
