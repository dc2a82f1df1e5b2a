"""Nothing is lost: a daemon killed with SIGKILL is restarted by the next call and resumes every wait;
a control plane that stops answering is reported unreachable, never as a finished run."""

from __future__ import annotations

import os
import signal
import time

import anyio
import pytest

from asyncrun.daemon import DaemonConnection

from .conftest import daemon_log, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


async def _status(settings, target):
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        return await conn.status(target=target)


async def test_sigkill_of_the_daemon_loses_no_wait(stub, target, spawned) -> None:
    settings = spawned
    names = [f"k{i:04d}" for i in range(1000)]
    for name in names:
        stub.add(name, "RUNNING")
    groups = [names[i : i + 20] for i in range(0, len(names), 20)]
    results: dict[int, object] = {}
    reconnects: list[int] = []

    async def waiter(index: int) -> None:
        # autostart: these are "the next CLI calls" that bring a killed daemon back.
        async with DaemonConnection(settings=settings) as conn:
            results[index] = await conn.wait(
                groups[index], target=target, timeout=90,
                on_event=lambda e: reconnects.append(index) if e["event"] == "reconnected" else None,
            )  # fmt: skip

    async with anyio.create_task_group() as tg:
        for index in range(len(groups)):
            tg.start_soon(waiter, index)
        status = await eventually(
            lambda: _status(settings, target),
            lambda s: (
                sum(1 for e in s.executions if e.seen_at) == 1000
                and sum(e.raw["subscribers"] for e in s.executions) == 1000
            ),
            within=30,
        )
        first_pid = status.daemon["pid"]
        for name in names[:300]:
            stub.set_phase(name, "SUCCEEDED")
        await eventually(
            lambda: _status(settings, target),
            lambda s: sum(e.phase == "SUCCEEDED" for e in s.executions) == 300,
        )
        os.kill(first_pid, signal.SIGKILL)
        for name in names[300:600]:
            stub.set_phase(name, "FAILED", error=("USER:X", "while the daemon was dead"))
        await anyio.sleep(0.5)
        for name in names[600:]:
            stub.set_phase(name, "SUCCEEDED")

    assert len(results) == len(groups), daemon_log()
    final = {ex.name: ex.phase for r in results.values() for ex in r.executions}
    assert final == {name: stub.runs[name].phase for name in names}
    assert not any(r.timed_out for r in results.values())
    assert sorted(r.exit_code for r in results.values()).count(1) == 15  # groups 15..29 hold the failures
    # Groups 15.. were still waiting at the kill: each lost the daemon and came back (0..14 may have
    # finished before it, or been told just after it, by the restarted daemon).
    assert set(range(15, len(groups))) <= set(reconnects)
    after = await _status(settings, target)
    assert after.daemon["pid"] != first_pid
    assert after.daemon["tracked"] == 1000 and after.daemon["active"] == 0


async def test_a_silent_control_plane_is_unreachable_not_finished(stub, target, spawned) -> None:
    settings = spawned
    names = [f"s{i:03d}" for i in range(100)]
    for name in names:
        stub.add(name, "RUNNING")
    events: list[dict] = []  # in the order they arrived; marks below split them into before/during/after
    results: list = []

    async def waiter(part: list[str]) -> None:
        async with DaemonConnection(settings=settings, autostart=False) as conn:
            results.append(await conn.wait(part, target=target, on_event=events.append))

    test_began = time.time()  # an outage noticed in this test, not a stale one, is reported
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(waiter, names[i::5])
        await eventually(
            lambda: _status(settings, target),
            lambda s: sum(1 for e in s.executions if e.seen_at) == len(names),
        )
        stub.silence()
        silent_from = len(events)
        for name in names[:50]:
            stub.set_phase(name, "SUCCEEDED")
        await anyio.sleep(15)
        status = await _status(settings, target)  # the daemon itself keeps answering
        assert all(e.phase == "RUNNING" and e.unreachable_since for e in status.executions), [
            (e.name, e.phase, e.unreachable_since) for e in status.executions
        ][:5] + [status.daemon["endpoints"]]
        (endpoint,) = status.daemon["endpoints"]
        assert endpoint["state"] == "unreachable" and endpoint["unreachable_since"] >= test_began
        for name in names[50:]:
            stub.set_phase(name, "FAILED", error=("USER:X", "x"))
        await anyio.sleep(15)  # 30 s of silence in all
        assert not results, "a wait finished while the control plane was silent"
        resumed_at = len(events)
        stub.resume()

    assert len(results) == 5 and not any(r.timed_out for r in results)
    assert {ex.name: ex.phase for r in results for ex in r.executions} == {
        n: stub.runs[n].phase for n in names
    }
    silent = events[silent_from:resumed_at]
    unreachable = [e for e in silent if e["event"] == "endpoint" and e["state"] == "unreachable"]
    assert len(unreachable) == 5  # each waiter was told, once
    assert not [s for e in silent if e["event"] == "update" for s in e["executions"] if s["terminal"]]
    recovered = [e for e in events[resumed_at:] if e["event"] == "endpoint"]
    assert recovered and recovered[-1]["state"] == "ok"
