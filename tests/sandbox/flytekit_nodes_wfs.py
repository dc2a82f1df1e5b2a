"""flytekit workflows that tests register with the real `pyflyte run --remote` (read as text and copied
into a scratch project; flytekit is only imported by the pyflyte subprocesses)."""

import typing
from datetime import timedelta
from pathlib import Path

from flytekit import approve, task, workflow
from flytekit.types.error import FlyteError


@task
def square(n: int) -> int:
    return n * n


@task
def double(n: int) -> int:
    return 2 * n


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


@task(cache=True, cache_version="1")
def stamp(n: int) -> str:
    import uuid

    return f"{n}-{uuid.uuid4().hex}"  # differs on every run, so a cache hit is visible


@workflow
def cached(n: int = 1) -> str:
    return stamp(n=n)


@workflow
def approval(n: int = 2) -> int:
    s = square(n=n)
    return double(n=approve(s, "ok-to-double", timeout=timedelta(minutes=10)))
