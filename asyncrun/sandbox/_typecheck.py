"""Does a literal fit a literal type, and can one literal type be used where another is expected?

A pragmatic subset of flyteadmin's `validators.IsInstance` / `AreTypesCastable`: strict on what users get
wrong (a string for an integer, a scalar for a list, a missing map), lenient where flytekit and propeller
are lenient (blob formats, structured-dataset formats, type metadata and annotations, an integer where a
float is expected).
"""

from __future__ import annotations

from asyncrun._betterproto import betterproto2
from asyncrun._proto.flyteidl import core

__all__ = ["describe_literal", "describe_type", "literal_matches", "types_castable"]

_PRIMITIVE_FOR_SIMPLE = {
    core.SimpleType.INTEGER: ("integer",),
    # flytekit and propeller accept an int where a float is declared.
    core.SimpleType.FLOAT: ("float_value", "integer"),
    core.SimpleType.STRING: ("string_value",),
    core.SimpleType.BOOLEAN: ("boolean",),
    core.SimpleType.DATETIME: ("datetime",),
    core.SimpleType.DURATION: ("duration",),
}


def _oneof(message: betterproto2.Message, group: str) -> tuple[str, object]:
    name, value = betterproto2.which_one_of(message, group)
    return name, value


def literal_matches(literal: core.Literal, literal_type: core.LiteralType | None) -> bool:
    """True when `literal` is an instance of `literal_type` (an unset type accepts anything)."""
    if literal_type is None:
        return True
    type_kind, type_value = _oneof(literal_type, "type")
    if not type_kind:
        return True
    kind, value = _oneof(literal, "value")
    if kind == "offloaded_metadata":
        # The value lives elsewhere; only its declared type can be checked.
        inferred = literal.offloaded_metadata.inferred_type if literal.offloaded_metadata else None
        return inferred is None or types_castable(inferred, literal_type)
    if type_kind == "union_type":
        assert isinstance(type_value, core.UnionType)
        if literal.scalar is not None and literal.scalar.union is not None and literal.scalar.union.value:
            literal = literal.scalar.union.value
        return any(literal_matches(literal, variant) for variant in type_value.variants)
    if literal.scalar is not None and literal.scalar.union is not None and literal.scalar.union.value:
        # A union-wrapped value passed where its variant type is declared.
        return literal_matches(literal.scalar.union.value, literal_type)
    if type_kind == "collection_type":
        assert isinstance(type_value, core.LiteralType)
        return literal.collection is not None and all(
            literal_matches(item, type_value) for item in literal.collection.literals
        )
    if type_kind == "map_value_type":
        assert isinstance(type_value, core.LiteralType)
        return literal.map is not None and all(
            literal_matches(item, type_value) for item in literal.map.literals.values()
        )
    scalar = literal.scalar
    if scalar is None:
        return False
    scalar_kind, scalar_value = _oneof(scalar, "value")
    if type_kind == "simple":
        return _scalar_matches_simple(scalar, scalar_kind, literal_type.simple)
    if type_kind == "blob":
        assert isinstance(type_value, core.BlobType)
        if scalar.blob is None:
            return False
        # `is not None`: an all-default message is falsy in betterproto, but a SINGLE blob type is still set.
        metadata = scalar.blob.metadata
        blob_type = metadata.type if metadata is not None else None
        return blob_type is None or blob_type.dimensionality == type_value.dimensionality
    if type_kind == "enum_type":
        assert isinstance(type_value, core.EnumType)
        primitive = scalar.primitive
        return (
            primitive is not None
            and primitive.string_value is not None
            and (not type_value.values or primitive.string_value in type_value.values)
        )
    if type_kind == "schema":
        return scalar_kind == "schema"
    if type_kind == "structured_dataset_type":
        return scalar_kind == "structured_dataset"
    del scalar_value
    return False


