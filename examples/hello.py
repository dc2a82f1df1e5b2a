"""The README example: two tasks and a workflow that chains them."""

from asyncrun import task, workflow


@task
def say_hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"


@task
async def shout(s: str, times: int = 1) -> str:
    """Repeat a greeting, louder."""
    return " ".join([s.upper()] * times)


@workflow
def wf(name: str = "world", times: int = 2) -> str:
    """Say hello to NAME, TIMES times.

    Args:
        name: who to greet.
        times: how many times to shout it.
    """
    return shout(s=say_hello(name=name), times=times)
