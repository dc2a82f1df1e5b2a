"""A sub-workflow and a launch plan node."""

from flytekit import LaunchPlan, task, workflow


@task
def double(x: int) -> int:
    return x * 2


@task
def add(a: int, b: int) -> int:
    return a + b


@workflow
def inner(x: int) -> int:
    return double(x=double(x=x))


inner_lp = LaunchPlan.get_or_create(inner, name="inner_lp", default_inputs={"x": 3})


@workflow
def outer(x: int = 1) -> int:
    return add(a=inner(x=x), b=inner_lp(x=x))


fixed_lp = LaunchPlan.get_or_create(outer, name="fixed_lp", fixed_inputs={"x": 5})
