"""Requests end to end against a daemon in this event loop and a stub FlyteAdmin."""

from __future__ import annotations

import anyio
import pytest

from asyncrun.daemon import DaemonConnection, DaemonRequestError

from .conftest import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_wait_returns_each_final_phase_and_exit_code(stub, target, daemon, settings) -> None:
    for name in ("ok1", "bad1", "stop1"):
        stub.add(name, "RUNNING")
    events: list[dict] = []
    async with DaemonConnection(settings=settings, autostart=False) as conn:

        async def finish() -> None:
            await anyio.sleep(0.5)
            stub.set_phase("ok1", "SUCCEEDED")
            stub.set_phase("bad1", "FAILED", error=("USER:Boom", "kaboom"))
            stub.set_phase("stop1", "ABORTED")

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish)
            result = await conn.wait(["ok1", "bad1", "stop1"], target=target, on_event=events.append)
    phases = {ex.name: ex.phase for ex in result.executions}
    assert phases == {"ok1": "SUCCEEDED", "bad1": "FAILED", "stop1": "ABORTED"}
    assert not result.timed_out
    assert [ex.exit_code for ex in result.executions] == [0, 1, 3]
    assert result.exit_code == 1
    bad = result.executions[1]
    assert bad.error == {"code": "USER:Boom", "message": "kaboom", "kind": "USER"}
    seen = {s["name"]: s["phase"] for e in events if e["event"] == "update" for s in e["executions"]}
    assert seen["ok1"] == "SUCCEEDED"
    assert stub.calls["get_execution"] == 0


