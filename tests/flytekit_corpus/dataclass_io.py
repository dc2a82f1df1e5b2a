"""Dataclasses: a nested dataclass input with a default, a dataclass output, and attribute access."""

from dataclasses import dataclass, field

from flytekit import task, workflow


@dataclass
class Point:
    x: int = 0
    y: int = 0


@dataclass
class Shape:
    name: str = "triangle"
    points: list[Point] = field(default_factory=lambda: [Point(0, 0), Point(3, 0), Point(0, 4)])
    origin: Point = field(default_factory=Point)


@task
def moved(shape: Shape, dx: int) -> Shape:
    return Shape(
        name=f"{shape.name}+{dx}",
        points=[Point(p.x + dx, p.y) for p in shape.points],
        origin=Point(shape.origin.x + dx, shape.origin.y),
    )


@task
def describe(name: str, x: int) -> str:
    return f"{name} at x={x}"


@workflow
def wf(shape: Shape = Shape(), dx: int = 2) -> Shape:
    return moved(shape=shape, dx=dx)


@workflow
def attribute(shape: Shape = Shape(), dx: int = 1) -> str:
    result = moved(shape=shape, dx=dx)
    return describe(name=result.name, x=result.origin.x)
