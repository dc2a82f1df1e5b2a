"""Cache keys as Flyte's datacatalog computes them (FlytePropeller's catalog client).

A cached task output lives in a *dataset* and is found by an *artifact tag*:

- dataset: project and domain of the task, name `flyte_task-<task name>`, version
  `<cache_version>-<inputs hash>-<outputs hash>`, where each hash is the first 8 characters of the
  unpadded URL-safe base64 of the interface's input (output) VariableMap hash — so changing the
  interface starts a new dataset even when `cache_version` stays the same;
- tag: `flyte_cached-<unpadded URL-safe base64 of the input LiteralMap hash>`, after dropping the
  task's `cache_ignore_input_vars` and replacing every literal that carries its own `hash` by a literal
  holding only that hash (flytekit sets it for `HashMethod`-annotated values).

A message's hash is the ObjectHash (SHA-256, github.com/benlaurie/objecthash) of its proto-JSON form
(lowerCamelCase names, defaults omitted, enums by name, 64-bit integers as strings), read back the way
Go's `encoding/json` reads it: every number is a float. Fields asyncrun's protos do not declare are not
part of the hash; no value a flytekit task sends uses them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncrun._proto.flyteidl import core

if TYPE_CHECKING:
    from collections.abc import Collection

    import betterproto2

__all__ = [
    "CatalogKey",
    "CatalogKeyError",
    "DatasetId",
    "artifact_tag",
    "catalog_key",
    "dataset_id",
    "object_hash",
    "proto_hash",
]

_TASK_NAMESPACE = "flyte_task"
_CACHED_TAG = "flyte_cached"
_SIGNATURE_CHARS = 8
_MAX_FLOAT_FORM = 1000


class CatalogKeyError(ValueError):
    """No cache key can be computed (an empty cache version, or a value ObjectHash cannot represent)."""


@dataclass(frozen=True)
class DatasetId:
    """A datacatalog dataset: one task's cached outputs for one cache version and interface."""

    project: str
    domain: str
    name: str
    version: str

    def to_identifier(self) -> core.Identifier:
        """The `core.Identifier` (resource type DATASET) FlytePropeller reports in CatalogMetadata."""
        return core.Identifier(
            resource_type=core.ResourceType.DATASET,
            project=self.project,
            domain=self.domain,
            name=self.name,
            version=self.version,
        )


@dataclass(frozen=True)
class CatalogKey:
    """Where one task's outputs for one set of inputs are cached."""

    dataset: DatasetId
    tag: str


# ----------------------------------------------------------------------------------------------------
# ObjectHash of JSON values
# ----------------------------------------------------------------------------------------------------


def _digest(tag: bytes, payload: bytes) -> bytes:
    return hashlib.sha256(tag + payload).digest()


def _float_form(value: float) -> str:
    """ObjectHash's normal form of a float: sign, binary exponent, then the mantissa's bits."""
    if not math.isfinite(value):
        # jsonpb writes a non-finite double field as a string ("Infinity", "NaN"), which never gets here,
        # and refuses one inside a google.protobuf.Value (a Struct), so Flyte has no key for it either.
        raise CatalogKeyError(
            f"cannot compute a cache key: a {value} number inside a struct or dataclass value has no "
            "JSON form; replace it with a finite number or turn off caching for this task"
        )
    if value == 0:
        # The reference implementation never terminates on zero; a zero gets a form of its own here.
        return "+0:"
    sign = "+"
    if value < 0:
        sign, value = "-", -value
    exponent = 0
    while value > 1:
        value /= 2
        exponent += 1
    while value <= 0.5:
        value *= 2
        exponent -= 1
    form = f"{sign}{exponent}:"
    while value != 0:
        if value >= 1:
            form += "1"
            value -= 1
        else:
            form += "0"
        if len(form) >= _MAX_FLOAT_FORM:
            raise CatalogKeyError(f"cannot hash the float {value!r}")
        value *= 2
    return form


def object_hash(value: Any) -> bytes:
    """The 32-byte ObjectHash of a JSON value (dict, list, str, float, bool or None).

    Raises:
        CatalogKeyError: a value of another type, or a float without a finite normal form.
    """
    if value is None:
        return _digest(b"n", b"")
    if isinstance(value, bool):
        return _digest(b"b", b"1" if value else b"0")
    if isinstance(value, str):
        return _digest(b"u", value.encode())
    if isinstance(value, int | float):
        return _digest(b"f", _float_form(float(value)).encode())
    if isinstance(value, list):
        return _digest(b"l", b"".join(object_hash(item) for item in value))
    if isinstance(value, dict):
        pairs = sorted(object_hash(key) + object_hash(item) for key, item in value.items())
        return _digest(b"d", b"".join(pairs))
    raise CatalogKeyError(f"cannot hash a {type(value).__name__}")


def proto_hash(message: betterproto2.Message) -> bytes:
    """The hash FlytePropeller's `pbhash.ComputeHash` gives `message`: ObjectHash of its proto-JSON."""
    # A JSON round trip turns every number into a float, as Go's encoding/json does.
    text = json.dumps(message.to_dict())
    return object_hash(json.loads(text, parse_int=float))


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# ----------------------------------------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------------------------------------


def _signature(interface: core.TypedInterface | None) -> str:
    inputs = interface.inputs if interface is not None else None
    outputs = interface.outputs if interface is not None else None
    parts = (
        _b64(proto_hash(variables if variables is not None else core.VariableMap()))[:_SIGNATURE_CHARS]
        for variables in (inputs, outputs)
    )
    return "-".join(parts)


def dataset_id(
    task_id: core.Identifier, interface: core.TypedInterface | None, cache_version: str
) -> DatasetId:
    """The dataset of a task's cached outputs.

    Raises:
        CatalogKeyError: `cache_version` is empty (or only spaces).
    """
    version = cache_version.strip(" ")
    if not version:
        raise CatalogKeyError(f"task {task_id.name!r} is cacheable but has an empty cache version")
    return DatasetId(
        project=task_id.project,
        domain=task_id.domain,
        name=f"{_TASK_NAMESPACE}-{task_id.name}",
        version=f"{version}-{_signature(interface)}",
    )


def _hashify(literal: core.Literal) -> core.Literal:
    """The literal as hashed: a value carrying its own hash stands for that hash alone."""
    if literal.hash:
        return core.Literal(hash=literal.hash)
    if literal.collection is not None:
        return core.Literal(
            collection=core.LiteralCollection(
                literals=[_hashify(item) for item in literal.collection.literals]
            )
        )
    if literal.map is not None:
        return core.Literal(
            map=core.LiteralMap(literals={key: _hashify(item) for key, item in literal.map.literals.items()})
        )
    return literal


def artifact_tag(inputs: core.LiteralMap | None, *, ignore: Collection[str] = ()) -> str:
    """The artifact tag of a task's inputs, without the inputs named in `ignore`."""
    literals = inputs.literals if inputs is not None else {}
    kept = {name: _hashify(literal) for name, literal in literals.items() if name not in ignore}
    return f"{_CACHED_TAG}-{_b64(proto_hash(core.LiteralMap(literals=kept)))}"


def catalog_key(
    task_id: core.Identifier,
    interface: core.TypedInterface | None,
    cache_version: str,
    inputs: core.LiteralMap | None,
    *,
    ignore: Collection[str] = (),
) -> CatalogKey:
    """The dataset and tag under which a task's outputs for `inputs` are cached.

    Raises:
        CatalogKeyError: an empty cache version, or an input value that cannot be hashed.
    """
    return CatalogKey(dataset_id(task_id, interface, cache_version), artifact_tag(inputs, ignore=ignore))
