"""Retries: a recoverable user error is retried (remotely, where FLYTE_ATTEMPT_NUMBER is set); a
non-recoverable one fails at once."""

import os

from flytekit import task, workflow
from flytekit.exceptions.user import FlyteRecoverableException


@task(retries=2)
def flaky(n: int) -> int:
    attempt = int(os.environ.get("FLYTE_ATTEMPT_NUMBER", "-1"))
    if 0 <= attempt < 2:
        raise FlyteRecoverableException(f"attempt {attempt} failed, try again")
    return n * 10


@task(retries=2)
def broken(n: int) -> int:
    if n >= 0:
        raise ValueError(f"broken for {n}")
    return n


@workflow
def wf(n: int = 4) -> int:
    return flaky(n=n)


@workflow
def not_recoverable(n: int = 4) -> int:
    return broken(n=n)
