"""flytekit workflows that tests register with the real `pyflyte run --remote` (read as text, copied into
a scratch project; flytekit itself is only imported by the pyflyte subprocess)."""

from flytekit import task, workflow
from flytekit.types.file import FlyteFile


@task
def say_hello(name: str) -> str:
    return f"hello {name}"


@task
def shout(s: str, times: int = 1) -> str:
    return " ".join([s.upper()] * times)


@workflow
def wf(name: str = "world", times: int = 2) -> str:
    return shout(s=say_hello(name=name), times=times)


@task
def explode(n: int) -> int:
    if n > 0:
        raise ValueError(f"exploded with {n}")
    return n


@workflow
def failing(n: int = 3) -> int:
    return explode(n=n)


@task
def count_lines(f: FlyteFile) -> int:
    with open(f) as handle:
        return sum(1 for _ in handle)
