"""The batched poller against a stub FlyteAdmin: pages, rate limit, backoff, unreachable."""

from __future__ import annotations

import math

import anyio
import pytest
from grpclib.const import Status

from asyncrun.daemon import DaemonConnection, _poller
from asyncrun.daemon._tracked import Tracked

from .conftest import eventually
from .stub_admin import DOMAIN, PROJECT

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def _all_seen(conn, target, names, phase="RUNNING"):
    return await eventually(
        lambda: conn.status(names, target=target), lambda s: all(e.phase == phase for e in s.executions)
    )


async def test_one_list_call_per_page_per_tick_and_no_per_run_calls(stub, target, daemon, settings) -> None:
    names = [f"b{i}" for i in range(250)]
    for name in names:
        stub.add(name, "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(names, target=target)
        await _all_seen(conn, target, names)
        stub.reset_counts()
        (poller,) = daemon.service.pollers.values()
        # The stub's calls counted from inside each tick (the poller serves in this event loop), and
        # the stub's total at each tick's end: a tick still in flight when a total is read must not
        # look like an excess, and calls between ticks would show as a gap between the two counts.
        calls_in_tick: list[int] = []
        total_at_end: list[int] = []
        four_ticks = anyio.Event()
        poll_once = poller.poll_once

        async def counted_tick(active: list[Tracked], now: float) -> int:
            before = stub.calls["list_executions"]
            calls = await poll_once(active, now)
            calls_in_tick.append(stub.calls["list_executions"] - before)
            total_at_end.append(stub.calls["list_executions"])
            if len(calls_in_tick) >= 4:
                four_ticks.set()
            return calls

        poller.poll_once = counted_tick  # type: ignore[method-assign]
        with anyio.fail_after(30):
            await four_ticks.wait()
        ticks, totals = list(calls_in_tick), list(total_at_end)
    per_tick = math.ceil(250 / settings.page_size)
    assert all(calls <= per_tick for calls in ticks), ticks
    # From the end of the first counted tick on, every call the stub saw was made by a tick.
    assert [b - a for a, b in zip(totals, totals[1:], strict=False)] == ticks[1:], (totals, ticks)
    assert poller.max_tick_calls == per_tick
    assert stub.calls_per_sweep()[1:-1] == [per_tick] * (len(stub.calls_per_sweep()) - 2)
    assert max(stub.list_sizes) == settings.page_size and sorted(set(stub.list_sizes)) == [50, 100]
    assert stub.calls["get_execution"] == 0 and stub.calls["get_execution_data"] == 0


async def test_unreachable_is_reported_never_as_a_finished_run(stub, target, daemon, settings) -> None:
    names = [f"u{i}" for i in range(250)]  # three pages: an outage must cost one probe call, not three
    for name in names:
        stub.add(name, "RUNNING")
    events: list[dict] = []
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(names, target=target)
        await _all_seen(conn, target, names)
        async with anyio.create_task_group() as tg:
            result: list = []

            async def waiter() -> None:
                result.append(await conn.wait(names[:3], target=target, on_event=events.append))

            tg.start_soon(waiter)
            stub.fail_with = Status.UNAVAILABLE
            stub.reset_counts()
            for name in names[:3]:
                stub.set_phase(name, "SUCCEEDED")  # the daemon cannot know yet

            async def told() -> bool:
                return any(e["event"] == "endpoint" and e["state"] == "unreachable" for e in events)

            await eventually(told)
            status = await conn.status(names[:3], target=target)
            assert all(e.phase == "RUNNING" and e.unreachable_since for e in status.executions)
            await anyio.sleep(3)
            outage_calls = stub.calls["list_executions"]
            assert not result, "a wait ended while the control plane was unreachable"
            stub.fail_with = None
        (done,) = result
    # Without backoff and a probe page this would be ~3 calls every 0.2 s (about 45).
    assert outage_calls <= 14
    assert [e.phase for e in done.executions] == ["SUCCEEDED"] * 3 and not done.timed_out
    states = [e["state"] for e in events if e["event"] == "endpoint"]
    assert states[0] == "unreachable" and states[-1] == "ok"
    unreachable = next(e for e in events if e["event"] == "endpoint")
    assert unreachable["unreachable_since"] and "unavailable" in unreachable["last_error"].lower()


async def test_resource_exhausted_backs_off_as_throttled(stub, target, daemon, settings) -> None:
    stub.add("r1", "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(["r1"], target=target)
        await _all_seen(conn, target, ["r1"])
        stub.fail_with = Status.RESOURCE_EXHAUSTED
        stub.reset_counts()
        await anyio.sleep(3)
        status = await conn.status(["r1"], target=target)
        stub.fail_with = None
    (endpoint,) = status.daemon["endpoints"]
    assert endpoint["state"] == "throttled" and endpoint["unreachable_since"] is None
    assert status.executions[0].phase == "RUNNING" and status.executions[0].unreachable_since is None
    assert stub.calls["list_executions"] <= 10  # 0.2 s polling would be ~15 calls; backoff spaces them out


async def test_pollers_of_one_endpoint_share_one_rate_limit(stub, target, daemon, settings) -> None:
    stub.add("s1", "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(["s1", f"{PROJECT}:staging:s2", f"other:{DOMAIN}:s3"], target=target)
    pollers = list(daemon.service.pollers.values())
    assert len(pollers) == 3
    assert len({id(poller.endpoint.limiter) for poller in pollers}) == 1


async def test_token_bucket_spends_the_burst_then_the_rate() -> None:
    clock = [1000.0]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    bucket = _poller.TokenBucket(rate=20, burst=5, clock=lambda: clock[0], sleep=fake_sleep)
    for _ in range(25):
        await bucket.acquire()
    assert clock[0] - 1000.0 == pytest.approx((25 - 5) / 20)
    # Low-priority work waits until half the burst is back, leaving room for polls.
    started = clock[0]
    await bucket.acquire(reserve=2.5)
    assert clock[0] - started == pytest.approx(3.5 / 20)


def test_interval_is_quick_for_young_runs_and_slow_for_quiet_ones() -> None:
    item = Tracked(("e", "p", "d", "n"), tracked_at=0.0)
    assert item.poll_interval(1.0, 0.5, 10.0) == 0.5
    assert item.poll_interval(30.0, 0.5, 10.0) == pytest.approx(3.0)
    assert item.poll_interval(3600.0, 0.5, 10.0) == 10.0
    item.phase_changed_at = 3599.0  # a phase change makes it quick again
    assert item.poll_interval(3600.0, 0.5, 10.0) == 0.5


async def test_the_stubs_encoded_lists_are_what_betterproto_writes(stub) -> None:
    from asyncrun._proto.flyteidl import admin

    runs = [stub.add("e1", "RUNNING"), stub.add("e2", "UNDEFINED"), stub.add("e3", "RUNNING")]
    stub.set_phase("e3", "FAILED", error=("USER:Boom", "it broke"))
    for token in ("", "100"):
        expected = bytes(admin.ExecutionList(executions=[stub._message(r) for r in runs], token=token))
        assert stub.encoded_list(runs, token).data == expected
    parsed = admin.ExecutionList.parse(stub.encoded_list(runs, "").data)
    assert parsed.executions[2].closure.error.message == "it broke"


async def test_quiet_runs_are_listed_by_phase_and_changes_still_arrive(
    stub, target, daemon, settings
) -> None:
    names = [f"q{i:03d}" for i in range(230)]
    for name in names:
        stub.add(name, "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(names, target=target)
        await _all_seen(conn, target, names)
        stub.reset_counts()
        mark = stub.sweeps
        await eventually(lambda: _value(stub.sweeps), lambda sweeps: sweeps >= mark + 2)
        # Runs seen RUNNING are asked for only if they left RUNNING; full pages are filtered, the
        # remainder (30) shares an unfiltered page.
        everything_but_running = frozenset(_poller._PHASE_NAMES) - {"RUNNING"}
        filtered = [n for n, ph in zip(stub.list_names, stub.list_phases, strict=True) if ph is not None]
        assert filtered and all(len(page) == settings.page_size for page in filtered)
        assert set(stub.list_phases) == {everything_but_running, None}
        stub.set_phase(names[0], "FAILED", error=("USER:Boom", "it broke"))
        stub.set_phase(names[150], "SUCCEEDED")
        stub.set_phase(names[229], "QUEUED")  # a phase going back is a change too
        done = await conn.wait(names[:1] + names[150:151], target=target, timeout=30)
        status = await conn.status(names[229:], target=target)
    assert not done.timed_out
    assert [(e.phase, e.error["message"] if e.error else None) for e in done.executions] == [
        ("FAILED", "it broke"),
        ("SUCCEEDED", None),
    ]
    # Not settled: wait until the daemon's memory shows the change the filter let through.
    assert status.executions[0].phase in ("RUNNING", "QUEUED")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await _all_seen(conn, target, names[229:], phase="QUEUED")


async def test_a_run_that_disappears_is_found_missing_by_a_refresh(
    stub, target, daemon, settings, monkeypatch
) -> None:
    monkeypatch.setattr(_poller, "REFRESH_POLLS", 3)
    names = [f"g{i:03d}" for i in range(100)]  # one full page: listed by phase once seen
    for name in names:
        stub.add(name, "RUNNING")
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        await conn.track(names, target=target)
        await _all_seen(conn, target, names)
        del stub.runs[names[7]]  # archived, or the control plane lost it: no list shows it any more
        stub.reset_counts()
        done = await conn.wait(names[7:8], target=target, timeout=30)
    (gone,) = done.executions
    assert not done.timed_out and not gone.found and gone.error["code"] == "NOT_FOUND"
    # Found by an unfiltered refresh of its page (a filtered one cannot tell "gone" from "unchanged").
    assert None in stub.list_phases and stub.calls["get_execution"] >= 1


async def _value(value):
    return value
