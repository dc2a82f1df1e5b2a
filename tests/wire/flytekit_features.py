"""flytekit 1.16 equivalents of tests/sdk_features/features_wfs.py, for the shape comparison."""

from __future__ import annotations

import typing
from datetime import timedelta

from flytekit import (
    Resources,
    Secret,
    approve,
    conditional,
    map_task,
    sleep,
    task,
    wait_for_input,
    workflow,
)
from flytekit.types.error import FlyteError


@task
def square(x: int) -> int:
    return x * x


@task
def neg(x: int) -> str:
    return f"neg {x}"


@task
def small(x: int) -> str:
    return f"small {x}"


@task
def big(x: int) -> str:
    return f"big {x}"


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def tolerant_total(xs: list[typing.Optional[int]]) -> str:
    return ""


@workflow
def branchy(n: int) -> str:
    return (
        conditional("size")
        .if_(n < 0)
        .then(neg(x=n))
        .elif_((n >= 0) & (n < 10))
        .then(small(x=n))
        .else_()
        .then(big(x=n))
    )


@workflow
def only_negative(n: int) -> str:
    return conditional("sign").if_(n < 0).then(neg(x=n)).else_().fail("n must be negative")


@workflow
def mapped(xs: list[int]) -> str:
    return tolerant_total(xs=map_task(square, concurrency=2, min_success_ratio=0.5)(x=xs))


@task
def stamp(path: str, what: str) -> str:
    return what


@workflow
def slept(path: str) -> str:
    first = stamp(path=path, what="before")
    nap = sleep(timedelta(seconds=1))
    first >> nap
    after = stamp(path=path, what="after")
    nap >> after
    return after


@workflow
def approved(n: int) -> str:
    return approve(small(x=n), "review", timeout=timedelta(minutes=10))


@task
def greet(name: str) -> str:
    return f"hello {name}"


@workflow
def asked() -> str:
    return greet(name=wait_for_input("title", timeout=timedelta(minutes=10), expected_type=str))


@task
def cleanup(path: str, err: typing.Optional[FlyteError] = None) -> None:
    return None


@task
def explode(path: str) -> str:
    return path


@workflow(on_failure=cleanup)
def guarded(path: str) -> str:
    return explode(path=path)


@task(
    requests=Resources(cpu="1", mem="200Mi"),
    limits=Resources(cpu="2", mem="400Mi"),
    secret_requests=[
        Secret(group="db", key="password", mount_requirement=Secret.MountType.ENV_VAR),
        Secret(group="api", key="token", mount_requirement=Secret.MountType.FILE),
    ],
    environment={"GREETING": "hi"},
    retries=2,
    timeout=timedelta(minutes=5),
    cache=True,
    cache_version="1",
    cache_serialize=True,
    interruptible=True,
)
def optioned(x: int) -> int:
    return x
