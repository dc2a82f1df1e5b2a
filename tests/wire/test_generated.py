"""Every generated betterproto2 message class in asyncrun._proto encodes and decodes itself losslessly.

For each class: the default instance, and instances with every field set to a non-default value (scalars,
enums, repeated scalars, maps, empty sub-messages, wrapped well-known types; one variant per oneof member).
The filled instances are also pushed through the official protobuf class of the same full name.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import warnings
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import betterproto2
import pytest
from google.protobuf import descriptor_pool, message_factory

import asyncrun._proto
from asyncrun._proto.message_pool import default_message_pool

SCALARS: dict[type, Any] = {
    bool: True,
    int: 7,
    float: 0.5,
    str: "x",
    bytes: b"x\x00",
    datetime: datetime(2021, 2, 3, 4, 5, 6, 7000, tzinfo=UTC),
    timedelta: timedelta(seconds=7, microseconds=5000),
}
SECOND: dict[type, Any] = {
    bool: False,
    int: 300,
    float: -2.25,
    str: "ÿ",
    bytes: b"",
    datetime: datetime(1999, 12, 31, tzinfo=UTC),
    timedelta: timedelta(0),
}


def _message_classes() -> list[type[betterproto2.Message]]:
    found: dict[str, type[betterproto2.Message]] = {}
    for info in pkgutil.walk_packages(asyncrun._proto.__path__, prefix="asyncrun._proto."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, betterproto2.Message) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


MESSAGE_CLASSES = _message_classes()


def _id(cls: type[betterproto2.Message]) -> str:
    return f"{cls.__module__.removeprefix('asyncrun._proto.')}.{cls.__qualname__}"


def _sample(tp: type, *, second: bool = False) -> Any:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = list(tp)
        non_zero = [m for m in members if m.value != 0]
        if not non_zero:
            return members[0]
        return non_zero[-1] if second else non_zero[0]
    if isinstance(tp, type) and issubclass(tp, betterproto2.Message):
        return tp()
    table = SECOND if second else SCALARS
    if tp not in table:
        raise AssertionError(f"no sample value for {tp!r}")
    return table[tp]


def filled(cls: type[betterproto2.Message], variant: int) -> betterproto2.Message:
    """An instance with every field set; in each oneof, the variant-th member (by field number) is chosen."""
    meta = cls._betterproto
    chosen: dict[str, str] = {}
    for group, fields in meta.oneof_field_by_group.items():
        names = sorted((f.name for f in fields), key=lambda n: meta.meta_by_field_name[n].number)
        chosen[group] = names[min(variant, len(names) - 1)]

    kwargs: dict[str, Any] = {}
    for name, fmeta in meta.meta_by_field_name.items():
        if fmeta.group is not None and chosen.get(fmeta.group) != name:
            continue
        tp = meta.cls_by_field[name]
        if fmeta.map_meta is not None:
            value_tp = meta.cls_by_field[f"{name}.value"]
            key_tp = _map_key_type(fmeta)
            kwargs[name] = {
                _sample(key_tp): _sample(value_tp),
                _sample(key_tp, second=True): _sample(value_tp),
            }
        elif fmeta.repeated:
            kwargs[name] = [_sample(tp), _sample(tp, second=True), _sample(tp)]
        else:
            kwargs[name] = _sample(tp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated fields warn when set
        return cls(**kwargs)


def _map_key_type(fmeta: betterproto2.FieldMetadata) -> type:
    assert fmeta.map_meta is not None
    key_type = fmeta.map_meta[0].proto_type
    if key_type == betterproto2.TYPE_STRING:
        return str
    if key_type == betterproto2.TYPE_BOOL:
        return bool
    return int


def _variants(cls: type[betterproto2.Message]) -> int:
    groups = cls._betterproto.oneof_field_by_group.values()
    return max((len(g) for g in groups), default=1)


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=_id)
def test_default_instance_round_trips(cls: type[betterproto2.Message]) -> None:
    default = cls()
    data = bytes(default)
    assert data == b"", f"{cls.__name__}() encodes non-default fields: {data!r}"
    assert cls.parse(data) == default


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=_id)
def test_filled_instance_round_trips(cls: type[betterproto2.Message]) -> None:
    for variant in range(_variants(cls)):
        msg = filled(cls, variant)
        data = bytes(msg)
        if cls._betterproto.meta_by_field_name:
            assert data, f"{cls.__name__} variant {variant}: nothing was encoded"
        parsed = cls.parse(data)
        assert parsed == msg, f"{cls.__name__} variant {variant}: {parsed!r} != {msg!r}"
        assert bytes(parsed) == data


ZEROS: dict[type, Any] = {
    bool: False,
    int: 0,
    float: 0.0,
    str: "",
    bytes: b"",
    datetime: datetime(1970, 1, 1, tzinfo=UTC),
    timedelta: timedelta(0),
}


def _zero(tp: type) -> Any:
    if issubclass(tp, enum.Enum):
        return tp(0)
    if issubclass(tp, betterproto2.Message):
        return tp()
    return ZEROS[tp]


def _oneof_members() -> list[tuple[type[betterproto2.Message], str]]:
    return [
        (cls, f.name)
        for cls in MESSAGE_CLASSES
        for fields in cls._betterproto.oneof_field_by_group.values()
        for f in sorted(fields, key=lambda f: f.name)
    ]


@pytest.mark.parametrize(
    ("cls", "member"), _oneof_members(), ids=[f"{_id(c)}.{m}" for c, m in _oneof_members()]
)
def test_zero_value_in_oneof_is_kept(cls: type[betterproto2.Message], member: str) -> None:
    """A oneof member set to its zero value (False, 0, "", an empty message) is still "set" on the wire."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated fields warn when set
        msg = cls(**{member: _zero(cls._betterproto.cls_by_field[member])})
    data = bytes(msg)
    assert data, f"{_id(cls)}.{member} set to its zero value was not encoded"
    parsed = cls.parse(data)
    assert getattr(parsed, member) is not None
    assert parsed == msg


