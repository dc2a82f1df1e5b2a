"""The local executor: concurrency, retries, timeouts, cache, environment."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import timedelta

import anyio
import pytest

from asyncrun import RecoverableError, task, workflow
from asyncrun._exceptions import ExecutionTimedOutError, TaskFailedError
from asyncrun.sdk._executor import LocalExecutor

pytestmark = pytest.mark.anyio

EVENTS: list[str] = []
# Each of two tasks waits, with a generous bound, until the other has started: run one after the
# other, the first would wait for a start that never comes and fail. Order, not seconds.
BOTH_STARTED = threading.Barrier(2, timeout=60)


ASYNC_STARTED: list[asyncio.Event] = []  # set once both async tasks have started


@task
async def meet_async(tag: str) -> str:
    EVENTS.append(f"start {tag}")
    if sum(e.startswith("start a") for e in EVENTS) == 2:
        ASYNC_STARTED[0].set()
    with anyio.fail_after(60):
        await ASYNC_STARTED[0].wait()
    EVENTS.append(f"end {tag}")
    return tag


@task
def meet_sync(tag: str) -> str:
    EVENTS.append(f"start {tag}")
    BOTH_STARTED.wait()
    EVENTS.append(f"end {tag}")
    return tag


@workflow
def two_async() -> tuple[str, str]:
    return meet_async(tag="a1"), meet_async(tag="a2")


@workflow
def two_sync() -> tuple[str, str]:
    return meet_sync(tag="s1"), meet_sync(tag="s2")


def started_before_either_ended(events: list[str], a: str, b: str) -> bool:
    first_end = min(events.index(f"end {a}"), events.index(f"end {b}"))
    return events.index(f"start {a}") < first_end and events.index(f"start {b}") < first_end


async def test_independent_async_tasks_overlap() -> None:
    EVENTS.clear()
    ASYNC_STARTED[:] = [asyncio.Event()]
    outputs = await LocalExecutor().run(two_async, {})
    assert outputs == {"o0": "a1", "o1": "a2"}
    # One after the other, the first task would never see the second start (and time out).
    assert started_before_either_ended(EVENTS, "a1", "a2"), EVENTS


async def test_independent_sync_tasks_overlap_in_threads() -> None:
    EVENTS.clear()
    BOTH_STARTED.reset()
    outputs = await LocalExecutor().run(two_sync, {})
    assert outputs == {"o0": "s1", "o1": "s2"}
    assert started_before_either_ended(EVENTS, "s1", "s2"), EVENTS


ATTEMPTS: list[int] = []


@task(retries=2)
def flaky(fail_times: int) -> int:
    ATTEMPTS.append(1)
    if len(ATTEMPTS) <= fail_times:
        raise RecoverableError(f"attempt {len(ATTEMPTS)} failed")
    return len(ATTEMPTS)


async def test_retries_until_success() -> None:
    ATTEMPTS.clear()
    assert await LocalExecutor().run(flaky, {"fail_times": 2}) == {"o0": 3}


async def test_retries_exhausted_reports_the_last_error() -> None:
    ATTEMPTS.clear()
    with pytest.raises(TaskFailedError) as info:
        await LocalExecutor().run(flaky, {"fail_times": 5})
    assert len(ATTEMPTS) == 3
    assert info.value.cause_type == "RecoverableError" and "attempt 3 failed" in info.value.message
    assert "Traceback" in info.value.traceback


@task(retries=2)
def broken() -> int:
    ATTEMPTS.append(1)
    raise RuntimeError(f"attempt {len(ATTEMPTS)} failed")


async def test_other_errors_are_not_retried() -> None:
    # Flyte's rule: only a RecoverableError is retried; any other exception fails at once.
    ATTEMPTS.clear()
    with pytest.raises(TaskFailedError, match="attempt 1 failed"):
        await LocalExecutor().run(broken, {})
    assert len(ATTEMPTS) == 1


@task(retries=1)
def flaky_flytekit() -> int:
    from flytekit.exceptions.user import FlyteRecoverableException

    ATTEMPTS.append(1)
    if len(ATTEMPTS) == 1:
        raise FlyteRecoverableException("flytekit says: try again")
    return len(ATTEMPTS)


async def test_flytekit_recoverable_exception_is_retried() -> None:
    ATTEMPTS.clear()
    assert await LocalExecutor().run(flaky_flytekit, {}) == {"o0": 2}


@task
def out_of_memory() -> int:
    raise MemoryError()


async def test_an_exception_without_text_is_named_by_its_type() -> None:
    with pytest.raises(TaskFailedError) as info:
        await LocalExecutor().run(out_of_memory, {})
    assert str(info.value).endswith(".out_of_memory failed: MemoryError"), str(info.value)


@task(timeout=timedelta(milliseconds=200))
async def too_slow() -> int:
    EVENTS.append("too_slow started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        EVENTS.append("too_slow cancelled")
        raise
    EVENTS.append("too_slow finished")
    return 1


async def test_timeout() -> None:
    EVENTS.clear()
    # The bound only keeps a broken timeout from hanging the suite: the task would sleep an hour.
    with anyio.fail_after(60), pytest.raises(ExecutionTimedOutError, match="timed out"):
        await LocalExecutor().run(too_slow, {})
    assert EVENTS == ["too_slow started", "too_slow cancelled"]


CALLS: list[int] = []


@task(cache=True, cache_version="1")
def expensive(x: int) -> int:
    CALLS.append(x)
    return x * 10


async def test_cache_reuses_outputs_and_overwrite_recomputes(tmp_path) -> None:
    CALLS.clear()
    executor = LocalExecutor(cache_dir=tmp_path)
    assert await executor.run(expensive, {"x": 2}) == {"o0": 20}
    assert await executor.run(expensive, {"x": 2}) == {"o0": 20}
    assert CALLS == [2]
    assert await executor.run(expensive, {"x": 3}) == {"o0": 30}
    assert CALLS == [2, 3]
    await LocalExecutor(cache_dir=tmp_path, overwrite_cache=True).run(expensive, {"x": 2})
    assert CALLS == [2, 3, 2]


@task
def read_env(key: str) -> str:
    return os.environ.get(key, "<unset>")


async def test_envvars_are_visible_to_tasks_and_restored() -> None:
    out = await LocalExecutor(envvars={"ASYNCRUN_TEST_K": "v1"}).run(read_env, {"key": "ASYNCRUN_TEST_K"})
    assert out == {"o0": "v1"}
    assert "ASYNCRUN_TEST_K" not in os.environ


@task
def boom() -> int:
    raise ValueError("boom")


@task
async def long_sibling() -> int:
    EVENTS.append("sibling started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        EVENTS.append("sibling cancelled")
        raise
    EVENTS.append("sibling finished")
    return 1


@workflow
def failing() -> tuple[int, int]:
    return boom(), long_sibling()


async def test_first_failure_cancels_the_workflow() -> None:
    EVENTS.clear()
    with anyio.fail_after(60), pytest.raises(TaskFailedError, match="boom"):
        await LocalExecutor().run(failing, {})
    # The sibling was stopped by the failure, not waited for.
    assert EVENTS in (["sibling started", "sibling cancelled"], []), EVENTS


@task(cache=True, cache_version="1")
def cached_big(x: int) -> str:
    return "x" * x


async def test_a_cache_write_that_fails_midway_returns_the_outputs_and_leaves_no_temp_file(
    tmp_path, monkeypatch, capsys
) -> None:
    # A full disk: the entry cannot be written after its temp file was created.
    import json

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", disk_full)
    executor = LocalExecutor(cache_dir=tmp_path / "cache")
    assert await executor.run(cached_big, {"x": 3}) == {"o0": "xxx"}
    assert await executor.run(cached_big, {"x": 4}) == {"o0": "xxxx"}
    assert capsys.readouterr().err.count("cannot write the local cache (No space left on device") == 1
    assert not list((tmp_path / "cache").rglob("*.tmp"))


async def test_a_cache_entry_that_cannot_be_written_does_not_fail_the_task(
    tmp_path, monkeypatch, capsys
) -> None:
    from asyncrun import engine
    from asyncrun.sdk._cache import LocalCache

    def unserializable(*args: object, **kwargs: object) -> None:
        raise TypeError("cannot store this value")

    monkeypatch.setattr(LocalCache, "put", unserializable)
    recorder = engine.MemoryRecorder()
    executor = LocalExecutor(cache_dir=tmp_path / "cache", recorder=recorder)
    assert await executor.run(cached_big, {"x": 2}) == {"o0": "xx"}
    assert recorder.nodes["n0"].cache == engine.CacheStatus.CACHE_PUT_FAILURE
    assert "cannot cache the outputs of task" in capsys.readouterr().err


def _same_name_task(returns: type, body: object) -> object:
    def halve_or_double(x: int):  # type: ignore[no-untyped-def]
        return body(x)  # type: ignore[operator]

    halve_or_double.__annotations__["return"] = returns
    return task(cache=True, cache_version="1")(halve_or_double)


async def test_the_cache_key_includes_the_interface_as_flytes_does(tmp_path) -> None:
    # Same task name and cache_version, another output type: Flyte's dataset differs, so no hit.
    doubled = _same_name_task(int, lambda x: x * 2)
    halved = _same_name_task(float, lambda x: x / 4)
    assert await LocalExecutor(cache_dir=tmp_path).run(doubled, {"x": 2}) == {"o0": 4}
    assert await LocalExecutor(cache_dir=tmp_path).run(halved, {"x": 2}) == {"o0": 0.5}
    assert await LocalExecutor(cache_dir=tmp_path).run(doubled, {"x": 2}) == {"o0": 4}
