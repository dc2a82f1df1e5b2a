"""Gate node: `wait_for_input` of a typed value (signal `title`, a str)."""

from datetime import timedelta

from flytekit import task, wait_for_input, workflow


@task
def address(title: str, name: str) -> str:
    return f"dear {title} {name}"


@workflow
def wf(name: str = "Smith") -> str:
    title = wait_for_input("title", timeout=timedelta(minutes=10), expected_type=str)
    return address(title=title, name=name)