async def test_wait_timeout_leaves_the_run_going(stub, target, daemon, settings) -> None:
    stub.add("slow1", "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        result = await conn.wait(["slow1"], target=target, timeout=0.5)
        assert result.timed_out and result.exit_code == 5
        assert result.executions[0].phase == "RUNNING"
        assert stub.runs["slow1"].phase == "RUNNING"
        # nobody cares any more: the daemon stopped following it
        status = await conn.status(target=target)
        assert [ex.name for ex in status.executions] == []


async def test_abort_on_timeout_terminates(stub, target, daemon, settings) -> None:
    stub.add("slow2", "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        result = await conn.wait(["slow2"], target=target, timeout=0.3, abort_on_timeout=True)
    assert result.timed_out and result.terminated == ["flytesnacks:development:slow2"]
    assert stub.runs["slow2"].phase == "ABORTED"


async def test_wait_for_running(stub, target, daemon, settings) -> None:
    stub.add("q1", "QUEUED")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _later(0.4, stub.set_phase, "q1", "RUNNING"))
            result = await conn.wait(["q1"], target=target, wait_for="running", timeout=40)
    assert not result.timed_out
    assert result.executions[0].phase == "RUNNING" and result.exit_code == 0


async def test_outputs_fetched_once_and_only_when_asked(stub, target, daemon, settings) -> None:
    stub.add("out1", "SUCCEEDED", o0=42)
    stub.add("out2", "SUCCEEDED", o0=7)
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        plain = await conn.wait(["out2"], target=target, timeout=40)
        assert plain.executions[0].outputs is None
        assert stub.calls["get_execution_data"] == 0
        first = await conn.wait(["out1"], target=target, outputs=True, timeout=40)
        second = await conn.wait(["out1"], target=target, outputs=True, timeout=40)
    assert first.executions[0].outputs == {"o0": 42}
    assert second.executions[0].outputs == {"o0": 42}
    assert stub.calls["get_execution_data"] == 1


async def test_outputs_of_runs_ending_together_are_fetched_at_once(stub, target, daemon, settings) -> None:
    from asyncrun.daemon._poller import OUTPUT_WORKERS

    stub.data_delay = 0.3
    names = [f"many{i}" for i in range(24)]
    for i, name in enumerate(names):
        stub.add(name, "SUCCEEDED", o0=i)
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        result = await conn.wait(names, target=target, outputs=True, timeout=60)
    assert [ex.outputs for ex in result.executions] == [{"o0": i} for i in range(len(names))]
    assert stub.calls["get_execution_data"] == len(names)
    assert stub.most_in_flight["get_execution_data"] == OUTPUT_WORKERS


async def test_unknown_execution_is_reported_not_found(stub, target, daemon, settings) -> None:
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        result = await conn.wait(["nosuchrun"], target=target, timeout=20)
    (state,) = result.executions
    assert not state.found and state.error["code"] == "NOT_FOUND"
    assert result.exit_code == 1 and not result.timed_out


async def test_track_status_untrack(stub, target, daemon, settings) -> None:
    stub.add("t1", "RUNNING")
    stub.add("t2", "QUEUED")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        tracked = await conn.track(["t1", "flytesnacks:development:t2"], target=target)
        assert [t.id for t in tracked] == ["flytesnacks:development:t1", "flytesnacks:development:t2"]
        await eventually(
            lambda: conn.status(["t1", "t2"], target=target),
            lambda s: [e.phase for e in s.executions] == ["RUNNING", "QUEUED"],
        )
        status = await conn.status(target=target)
        assert status.daemon["tracked"] == 2 and status.daemon["active"] == 2
        assert await conn.untrack(["t1", "t2"], target=target) == 2
        assert (await conn.status(target=target)).executions == []


async def test_status_of_untracked_ids_uses_one_list_call(stub, target, daemon, settings) -> None:
    for i in range(30):
        stub.add(f"u{i}", "SUCCEEDED")
    stub.reset_counts()
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        status = await conn.status([f"u{i}" for i in range(30)] + ["missing1"], target=target)
    assert [e.phase for e in status.executions[:30]] == ["SUCCEEDED"] * 30
    assert not status.executions[30].found
    assert stub.calls["list_executions"] == 1 and stub.calls["get_execution"] == 0
    assert not any(e.tracked for e in status.executions)


async def test_watch_streams_snapshot_and_updates(stub, target, daemon, settings) -> None:
    stub.add("w1", "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(["w1"], target=target)
        seen: list[str] = []
        with anyio.fail_after(10):
            async for message in conn.watch():
                if message["event"] == "snapshot":
                    assert [s["name"] for s in message["executions"]] == ["w1"]
                    stub.set_phase("w1", "SUCCEEDED")
                elif message["event"] == "update":
                    seen += [s["phase"] for s in message["executions"]]
                    if "SUCCEEDED" in seen:
                        break


async def test_bad_ids_and_unknown_options_are_usage_errors(stub, target, daemon, settings) -> None:
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        with pytest.raises(DaemonRequestError) as info:
            await conn.track(["a:b"], target=target)
        assert info.value.code == "usage" and info.value.exit_code == 2
        with pytest.raises(DaemonRequestError) as info:
            await conn.track(["x;drop"], target=target)
        assert info.value.code == "usage"


async def _later(delay: float, fn, *args) -> None:
    await anyio.sleep(delay)
    fn(*args)


async def test_two_hundred_concurrent_waiters_each_get_their_exit_code(
    stub, target, daemon, settings
) -> None:
    final = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")
    names = [f"m{i:03d}" for i in range(200)]
    for name in names:
        stub.add(name, "QUEUED")
    codes: dict[str, int] = {}

    async def one(name: str) -> None:
        async with DaemonConnection(settings=settings, autostart=False) as conn:
            codes[name] = (await conn.wait([name], target=target, timeout=30)).exit_code

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)

        async def connections() -> int:
            return daemon.service.connections

        await eventually(connections, lambda count: count == 200)
        for i, name in enumerate(names):
            stub.set_phase(name, final[i % 4])
    assert codes == {name: (0, 1, 3, 4)[i % 4] for i, name in enumerate(names)}
    assert max(stub.list_sizes) <= settings.page_size


async def test_a_wait_that_gives_up_does_not_drop_a_run_others_wait_for(
    stub, target, daemon, settings
) -> None:
    stub.add("shared1", "RUNNING")
    outcome: list = []
    async with DaemonConnection(settings=settings, autostart=False) as conn:

        async def patient(delay: float) -> None:
            await anyio.sleep(delay)
            outcome.append(await conn.wait(["shared1"], target=target, timeout=20))

        async def impatient(delay: float) -> None:
            await anyio.sleep(delay)
            await conn.wait(["shared1"], target=target, timeout=0)

        async with anyio.create_task_group() as tg:
            # Patient and impatient waits on one run, interleaved so that some patient ones arrive
            # while an impatient one is ending (and deciding whether anyone still wants the run).
            for i in range(60):
                tg.start_soon(impatient, i * 0.004)
                if i % 6 == 3:
                    tg.start_soon(patient, i * 0.004 + 0.001)
            await anyio.sleep(0.6)
            stub.set_phase("shared1", "SUCCEEDED")
    assert len(outcome) == 10
    assert all(not r.timed_out and r.executions[0].phase == "SUCCEEDED" for r in outcome)
