"""Every request asyncrun sends decodes with the official flyteidl; launches survive a flaky control plane."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from google.protobuf import json_format

from asyncrun import Client
from asyncrun.client import ClientConfig

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def import_hello():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import hello
    finally:
        sys.path.remove(str(EXAMPLES))
    return hello


def official_request_type(path: str):
    """The official flyteidl request class of an RPC, from the installed descriptors."""
    import flyteidl.service.admin_pb2
    import flyteidl.service.dataproxy_pb2  # noqa: F401
    from google.protobuf import descriptor_pool, message_factory

    service_name, method_name = path.strip("/").split("/")
    service = descriptor_pool.Default().FindServiceByName(service_name)
    method = service.methods_by_name[method_name]
    return message_factory.GetMessageClass(method.input_type)


async def test_every_request_decodes_with_official_flyteidl(proxy, sandbox, monkeypatch, tmp_path) -> None:
    hello = import_hello()
    data = tmp_path / "lines.txt"
    data.write_text("a\nb\n")
    async with Client.from_config(endpoint=proxy.endpoint, insecure=True) as client:
        ex = await client.run(hello.wf, {"name": "wire"}, wait=True, options=None)
        assert ex.outputs == {"o0": "HELLO WIRE HELLO WIRE"}
        lp = await client.fetch_launch_plan("hello.wf")
        await client.fetch_workflow("hello.wf")
        await client.fetch_task("hello.say_hello")
        await client.list_entities("launch plan")
        await client.list_entities("workflow")
        await client.list_entities("task")
        await client.list_executions(names=[ex.id.name])
        await client.upload_file(data)
        running = await client.run(lp, {"name": "t"})
        try:
            await client.terminate(running)
        except Exception:
            pass  # it may have finished already; the request itself is what is checked
    paths = {record.path for record in proxy.log}
    for expected in (
        "CreateUploadLocation",
        "CreateTask",
        "CreateWorkflow",
        "CreateLaunchPlan",
        "CreateExecution",
        "GetExecution",
        "GetExecutionData",
        "GetActiveLaunchPlan",
        "ListWorkflows",
        "GetLaunchPlan",
        "ListTasks",
        "GetTask",
        "ListLaunchPlanIds",
        "ListWorkflowIds",
        "ListTaskIds",
        "ListExecutions",
        "TerminateExecution",
    ):
        assert any(p.endswith("/" + expected) for p in paths), expected
    for record in proxy.log:
        cls = official_request_type(record.path)
        message = cls.FromString(record.request)
        # Nothing we sent is unknown to flyteidl: a JSON round trip keeps only known fields, and
        # loses no byte.
        known_only = json_format.ParseDict(json_format.MessageToDict(message), cls())
        assert len(known_only.SerializeToString()) == len(record.request), record.path


async def test_flaky_control_plane_200_concurrent_launches_each_exactly_once(proxy, sandbox) -> None:
    hello = import_hello()
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as direct:
        lp_entity = await direct.register(hello.say_hello)
    proxy.plan.fail_share = 0.3
    results = []
    # Each launch starts a task process: with 200 of them on a busy 2-core machine a single call can
    # take longer than the default 30 s deadline, which is the machine, not the retries under test.
    config = ClientConfig(endpoint=proxy.endpoint, insecure=True, unreachable_timeout=30, call_timeout=180)
    async with Client(config) as client:

        async def launch(i: int) -> None:
            results.append(await client.run(lp_entity, {"name": f"n{i}"}))

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(launch, i)
    proxy.plan.fail_share = 0.0
    names = {ex.id.name for ex in results}
    assert len(results) == 200 and len(names) == 200
    injected = sum(1 for r in proxy.log if r.path.endswith("/CreateExecution"))
    assert injected > 200  # some creates really were retried
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as direct:
        seen: set[str] = set()
        token = ""
        while True:
            page, token = await direct.list_executions(limit=100, token=token)
            seen |= {ex.id.name for ex in page}
            if not token:
                break
    assert names <= seen
    assert len(seen) == 200  # nothing started twice


async def test_a_launch_whose_reply_timed_out_is_retried_and_started_once(proxy, sandbox) -> None:
    """CreateExecution that ran but whose answer came too late (DEADLINE_EXCEEDED) is retried: the
    name was chosen before the first attempt, so the retry finds the run and attaches to it."""
    from grpclib.const import Status

    hello = import_hello()
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as direct:
        lp_entity = await direct.register(hello.say_hello)
    proxy.plan.only, proxy.plan.fail_share = "/CreateExecution", 0.5
    proxy.plan.lost_reply_share, proxy.plan.lost_reply_status = 1.0, Status.DEADLINE_EXCEEDED
    async with Client.from_config(endpoint=proxy.endpoint, insecure=True) as client:
        results = [await client.run(lp_entity, {"name": f"d{i}"}) for i in range(12)]
        # A relaunch is retried the same way, and recognised as its own.
        proxy.plan.only = "/RelaunchExecution"
        relaunched = [await client.relaunch(ex) for ex in results[:6]]
    proxy.plan.fail_share = 0.0
    creates = [r for r in proxy.log if r.path.endswith("/CreateExecution")]
    assert len(creates) > len(results), "some replies were lost and the creates retried"
    relaunches = [r for r in proxy.log if r.path.endswith("/RelaunchExecution")]
    assert len(relaunches) > len(relaunched), "some relaunch replies were lost and retried"
    assert any(ex.attached for ex in results)
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as direct:
        page, _ = await direct.list_executions(limit=100)
    assert sorted(ex.id.name for ex in page) == sorted(ex.id.name for ex in results + relaunched)  # once
