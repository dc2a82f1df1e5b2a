"""Launch-plan nodes: a workflow that launches a launch plan (with a default input) as a child run."""

from flytekit import LaunchPlan, task, workflow


@task
def multiply(x: int, y: int) -> int:
    return x * y


@workflow
def product(x: int, y: int) -> int:
    return multiply(x=x, y=y)


product_lp = LaunchPlan.get_or_create(product, name="corpus_product_lp", default_inputs={"y": 3})


@workflow
def wf(x: int = 6) -> int:
    return product_lp(x=x)