@cache
def _upstream_pool() -> descriptor_pool.DescriptorPool:
    """The default pool after importing every official flyteidl core/admin/service `_pb2` module."""
    import flyteidl

    for info in pkgutil.walk_packages(flyteidl.__path__, prefix="flyteidl."):
        if info.name.endswith("_pb2") and info.name.split(".")[1] in ("core", "admin", "service"):
            importlib.import_module(info.name)
    return descriptor_pool.Default()


def _full_name(cls: type[betterproto2.Message]) -> str:
    url = default_message_pool.type_to_url.get(cls)
    assert url is not None, f"{cls.__name__} is not registered in asyncrun._proto.message_pool"
    return url.removeprefix("type.googleapis.com/")


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=_id)
def test_filled_instance_survives_official_protobuf(cls: type[betterproto2.Message]) -> None:
    name = _full_name(cls)
    try:
        desc = _upstream_pool().FindMessageTypeByName(name)
    except KeyError:
        pytest.fail(f"{name} has no official counterpart")
    upstream_cls = message_factory.GetMessageClass(desc)
    for variant in range(_variants(cls)):
        msg = filled(cls, variant)
        up = upstream_cls.FromString(bytes(msg))
        assert cls.parse(up.SerializeToString()) == msg, f"{name} variant {variant}"


def test_walk_found_the_generated_classes() -> None:
    names = {_id(c) for c in MESSAGE_CLASSES}
    assert {
        "flyteidl.core.Literal",
        "flyteidl.core.ConnectionSetIdList",
        "flyteidl.admin.ExecutionCreateRequest",
        "flyteidl.service.CreateUploadLocationRequest",
        "google.protobuf.Struct",
    } <= names
    assert len(MESSAGE_CLASSES) > 150
