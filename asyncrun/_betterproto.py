"""Work-arounds for betterproto2 0.10 (pinned in pyproject.toml), and the loading of generated messages.

Everything in asyncrun gets betterproto2 from here (`from asyncrun._betterproto import betterproto2`):
it is imported, and the work-arounds below put in place, the first time it is asked for.

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

betterproto2 0.10 also makes a field's default value anew (under `warnings.catch_warnings()`) every
time it serializes that field, only to compare the value with it: half the CPU of `bytes(message)`.
The default is made once per class and field here (`_field_default`).

betterproto2 reads its own version with `importlib.metadata` when imported, which costs more than the
rest of betterproto2 (~15 ms: email parsing, zip files, CSV). Unless something imported it already,
betterproto2 is imported with a stand-in that reads the version from the wheel's `.dist-info` name.

The generated flyteidl modules import nothing and make no class until one of their classes is asked
for (`lazy_classes`): a module defines ~100 dataclasses, making a dataclass costs ~0.3 ms (it compiles
an `__init__`), and a command uses a few dozen. So `import asyncrun.client` loads neither betterproto2
nor grpclib (nor asyncio); the first call does.

(Another work-around, for `Duration.from_timedelta`, lives with the literals in `sdk/_literals.py`.)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import types
import typing
from collections.abc import Mapping
from typing import Any

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import betterproto2 as betterproto2


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


def _dist_version(distribution: str) -> str:
    """`importlib.metadata.version` for a distribution installed next to this one, without importing it."""
    # The folder on sys.path that holds the package is the one its wheel's .dist-info was installed in.
    prefix = f"{distribution}-"
    for folder in filter(None, sys.path):
        with contextlib.suppress(OSError):
            entries = os.listdir(folder)
            if distribution in entries:
                for entry in entries:
                    if entry.startswith(prefix) and entry.endswith(".dist-info"):
                        return entry.removeprefix(prefix).removesuffix(".dist-info")
    import importlib.metadata

    return importlib.metadata.version(distribution)


@contextlib.contextmanager
def _light_metadata() -> Iterator[None]:
    """`from importlib import metadata` inside gets `_dist_version`, unless it was imported already."""
    if "importlib.metadata" in sys.modules:
        yield
        return
    stand_in = types.ModuleType("importlib.metadata")
    stand_in.version = _dist_version  # type: ignore[attr-defined]
    sys.modules["importlib.metadata"] = stand_in
    try:
        yield
    finally:
        del sys.modules["importlib.metadata"]


_HINTS: dict[type, dict[str, Any]] = {}
_made_default: Callable[[betterproto2.Message, str], Any]  # betterproto2's own, set by `load`


class _ModuleNames(Mapping[str, Any]):
    """A module's names as `typing.get_type_hints` reads them, classes not yet made included."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self._module, name)
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(dir(self._module))

    def __len__(self) -> int:
        return len(dir(self._module))


def _type_hints(cls: type[betterproto2.Message]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        module = sys.modules[cls.__module__]
        hints = _HINTS[cls] = typing.get_type_hints(cls, module.__dict__, _ModuleNames(module))
    return hints


_DEFAULTS: dict[tuple[type, str], Any] = {}


def _field_default(self: betterproto2.Message, field_name: str) -> Any:
    """A field's default value, made once per class and field.

    betterproto2 0.10 compares every field it serializes with its default, and makes that default
    anew each time, under `warnings.catch_warnings()` (for deprecated fields): about half the CPU of
    `bytes(message)`. It only compares with it, so one value per class and field serves.
    """
    key = (type(self), field_name)
    try:
        return _DEFAULTS[key]
    except KeyError:
        default = _DEFAULTS[key] = _made_default(self, field_name)
        return default


def load() -> types.ModuleType:
    """betterproto2, imported (once) with the work-arounds in place."""
    loaded = sys.modules.get("betterproto2")
    if loaded is not None and getattr(loaded, "_asyncrun_patched", False):
        return loaded
    with _pydantic_hidden(), _light_metadata():
        import betterproto2
    if betterproto2.__version__.startswith("0.10."):
        betterproto2.Message._type_hints = classmethod(_type_hints)  # type: ignore[method-assign,assignment]
        betterproto2.Message._is_pydantic = lambda self: False  # type: ignore[method-assign]
        global _made_default
        _made_default = betterproto2.Message._get_field_default
        betterproto2.Message._get_field_default = _field_default  # type: ignore[method-assign]
    betterproto2._asyncrun_patched = True  # type: ignore[attr-defined]
    return betterproto2


def __getattr__(name: str) -> Any:
    if name == "betterproto2":
        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lazy_classes(
    namespace: dict[str, Any], definitions: dict[str, Callable[[], type]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A generated module's `__getattr__` and `__dir__`: each class is made by its definition on first use.

    `namespace` is the module's globals, where a class stays once made, and where `_setup()` does the
    module's imports before the first class is made; `definitions` maps each class name to the function
    that defines it (scripts/gen_protos.py writes them). A definition may ask for another class of the
    module (an enum its default refers to) through `__getattr__`.
    """
    lock = threading.RLock()  # a class is made once, also when two threads ask at the same time
    module = namespace["__name__"]
    ready = False

    def __getattr__(name: str) -> Any:
        nonlocal ready
        if name in namespace:
            return namespace[name]
        if name not in definitions:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        with lock:
            if not ready:
                namespace["_setup"]()  # the module's imports, done before its first class is made
                ready = True
            if name not in namespace:
                cls = definitions[name]()
                cls.__qualname__ = name
                namespace[name] = cls
        return namespace[name]

    def __dir__() -> list[str]:
        return sorted({*namespace, *definitions})

    return __getattr__, __dir__
