"""A failed local run raises the error (and so exits with the code) a remote run failing the same way
gets: one table (`run_error_class`) decides both."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from asyncrun import engine, map_task, task, wait_for_input, workflow
from asyncrun._exceptions import ExecutionError, ExecutionTimedOutError, TaskFailedError, run_error_class
from asyncrun.sandbox._task_nodes import execution_error
from asyncrun.sdk._executor import LocalExecutor, as_exception

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


@task
def hello(name: str) -> str:
    return f"hello {name}"


@workflow
def impatient() -> str:
    return hello(name=wait_for_input("title", timeout=timedelta(seconds=0.2), expected_type=str))


@task
def no_threes(x: int) -> int:
    if x == 3:
        raise ValueError("three is not welcome")
    return x


@workflow
def strict_map(xs: list[int]) -> list[int]:
    return map_task(no_threes)(x=xs)


async def test_a_gate_timeout_is_a_timeout_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    never = threading.Event()
    monkeypatch.setattr("asyncrun.sdk._signals.local_signal", lambda name, tp: never.wait(60))
    try:
        with pytest.raises(ExecutionTimedOutError, match="got no signal") as raised:
            await LocalExecutor().run(impatient, {})
    finally:
        never.set()
    assert raised.value.exit_code == 4


async def test_a_failed_map_task_says_how_many_items_failed() -> None:
    with pytest.raises(ExecutionError, match=r"1 of 2 array items failed.*three is not welcome") as raised:
        await LocalExecutor().run(strict_map, {"xs": [1, 3]})
    assert not str(raised.value).startswith("task workflow failed")
    assert raised.value.exit_code == 1


TIMEOUT = engine.Failure("TimeoutExpired", "gate 'x' got no signal within 1s", timed_out=True)
CASES = {
    "gate timeout": engine.NodeFailed(TIMEOUT, engine.Phase.TIMED_OUT),
    "task timeout": engine.NodeFailed(
        engine.Failure("TimeoutExpired", "timed out", timed_out=True, cause=ExecutionTimedOutError("t")),
        engine.Phase.TIMED_OUT,
    ),
    "task error": engine.NodeFailed(
        engine.Failure("USER:ValueError", "bad", cause=TaskFailedError("t", "ValueError", "bad"))
    ),
    "else fail": engine.NodeFailed(engine.Failure("UserProvidedError", "n must be negative")),
    "array": engine.NodeFailed(engine.Failure("USER:ValueError", "1 of 2 array items failed: [1] bad")),
    "engine fault": engine.NodeFailed(
        engine.Failure("EngineError", "KeyError: 'x'", kind="SYSTEM", cause=KeyError("x"))
    ),
}


@pytest.mark.parametrize("failed", CASES.values(), ids=CASES.keys())
def test_local_and_remote_failures_have_the_same_exit_code(failed: engine.NodeFailed) -> None:
    local = as_exception(failed)
    # the sandbox ends the execution FAILED with the node's ExecutionError
    remote = run_error_class("FAILED", execution_error(failed.failure).code)
    assert remote is not None
    assert isinstance(local, ExecutionError)
    assert local.exit_code == remote.exit_code
    if failed.failure.cause is None:
        assert str(local) == failed.failure.message
