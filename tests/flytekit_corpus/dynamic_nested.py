"""Dynamic workflows: a @dynamic that calls another @dynamic once per list element."""

from flytekit import dynamic, task, workflow


@task
def add(a: int, b: int) -> int:
    return a + b


@dynamic
def running_sum(n: int) -> int:
    total = add(a=0, b=0)
    for i in range(n):
        total = add(a=total, b=i)
    return total


@dynamic
def sums(ns: list[int]) -> list[int]:
    return [running_sum(n=n) for n in ns]


@workflow
def wf(ns: list[int] = [1, 3, 5]) -> list[int]:
    return sums(ns=ns)
