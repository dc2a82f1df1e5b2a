"""Async workflows run locally: awaited task calls run concurrently (overlap shown by the order of
events, not by time), sync tasks in threads, async tasks on the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asyncrun import task, workflow

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

N = 20


def make_sync_pipeline(events: list[str]):
    # Each task waits at a barrier of all 20: it only opens if the 20 calls run at the same time.
    barrier = threading.Barrier(N, timeout=60)

    @task
    def step(i: int) -> int:
        events.append(f"start {i}")
        barrier.wait()
        events.append(f"end {i}")
        return i

    @workflow
    async def pipeline(n: int) -> int:
        return sum(await asyncio.gather(*(step(i=i) for i in range(n))))

    return pipeline


def make_async_pipeline(events: list[str]):
    started = asyncio.Event()

    @task
    async def step(i: int) -> int:
        events.append(f"start {i}")
        if sum(e.startswith("start") for e in events) == N:
            started.set()
        await asyncio.wait_for(started.wait(), 60)
        events.append(f"end {i}")
        return i

    @workflow
    async def pipeline(n: int) -> int:
        return sum(await asyncio.gather(*(step(i=i) for i in range(n))))

    return pipeline


@pytest.mark.parametrize("make", [make_sync_pipeline, make_async_pipeline], ids=["sync tasks", "async tasks"])
async def test_a_gather_of_20_tasks_runs_them_concurrently(make) -> None:
    events: list[str] = []
    pipeline = make(events)
    assert await pipeline(n=N) == sum(range(N))
    starts = [i for i, e in enumerate(events) if e.startswith("start")]
    ends = [i for i, e in enumerate(events) if e.startswith("end")]
    assert len(starts) == len(ends) == N
    assert max(starts) < min(ends), events  # all 20 started before any ended


async def test_a_failing_task_fails_the_async_workflow() -> None:
    @task
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    @workflow
    async def pipeline(x: int) -> int:
        return await boom(x=x)

    with pytest.raises(Exception, match="bad 3"):
        await pipeline(x=3)


async def test_task_calls_in_an_async_workflow_run_with_the_executors_options(tmp_path) -> None:
    from asyncrun import engine
    from asyncrun.sdk._executor import LocalExecutor

    calls: list[int] = []

    @task(cache=True, cache_version="1")
    def cached_double(x: int) -> int:
        calls.append(x)
        return x * 2

    @workflow
    async def doubles(x: int) -> int:
        return await cached_double(x=x) + await cached_double(x=x + 1)

    recorder = engine.MemoryRecorder()
    first = LocalExecutor(cache_dir=tmp_path / "cache", recorder=recorder)
    assert await first.run(doubles, {"x": 1}) == {"o0": 6}
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2  # the executor's cache folder
    assert sorted(recorder.nodes) == ["c0-n0", "c1-n0"]
    assert recorder.nodes["c0-n0"].cache == engine.CacheStatus.CACHE_POPULATED

    assert await LocalExecutor(cache_dir=tmp_path / "cache").run(doubles, {"x": 1}) == {"o0": 6}
    assert calls == [1, 2]  # cache hits
    overwrite = LocalExecutor(cache_dir=tmp_path / "cache", overwrite_cache=True)
    assert await overwrite.run(doubles, {"x": 1}) == {"o0": 6}
    assert calls == [1, 2, 1, 2]  # --overwrite-cache recomputes


async def test_a_map_task_inside_an_async_workflow_is_awaited() -> None:
    from asyncrun import map_task

    @task
    def triple(x: int) -> int:
        return x * 3

    @workflow
    async def tripled(xs: list[int]) -> int:
        return sum(await map_task(triple, concurrency=2)(x=xs))

    assert await tripled(xs=[1, 2, 3]) == 18
