"""Workflows using every feature of issue 15; run locally and remotely by the tests in this folder."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from asyncrun import (
    RecoverableError,
    Resources,
    Secret,
    approve,
    conditional,
    dynamic,
    get_secret,
    map_task,
    sleep,
    task,
    wait_for_input,
    workflow,
)


@task
def square(x: int) -> int:
    if x == 3:
        raise ValueError("three is not welcome")
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
def tolerant_total(xs: list[int | None]) -> str:
    return f"sum={sum(x for x in xs if x is not None)} failed={sum(x is None for x in xs)}"


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
def on_output(n: int) -> str:
    doubled = total(xs=[n, n])
    return (
        conditional("doubled")
        .if_((doubled > 10) | (doubled == 4))
        .then(big(x=doubled))
        .else_()
        .then(small(x=doubled))
    )


@workflow
def mapped(xs: list[int]) -> str:
    return tolerant_total(xs=map_task(square, concurrency=2, min_success_ratio=0.5)(x=xs))


@workflow
def mapped_strict(xs: list[int]) -> int:
    return total(xs=map_task(square)(x=xs))


@dynamic
def fan_out(n: int) -> int:
    return total(xs=[square(x=i) for i in range(n) if i != 3])


@dynamic
def nested(n: int) -> int:
    # A dynamic task calling a dynamic task: the inner one expands when it runs.
    return total(xs=[fan_out(n=i) for i in range(1, n + 1)])


@workflow
def dyn(n: int) -> int:
    return nested(n=n)


@task
def stamp(path: str, what: str) -> str:
    with open(path, "a") as f:
        f.write(what + "\n")
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
def cleanup(path: str, err: str | None = None) -> None:
    with open(path, "w") as f:
        f.write(f"cleaned up after: {err}")


@task
def explode(path: str) -> str:
    raise RuntimeError("boom")


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
)
def secretive() -> str:
    env_var = os.environ.get("_FSEC_DB_PASSWORD", "-")
    greeting = os.environ.get("GREETING", "-")
    return f"{greeting} {get_secret('db', 'password')} {get_secret('api', 'token')} env={env_var}"


@task(retries=2)
def flaky(path: str) -> str:
    with open(path, "a") as f:
        f.write("attempt\n")
    with open(path) as f:
        n = len(f.readlines())
    if n < 3:
        raise RecoverableError(f"attempt {n}: try again")
    return f"ok after {n}"


@workflow
async def pipeline(n: int) -> int:
    parts = await asyncio.gather(*(square(x=i) for i in range(n) if i != 3))
    return await total(xs=[p for p in parts if p % 2 == 0])


@task
def count_up(path: str, i: int) -> int:
    with open(path, "a") as f:
        f.write(f"{i}\n")
    return i


@workflow
async def counted(path: str, n: int) -> int:
    parts = await asyncio.gather(*(count_up(path=path, i=i) for i in range(n)))
    return sum(parts)


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
