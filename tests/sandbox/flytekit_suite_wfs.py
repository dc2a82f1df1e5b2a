"""flytekit workflows for tests/sandbox/test_flytekit_suite_gaps.py: what flytekit's own remote integration
suite does that our other tests did not (read as text and copied into a scratch project)."""

import functools

from flytekit import LaunchPlan, conditional, dynamic, map_task, task, workflow
from flytekit.core.task import Echo

# Named o0 like the other case's output, so that the branch has one output.
echo_o0 = Echo(name="echo_o0", inputs={"o0": float})


@task
def nop(radius: float) -> float:
    return radius


@task
def area(radius: float) -> float:
    return 3.0 * radius * radius


@workflow
def echo_wf(radius: float = 0.5, get_area: bool = False) -> float:
    echoed = nop(radius=radius)
    return (
        conditional("if_area")
        .if_(get_area.is_true())
        .then(area(radius=radius))
        .else_()
        .then(echo_o0(o0=echoed))
    )


@task
def add_y(x: int, y: int) -> int:
    return x + y


@workflow
def mapped_wf(data: list[int] = [1, 2, 3], y: int = 3) -> list[int]:  # noqa: B006 (as flytekit users write it)
    return map_task(functools.partial(add_y, y=y))(x=data)


@task
def plus_one(x: int) -> int:
    return x + 1


@dynamic
def mapping_dynamic(data: list[int]) -> list[int]:
    return map_task(plus_one)(x=data)


@workflow
def dynamic_mapped_wf(data: list[int] = [1, 2, 3]) -> list[int]:  # noqa: B006 (as flytekit users write it)
    return mapping_dynamic(data=data)


@workflow
def plus_one_wf(x: int) -> int:
    return plus_one(x=x)


plus_one_lp = LaunchPlan.get_or_create(plus_one_wf, name="plus_one_lp")


@dynamic
def launching_dynamic(data: list[int]) -> list[int]:
    return [plus_one_lp(x=x) for x in data]


@workflow
def dynamic_launching_wf(data: list[int] = [1, 2]) -> list[int]:  # noqa: B006 (as flytekit users write it)
    plus_one_lp(x=0)  # so that `pyflyte run --remote` registers the launch plan the dynamic task calls
    return launching_dynamic(data=data)
