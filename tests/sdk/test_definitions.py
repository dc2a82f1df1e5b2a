"""Defining tasks, workflows and launch plans: the interface they get and the mistakes caught early."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import NamedTuple

import pytest

from asyncrun import LaunchPlan, task, workflow
from asyncrun._exceptions import DefinitionError, UsageError


@task
def add(a: int, b: int) -> int:
    return a + b


@task(
    retries=2,
    cache=True,
    cache_version="1",
    timeout=timedelta(minutes=5),
    environment={"K": "V"},
    container_image="ghcr.io/org/img:tag",
)
def configured(x: int) -> int:
    return x


class Pair(NamedTuple):
    total: int
    label: str


@task
def named(a: int) -> Pair:
    return Pair(a, str(a))


@task
def two(a: int) -> tuple[int, str]:
    return a, str(a)


@task
def nothing(a: int) -> None:
    return None


@task
async def aplus(a: int) -> int:
    await asyncio.sleep(0)
    return a + 1


def test_task_names_and_config() -> None:
    assert add.name == f"{__name__}.add"
    assert configured.config.retries == 2
    assert configured.config.cache and configured.config.cache_version == "1"
    assert configured.config.timeout == timedelta(minutes=5)
    assert configured.config.environment == {"K": "V"}
    assert configured.config.container_image == "ghcr.io/org/img:tag"


def test_bare_decorator_defaults() -> None:
    assert add.config.retries == 0 and not add.config.cache and add.config.timeout is None


def test_output_shapes() -> None:
    assert list(add.interface.outputs) == ["o0"]
    assert list(two.interface.outputs) == ["o0", "o1"]
    assert list(named.interface.outputs) == ["total", "label"]
    assert nothing.interface.outputs == {}


def test_local_calls_return_values_and_coroutines() -> None:
    assert add(a=1, b=2) == 3
    assert named(a=4) == Pair(4, "4")
    coro = aplus(a=1)
    assert asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == 2


def test_workflow_builds_a_dag_and_runs_locally() -> None:
    @workflow
    def wf(a: int = 1, b: int = 2) -> int:
        return add(a=add(a=a, b=b), b=b)

    assert [n.id for n in wf.nodes] == ["n0", "n1"]
    assert wf.nodes[1].upstream == ["n0"]
    assert wf(a=3) == 7
    assert wf() == 5


def test_workflow_with_named_and_tuple_outputs() -> None:
    @workflow
    def wf(a: int) -> tuple[int, str]:
        p = named(a=a)
        x, y = two(a=p.total)
        return x, y

    assert wf(a=5) == (5, "5")


def test_launch_plan_defaults_and_fixed_inputs() -> None:
    @workflow
    def wf(a: int, b: int) -> int:
        return add(a=a, b=b)

    lp = LaunchPlan.create("wf_lp", wf, default_inputs={"a": 3}, fixed_inputs={"b": 4})
    assert list(lp.interface.inputs) == ["a"]
    assert lp() == 7
    assert lp(a=10) == 14
    with pytest.raises(UsageError, match="fixed"):
        lp(b=1)


def test_launch_plan_rejects_unknown_inputs() -> None:
    @workflow
    def wf(a: int) -> int:
        return add(a=a, b=1)

    with pytest.raises(DefinitionError, match="no input named 'zzz'"):
        LaunchPlan.create("bad", wf, default_inputs={"zzz": 1})


def _line_of(marker: str, source_fn) -> int:
    import inspect

    lines, start = inspect.getsourcelines(source_fn)
    return start + next(i for i, line in enumerate(lines) if marker in line)


def test_positional_args_inside_workflow_name_function_and_line() -> None:
    def define():
        @workflow
        def positional(a: int) -> int:
            return add(a, 1)  # MARK-positional

        return positional

    with pytest.raises(DefinitionError) as info:
        define()
    message = str(info.value)
    assert "positional" in message and "keyword arguments" in message
    assert f":{_line_of('MARK-positional', define)}" in message


def test_missing_return_annotation() -> None:
    with pytest.raises(DefinitionError, match="missing return annotation"):

        @task
        def no_return(a: int):  # type: ignore[no-untyped-def]
            return a


def test_unsupported_type() -> None:
    class Opaque:
        pass

    with pytest.raises(DefinitionError, match="Opaque"):

        @task
        def bad(a: Opaque) -> int:
            return 1


def test_upper_case_input_name() -> None:
    with pytest.raises(DefinitionError, match="must be lower case"):

        @task
        def bad(Value: int) -> int:
            return Value


def test_output_of_unknown_node() -> None:
    @workflow
    def other(a: int) -> int:
        return add(a=a, b=1)

    foreign = other.nodes[0]
    from asyncrun.sdk._graph import Promise

    stray = Promise(foreign.id + "x", "o0", int)

    with pytest.raises(DefinitionError, match="unknown node"):

        @workflow
        def wf(a: int) -> int:
            return add(a=stray, b=a)


def test_wrong_input_type_between_nodes() -> None:
    @task
    def text(a: int) -> str:
        return str(a)

    with pytest.raises(DefinitionError, match=re.escape("expects")):

        @workflow
        def wf(a: int) -> int:
            return add(a=text(a=a), b=1)


def test_missing_required_input_in_workflow_call() -> None:
    with pytest.raises(DefinitionError, match="needs input 'b'"):

        @workflow
        def wf(a: int) -> int:
            return add(a=a)


def test_lists_and_dicts_of_promises_check_element_types() -> None:
    @task
    def total(values: list[int], named: dict[str, int]) -> int:
        return sum(values) + sum(named.values())

    @workflow
    def wf(a: int, b: int) -> int:
        h = add(a=a, b=b)
        return total(values=[h, 3, a], named={"x": h})

    assert wf.nodes[1].upstream == ["n0"]
    assert wf(a=1, b=2) == 3 + 3 + 1 + 3

    @task
    def text(a: int) -> str:
        return str(a)

    with pytest.raises(DefinitionError, match="expects"):

        @workflow
        def bad(a: int) -> int:
            return total(values=[text(a=a)], named={})
