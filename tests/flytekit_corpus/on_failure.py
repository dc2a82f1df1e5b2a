"""Failure node: the workflow's `on_failure` runs when the main path fails; the run still fails."""

from typing import Optional

from flytekit import task, workflow
from flytekit.types.error import FlyteError


@task
def clean_up(name: str, err: Optional[FlyteError] = None) -> None:
    print(f"cleaning up after {name}: {err.message if err else 'no error'}")


@task
def step(name: str) -> str:
    if name:
        raise ValueError(f"step failed for {name}")
    return name


@workflow(on_failure=clean_up)
def wf(name: str = "corpus") -> str:
    return step(name=name)
