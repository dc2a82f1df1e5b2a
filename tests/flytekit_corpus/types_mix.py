"""Enum, Optional and collection inputs and outputs."""

import enum
from typing import Optional

from flytekit import task, workflow


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@task
def summarize(
    color: Color, label: Optional[str], counts: dict[str, int], values: list[float]
) -> dict[str, str]:
    return {
        "color": color.value,
        "label": label if label is not None else "<none>",
        "total": str(sum(counts.values())),
        "mean": f"{sum(values) / len(values):.2f}",
    }


@task
def pick(color: Color) -> Optional[Color]:
    return None if color == Color.RED else color


@workflow
def wf(
    color: Color = Color.GREEN,
    label: Optional[str] = None,
    counts: dict[str, int] = {"a": 1, "b": 2},
    values: list[float] = [1.0, 2.5],
) -> dict[str, str]:
    return summarize(color=color, label=label, counts=counts, values=values)


@workflow
def optional_out(color: Color = Color.RED) -> Optional[Color]:
    return pick(color=color)
