"""Work-arounds for betterproto2 0.10 (pinned in pyproject.toml); `asyncrun._proto` imports this first.

`Message._type_hints` runs `typing.get_type_hints` over the whole class each time it is asked about one
field, and a class asks once per message-typed field the first time it is serialized or parsed: work
quadratic in its fields, ~10 ms of every `asyncrun run --remote` and of every task process. The hints of
a class never change once its module is loaded, so they are computed once per class here.
(Another work-around, for `Duration.from_timedelta`, lives with the literals in `sdk/_literals.py`.)
"""

from __future__ import annotations

import sys
import typing
from typing import Any

import betterproto2

_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type[betterproto2.Message]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, sys.modules[cls.__module__].__dict__, {})
    return hints


if betterproto2.__version__.startswith("0.10."):
    betterproto2.Message._type_hints = classmethod(_type_hints)  # type: ignore[method-assign,assignment]
