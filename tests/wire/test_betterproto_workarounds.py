"""asyncrun/_betterproto.py: type hints of a message class are computed once, and are the same hints."""

from __future__ import annotations

import typing
from dataclasses import dataclass

import betterproto2

from asyncrun import _betterproto
from asyncrun._proto.flyteidl import core


@dataclass(eq=False, repr=False)
class Inner(betterproto2.Message):
    value: int = betterproto2.field(1, betterproto2.TYPE_INT64)


@dataclass(eq=False, repr=False)
class Outer(betterproto2.Message):
    a: Inner | None = betterproto2.field(1, betterproto2.TYPE_MESSAGE, optional=True)
    b: Inner | None = betterproto2.field(2, betterproto2.TYPE_MESSAGE, optional=True)
    c: list[Inner] = betterproto2.field(3, betterproto2.TYPE_MESSAGE, repeated=True)
    d: Inner | None = betterproto2.field(4, betterproto2.TYPE_MESSAGE, optional=True)


def test_hints_are_computed_once_per_class(monkeypatch) -> None:
    calls: list[type] = []
    real = typing.get_type_hints

    def counting(obj, *args, **kwargs):
        calls.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(typing, "get_type_hints", counting)
    message = Outer(a=Inner(1), b=Inner(2), c=[Inner(3), Inner(4)], d=Inner(5))
    assert Outer.parse(bytes(message)).c[1].value == 4
    assert calls.count(Outer) == 1  # betterproto2 0.10 alone: once per message-typed field (4)


def test_the_cached_hints_are_betterproto2s_own() -> None:
    for cls in (core.Literal, core.TaskTemplate, Outer):
        assert cls._type_hints() == typing.get_type_hints(
            cls, vars(__import__(cls.__module__, fromlist=["_"])), {}
        )
    assert _betterproto._HINTS[core.Literal] is core.Literal._type_hints()
