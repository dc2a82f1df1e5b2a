"""Array nodes: a map task with a tolerated failure (min_success_ratio), and one with a broadcast input."""

import functools
from typing import Optional

from flytekit import map_task, task, workflow


@task
def inverse(x: int) -> float:
    if x == 0:
        raise ValueError("cannot invert 0")
    return 1 / x


@task
def scale(x: int, factor: int) -> int:
    return x * factor


@workflow
def wf(xs: list[int] = [1, 2, 0, 4]) -> list[Optional[float]]:
    return map_task(inverse, min_success_ratio=0.7)(x=xs)


@workflow
def broadcast(xs: list[int] = [1, 2, 3], factor: int = 10) -> list[int]:
    return map_task(functools.partial(scale, factor=factor), concurrency=2)(x=xs)


@workflow
def too_many_failures(xs: list[int] = [0, 0, 1]) -> list[Optional[float]]:
    return map_task(inverse, min_success_ratio=0.5)(x=xs)
