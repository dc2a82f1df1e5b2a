"""Work-arounds for betterproto2 0.10 (pinned in pyproject.toml); `asyncrun._proto` imports this first.

`Message._type_hints` runs `typing.get_type_hints` over the whole class each time it is asked about one
field, and a class asks once per message-typed field the first time it is serialized or parsed: work
quadratic in its fields, ~10 ms of every `asyncrun run --remote` and of every task process. The hints of
a class never change once its module is loaded, so they are computed once per class here.

betterproto2 also imports pydantic whenever it is installed (~45 ms) and, for each message it serializes
or parses, asks `pydantic.dataclasses` whether the message is a pydantic dataclass (importing that costs
~70 ms more). asyncrun's messages are generated as plain dataclasses (scripts/gen_protos.py), so the
answer is always no: betterproto2 is imported with pydantic hidden unless something imported it first,
and the question is answered without asking pydantic. Together that is about a fifth of every task
process's start. pydantic itself is untouched: `import pydantic` works as usual afterwards.

(Another work-around, for `Duration.from_timedelta`, lives with the literals in `sdk/_literals.py`.)
"""

from __future__ import annotations

import contextlib
import sys
import typing
from typing import Any

if typing.TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _pydantic_hidden() -> Iterator[None]:
    """`import pydantic` raises ImportError inside, unless pydantic was imported already."""
    hidden = [name for name in ("pydantic", "pydantic_core") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            del sys.modules[name]


with _pydantic_hidden():
    import betterproto2

_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type[betterproto2.Message]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, sys.modules[cls.__module__].__dict__, {})
    return hints


if betterproto2.__version__.startswith("0.10."):
    betterproto2.Message._type_hints = classmethod(_type_hints)  # type: ignore[method-assign,assignment]
    betterproto2.Message._is_pydantic = lambda self: False  # type: ignore[method-assign]
