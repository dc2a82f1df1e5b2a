"""Branch nodes: if / elif / else over inputs and a task output, with AND/OR, and `else_().fail()`."""

from flytekit import conditional, task, workflow


@task
def square(n: int) -> int:
    return n * n


@task
def double(n: int) -> int:
    return 2 * n


@task
def negate(n: int) -> int:
    return -n


@workflow
def wf(n: int = 3) -> int:
    return (
        conditional("sign")
        .if_(n > 5)
        .then(square(n=n))
        .elif_((n >= 0) & (n <= 5))
        .then(double(n=n))
        .else_()
        .then(negate(n=n))
    )


@workflow
def on_output(n: int = 4) -> int:
    doubled = double(n=n)
    return (
        conditional("big")
        .if_((doubled > 10) | (doubled == 0))
        .then(square(n=doubled))
        .else_()
        .then(negate(n=doubled))
    )


@workflow
def fails(n: int = -1) -> int:
    return conditional("positive_only").if_(n > 0).then(double(n=n)).else_().fail("n must be positive")
