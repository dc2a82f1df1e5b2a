"""Gate node: `sleep` between two tasks."""

from datetime import timedelta

from flytekit import sleep, task, workflow


@task
def greet(name: str) -> str:
    return f"hello {name}"


@task
def shout(s: str) -> str:
    return s.upper()


@workflow
def wf(name: str = "sleepy") -> str:
    greeting = greet(name=name)
    nap = sleep(timedelta(seconds=2))
    loud = shout(s=greeting)
    greeting >> nap
    nap >> loud
    return loud
