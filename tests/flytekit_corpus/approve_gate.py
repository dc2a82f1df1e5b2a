"""Gate node: `approve` a task's output before the next task uses it (signal `approve-total`)."""

from datetime import timedelta

from flytekit import approve, task, workflow


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def report(n: int) -> str:
    return f"approved total {n}"


@workflow
def wf(xs: list[int] = [1, 2, 3]) -> str:
    approved = approve(total(xs=xs), "approve-total", timeout=timedelta(minutes=10))
    return report(n=approved)
