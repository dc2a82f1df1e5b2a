"""Every input type asyncrun supports, one task each, plus a workflow that takes them all."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple, Optional, Union

from asyncrun import Directory, File, LaunchPlan, task, workflow


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: int = 0


@dataclass
class Shape:
    name: str
    points: list[Point] = field(default_factory=list)


class Stats(NamedTuple):
    count: int
    mean: float


@task
def echo_all(
    i: int,
    f: float,
    s: str,
    b: bool,
    dt: datetime,
    d: date,
    td: timedelta,
    color: Color,
    ints: list[int],
    scores: dict[str, float],
    shape: Shape,
    maybe: Optional[int] = None,
    either: Union[int, str] = 0,
) -> str:
    """Describe every input in one line."""
    return (
        f"i={i} f={f} s={s} b={b} dt={dt.isoformat()} d={d.isoformat()} td={td.total_seconds()} "
        f"color={color.value} ints={ints} scores={scores} shape={shape.name}:{len(shape.points)} "
        f"maybe={maybe} either={either!r}"
    )


@task
def stats(values: list[float]) -> Stats:
    """Count and mean, as named outputs."""
    return Stats(len(values), sum(values) / len(values) if values else 0.0)


@task
def split(text: str) -> tuple[str, int]:
    """First word and the number of words, as outputs o0 and o1."""
    words = text.split()
    return (words[0] if words else "", len(words))


@task
def count_lines(f: File) -> int:
    """Lines in a file."""
    with open(f) as handle:
        return sum(1 for _ in handle)


@task
def count_files(d: Directory) -> int:
    """Files in a folder (not recursive)."""
    import os

    return sum(1 for entry in os.scandir(d) if entry.is_file())


@workflow
def summarize(values: list[float] = [1.0, 2.0, 3.0], text: str = "hello big world") -> tuple[int, float, str]:  # noqa: B006
    """Named outputs and tuple outputs feeding a workflow's outputs."""
    s = stats(values=values)
    first, _ = split(text=text)
    return s.count, s.mean, first


summarize_lp = LaunchPlan.create(
    "summarize_short", summarize, default_inputs={"text": "short"}, fixed_inputs={"values": [5.0]}
)
