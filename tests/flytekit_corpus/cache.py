"""Task cache: `cache=True` with a `cache_version`, and `cache_serialize`.

`token` returns a fresh random value each time it really runs: a cache hit gives the first run's
value again, `--overwrite-cache` a new one.
"""

import uuid

from flytekit import task, workflow


@task(cache=True, cache_version="1.0")
def square(n: int) -> int:
    return n * n


@task(cache=True, cache_version="1.0", cache_serialize=True)
def token(n: int) -> str:
    return f"{n}-{uuid.uuid4().hex}"


@workflow
def wf(n: int = 7) -> int:
    return square(n=n)


@workflow
def tokens(n: int = 1) -> str:
    return token(n=n)
