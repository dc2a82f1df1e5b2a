"""A chain of two tasks (the flytekit hello world)."""

from flytekit import task, workflow


@task
def say_hello(name: str) -> str:
    """Greet someone.

    :param name: who to greet
    """
    return f"hello {name}"


@task
def shout(s: str, times: int = 1) -> str:
    return " ".join([s.upper()] * times)


@workflow
def wf(name: str = "world", times: int = 2) -> str:
    """Say hello, loudly."""
    return shout(s=say_hello(name=name), times=times)