def _scalar_matches_simple(scalar: core.Scalar, scalar_kind: str, simple: core.SimpleType | None) -> bool:
    if simple == core.SimpleType.NONE:
        return scalar_kind == "none_type"
    if simple in _PRIMITIVE_FOR_SIMPLE:
        if scalar.primitive is None:
            return False
        primitive_kind, _ = _oneof(scalar.primitive, "value")
        return primitive_kind in _PRIMITIVE_FOR_SIMPLE[simple]
    if simple == core.SimpleType.STRUCT:
        # flytekit ≥ 1.14 sends dataclasses and dicts as msgpack Binary; older versions as a Struct.
        return scalar_kind in ("generic", "binary")
    if simple == core.SimpleType.BINARY:
        return scalar_kind == "binary"
    if simple == core.SimpleType.ERROR:
        return scalar_kind == "error"
    return False


def _normalized(literal_type: core.LiteralType) -> bytes:
    """The type without metadata, annotation and structure, which do not change what values fit."""
    copy = core.LiteralType.parse(bytes(literal_type))
    copy.metadata = None
    copy.annotation = None
    copy.structure = None
    return bytes(copy)


def types_castable(source: core.LiteralType | None, target: core.LiteralType | None) -> bool:
    """True when a value of type `source` may be used where `target` is declared."""
    if source is None or target is None:
        return True
    source_kind, source_value = _oneof(source, "type")
    target_kind, target_value = _oneof(target, "type")
    if not source_kind or not target_kind:
        return True
    if target_kind == "union_type":
        assert isinstance(target_value, core.UnionType)
        if source_kind == "union_type":
            assert isinstance(source_value, core.UnionType)
            return all(
                any(types_castable(s, t) for t in target_value.variants) for s in source_value.variants
            )
        return any(types_castable(source, variant) for variant in target_value.variants)
    if source.simple == core.SimpleType.INTEGER and target.simple == core.SimpleType.FLOAT:
        return True
    if source_kind != target_kind:
        return False
    if source_kind in ("collection_type", "map_value_type"):
        assert isinstance(source_value, core.LiteralType) and isinstance(target_value, core.LiteralType)
        return types_castable(source_value, target_value)
    if source_kind == "blob":
        assert isinstance(source_value, core.BlobType) and isinstance(target_value, core.BlobType)
        return source_value.dimensionality == target_value.dimensionality
    if source_kind in ("structured_dataset_type", "schema"):
        return True
    return _normalized(source) == _normalized(target)


def describe_type(literal_type: core.LiteralType | None) -> str:
    """A short, readable rendering of a literal type for error messages (`list[INTEGER]`)."""
    if literal_type is None:
        return "any"
    kind, value = _oneof(literal_type, "type")
    if kind == "simple":
        return literal_type.simple.name if literal_type.simple is not None else "NONE"
    if kind == "collection_type":
        assert isinstance(value, core.LiteralType)
        return f"list[{describe_type(value)}]"
    if kind == "map_value_type":
        assert isinstance(value, core.LiteralType)
        return f"dict[str, {describe_type(value)}]"
    if kind == "union_type":
        assert isinstance(value, core.UnionType)
        return " | ".join(describe_type(variant) for variant in value.variants)
    if kind == "blob":
        assert isinstance(value, core.BlobType)
        return "directory" if value.dimensionality == core.BlobTypeBlobDimensionality.MULTIPART else "file"
    if kind == "enum_type":
        assert isinstance(value, core.EnumType)
        return f"enum{{{', '.join(value.values)}}}"
    return kind or "any"


def describe_literal(literal: core.Literal) -> str:
    """A short rendering of what a literal holds (`string`, `list`, `map`, `blob`…)."""
    kind, value = _oneof(literal, "value")
    if kind == "scalar":
        assert isinstance(value, core.Scalar)
        scalar_kind, scalar_value = _oneof(value, "value")
        if scalar_kind == "primitive":
            assert isinstance(scalar_value, core.Primitive)
            primitive_kind, primitive_value = _oneof(scalar_value, "value")
            return f"{primitive_kind.removesuffix('_value')} {primitive_value!r}"
        return scalar_kind or "empty scalar"
    return kind or "empty literal"
