"""flytekit workflows, one per node kind, that tests register with the real `pyflyte run --remote`
(read as text and copied into a scratch project; flytekit is only imported by the pyflyte subprocesses)."""

import functools
import typing
from datetime import timedelta
from pathlib import Path

from flytekit import approve, conditional, dynamic, map_task, sleep, task, wait_for_input, workflow
from flytekit.types.error import FlyteError


@task
def square(n: int) -> int:
    return n * n


@task
def double(n: int) -> int:
    return 2 * n


@workflow
def pick(n: int = 3) -> int:
    return (
        conditional("pick")
        .if_(n < 5)
        .then(square(n=n))
        .elif_((n >= 5) & (n < 10))
        .then(double(n=n))
        .else_()
        .fail("n is too big")
    )


@workflow
def on_output(n: int = 2) -> int:
    s = square(n=n)
    return conditional("big").if_(s > 10).then(double(n=s)).else_().then(square(n=s))


@task
def explode(n: int) -> int:
    if n > 0:
        raise ValueError(f"exploded with {n}")
    return n


@task
def clean_up(n: int, marker: str, err: typing.Optional[FlyteError] = None) -> None:
    Path(marker).write_text(f"n={n} err={err.message if err else None}")


@workflow(on_failure=clean_up)
def guarded(n: int, marker: str) -> int:
    return explode(n=n)


@workflow
def napping(n: int = 2) -> int:
    nap = sleep(timedelta(seconds=1))
    result = square(n=n)
    nap >> result
    return result


@task
def scale(x: int, factor: int) -> int:
    return x * factor


@workflow
def mapped(xs: list[int] = None) -> list[int]:
    if xs is None:
        xs = [1, 2, 3]
    return map_task(functools.partial(scale, factor=10))(x=xs)


@task
def fragile(n: int) -> int:
    if n == 3:
        raise ValueError("three is bad luck")
    return n


@workflow
def tolerant(xs: list[int] = None) -> list[typing.Optional[int]]:
    if xs is None:
        xs = [1, 2, 3, 4]
    return map_task(fragile, min_success_ratio=0.5)(n=xs)


@task(cache=True, cache_version="1")
def stamp(n: int) -> str:
    import uuid

    return f"{n}-{uuid.uuid4().hex}"  # differs on every run, so a cache hit is visible


@workflow
def cached(n: int = 1) -> str:
    return stamp(n=n)


@dynamic
def squares(n: int) -> list[int]:
    return [square(n=i) for i in range(n)]


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@dynamic
def sum_of_squares(n: int) -> int:
    return total(xs=squares(n=n))  # a dynamic inside a dynamic


@workflow
def dyn(n: int = 3) -> int:
    return sum_of_squares(n=n)


@workflow
def approval(n: int = 2) -> int:
    s = square(n=n)
    return double(n=approve(s, "ok-to-double", timeout=timedelta(minutes=10)))


@workflow
def asking(n: int = 2) -> int:
    factor = wait_for_input("factor", timeout=timedelta(minutes=10), expected_type=int)
    return scale(x=n, factor=factor)


@task(retries=2)
def wobbly(marker: str) -> int:
    from flytekit.exceptions.user import FlyteRecoverableException

    path = Path(marker)
    tries = int(path.read_text()) if path.exists() else 0
    path.write_text(str(tries + 1))
    if tries < 2:
        raise FlyteRecoverableException(f"try {tries} failed")
    return tries


@workflow
def retried(marker: str) -> int:
    return wobbly(marker=marker)
