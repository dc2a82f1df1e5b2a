"""Typed interfaces of tasks and workflows, read from Python signatures."""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import DefinitionError
from ._type_engine import UnsupportedTypeError, check_supported

if typing.TYPE_CHECKING:
    from collections.abc import Callable


class _Missing:
    """Marks an input without a default."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_INPUT_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Input:
    """One input of a task or workflow."""

    name: str
    type: Any
    default: Any = MISSING
    description: str = ""

    @property
    def required(self) -> bool:
        """Whether a value must be given: no default and not Optional."""
        return self.default is MISSING and not is_optional(self.type)


@dataclass(frozen=True)
class Interface:
    """Inputs and outputs of an entity.

    `outputs` maps output names to types; `output_kind` says how a function returns them:
    "none" (no outputs), "single" (one value, named `o0`), "tuple" (`o0, o1, …`) or
    "namedtuple" (the field names of `output_tuple`).
    """

    inputs: dict[str, Input]
    outputs: dict[str, Any]
    output_kind: str = "none"
    output_tuple: type | None = field(default=None, compare=False)

    def outputs_from_return(self, value: Any) -> dict[str, Any]:
        """Map a function's return value to output names."""
        if self.output_kind == "none":
            return {}
        if self.output_kind == "single":
            return {"o0": value}
        values = tuple(value)
        if len(values) != len(self.outputs):
            raise TypeError(f"expected {len(self.outputs)} return values, got {len(values)}")
        return dict(zip(self.outputs, values, strict=True))

    def return_from_outputs(self, outputs: dict[str, Any]) -> Any:
        """The inverse of `outputs_from_return`: what a caller of the function gets back."""
        if self.output_kind == "none":
            return None
        if self.output_kind == "single":
            return outputs["o0"]
        values = [outputs[name] for name in self.outputs]
        if self.output_tuple is not None:
            return self.output_tuple(*values)
        return tuple(values)


def is_optional(tp: Any) -> bool:
    """Whether `None` is a valid value of `tp`."""
    return type(None) in typing.get_args(tp) if _is_union(tp) else tp is type(None)


def _is_union(tp: Any) -> bool:
    import types

    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def where(fn: Callable[..., Any]) -> str:
    """`function (file:line)` for error messages about user code."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", repr(fn))
    return f"{fn.__qualname__} ({code.co_filename}:{code.co_firstlineno})"


def interface_from_function(fn: Callable[..., Any]) -> Interface:
    """Read the typed interface of `fn`, raising `DefinitionError` for anything we cannot serve."""
    try:
        hints = typing.get_type_hints(fn, include_extras=False)
    except Exception as exc:  # unresolvable forward references and the like
        raise DefinitionError(f"{where(fn)}: cannot resolve type annotations: {exc}") from exc
    descriptions = _param_descriptions(inspect.getdoc(fn) or "")
    inputs: dict[str, Input] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise DefinitionError(f"{where(fn)}: *args and **kwargs are not supported; name every input")
        if param.name not in hints:
            raise DefinitionError(f"{where(fn)}: input '{param.name}' has no type annotation")
        if not _INPUT_NAME.match(param.name):
            raise DefinitionError(
                f"{where(fn)}: input name '{param.name}' must be lower case (letters, digits, underscores)"
            )
        tp = hints[param.name]
        _check(fn, f"input '{param.name}'", tp)
        default = MISSING if param.default is inspect.Parameter.empty else param.default
        inputs[param.name] = Input(param.name, tp, default, descriptions.get(param.name, ""))
    if "return" not in hints:
        raise DefinitionError(f"{where(fn)}: missing return annotation (use '-> None' for no outputs)")
    outputs, kind, tuple_type = _outputs(fn, hints["return"])
    return Interface(inputs, outputs, kind, tuple_type)


def _outputs(fn: Callable[..., Any], ret: Any) -> tuple[dict[str, Any], str, type | None]:
    if ret is None or ret is type(None):
        return {}, "none", None
    if isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
        hints = typing.get_type_hints(ret)
        for name in ret._fields:
            _check(fn, f"output '{name}'", hints.get(name, Any))
        return {name: hints[name] for name in ret._fields}, "namedtuple", ret
    if typing.get_origin(ret) is tuple:
        args = typing.get_args(ret)
        if not args or args[-1] is Ellipsis:
            raise DefinitionError(f"{where(fn)}: return type {ret} must list each element's type")
        for i, tp in enumerate(args):
            _check(fn, f"output o{i}", tp)
        return {f"o{i}": tp for i, tp in enumerate(args)}, "tuple", None
    _check(fn, "return value", ret)
    return {"o0": ret}, "single", None


def _check(fn: Callable[..., Any], what: str, tp: Any) -> None:
    try:
        check_supported(tp)
    except UnsupportedTypeError as exc:
        raise DefinitionError(f"{where(fn)}: {what}: {exc}") from None


_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:\S+\s+)?(\w+):\s*(.*)$")
_GOOGLE_PARAM = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _param_descriptions(doc: str) -> dict[str, str]:
    """Input descriptions from `:param x: …` lines or a Google-style `Args:` section."""
    found: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if m := _SPHINX_PARAM.match(line):
            found[m.group(1)] = m.group(2).strip()
            continue
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            if stripped and not line.startswith((" ", "\t")):
                in_args = False
            elif m := _GOOGLE_PARAM.match(line):
                found[m.group(1)] = m.group(2).strip()
    return found


def first_doc_line(obj: Any) -> str:
    """The first line of a docstring, for listings."""
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
