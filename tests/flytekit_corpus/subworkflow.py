"""Sub-workflows: a workflow calling another workflow twice."""

from flytekit import task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@workflow
def twice(x: int) -> int:
    return inc(x=inc(x=x))


@workflow
def wf(x: int = 5) -> int:
    return twice(x=twice(x=x))
