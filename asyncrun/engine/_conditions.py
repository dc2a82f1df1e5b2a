"""Branch conditions, evaluated as FlytePropeller does: no coercion, both sides of AND/OR evaluated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._model import Comparison, Conjunction, Operand
from ._protocols import UnsupportedValue

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._model import Condition
    from ._protocols import ValueOps

__all__ = ["ConditionError", "evaluate"]


class ConditionError(ValueError):
    """A condition cannot be evaluated (missing variable, mismatched or non-primitive operands)."""


def _operand(operand: Operand, inputs: Mapping[str, Any], values: ValueOps) -> tuple[str, Any]:
    if operand.var is None:
        if operand.value is None:
            # flytekit sends comparisons with None as a Scalar operand that propeller cannot read either.
            raise ConditionError("comparisons with None are not supported in branch conditions")
        return _tag(operand.value), operand.value
    if operand.var not in inputs:
        raise ConditionError(f"Failed to find Value for Variable [{operand.var}]")
    try:
        return values.primitive(inputs[operand.var])
    except UnsupportedValue as exc:
        raise ConditionError(f"Only primitives can be compared; {operand.var}: {exc}") from None


def _tag(value: Any) -> str:
    import datetime

    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, datetime.timedelta):
        return "duration"
    raise ConditionError(f"Only primitives can be compared, got {type(value).__name__}")


def _comparable(tag: str, value: Any) -> Any:
    # Propeller compares datetimes and durations by whole seconds only.
    if tag == "datetime":
        return int(value.timestamp()) if hasattr(value, "timestamp") else value
    if tag == "duration":
        return int(value.total_seconds()) if hasattr(value, "total_seconds") else value
    return value


def _compare(comparison: Comparison, inputs: Mapping[str, Any], values: ValueOps) -> bool:
    left_tag, left = _operand(comparison.left, inputs, values)
    right_tag, right = _operand(comparison.right, inputs, values)
    if left_tag != right_tag:
        raise ConditionError(
            f"Comparison between different primitives types. left [{left_tag}], right [{right_tag}]"
        )
    left, right = _comparable(left_tag, left), _comparable(right_tag, right)
    operator = comparison.operator
    if left_tag == "boolean" and operator not in ("EQ", "NEQ"):
        raise ConditionError(f"[{operator}] not defined for boolean operands.")
    if operator == "EQ":
        return bool(left == right)
    if operator == "NEQ":
        return bool(left != right)
    if operator == "GT":
        return bool(left > right)
    if operator == "GTE":
        return bool(left >= right)
    if operator == "LT":
        return bool(left < right)
    if operator == "LTE":
        return bool(left <= right)
    raise ConditionError(f"unknown comparison operator {operator!r}")


def evaluate(condition: Condition, inputs: Mapping[str, Any], values: ValueOps) -> bool:
    """Whether `condition` holds for the branch node's `inputs`.

    Raises:
        ConditionError: an operand is missing, not a primitive, or of a different type than the other.
    """
    if isinstance(condition, Conjunction):
        left = evaluate(condition.left, inputs, values)
        right = evaluate(condition.right, inputs, values)
        return (left or right) if condition.operator == "OR" else (left and right)
    return _compare(condition, inputs, values)
