"""`Client.run_many`, `Client.abort` of several runs and `Client.relaunch` of a run whose inputs
FlyteAdmin offloaded, against a real sandbox (and a proxy that answers as FlyteAdmin does)."""

from __future__ import annotations

import pytest

from asyncrun import Client
from asyncrun.exceptions import NotFoundError, UsageError

from .proxy import FaultPlan, start_proxy

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

FLOWS = (
    "import time\n"
    "from asyncrun import task, workflow\n\n"
    "@task\ndef echo(s: str) -> str:\n    return s.upper()\n\n"
    "@task\ndef slow(n: int) -> int:\n    time.sleep(n)\n    return n\n\n"
    "@workflow\ndef ok(s: str) -> str:\n    return echo(s=s)\n\n"
    "@workflow\ndef sleepy(n: int = 600) -> int:\n    return slow(n=n)\n"
)


@pytest.fixture
def flows(tmp_path):
    from asyncrun.sdk._loader import load_file

    (tmp_path / "many_flows.py").write_text(FLOWS)
    return load_file(tmp_path / "many_flows.py").module


async def test_run_many_gives_one_result_per_line_and_a_bad_line_stops_no_other(sandbox_env, flows) -> None:
    async with Client.from_config() as client:
        results = await client.run_many(
            flows.ok, [{"s": "a"}, {"nope": 1}, {"s": "c"}], max_inflight=1, wait=True
        )
        again = await client.run_many(flows.ok, [{"s": "a"}, {"s": "c"}], max_inflight=2)
    assert [r.index for r in results] == [0, 1, 2]
    assert isinstance(results[1].error, UsageError) and results[1].execution is None
    for r, out in ((results[0], "A"), (results[2], "C")):
        assert r.error is None and r.execution is not None
        assert r.execution.phase == "SUCCEEDED" and r.execution.outputs == {"o0": out}
    # The same line of the same batch has the same name: running it again attaches.
    assert results[0].execution is not None and again[0].execution is not None
    assert again[0].execution.id == results[0].execution.id and again[0].execution.attached


async def test_run_many_wait_timeout_leaves_each_late_run_with_its_error(sandbox_env, flows) -> None:
    from asyncrun.exceptions import WaitTimeoutError

    lines = [{"n": 0}, {"n": 600}]
    async with Client.from_config() as client:
        launched = await client.run_many(flows.sleepy, lines)
        assert launched[0].execution is not None
        await client.wait(launched[0].execution)  # the quick line ends before any deadline starts
        # The same batch again attaches to its runs, now waiting under a deadline.
        results = await client.run_many(flows.sleepy, lines, wait=True, wait_timeout=3)
        assert [r.name for r in results] == [r.name for r in launched]
        late = results[1].execution
        assert late is not None
        await client.terminate(late)
    assert results[0].error is None and results[0].execution is not None
    assert results[0].execution.phase == "SUCCEEDED"
    assert isinstance(results[1].error, WaitTimeoutError) and not late.phase.is_terminal


async def test_run_many_refuses_an_empty_batch_before_registering(sandbox_env, flows) -> None:
    async with Client.from_config() as client:
        with pytest.raises(UsageError, match="empty"):
            await client.run_many(flows.ok, [])
        assert await client.list_entities("workflow") == []  # nothing registered


async def test_abort_of_several_runs_aborts_each_and_reports_each(sandbox_env, flows) -> None:
    async with Client.from_config() as client:
        running = await client.run(flows.sleepy, {})
        outcome = await client.abort("nosuchrun", running, cause="enough")
        ended = await client.wait(running, timeout=120)
    assert [r.id.name for r in outcome] == ["nosuchrun", running.id.name]
    assert isinstance(outcome[0].error, NotFoundError) and not outcome[0].ok
    assert outcome[1].ok
    assert ended.phase == "ABORTED" and "enough" in ended.abort_cause


def offload_inputs(folder):
    """A rewrite for the proxy: GetExecutionData answers as FlyteAdmin does for inputs above its
    inline limit: no `full_inputs`, the map stored at `inputs.url`."""
    from asyncrun._proto.flyteidl import admin, core

    def rewrite(path: str, reply):
        if not path.endswith("/GetExecutionData") or not reply.full_inputs:
            return reply
        stored = folder / f"inputs-{len(list(folder.iterdir()))}.pb"
        stored.write_bytes(bytes(reply.full_inputs))
        reply.full_inputs = core.LiteralMap()
        reply.inputs = admin.UrlBlob(url=str(stored), bytes=stored.stat().st_size)
        return reply

    return rewrite


async def test_relaunch_reads_offloaded_inputs(sandbox, sandbox_env, flows, tmp_path) -> None:
    folder = tmp_path / "offloaded"
    folder.mkdir()
    proxy, server, upstream = await start_proxy(
        sandbox.host, sandbox.port, FaultPlan(rewrite=offload_inputs(folder))
    )
    try:
        async with Client.from_config(endpoint=proxy.endpoint, insecure=True) as client:
            first = await client.run(flows.ok, {"s": "offloaded"}, wait=True)
            again = await client.relaunch(first, wait=True)
            assert await client.fetch_inputs(again) == {"s": "offloaded"}
    finally:
        server.close()
        upstream.close()
    assert again.id != first.id
    assert again.phase == "SUCCEEDED" and again.outputs == {"o0": "OFFLOADED"}


async def test_relaunch_does_not_need_the_client_to_read_offloaded_inputs(
    sandbox, sandbox_env, flows, tmp_path
) -> None:
    """Relaunch is FlyteAdmin's RelaunchExecution: the control plane reads the inputs it stored, so a
    client that cannot read them (their blob is gone for it) still relaunches with the same inputs."""
    folder = tmp_path / "offloaded"
    folder.mkdir()
    rewrite = offload_inputs(folder)

    def lose_the_blob(path: str, reply):
        reply = rewrite(path, reply)
        if path.endswith("/GetExecutionData") and reply.inputs and reply.inputs.url:
            reply.inputs.url = str(tmp_path / "gone.pb")
        return reply

    proxy, server, upstream = await start_proxy(sandbox.host, sandbox.port, FaultPlan(rewrite=lose_the_blob))
    try:
        async with Client.from_config(endpoint=proxy.endpoint, insecure=True) as client:
            first = await client.run(flows.ok, {"s": "x"}, wait=True)
            again = await client.relaunch(first, wait=True)
    finally:
        server.close()
        upstream.close()
    assert again.phase == "SUCCEEDED" and again.id.name != first.id.name
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as direct:
        assert await direct.fetch_inputs(again) == {"s": "x"}
