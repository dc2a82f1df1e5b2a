from flytekit import task, workflow


@task
def explode(n: int) -> int:
    if n > 0:
        raise ValueError(f"exploded with {n}")
    return n


@workflow
def failing(n: int = 3) -> int:
    return explode(n=n)
