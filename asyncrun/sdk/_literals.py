"""Python values and types ⇄ Flyte literals and literal types, encoded as flytekit 1.16 encodes them.

The one module that imports the generated protobuf code, so local runs and `import asyncrun.cli`
never load betterproto2. Facts follow flytekit 1.16.31 (`flytekit/core/type_engine.py`,
`flytekit/types/file/file.py`, `flytekit/types/directory/types.py`): a launch plan registered by
either tool takes the same literals.

One deliberate difference: flytekit ≥1.14 writes dataclasses as msgpack bytes
(`Scalar.binary{tag="msgpack"}`); we write them as a `Scalar.generic` Struct (flytekit's older
form, which it still reads) and read both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import json
import operator
import typing
from types import GenericAlias
from typing import Any

from .._exceptions import InputError
from .._proto.flyteidl import core
from .._proto.google import protobuf as pb
from . import _type_engine as te
from ._files import Directory, File

__all__ = (
    "json_schema",
    "literal_map",
    "literal_to_jsonable",
    "literal_type",
    "python_type",
    "python_values",
    "to_literal",
    "to_python",
    "union_tag",
)

UTC = dt.UTC
NoneType = type(None)
MSGPACK = "msgpack"

_SIMPLE: dict[Any, core.SimpleType] = {
    int: core.SimpleType.INTEGER,
    float: core.SimpleType.FLOAT,
    str: core.SimpleType.STRING,
    bool: core.SimpleType.BOOLEAN,
    dt.datetime: core.SimpleType.DATETIME,
    # flytekit has no DATE type: a date travels as a DATETIME at midnight UTC.
    dt.date: core.SimpleType.DATETIME,
    dt.timedelta: core.SimpleType.DURATION,
    NoneType: core.SimpleType.NONE,
}
# flytekit writes the *name of its TypeTransformer* into each union variant's `structure.tag` and,
# when reading a union, only tries the members whose transformer has that name.
_SIMPLE_TAGS: dict[Any, str] = {
    int: "int",
    float: "float",
    str: "str",
    bool: "bool",
    dt.datetime: "datetime",
    dt.date: "date",
    dt.timedelta: "timedelta",
    NoneType: "none",
}


def _duration_from_timedelta(delta: dt.timedelta) -> pb.Duration:
    # protobuf wants `seconds` and `nanos` of the same sign; truncating division gives that.
    micros = delta // dt.timedelta(microseconds=1)
    seconds = abs(micros) // 1_000_000 * (1 if micros >= 0 else -1)
    return pb.Duration(seconds=seconds, nanos=(micros - seconds * 1_000_000) * 1000)


# betterproto2 0.10's generated `Duration.from_timedelta` gets negative durations with a fraction
# wrong (timedelta(seconds=-1.5) is sent as -0.5 s). Primitive.duration is serialized through it, so
# replace it while it is broken; the check makes this a no-op once the generator is fixed.
if pb.Duration.from_timedelta(dt.timedelta(microseconds=-1)).nanos != -1000:
    pb.Duration.from_timedelta = staticmethod(_duration_from_timedelta)  # type: ignore[method-assign,assignment]


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _is_sub(tp: Any, base: type | tuple[type, ...]) -> bool:
    return isinstance(tp, type) and issubclass(tp, base)


def _is_dataclass(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def union_tag(tp: Any) -> str:
    """The `structure.tag` flytekit gives a union variant of Python type `tp`."""
    tp = te.strip_annotated(tp)
    if tp in _SIMPLE_TAGS:
        return _SIMPLE_TAGS[tp]
    if te.union_members(tp) is not None:
        return "Typed Union"
    origin = typing.get_origin(tp)
    if origin is list:
        return "Typed List"
    if origin is dict or _is_sub(tp, te.JSONObject):
        return "Typed Dict"
    if _is_sub(tp, enum.Enum):
        return "DefaultEnumTransformer"
    if _is_sub(tp, File):
        return "FlyteFilePath"
    if _is_sub(tp, Directory):
        return "FlyteDirectory"
    return "Object-Dataclass-Transformer"


def _blob_type(tp: Any) -> core.BlobType:
    # flytekit's FlyteFile / FlyteDirectory without a format parameter: format "".
    single = _is_sub(tp, File)
    dims = core.BlobTypeBlobDimensionality.SINGLE if single else core.BlobTypeBlobDimensionality.MULTIPART
    return core.BlobType(format="", dimensionality=dims)


def literal_type(tp: Any) -> core.LiteralType:
    """The Flyte literal type of Python type `tp`.

    Raises:
        UnsupportedTypeError: `tp` is not supported.
    """
    te.check_supported(tp)
    return _literal_type(tp)


def _literal_type(tp: Any) -> core.LiteralType:
    tp = te.strip_annotated(tp)
    if tp in _SIMPLE:
        return core.LiteralType(simple=_SIMPLE[tp])
    members = te.union_members(tp)
    if members is not None:
        return core.LiteralType(union_type=core.UnionType(variants=[_variant_type(m) for m in members]))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return core.LiteralType(collection_type=_literal_type(args[0]))
    if origin is dict:
        return core.LiteralType(map_value_type=_literal_type(args[1]))
    if _is_sub(tp, enum.Enum):
        return core.LiteralType(enum_type=core.EnumType(values=[m.value for m in tp]))
    if _is_sub(tp, (File, Directory)):
        return core.LiteralType(blob=_blob_type(tp))
    if _is_sub(tp, te.JSONObject):
        metadata = pb.Struct.from_dict(tp.json_schema) if tp.json_schema else None
        return core.LiteralType(simple=core.SimpleType.STRUCT, metadata=metadata)
    # A dataclass: STRUCT with its JSON schema, and the field types in `structure.dataclass_type`
    # (FlytePropeller uses them to resolve attribute access such as `point.x`).
    fields = {f.name: _literal_type(field_type) for f, field_type in te.dataclass_fields(tp)}
    return core.LiteralType(
        simple=core.SimpleType.STRUCT,
        metadata=pb.Struct.from_dict(json_schema(tp)),
        structure=core.TypeStructure(tag="", dataclass_type=fields),
    )


def _variant_type(tp: Any) -> core.LiteralType:
    # Like flytekit's `_add_tag_to_type`, the tag *replaces* the structure (a dataclass variant
    # loses its `dataclass_type`).
    variant = _literal_type(tp)
    variant.structure = core.TypeStructure(tag=union_tag(tp))
    return variant


def json_schema(tp: Any) -> dict[str, Any]:
    """A JSON schema for `tp` shaped like mashumaro's `build_json_schema`, which flytekit sends."""
    tp = te.strip_annotated(tp)
    simple: dict[Any, dict[str, Any]] = {
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        bool: {"type": "boolean"},
        NoneType: {"type": "null"},
        dt.datetime: {"type": "string", "format": "date-time"},
        dt.date: {"type": "string", "format": "date"},
        dt.timedelta: {"type": "number", "format": "time-delta"},
    }
    if tp in simple:
        return dict(simple[tp])
    members = te.union_members(tp)
    if members is not None:
        return {"anyOf": [json_schema(m) for m in members]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return {"type": "array", "items": json_schema(args[0])}
    if origin is dict:
        return {
            "type": "object",
            "additionalProperties": json_schema(args[1]),
            "propertyNames": {"type": "string"},
        }
    if _is_sub(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if _is_sub(tp, (File, Directory)):
        return {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
    if _is_sub(tp, te.JSONObject):
        return dict(tp.json_schema or {"type": "object"})
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f, field_type in te.dataclass_fields(tp):
        properties[f.name] = json_schema(field_type)
        if f.default is not dataclasses.MISSING:
            try:
                properties[f.name]["default"] = te.to_jsonable(f.default, field_type)
            except InputError:
                pass  # a default that does not fit its type: leave it out of the schema
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema = {"type": "object", "title": tp.__name__, "properties": properties, "additionalProperties": False}
    return {**schema, "required": required} if required else schema


# ---------------------------------------------------------------------------------------------
# Python value → literal


def to_literal(value: Any, tp: Any) -> core.Literal:
    """The literal for a value of `tp`.

    Files and directories become blobs whose URI is `remote_source` if set, else `path`: uploading
    local paths first is the caller's job.

    Raises:
        InputError: `value` is not a value of `tp`.
    """
    te.check_supported(tp)
    return _to_literal(value, te.strip_annotated(tp), "")


def _scalar(**kwargs: Any) -> core.Literal:
    return core.Literal(scalar=core.Scalar(**kwargs))


def _primitive(**kwargs: Any) -> core.Literal:
    return _scalar(primitive=core.Primitive(**kwargs))


def _to_literal(value: Any, tp: Any, path: str) -> core.Literal:
    members = te.union_members(tp)
    if members is not None:
        member = te.member_for(value, members)
        if member is None:
            raise te.mismatch(value, tp, path)
        inner = _to_literal(value, te.strip_annotated(member), path)
        return _scalar(union=core.Union(value=inner, type=_variant_type(member)))
    if _is_sub(tp, enum.Enum) and isinstance(value, str) and value in {m.value for m in tp}:
        value = tp(value)  # flytekit accepts the bare string value of an enum member, too
    if _is_sub(tp, (File, Directory)) and isinstance(value, str) and value:
        value = tp(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and isinstance(value, list):
        items = [_to_literal(v, te.strip_annotated(args[0]), f"{path}[{i}]") for i, v in enumerate(value)]
        return core.Literal(collection=core.LiteralCollection(literals=items))
    if origin is dict and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        vt = te.strip_annotated(args[1])
        literals = {k: _to_literal(v, vt, f"{path}[{k!r}]") for k, v in value.items()}
        return core.Literal(map=core.LiteralMap(literals=literals))
    if origin in (list, dict) or not te.matches(value, tp):
        raise te.mismatch(value, tp, path)
    if tp is NoneType:
        return _scalar(none_type=core.Void())
    if tp is bool:
        return _primitive(boolean=value)
    if tp is int:
        if not -(2**63) <= value < 2**63:
            raise InputError(f"{_at(path)}{value} does not fit in a 64-bit integer")
        return _primitive(integer=value)
    if tp is float:
        return _primitive(float_value=float(value))
    if tp is str:
        return _primitive(string_value=value)
    if tp is dt.datetime:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        try:
            aware.astimezone(UTC)  # a Timestamp holds 0001-01-01 to 9999-12-31 in UTC
        except OverflowError:
            raise InputError(
                f"{_at(path)}{aware.isoformat()} is out of range: Flyte date-times lie between "
                "0001-01-01 and 9999-12-31 UTC"
            ) from None
        return _primitive(datetime=aware)
    if tp is dt.date:
        return _primitive(datetime=dt.datetime.combine(value, dt.time.min, tzinfo=UTC))
    if tp is dt.timedelta:
        return _primitive(duration=value)
    if isinstance(value, enum.Enum):
        return _primitive(string_value=value.value)
    if isinstance(value, File | Directory):
        blob = core.Blob(metadata=core.BlobMetadata(type=_blob_type(tp)), uri=value.uri)
        return _scalar(blob=blob)
    # Dataclasses and JSON objects: a Struct, files inside as {"path": uri} as flytekit writes them.
    data = te.to_jsonable(value, tp, files_as_objects=True)
    _check_struct_integers(data, path)
    return _scalar(generic=pb.Struct.from_dict(data))


_STRUCT_EXACT = 2**53  # a Struct holds every number as a double: integers are exact up to here


def _check_struct_integers(data: Any, path: str) -> None:
    """Refuse integers a Struct would silently round (9007199254740993 would come back ...992)."""
    if isinstance(data, int) and not isinstance(data, bool) and abs(data) > _STRUCT_EXACT:
        raise InputError(
            f"{_at(path)}{data} is not exact in a Flyte Struct (integers up to 2**53 are); "
            "pass it as a str field, or as a task input of type int"
        )
    if isinstance(data, list):
        for i, item in enumerate(data):
            _check_struct_integers(item, f"{path}[{i}]")
    elif isinstance(data, dict):
        for key, item in data.items():
            _check_struct_integers(item, f"{path}.{key}" if path else str(key))


def literal_map(values: dict[str, Any], types: dict[str, Any], *, what: str = "input") -> core.LiteralMap:
    """The LiteralMap for named values (task inputs or outputs), each converted with its type;
    `what` ("input" or "output") is how errors name them.

    Raises:
        InputError: a value does not fit its type, or has no declared type.
    """
    literals: dict[str, core.Literal] = {}
    for name, value in values.items():
        if name not in types:
            raise InputError(f"unexpected {what} '{name}' (known: {', '.join(types) or 'none'})")
        try:
            literals[name] = to_literal(value, types[name])
        except InputError as exc:
            raise InputError(f"{what} '{name}': {exc}") from None
    return core.LiteralMap(literals=literals)


# ---------------------------------------------------------------------------------------------
# Literal → Python value


def to_python(literal: core.Literal, tp: Any) -> Any:
    """The Python value of type `tp` held by `literal`.

    Reads flytekit's encodings, including its msgpack form of dataclasses and dicts.

    Raises:
        InputError: the literal does not hold a value of `tp`.
    """
    te.check_supported(tp)
    return _to_python(literal, te.strip_annotated(tp), "")


def _got(literal: core.Literal) -> str:
    scalar = literal.scalar
    if literal.collection is not None:
        return "a collection literal"
    if literal.map is not None:
        return "a map literal"
    if scalar is None:
        return "an empty literal"
    if scalar.primitive is not None:
        return f"the primitive {literal_to_jsonable(literal)!r}"
    if scalar.blob is not None:
        return f"the blob {scalar.blob.uri!r}"
    if scalar.none_type is not None:
        return "none"
    kinds = ("generic", "binary", "union", "error", "schema", "structured_dataset")
    return next((f"a {k} literal" for k in kinds if getattr(scalar, k) is not None), "an unknown literal")


def _to_python(literal: core.Literal, tp: Any, path: str) -> Any:
    members = te.union_members(tp)
    if members is not None:
        return _union_to_python(literal, tp, members, path)
    scalar = literal.scalar
    if literal.offloaded_metadata is not None:
        uri = literal.offloaded_metadata.uri
        raise InputError(f"{_at(path)}the value is offloaded to {uri}; not supported")
    if scalar is not None and scalar.union is not None and scalar.union.value is not None:
        # A union literal read as one of its members (the producer declared a wider type).
        return _to_python(scalar.union.value, tp, path)
    if scalar is not None and (scalar.generic is not None or scalar.binary is not None):
        data = scalar.generic.to_dict() if scalar.generic is not None else _binary_data(scalar.binary, path)
        try:
            return te.from_jsonable(data, tp)
        except InputError as exc:
            raise InputError(f"{_at(path)}{exc}") from None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and literal.collection is not None:
        et = te.strip_annotated(args[0])
        return [_to_python(v, et, f"{path}[{i}]") for i, v in enumerate(literal.collection.literals)]
    if origin is dict and literal.map is not None:
        vt = te.strip_annotated(args[1])
        return {k: _to_python(v, vt, f"{path}[{k!r}]") for k, v in literal.map.literals.items()}
    if tp is NoneType and scalar is not None and scalar.none_type is not None:
        return None
    if tp is str and scalar is not None and scalar.error is not None:
        # What a failure node's `err: str | None` receives: the failed node's message.
        return scalar.error.message
    if _is_sub(tp, (File, Directory)) and scalar is not None and scalar.blob is not None:
        # Like flytekit, check the dimensionality only: a FlyteFile[csv] (format "csv") is a File too.
        meta = scalar.blob.metadata
        if meta is None or meta.type is None or meta.type.dimensionality == _blob_type(tp).dimensionality:
            return tp(scalar.blob.uri)
    primitive = scalar.primitive if scalar is not None else None
    if primitive is not None:
        value = _from_primitive(primitive, tp)
        if value is not None:
            return value
    raise InputError(f"{_at(path)}expected {te.expected(tp)}, got {_got(literal)}")


def _from_primitive(p: core.Primitive, tp: Any) -> Any:
    """The value of `tp` in primitive `p`, or None when it holds none."""
    if tp is int:
        if p.integer is not None:
            return p.integer
        # The console (JavaScript) may send 3.0 for an int; flytekit reads it as 3, so do we.
        if p.float_value is not None and p.float_value.is_integer():
            return int(p.float_value)
    if tp is float:
        number = p.float_value if p.float_value is not None else p.integer
        return float(number) if number is not None else None
    if tp is str:
        return p.string_value
    if tp is bool:
        return p.boolean
    if tp is dt.datetime:
        return p.datetime
    if tp is dt.date:
        return p.datetime.date() if p.datetime is not None else None
    if tp is dt.timedelta:
        return p.duration
    if _is_sub(tp, enum.Enum) and p.string_value is not None:
        return next((m for m in tp if m.value == p.string_value), None)
    return None


def _union_to_python(literal: core.Literal, tp: Any, members: tuple[Any, ...], path: str) -> Any:
    scalar = literal.scalar
    union = scalar.union if scalar is not None else None
    if union is None or union.value is None:
        # A plain literal for a union type (e.g. sent by a client that did not wrap it).
        if scalar is not None and scalar.none_type is not None and NoneType in members:
            return None
        candidates = [m for m in members if m is not NoneType]
        inner = literal
    else:
        tag = union.type.structure.tag if union.type is not None and union.type.structure else ""
        tagged = [m for m in members if union_tag(m) == tag]
        # Several members may share a tag (`list[int] | list[str]`): the one whose literal type is
        # the stored type goes first. An unknown tag (another SDK) means: try them all.
        stored = _essence(union.type) if union.type is not None else None
        candidates = sorted(tagged or list(members), key=lambda m: _essence(_literal_type(m)) != stored)
        inner = union.value
    for member in candidates:
        try:
            return _to_python(inner, te.strip_annotated(member), path)
        except InputError:
            continue
    raise InputError(f"{_at(path)}expected {te.expected(tp)}, got {_got(inner)}")


def _essence(lt: core.LiteralType) -> bytes:
    """A literal type without its metadata, structure and annotation, for comparisons."""
    bare = core.LiteralType.parse(bytes(lt))
    bare.metadata = bare.structure = bare.annotation = None
    return bytes(bare)


def python_values(lm: core.LiteralMap, types: dict[str, Any]) -> dict[str, Any]:
    """The Python values of a LiteralMap (task inputs or outputs), by name.

    Raises:
        InputError: a literal does not fit its type, or has no declared type.
    """
    values: dict[str, Any] = {}
    for name, literal in lm.literals.items():
        if name not in types:
            raise InputError(f"unexpected value '{name}' (known: {', '.join(types) or 'none'})")
        try:
            values[name] = to_python(literal, types[name])
        except InputError as exc:
            raise InputError(f"'{name}': {exc}") from None
    return values


def _binary_data(binary: core.Binary | None, path: str) -> Any:
    assert binary is not None
    if binary.tag != MSGPACK:
        raise InputError(f"{_at(path)}unsupported binary literal format {binary.tag!r}")
    try:
        return msgpack_loads(binary.value)
    except ValueError as exc:
        raise InputError(f"{_at(path)}malformed msgpack literal: {exc}") from None


def literal_to_jsonable(literal: core.Literal) -> Any:
    """A best-effort JSON view of any literal, without knowing its Python type (for printing)."""
    if literal.collection is not None:
        return [literal_to_jsonable(v) for v in literal.collection.literals]
    if literal.map is not None:
        return {k: literal_to_jsonable(v) for k, v in literal.map.literals.items()}
    if literal.offloaded_metadata is not None:
        return {"offloaded": literal.offloaded_metadata.uri}
    s = literal.scalar
    if s is None or s.none_type is not None:
        return None
    if s.primitive is not None:
        p = s.primitive
        if p.datetime is not None:
            return p.datetime.isoformat()
        if p.duration is not None:
            return p.duration.total_seconds()
        return next((v for v in (p.integer, p.float_value, p.string_value, p.boolean) if v is not None), None)
    if s.union is not None:
        return literal_to_jsonable(s.union.value) if s.union.value is not None else None
    if s.blob is not None:
        return s.blob.uri
    if s.generic is not None:
        return s.generic.to_dict()
    if s.binary is not None:
        try:
            return _plain(msgpack_loads(s.binary.value)) if s.binary.tag == MSGPACK else None
        except ValueError:
            return None
    if s.error is not None:
        return {"error": s.error.message, "failed_node_id": s.error.failed_node_id}
    if s.structured_dataset is not None:
        return s.structured_dataset.uri
    return s.schema.uri if s.schema is not None else None


def _plain(value: Any) -> Any:
    """Make msgpack data printable as JSON (bytes as hex, non-string keys as strings)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# Literal type → Python type (for remote entities, whose Python code we do not have)


def python_type(lt: core.LiteralType) -> Any:
    """A Python type for a literal type, for entities known only by their interface.

    STRUCT becomes a `JSONObject` type (named after the JSON schema's title when there is one),
    an enum a generated `Enum` with the same string values, a union a `Union`.

    Raises:
        UnsupportedTypeError: the literal type has no supported Python equivalent.
    """
    if lt.simple is not None:
        if lt.simple == core.SimpleType.STRUCT:
            metadata = lt.metadata.to_dict() if lt.metadata is not None else None
            return _json_object_type(json.dumps(metadata, sort_keys=True) if metadata else "")
        found = next(
            (py for py, simple in _SIMPLE.items() if simple == lt.simple and py is not dt.date), None
        )
        if found is not None:
            return found
    elif lt.collection_type is not None:
        return GenericAlias(list, (python_type(lt.collection_type),))
    elif lt.map_value_type is not None:
        return GenericAlias(dict, (str, python_type(lt.map_value_type)))
    elif lt.blob is not None:
        return Directory if lt.blob.dimensionality == core.BlobTypeBlobDimensionality.MULTIPART else File
    elif lt.enum_type is not None:
        return _generated_enum(tuple(lt.enum_type.values))
    elif lt.union_type is not None and lt.union_type.variants:
        return functools.reduce(operator.or_, [python_type(v) for v in lt.union_type.variants])
    raise te.UnsupportedTypeError(f"Flyte type {lt!r} has no supported Python equivalent")


@functools.cache
def _json_object_type(schema_json: str) -> type[te.JSONObject]:
    # Cached so that asking twice for the same literal type gives the same (==) Python type.
    schema = json.loads(schema_json) if schema_json else None
    title = schema.get("title") if isinstance(schema, dict) else None
    if not schema:
        return te.JSONObject
    return te.JSONObject.named(title if isinstance(title, str) else "", schema)


@functools.cache
def _generated_enum(values: tuple[str, ...]) -> type[enum.Enum]:
    names = [v if v.isidentifier() and not v.startswith("_") else f"value_{i}" for i, v in enumerate(values)]
    factory: Any = enum.Enum  # the functional API, which mypy cannot follow with computed members
    generated: type[enum.Enum] = factory("Enum", list(zip(names, values, strict=True)))
    return generated


def msgpack_loads(data: bytes) -> Any:
    """Decode one msgpack object (flytekit >= 1.14 sends dataclasses and dicts as msgpack bytes).

    Raises:
        ValueError: the bytes are not one well-formed msgpack object.
    """
    import msgpack  # only needed when reading flytekit's msgpack literals

    def no_extensions(code: int, payload: bytes) -> Any:
        raise ValueError(f"msgpack extension type {code} is not supported")

    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=no_extensions)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise ValueError(f"invalid msgpack data: {exc or type(exc).__name__}") from None
